"""Helpers of the API client's integration tests: certificates made with openssl, ServiceAccount tokens from the
real API server's TokenRequest."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

from spiderpool.k8s.api_requests import request_json
from spiderpool.k8s.client import ApiClient


def self_signed_pair(stem: Path) -> tuple[Path, Path]:
    """A fresh self-signed certificate (usable as a CA) and its key: ``stem.crt``, ``stem.key``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise AssertionError("the `openssl` command is needed (apt: openssl)")
    certificate, key = stem.with_suffix(".crt"), stem.with_suffix(".key")
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={stem.name}",
               "-keyout", str(key), "-out", str(certificate)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"openssl failed: {done.stderr}")
    return certificate, key


async def new_service_account_token(api: ApiClient, prefix: str) -> tuple[str, str]:
    """A new ServiceAccount in ``default`` and a token for it (TokenRequest); its user name and the token."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    accounts = "/api/v1/namespaces/default/serviceaccounts"
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
    await request_json(api, "POST", accounts, what=f"create ServiceAccount {name}", body=account)
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}}
    issued = await request_json(api, "POST", f"{accounts}/{name}/token", what=f"token for {name}", body=request)
    return f"system:serviceaccount:default:{name}", str(issued["status"]["token"])
