"""Build a ``kubernetes_asyncio`` API client from a kubeconfig file, explicit credentials, or the in-cluster config.

The kubeconfig reader is synchronous on purpose (``kubernetes_asyncio``'s loader is a coroutine): it understands what
the project's control plane and ordinary clusters write (server, CA file or data, bearer token or token file, client
certificate), not exec or auth-provider plugins.  Call ``make_api_client`` from a coroutine: aiohttp binds the client
session to the running event loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.config import load_incluster_config

# Other packages type against this name instead of importing the client library themselves.
ApiClient = k8s_client.ApiClient


# aiohttp closes TLS transports over a few loop iterations after ClientSession.close() (its documented "graceful
# shutdown" grace); closing the loop sooner leaves them to the garbage collector as unclosed transports.
_TLS_CLOSE_GRACE = 0.25


async def close_api_client(api: ApiClient) -> None:
    """Close ``api`` and give its TLS connections the loop iterations they need to finish closing."""
    await api.close()
    await asyncio.sleep(_TLS_CLOSE_GRACE)


class KubeconfigError(ValueError):
    """The kubeconfig cannot be used; the message names the file and the entry."""


def make_api_client(
    *,
    kubeconfig: Path | None = None,
    server: str | None = None,
    token: str | None = None,
    ca_file: Path | None = None,
    context: str | None = None,
) -> k8s_client.ApiClient:
    """An API client: explicit ``server`` (with ``token``/``ca_file``) wins, then ``kubeconfig``, else in-cluster."""
    if server is not None:
        configuration = _explicit_configuration(server=server, token=token, ca_file=ca_file)
    elif kubeconfig is not None:
        configuration = configuration_from_kubeconfig(kubeconfig, context=context)
    else:
        configuration = k8s_client.Configuration()
        load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return k8s_client.ApiClient(configuration=configuration)


def _explicit_configuration(*, server: str, token: str | None, ca_file: Path | None) -> k8s_client.Configuration:
    configuration = k8s_client.Configuration(host=server)
    if token is not None:
        _set_bearer_token(configuration, token)
    if ca_file is not None:
        configuration.ssl_ca_cert = str(ca_file)
    return configuration


def configuration_from_kubeconfig(path: Path, *, context: str | None = None) -> k8s_client.Configuration:
    """A ``Configuration`` for ``context`` (default: the current context) of the kubeconfig at ``path``."""
    document = yaml.safe_load(path.read_text()) or {}
    context_name = context or document.get("current-context")
    if not context_name:
        raise KubeconfigError(f"{path}: no current-context and no context given")
    selected = _named_entry(document, "contexts", context_name, path)["context"]
    cluster = _named_entry(document, "clusters", selected.get("cluster", ""), path)["cluster"]
    user = _named_entry(document, "users", selected["user"], path).get("user") or {} if selected.get("user") else {}
    configuration = k8s_client.Configuration(host=cluster["server"])
    base = path.parent
    configuration.ssl_ca_cert = _file_or_data(cluster, "certificate-authority", base)
    configuration.verify_ssl = not cluster.get("insecure-skip-tls-verify", False)
    configuration.tls_server_name = cluster.get("tls-server-name")
    configuration.cert_file = _file_or_data(user, "client-certificate", base)
    configuration.key_file = _file_or_data(user, "client-key", base)
    token = user.get("token")
    if token is None and user.get("tokenFile"):
        token = (base / user["tokenFile"]).read_text().strip()
    if token is not None:
        _set_bearer_token(configuration, token)
    return configuration


def _set_bearer_token(configuration: k8s_client.Configuration, token: str) -> None:
    # The generated client sends api_key["BearerToken"] (with its prefix) as the Authorization header.
    configuration.api_key = {"BearerToken": token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}


def _named_entry(document: dict[str, Any], section: str, name: str, path: Path) -> dict[str, Any]:
    for entry in document.get(section) or []:
        if entry.get("name") == name:
            return dict(entry)
    raise KubeconfigError(f"{path}: {section} has no entry named {name!r}")


def _file_or_data(entry: dict[str, Any], key: str, base: Path) -> str | None:
    """The path of ``key`` (relative to the kubeconfig) or of a file holding the decoded ``key-data``."""
    if entry.get(key):
        return str(base / entry[key])
    data = entry.get(f"{key}-data")
    if not data:
        return None
    content = base64.b64decode(data)
    # ssl wants a file; one file per content, so repeated clients do not pile up temp files.
    target = Path(tempfile.gettempdir()) / f"spiderpool-kubeconfig-{hashlib.sha256(content).hexdigest()[:24]}.pem"
    if not target.exists():
        target.write_bytes(content)
        target.chmod(0o600)
    return str(target)
