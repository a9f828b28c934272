"""Build a ``kubernetes_asyncio`` API client from kubeconfig files, explicit credentials, or the in-cluster config.

Credentials are loaded by the client library's own loaders (``kubernetes_asyncio.config``), never parsed here: a
``KUBECONFIG``-style list of files is merged as kubectl merges it, ``exec`` credential plugins (EKS, GKE, AKS, OIDC
helpers) are run, and a token with an expiry is renewed by the plugin before it runs out.

Certificate and key data (``*-data`` entries, or certificates an exec plugin returns) must be files for Python's
``ssl``.  The loader writes them with ``mkstemp`` into a directory made for this one client (``mkdtemp``: mode 0700, a
name nobody can predict), the client builds its TLS context from them, and the directory is removed before
:func:`make_api_client` returns: no key material stays on disk, and nothing another user placed in /tmp is ever
read.  Call it from a coroutine: aiohttp binds the client's session to the running event loop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from aiohttp.helpers import get_env_proxy_for_url, netrc_from_env
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.config import ConfigException, load_incluster_config, load_kube_config_from_dict
from kubernetes_asyncio.config import kube_config as _kube_config
from kubernetes_asyncio.config.kube_config import KubeConfigLoader, load_kube_config
from yarl import URL

# Other packages type against this name instead of importing the client library themselves.
ApiClient = k8s_client.ApiClient

__all__ = ["ApiClient", "KubeconfigError", "bearer_token", "close_api_client", "make_api_client"]

# aiohttp closes TLS transports over a few loop iterations after ClientSession.close() (its documented "graceful
# shutdown" grace); closing the loop sooner leaves them to the garbage collector as unclosed transports.
_TLS_CLOSE_GRACE = 0.25


async def close_api_client(api: ApiClient) -> None:
    """Close ``api`` and give its TLS connections the loop iterations they need to finish closing."""
    await api.close()
    await asyncio.sleep(_TLS_CLOSE_GRACE)


async def bearer_token(api: ApiClient) -> str | None:
    """The ``Authorization`` header value ``api`` sends now (its refresh hook run first), or None without a token
    (client-certificate credentials): what the agent shows the controller's record combiner."""
    value = await api.configuration.get_api_key_with_prefix("BearerToken")
    return value if isinstance(value, str) and value else None


class KubeconfigError(ValueError):
    """The credentials cannot be used; the message says which file or source and why."""


async def make_api_client(
    *,
    kubeconfig: Path | str | None = None,
    server: str | None = None,
    token: str | None = None,
    ca_file: Path | None = None,
    context: str | None = None,
) -> k8s_client.ApiClient:
    """An API client: explicit ``server`` (with ``token``/``ca_file``) wins, then ``kubeconfig`` (one file, or a
    ``KUBECONFIG``-style list joined by ``os.pathsep``, merged), else the in-cluster service account."""
    configuration = k8s_client.Configuration()
    if server is not None:
        document = _explicit_kubeconfig(server=server, token=token, ca_file=ca_file)
        return await _from_kubeconfig(configuration, "the explicit server", document=document, context=None)
    if kubeconfig is not None:
        return await _from_kubeconfig(configuration, str(kubeconfig), document=None, context=context)
    try:
        load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException as error:
        raise KubeconfigError(f"no kubeconfig given and no in-cluster service account: {error}") from None
    return _environment_read_once(k8s_client.ApiClient(configuration=configuration))


