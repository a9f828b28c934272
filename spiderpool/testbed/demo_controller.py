"""The demo's controller parts: start spiderpool-controller, show its admission webhooks at work (a pool mutated, an
overlapping pool refused) and its leak collection (a pod deleted without CNI DEL loses its addresses)."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from spiderpool.core.allocations import decode_allocated_ips
from spiderpool.core.specs import parse_ippool_spec
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.store import NotFound, StoreError
from spiderpool.testbed.controller_process import (
    POOL_CIDR_LABEL,
    ControllerOptions,
    ControllerProcess,
    registered_webhooks,
    wait_for_admission,
)
from spiderpool.testbed.members import SimulatedPod
from spiderpool.testbed.testbed import Testbed

Say = Callable[[str], None]
CONTROLLER_LOG: Final = "controller.log"
_DENIED_PREFIX: Final = "denied the request: "


async def start_controller(*, kubeconfig: Path, log_dir: Path, say: Say) -> ControllerProcess:
    """Start the controller and wait until the API server calls its webhooks; the caller stops it."""
    log_path = log_dir / CONTROLLER_LOG
    log_path.unlink(missing_ok=True)
    # A certificate the agents can trust too: they send contended pools' records through its record combiner.
    controller = ControllerProcess(ControllerOptions(kubeconfig=kubeconfig, log_path=log_path.resolve(),
                                                     tls_dir=(log_dir / "controller-tls").resolve()))
    started = time.monotonic()
    try:
        await asyncio.to_thread(controller.start)
        await wait_for_admission(kubeconfig)
    except BaseException:
        await asyncio.to_thread(controller.stop)
        raise
    say(f"      leader, webhooks at {controller.webhook_url()} in force (ready in {time.monotonic() - started:.1f} s);"
        f" log {log_path}")
    return controller


async def stop_controller(controller: ControllerProcess, *, kubeconfig: Path, say: Say) -> None:
    """Stop it and say whether it removed its webhook configurations (a dead server left registered would make the
    API server refuse every pool request)."""
    await asyncio.to_thread(controller.stop)
    left = await registered_webhooks(kubeconfig)
    verdict = "its webhook configurations removed" if not left else f"LEFT BEHIND: {', '.join(left)}"
    say(f"      controller stopped: {verdict}")


def _wrapped(text: str) -> str:
    return textwrap.fill(text, width=118, initial_indent=" " * 6, subsequent_indent=" " * 8)


async def show_mutation(bed: Testbed, pool_name: str, say: Say) -> None:
    """What the mutating webhook added to a pool created with only subnet, ips and gateway."""
    pool = await bed.stores.ippools.get(pool_name)
    meta, spec = pool["metadata"], pool.get("spec", {})
    label = meta.get("labels", {}).get(POOL_CIDR_LABEL, "(missing!)")
    finalizers = ", ".join(meta.get("finalizers", [])) or "(none!)"
    say(_wrapped(f"the webhook mutated {pool_name}: ipVersion {spec.get('ipVersion')}, label {POOL_CIDR_LABEL}={label},"
                 f" finalizer {finalizers}"))


async def show_refusal(bed: Testbed, body: SpiderIPPool, say: Say) -> None:
    """Create a pool the validating webhook must refuse, and print its reason."""
    spec = body.get("spec", {})
    ips = ", ".join(spec.get("ips", []))
    say(f"      SpiderIPPool {body['metadata']['name']}: subnet {spec.get('subnet')}, ips {ips} (overlapping demo-v4):")
    try:
        await bed.stores.ippools.create(body)
    except StoreError as refusal:
        message = str(refusal)
        say(_wrapped(f"refused by the webhook: {message.split(_DENIED_PREFIX, 1)[-1]}"))
        return
    await bed.stores.ippools.delete(body["metadata"]["name"])
    raise RuntimeError(f"the overlapping pool {body['metadata']['name']} was admitted: the webhooks are not in force")


async def _held_by(bed: Testbed, pool_names: Sequence[str], uid: str) -> dict[str, list[str]]:
    """The addresses each pool records for pod UID ``uid``, and each pool's ``allocated/total``."""
    held: dict[str, list[str]] = {}
    for name in pool_names:
        status = (await bed.stores.ippools.get(name)).get("status", {})
        records = decode_allocated_ips(status.get("allocatedIPs"))
        held[name] = [ip for ip, record in records.items() if record.pod_uid == uid]
    return held


async def _usage(bed: Testbed, pool_names: Sequence[str]) -> str:
    parts = []
    for name in pool_names:
        pool = await bed.stores.ippools.get(name)
        status = pool.get("status", {})
        total = status.get("totalIPCount") or parse_ippool_spec(pool.get("spec")).total_ip_count
        parts.append(f"{name} {status.get('allocatedIPCount', 0)}/{total}")
    return ", ".join(parts)


async def _endpoint_gone(bed: Testbed, pod: SimulatedPod) -> bool:
    try:
        await bed.stores.endpoints.get(pod.name, namespace=pod.namespace)
    except NotFound:
        return True
    return False


async def show_leak_collection(bed: Testbed, pod: SimulatedPod, pool_names: Sequence[str], *, say: Say,
                               within: float = 15.0) -> None:
    """Delete ``pod`` as if its node's runtime never ran CNI DEL, then watch the controller release its addresses."""
    held = await _held_by(bed, pool_names, pod.uid)
    addresses = ", ".join(ip for ips in held.values() for ip in ips)
    had_endpoint = not await _endpoint_gone(bed, pod)  # none by default (lean endpoints): the records say it all
    say(f"      before: {await _usage(bed, pool_names)}; {pod.name} holds {addresses}")
    await bed.finish_pod(pod)  # Pod object gone (grace 0), sandbox removed, and no CNI DEL ever ran
    started = time.monotonic()
    say(f"      {pod.name} deleted with grace 0 and its sandbox removed, no CNI DEL: its records are now a leak")
    while any((await _held_by(bed, pool_names, pod.uid)).values()) or not await _endpoint_gone(bed, pod):
        if time.monotonic() - started > within:
            raise RuntimeError(f"the controller did not release {addresses} of {pod.key} within {within:.0f} s")
        await asyncio.sleep(0.1)
    say(_wrapped(f"after {time.monotonic() - started:.1f} s: {await _usage(bed, pool_names)}; the controller released"
                 f" {addresses}" + (f" and removed the SpiderEndpoint {pod.key}" if had_endpoint else "")))
