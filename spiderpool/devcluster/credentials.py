"""Credentials of the local control plane: static bearer tokens, the service-account signing key, the kubeconfig."""

from __future__ import annotations

import csv
import io
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ADMIN_USER = "spiderpool-admin"
ADMIN_GROUPS = ("system:masters",)
_CONTEXT = "spiderpool-dev"


@dataclass(frozen=True)
class TokenEntry:
    """One line of kube-apiserver's ``--token-auth-file``: ``token,user,uid,"group1,group2"``."""

    token: str
    user: str
    groups: tuple[str, ...]

    def csv_line(self) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow([self.token, self.user, self.user, ",".join(self.groups)])
        return out.getvalue()


def new_token() -> str:
    return secrets.token_hex(24)


def write_token_file(path: Path, entries: Sequence[TokenEntry]) -> None:
    _write_private(path, "".join(entry.csv_line() for entry in entries).encode())


def write_service_account_key(path: Path) -> None:
    """An RSA key (PEM) for ``--service-account-signing-key-file``; its public half verifies the tokens too."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the `openssl` command is needed to create the service-account key (apt: openssl)")
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    path.chmod(0o600)


def write_kubeconfig(path: Path, *, server: str, ca_file: Path, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": _CONTEXT, "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [{"name": _CONTEXT, "context": {"cluster": _CONTEXT, "user": ADMIN_USER}}],
        "current-context": _CONTEXT,
        "preferences": {},
    }
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode())


def _write_private(path: Path, content: bytes) -> None:
    """Write atomically with mode 0600: tokens must never be world-readable, not even for an instant."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.replace(partial, path)