def _environment_read_once(api: k8s_client.ApiClient) -> k8s_client.ApiClient:
    """Stop the session from consulting the environment on every request when it has nothing to say.

    The client library's aiohttp session trusts the environment (``HTTPS_PROXY``, ``NO_PROXY``, ``~/.netrc``), which
    aiohttp honours by reading it again in a worker thread for each request: two thread hand-offs per request, a
    large part of a CNI ADD's time and of the agent's CPU per write.  Asked once here, for the API server's URL:
    when no proxy applies and no netrc entry names the host, the per-request look-ups are turned off; otherwise
    they stay, so a proxied or netrc-authenticated setup behaves exactly as before.
    """
    url = URL(str(api.configuration.host))
    try:
        get_env_proxy_for_url(url)
    except LookupError:
        netrc = netrc_from_env()
        if netrc is None or url.host is None or netrc.authenticators(url.host) is None:
            session = api.rest_client.pool_manager
            session._trust_env = False  # listed in aiohttp.ClientSession.ATTRS: set without a warning
    return api


def _explicit_kubeconfig(*, server: str, token: str | None, ca_file: Path | None) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    return {
        "clusters": [{"name": "explicit", "cluster": cluster}],
        "users": [{"name": "explicit", "user": {"token": token} if token else {}}],
        "contexts": [{"name": "explicit", "context": {"cluster": "explicit", "user": "explicit"}}],
        "current-context": "explicit",
    }


async def _from_kubeconfig(
    configuration: k8s_client.Configuration, source: str, *, document: dict[str, Any] | None, context: str | None
) -> k8s_client.ApiClient:
    """Load ``document`` (or the files of ``source``) into ``configuration`` and build the client while the key
    material the loader wrote exists; it is removed before this returns."""
    if document is None:
        _require_a_file(source)
    with _private_scratch() as scratch:
        try:
            if document is None:
                loader = await load_kube_config(config_file=source, context=context, persist_config=False,
                                                client_configuration=configuration, temp_file_path=scratch)
            else:
                loader = await load_kube_config_from_dict(document, client_configuration=configuration,
                                                          temp_file_path=scratch)
            api = k8s_client.ApiClient(configuration=configuration)  # reads the CA, certificate and key files now
            _environment_read_once(api)
        except (ConfigException, yaml.YAMLError, OSError, KeyError, TypeError, ValueError, AssertionError) as error:
            raise KubeconfigError(f"kubeconfig {source}: {error or type(error).__name__}") from None
    _strip_token(configuration)
    _renew_expiring_exec_token(loader, configuration)
    return api


def _strip_token(configuration: k8s_client.Configuration) -> None:
    # The loader reads a ``tokenFile`` as it is; the newline most token files end with would make an invalid header.
    token = configuration.api_key.get("BearerToken")
    if isinstance(token, str):
        configuration.api_key["BearerToken"] = token.strip()


def _require_a_file(source: str) -> None:
    """The loader only logs when no file of a list exists; say it as an error."""
    paths = [path for path in source.split(os.pathsep) if path]
    if not any(Path(path).expanduser().is_file() for path in paths):
        raise KubeconfigError(f"kubeconfig {source}: no such file")


@contextmanager
def _private_scratch() -> Iterator[str]:
    """A fresh directory only this process can enter; removed with everything in it on exit."""
    scratch = tempfile.mkdtemp(prefix="spiderpool-kubeconfig-")
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _forget_files_under(scratch)


def _forget_files_under(directory: str) -> None:
    # The loader remembers every file it wrote by content and hands the same path out again; a path under a removed
    # directory must not be handed out (it would fail, or be re-created by someone else).
    written = getattr(_kube_config, "_temp_files", None)
    if not isinstance(written, dict):
        return
    for content, path in list(written.items()):
        if path.startswith(directory + os.sep):
            del written[content]


def _renew_expiring_exec_token(loader: KubeConfigLoader, configuration: k8s_client.Configuration) -> None:
    """A token from an exec plugin that says when it expires is renewed by running the plugin again before each
    request past that time (the loader returns at once while the token is still good)."""
    if not hasattr(loader, "exec_plugin_expiry"):
        return
    lock = asyncio.Lock()

    async def renew(config: k8s_client.Configuration) -> None:
        async with lock:
            await loader.load_from_exec_plugin()
        config.api_key["BearerToken"] = loader.token

    configuration.refresh_api_key_hook = renew
