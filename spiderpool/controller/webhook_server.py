"""The HTTPS admission webhook server (upstream's paths, AdmissionReview v1) every replica serves on 5722."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import orjson
from aiohttp import web

from spiderpool.controller.metrics import ControllerMetrics
from spiderpool.controller.webhooks.deps import Handler, WebhookDeps
from spiderpool.controller.webhooks.ledger import LedgerContention
from spiderpool.controller.webhooks.review import Verdict, parse_review, review_response
from spiderpool.controller.webhooks.routes import HANDLERS
from spiderpool.k8s.store import StoreError

log = logging.getLogger(__name__)


def _review_view(handler: Handler, deps: WebhookDeps, metrics: ControllerMetrics):  # type: ignore[no-untyped-def]
    async def view(request: web.Request) -> web.Response:
        try:
            admission = parse_review(orjson.loads(await request.read()))
        except (ValueError, orjson.JSONDecodeError) as error:
            return web.Response(status=400, text=str(error))
        try:
            verdict = await handler(deps, admission)
        except (StoreError, LedgerContention) as error:
            # The decision needs fresh peers; without them refuse, as failurePolicy Fail would.
            log.warning("webhook %s %s %s: %s", admission.kind, admission.operation, admission.name, error)
            verdict = Verdict(allowed=False, message=f"{admission.kind} {admission.name}: cannot decide now: {error}")
        metrics.webhook_requests.labels(kind=admission.kind, operation=admission.operation,
                                        allowed=str(verdict.allowed).lower()).inc()
        return web.Response(body=orjson.dumps(review_response(admission.uid, verdict)),
                            content_type="application/json")

    return view


def make_webhook_app(deps: WebhookDeps, metrics: ControllerMetrics) -> web.Application:
    app = web.Application()
    for path, handler in HANDLERS.items():
        app.router.add_post(path, _review_view(handler, deps, metrics))

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", healthz)
    return app


def server_ssl_context(*, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


async def start_site(app: web.Application, *, host: str, port: int, ssl_context: ssl.SSLContext | None = None
                     ) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port`` (0: an ephemeral port); returns the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None
    bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, int(bound)
