"""A watch-driven cache of one kind: list, then watch from that resourceVersion, so reads never hit the API server.

The cache is generic over a :class:`ListWatchSource` (a "list function + watch function" pair), which makes the same
machinery serve the spiderpool kinds and core kinds alike (Pods of one node by ``spec.nodeName``, Nodes,
Namespaces).  It keeps itself correct across everything a long-lived watch meets:

- bookmarks (``allowWatchBookmarks``) advance the resourceVersion without events, so a reconnect resumes close to now;
- ``410 Gone`` (the resourceVersion fell out of the server's history, or etcd compacted it) triggers a relist, and
  the relist is diffed against the cache so handlers still see an ADDED / MODIFIED / DELETED event for every change
  they missed;
- a broken connection (API server restart, network error, server-side timeout) reconnects from the last
  resourceVersion, with jittered exponential backoff while the server is unreachable.

Objects are the plain JSON dicts the server sends (see :mod:`spiderpool.k8s.bodies`), shared with handlers and
readers: treat them as read-only.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, cast

import orjson
from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.api_errors import Gone, StoreError, error_for_status
from spiderpool.k8s.api_requests import request_json, stream_lines
from spiderpool.k8s.bodies import Namespace, Node, Pod
from spiderpool.k8s.crd_schema import API_VERSION, CrdKind
from spiderpool.k8s.routes import ROUTES, ObjectRoute

log = logging.getLogger(__name__)

ObjT = TypeVar("ObjT", bound=Mapping[str, Any])
EventType = Literal["ADDED", "MODIFIED", "DELETED"]
RawEvent = tuple[str, dict[str, Any]]
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ListResult(Generic[ObjT]):
    items: list[ObjT]
    resource_version: str


@dataclass(frozen=True, slots=True)
class ListWatchSource(Generic[ObjT]):
    """``list()`` returns every object and the list's resourceVersion; ``watch(rv, timeout_seconds)`` yields raw
    ``(type, object)`` events after ``rv`` (BOOKMARK included); both raise the typed errors of
    :mod:`spiderpool.k8s.api_errors` (:class:`~spiderpool.k8s.api_errors.Gone` on 410: list again)."""

    list: Callable[[], Awaitable[ListResult[ObjT]]]
    watch: Callable[[str, int], AsyncGenerator[RawEvent, None]]


# ---------------------------------------------------------------------------------------------------- raw list/watch


def _error_event(status: Mapping[str, Any], *, what: str) -> StoreError:
    """The typed error of a watch ERROR event (a Status object; 410 when the resourceVersion is too old)."""
    return error_for_status(int(status.get("code") or 0), reason=str(status.get("reason") or ""),
                            message=str(status.get("message") or ""), what=what)


def list_watch_source(
    api: ApiClient,
    route: ObjectRoute,
    *,
    what: str,
    namespace: str | None = None,
    field_selector: str | None = None,
    label_selector: str | None = None,
    page_size: int = 500,
) -> ListWatchSource[Any]:
    """A source over ``route``'s collection (of ``namespace``, or of every namespace), read as raw JSON.

    The selectors apply to the list and the watch alike; lists are paged by ``page_size``.
    """
    path = route.listing(namespace)
    selectors = {"fieldSelector": field_selector or None, "labelSelector": label_selector or None}

    async def list_all() -> ListResult[Any]:
        items: list[Any] = []
        token: str | None = None
        while True:
            query = {**selectors, "limit": page_size, "continue": token}
            page = await request_json(api, "GET", path, what=f"list {what}", query=query, timeout=(10, 60))
            items.extend(page.get("items") or [])
            token = page["metadata"].get("continue")
            if not token:
                return ListResult(items=items, resource_version=page["metadata"]["resourceVersion"])

    async def watch(resource_version: str, timeout_seconds: int) -> AsyncGenerator[RawEvent, None]:
        query = {**selectors, "watch": True, "resourceVersion": resource_version, "allowWatchBookmarks": True,
                 "timeoutSeconds": timeout_seconds}
        # The server ends the stream after timeout_seconds; silence well beyond that means a dead connection.
        lines = stream_lines(api, path, what=f"watch {what}", query=query, timeout=(10, timeout_seconds + 30))
        async with aclosing(lines):
            async for line in lines:
                event = orjson.loads(line)
                if event["type"] == "ERROR":
                    raise _error_event(event["object"], what=f"watch {what}")
                yield event["type"], event["object"]

    return ListWatchSource(list=list_all, watch=watch)


def custom_object_source(
    api: ApiClient, kind: CrdKind, *, namespace: str | None = None, label_selector: str | None = None
) -> ListWatchSource[Any]:
    """Every object of a spiderpool kind (of one namespace, if given)."""
    route = ROUTES[(API_VERSION, kind.kind)]
    return list_watch_source(api, route, what=kind.plural, namespace=namespace, label_selector=label_selector)


def pod_source(api: ApiClient, *, node_name: str | None = None) -> ListWatchSource[Pod]:
    """Pods of every namespace; only those bound to ``node_name`` when given (what one node's agent needs)."""
    selector = f"spec.nodeName={node_name}" if node_name else None
    source = list_watch_source(api, ROUTES[("v1", "Pod")], what="pods", field_selector=selector)
    return cast(ListWatchSource[Pod], source)


def node_source(api: ApiClient) -> ListWatchSource[Node]:
    return cast(ListWatchSource[Node], list_watch_source(api, ROUTES[("v1", "Node")], what="nodes"))


def namespace_source(api: ApiClient) -> ListWatchSource[Namespace]:
    return cast(ListWatchSource[Namespace], list_watch_source(api, ROUTES[("v1", "Namespace")], what="namespaces"))


# ---------------------------------------------------------------------------------------------------- the cache


@dataclass(frozen=True, slots=True)
class WatchEvent(Generic[ObjT]):
    """One change seen by the cache; ``previous`` is the cached object it replaced (None for ADDED)."""

    type: EventType
    object: ObjT
    previous: ObjT | None


@dataclass(slots=True)
class WatchCacheStats:
    lists: int = 0
    relists_on_gone: int = 0
    reconnects: int = 0
    events: int = 0
    bookmarks: int = 0
    handler_errors: int = 0
    failures: int = 0


def object_key(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def _resource_version(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("resourceVersion", ""))


_TRANSIENT = (StoreError, orjson.JSONDecodeError)


class WatchCache(Generic[ObjT]):
    """The objects of one :class:`ListWatchSource`, kept current by a background list+watch task.

    Handlers run synchronously in the cache's task, in event order, after the cache itself is updated; they must
    not block.  A handler that raises is logged and counted (``stats.handler_errors``), and the cache goes on.
    """

    def __init__(
        self,
        source: ListWatchSource[ObjT],
        *,
        name: str,
        watch_timeout_seconds: int = 300,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
    ) -> None:
        self.name = name
        self.resource_version = ""
        self.stats = WatchCacheStats()
        self._source = source
        self._watch_timeout = watch_timeout_seconds
        self._backoff_initial, self._backoff_max = backoff_initial, backoff_max
        self._objects: dict[Key, ObjT] = {}
        self._handlers: list[Callable[[WatchEvent[ObjT]], object]] = []
        self._synced = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------------------------------------ reading

    def get(self, name: str, *, namespace: str = "") -> ObjT | None:
        return self._objects.get((namespace, name))

    def items(self) -> list[ObjT]:
        return list(self._objects.values())

    def object_keys(self) -> set[Key]:
        """``(namespace, name)`` of every cached object (namespace "" for cluster-scoped kinds)."""
        return set(self._objects)

    def __len__(self) -> int:
        return len(self._objects)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def add_handler(self, handler: Callable[[WatchEvent[ObjT]], object]) -> None:
        """Call ``handler`` for every later change (register before :meth:`start` to see the initial ADDEDs)."""
        self._handlers.append(handler)

    async def wait_until(self, predicate: Callable[[WatchCache[ObjT]], bool]) -> None:
        """Return once ``predicate(cache)`` holds (checked now and after every change); bound it with a timeout."""
        while not predicate(self):
            await self._changed.wait()

    # ------------------------------------------------------------------------------------------------ lifecycle

    async def start(self, *, sync_timeout: float = 30.0) -> None:
        """Start the list+watch task and return once the first list is in the cache."""
        if self._task is not None:
            raise RuntimeError(f"watch cache {self.name} is already started")
        self._task = asyncio.create_task(self._run(), name=f"watch-cache-{self.name}")
        try:
            async with asyncio.timeout(sync_timeout):
                await self._synced.wait()
        except BaseException:  # a timeout, or the caller cancelled while waiting: the task must not outlive start()
            await self.stop()
            raise

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> WatchCache[ObjT]:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        backoff = self._backoff_initial
        must_list = True
        while True:
            try:
                if must_list:
                    await self._relist()
                    must_list = False
                await self._watch_once()
                backoff = self._backoff_initial
            except Gone as gone:
                log.info("watch cache %s: %s; relisting", self.name, gone)
                self.stats.relists_on_gone += 1
                must_list = True
            except _TRANSIENT as error:
                self.stats.reconnects += 1
                log.warning("watch cache %s: %s; retrying in <= %.2fs", self.name, error or type(error), backoff)
                await asyncio.sleep(random.uniform(backoff / 2, backoff))
                backoff = min(backoff * 2, self._backoff_max)
            except Exception:
                # Unexpected (a malformed object, a bug): the cache must not die silently and go stale; start over.
                self.stats.failures += 1
                log.exception("watch cache %s: unexpected failure; relisting in <= %.2fs", self.name, backoff)
                must_list = True
                await asyncio.sleep(random.uniform(backoff / 2, backoff))
                backoff = min(backoff * 2, self._backoff_max)

    async def _watch_once(self) -> None:
        async with aclosing(self._source.watch(self.resource_version, self._watch_timeout)) as events:
            async for event_type, obj in events:
                self._apply(event_type, obj)

    async def _relist(self) -> None:
        listed = await self._source.list()
        fresh = {object_key(obj): obj for obj in listed.items}
        stale, self._objects = self._objects, fresh
        self.resource_version = listed.resource_version
        self.stats.lists += 1
        for key, obj in fresh.items():
            before = stale.get(key)
            if before is None:
                self._dispatch(WatchEvent("ADDED", obj, None))
            elif _resource_version(before) != _resource_version(obj):
                self._dispatch(WatchEvent("MODIFIED", obj, before))
        for key, obj in stale.items():
            if key not in fresh:
                self._dispatch(WatchEvent("DELETED", obj, obj))
        self._synced.set()
        self._notify()

    def _apply(self, event_type: str, raw: dict[str, Any]) -> None:
        obj = cast(ObjT, raw)
        self.resource_version = _resource_version(obj) or self.resource_version
        if event_type == "BOOKMARK":
            self.stats.bookmarks += 1
            self._notify()
            return
        key = object_key(obj)
        if event_type == "DELETED":
            previous = self._objects.pop(key, None)
            self._dispatch(WatchEvent("DELETED", obj, previous))
        elif event_type in ("ADDED", "MODIFIED"):
            previous = self._objects.get(key)
            self._objects[key] = obj
            self._dispatch(WatchEvent("ADDED" if previous is None else "MODIFIED", obj, previous))
        else:
            log.warning("watch cache %s: ignoring event of unknown type %r", self.name, event_type)
            return
        self.stats.events += 1
        self._notify()

    def _dispatch(self, event: WatchEvent[ObjT]) -> None:
        for handler in self._handlers:
            try:
                handler(event)
            except Exception:
                self.stats.handler_errors += 1
                log.exception("watch cache %s: handler %r failed on %s", self.name, handler, event.type)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
