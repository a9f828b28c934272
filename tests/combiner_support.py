"""The record combiner served in-process on HTTPS for integration tests, and a raw client of it."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession, TCPConnector, web
from kubernetes_asyncio.client import (
    ApiClient,
    AuthenticationV1TokenRequest,
    CoreV1Api,
    V1ObjectMeta,
    V1ServiceAccount,
    V1TokenRequestSpec,
)

from spiderpool.controller.certificates import generate_serving_certificate
from spiderpool.controller.combiner import RecordCombiner
from spiderpool.controller.webhook_server import server_ssl_context, start_site
from spiderpool.core.record_combining import PATH
from spiderpool.k8s.access_reviews import CallerCache
from spiderpool.k8s.store import SpiderStores

Combiner = tuple[str, Path]  # (URL, CA file) as an agent is configured with them


def certificate_files(directory: Path) -> tuple[Path, Path, Path]:
    """A serving certificate for 127.0.0.1: (chain, key, CA)."""
    certificate = generate_serving_certificate(hosts=("127.0.0.1",))
    cert_file, key_file = certificate.write(directory)
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(certificate.ca_pem)
    return cert_file, key_file, ca_file


@asynccontextmanager
async def served_combiner(api: ApiClient, directory: Path, *, lose_answers: int = 0,
                          hold: asyncio.Event | None = None) -> AsyncIterator[tuple[Combiner, RecordCombiner]]:
    """A RecordCombiner on HTTPS; the first ``lose_answers`` requests are carried out (durably) and then the
    connection is dropped without an answer, as when the controller dies between its write and its reply; with
    ``hold``, each request waits for that event before the combiner sees it (a combiner slower than the agent's
    patience)."""
    combiner = RecordCombiner(SpiderStores(api).ippools, CallerCache(api))
    lost = {"left": lose_answers}

    async def view(request: web.Request) -> web.StreamResponse:
        if hold is not None:
            await request.read()  # buffered now: the agent will have hung up by the time the combiner reads it
            await hold.wait()
        response = await combiner.view(request)
        if lost["left"] > 0 and response.status == 200:
            lost["left"] -= 1
            assert request.transport is not None
            request.transport.abort()
        return response

    app = web.Application()
    app.router.add_post(PATH, view)
    cert_file, key_file, ca_file = certificate_files(directory)
    runner, port = await start_site(app, host="127.0.0.1", port=0,
                                    ssl_context=server_ssl_context(cert_file=cert_file, key_file=key_file))
    try:
        yield (f"https://127.0.0.1:{port}", ca_file), combiner
    finally:
        await runner.cleanup()
        await combiner.close()


async def post_json(url: str, ca_file: Path, body: dict[str, Any], *, token: str | None
                    ) -> tuple[int, dict[str, object]]:
    """POST ``body`` to the combiner at ``url`` (with ``token`` as bearer, if any): the status and the JSON answer."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    ssl_context = ssl.create_default_context(cafile=str(ca_file))
    async with ClientSession(connector=TCPConnector(ssl=ssl_context)) as session, \
            session.post(url + PATH, data=orjson.dumps(body), headers=headers) as response:
        return response.status, orjson.loads(await response.read())


async def service_account_token(api: ApiClient, namespace: str, name: str) -> str:
    core = CoreV1Api(api)
    await core.create_namespaced_service_account(namespace, V1ServiceAccount(metadata=V1ObjectMeta(name=name)))
    request = AuthenticationV1TokenRequest(spec=V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    answer = await core.create_namespaced_service_account_token(name, namespace, request)
    return str(answer.status.token)
