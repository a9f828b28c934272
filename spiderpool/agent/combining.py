"""Pool records through the controller's record combiner, with the agent's own writer as the way that always works.

:class:`CombinedWriter` has the status writer's ``allocate``/``release``.  With a combiner configured it first asks
the controller (``POST /v2/pool-records`` over HTTPS, the agent's bearer token) to write the record with other
agents' records of the same pool; any answer but a durable record (no connection, a timeout, 4xx/5xx, every
candidate taken) sends the intent to the agent's own :class:`PoolStatusWriter`, unchanged.  After a failure to reach
the combiner, or an answer that it serves nobody like this agent (401, 403, 404, 503), the agent writes directly for
``pause`` seconds before it asks again, so a dead or misconfigured controller costs one request per pause, not one
per ADD.

Each request carries the agent's deadline (when its timeout ends): the combiner drops an allocation it has not
written by then.  An allocation's outcome is unknown when the request timed out: a write already under way may still
land.  The direct
write that follows is idempotent by pod UID (it finds that record, or its compare-and-swap makes the combiner's
late write find this one), so the pod holds one address whichever lands first.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from spiderpool.core.record_combining import CONTENTION_WINDOW, PATH, CombineRequest
from spiderpool.k8s.status_plan import Allocated, AllocateIntent, Released, ReleaseIntent
from spiderpool.k8s.status_writer import PoolStatusWriter

log = logging.getLogger(__name__)

_UNSERVED = frozenset({401, 403, 404, 503})  # no token accepted, no RBAC, an older controller, no review possible

Candidates = Callable[[str, str | None, int], tuple[str, ...]]
"""(pool, the agent's choice, how many more) -> the addresses to offer, the choice first (empty: write directly)."""


def candidate_count(pending: int) -> int:
    """How many free addresses to offer after the choice, given the records ahead of ours at the combiner last
    time: each may take one, and the watch may not have shown this agent the last write's yet."""
    return max(MIN_CANDIDATES, min(MAX_OFFERED, 3 * pending + MIN_CANDIDATES))


MIN_CANDIDATES = 64
MAX_OFFERED = 256


@dataclass(slots=True)
class CombinerStats:
    combined: int = 0  # records the combiner wrote for this agent
    fallbacks: int = 0  # intents written directly after the combiner did not answer with a record
    unreachable: int = 0  # requests that got no answer at all (each pauses the combiner path)


class CombinerClient:
    """One HTTPS session to the combiner at ``url`` (``https://host:port``), trusting ``ca_file``."""

    def __init__(self, url: str, *, token: Callable[[], Awaitable[str | None]], ca_file: Path | None = None,
                 timeout: float = 3.0) -> None:
        self._url = url.rstrip("/") + PATH
        self._token = token
        self._ca_file = ca_file
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """The session, made at first use and again after a TLS failure: the CA file may appear after the agent
        started (cert-manager), or be replaced by a new CA."""
        if self._session is None:
            try:
                context = ssl.create_default_context(cafile=str(self._ca_file) if self._ca_file is not None else None)
            except (OSError, ssl.SSLError) as error:
                raise ConnectionError(f"record combiner {self._url}: CA file {self._ca_file}: {error}") from error
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        return self._session

    async def send(self, request: CombineRequest) -> dict[str, Any] | None:
        """The combiner's JSON answer for a durable record; None for any other answer.  ConnectionError or
        TimeoutError when nobody answered."""
        token = await self._token()
        if token is None:
            return None
        session = self._open()
        headers = {"Authorization": token, "Content-Type": "application/json"}
        # Past this time nobody waits for the answer: the combiner drops the intent instead of writing it late.
        request = replace(request, deadline=time.time() + (self._timeout.total or 0.0))
        try:
            async with session.post(self._url, data=orjson.dumps(request.to_json()), headers=headers,
                                          timeout=self._timeout) as response:
                body = await response.read()
        except aiohttp.ClientError as error:
            if isinstance(error, aiohttp.ClientSSLError):
                await self.close()  # the CA file may be replaced (the Secret's new CA): read it again next time
            raise ConnectionError(f"record combiner {self._url}: {error}") from error
        if response.status in _UNSERVED:  # it will refuse every request alike for a while: pause, as if unreachable
            raise ConnectionError(f"record combiner {self._url}: {response.status} {body[:200]!r}")
        if response.status != 200:
            log.debug("record combiner refused %s of %s: %s %s", request.op, request.pool, response.status, body[:200])
            return None
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError as error:  # not a combiner (another server at that address): pause
            raise ConnectionError(f"record combiner {self._url}: an answer that is not JSON: {body[:200]!r}") from error
        return answer if isinstance(answer, dict) else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class CombinedWriter:
    """The status writer's interface: through the combiner when it answers, else through ``direct``.

    Only a contended pool goes through the combiner (unless ``always``): one whose direct writes lost a race or
    found that another writer had changed it, or for which the combiner said that other nodes write it too, within
    the last ``window`` seconds.  The first record of a pool in a window asks the combiner, which is how an agent
    learns of the others before racing them; alone on a pool, an agent then writes directly and saves the hop.
    """

    def __init__(self, direct: PoolStatusWriter, client: CombinerClient | None, *, candidates: Candidates,
                 node: str = "", pause: float = 5.0, always: bool = False, window: float = CONTENTION_WINDOW) -> None:
        self.direct = direct
        self.stats = CombinerStats()
        self._client, self._candidates, self._pause = client, candidates, pause
        self._always, self._window, self._node = always, window, node
        self._paused_until = 0.0
        self._contended_until: dict[str, float] = {}
        self._known_until: dict[str, float] = {}  # until when the combiner's last word on a pool holds
        self._pending: dict[str, int] = {}  # records ahead of ours at the combiner, by pool, as it last said
        direct.on_contention = self.contended

    def contended(self, pool: str) -> None:
        """Another writer got in the way on ``pool``: combine its records for the next ``window`` seconds."""
        self._contended_until[pool] = asyncio.get_running_loop().time() + self._window

    def _usable(self, pool: str) -> CombinerClient | None:
        now = asyncio.get_running_loop().time()
        if self._client is None or now < self._paused_until:
            return None
        if self._always or now < self._contended_until.get(pool, 0.0) or now >= self._known_until.get(pool, 0.0):
            return self._client
        return None

    async def _ask(self, request: CombineRequest) -> dict[str, Any] | None:
        client = self._usable(request.pool)
        if client is None:
            return None
        try:
            answer = await client.send(request)
        except (ConnectionError, TimeoutError) as error:
            self.stats.unreachable += 1
            self._paused_until = asyncio.get_running_loop().time() + self._pause
            log.warning("record combiner unreachable (%s); writing pool records directly for %.0fs", error,
                        self._pause)
            return None
        if answer is not None:
            self._known_until[request.pool] = asyncio.get_running_loop().time() + self._window
        if answer is not None and answer.get("contended"):
            self.contended(request.pool)
        if answer is not None and isinstance(answer.get("pending"), int):
            self._pending[request.pool] = answer["pending"]
        return answer

    async def allocate(self, pool: str, intent: AllocateIntent) -> Allocated:
        count = candidate_count(self._pending.get(pool, 40))  # unknown: enough for a few dozen racing nodes
        candidates = self._candidates(pool, intent.ip, count) if self._usable(pool) is not None else ()
        if candidates:
            answer = await self._ask(CombineRequest("allocate", pool, intent.pod_uid, pod=intent.pod, nic=intent.nic,
                                                    candidates=candidates, node=self._node))
            if answer is not None and answer.get("podUid") == intent.pod_uid and isinstance(answer.get("ip"), str):
                self.stats.combined += 1
                return Allocated(pool, answer["ip"], str(answer.get("pod", intent.pod)), intent.pod_uid,
                                 existing=bool(answer.get("existing")), nic=str(answer.get("nic", "")))
            self.stats.fallbacks += 1
        return await self.direct.allocate(pool, intent)

    async def release(self, pool: str, intent: ReleaseIntent) -> Released:
        if self._usable(pool) is not None:
            answer = await self._ask(CombineRequest("release", pool, intent.pod_uid, ip=intent.ip, node=self._node))
            if answer is not None and answer.get("podUid") == intent.pod_uid:
                self.stats.combined += 1
                return Released(pool, intent.ip, intent.pod_uid, removed=bool(answer.get("removed")))
            self.stats.fallbacks += 1
        return await self.direct.release(pool, intent)

    async def close(self) -> None:
        await self.direct.close()
        if self._client is not None:
            await self._client.close()
