"""``NodeGate``: the coordinator's ADDs share the node, a DEL has it alone and is not starved."""

from __future__ import annotations

import asyncio

from spiderpool.agent.node_gate import NodeGate


async def _settle() -> None:
    for _ in range(20):  # let every ready task run up to its next wait
        await asyncio.sleep(0)


async def test_ng01_adds_share_a_del_waits_and_goes_first() -> None:
    """NG01: two ADDs hold the gate at once; a DEL waits for both; an ADD arriving while the DEL waits is held back
    until the DEL is done; a DEL cancelled while waiting lets ADDs in again."""
    gate = NodeGate()
    log: list[str] = []
    release = {name: asyncio.Event() for name in ("a1", "a2", "d", "a3")}

    async def add(name: str) -> None:
        async with gate.shared():
            log.append(f"{name} in")
            await release[name].wait()
        log.append(f"{name} out")

    async def delete(name: str) -> None:
        async with gate.exclusive():
            log.append(f"{name} in")
            await release[name].wait()
        log.append(f"{name} out")

    tasks = [asyncio.create_task(add("a1")), asyncio.create_task(add("a2"))]
    await _settle()
    assert log == ["a1 in", "a2 in"]
    tasks.append(asyncio.create_task(delete("d")))
    await _settle()
    tasks.append(asyncio.create_task(add("a3")))
    await _settle()
    assert log == ["a1 in", "a2 in"]  # the DEL waits, and the late ADD waits behind it
    release["a1"].set()
    release["a2"].set()
    await _settle()
    assert log[2:] == ["a1 out", "a2 out", "d in"]
    release["d"].set()
    await _settle()
    assert log[5:] == ["d out", "a3 in"]
    release["a3"].set()
    await asyncio.gather(*tasks)

    blocker = asyncio.create_task(add("a1x"))
    release["a1x"] = asyncio.Event()
    await _settle()
    waiting = asyncio.create_task(delete("dx"))
    await _settle()
    waiting.cancel()
    await _settle()
    release["a4"] = asyncio.Event()
    late = asyncio.create_task(add("a4"))
    await _settle()
    assert "a4 in" in log  # the cancelled DEL no longer holds ADDs back
    release["a4"].set()
    release["a1x"].set()
    await asyncio.gather(blocker, late)
    assert waiting.cancelled()
