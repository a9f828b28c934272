"""``NodeGate``: the coordinator's ADDs share the node's routing state, a DEL has it alone.

ADDs only add (their rule adds tolerate each other, their routes, neighbours and veths are their own), so they run
at once; a DEL removes the host rule when the host table looks empty, which an ADD adding a route meanwhile would
make wrong, so a DEL waits for the ADDs in progress and holds new ones back until it is done (waiting DELs go first:
no DEL starves behind a stream of ADDs).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class NodeGate:
    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._sharing = 0
        self._exclusive = False
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._exclusive and self._waiting == 0)
            self._sharing += 1
        try:
            yield
        finally:
            async with self._changed:
                self._sharing -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._changed:
            self._waiting += 1
            try:
                await self._changed.wait_for(lambda: not self._exclusive and self._sharing == 0)
            finally:
                self._waiting -= 1
                self._changed.notify_all()
            self._exclusive = True
        try:
            yield
        finally:
            async with self._changed:
                self._exclusive = False
                self._changed.notify_all()
