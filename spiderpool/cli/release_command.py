"""``spiderpoolctl release IP``: remove one pool record through the status writer's compare-and-swap path.

The release names the record's pod UID (``ReleaseIntent(ip, pod_uid)``), so if the record changed hands between the
read and the write, the write removes nothing and the command says so.  A record whose pod is still alive (same UID,
not finished) is refused unless ``--force``; the pod's SpiderEndpoint is left as it is (``check`` then reports it).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Any

from spiderpool.cli.cluster_state import answered
from spiderpool.cli.consistency import bare_address, pool_records
from spiderpool.cli.exit_codes import CliError, ExitCode
from spiderpool.cli.rendering import CommandView, Table
from spiderpool.core.allocations import AllocationsFormatError, PoolIPAllocation
from spiderpool.k8s.bodies import SpiderIPPool
from spiderpool.k8s.client import ApiClient
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.status_plan import AllocateIntent, PoolNotFound, ReleaseIntent, StatusWriteError
from spiderpool.k8s.status_writer import PoolStatusWriter
from spiderpool.k8s.store import NotFound, SpiderStores

_FINISHED = ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class HeldRecord:
    pool: str
    ip: str
    record: PoolIPAllocation


def find_record(pools: list[SpiderIPPool], ip: str, *, pool: str | None) -> HeldRecord:
    """The one record of ``ip`` (in ``pool`` when given); CliError 3 if none, 2 if several pools hold it."""
    found = []
    for item in pools:
        name = str(item["metadata"]["name"])
        if pool is not None and name != pool:
            continue
        try:
            record = pool_records(item).get(ip)
        except AllocationsFormatError as error:
            raise CliError(f"SpiderIPPool {name}: {error}", code=ExitCode.INCONSISTENT) from None
        if record is not None:
            found.append(HeldRecord(name, ip, record))
    if not found:
        where = f"SpiderIPPool {pool} has no record of it" if pool else "no SpiderIPPool has a record of it"
        raise CliError(f"IP {ip}: {where}", code=ExitCode.NOT_FOUND)
    if len(found) > 1:
        names = ", ".join(held.pool for held in found)
        raise CliError(f"IP {ip}: recorded in several pools ({names}); choose one with --pool", code=ExitCode.USAGE)
    return found[0]


def holder_alive(pod: dict[str, Any] | None, record: PoolIPAllocation) -> bool:
    """The record's own pod incarnation exists and has not finished (a terminating pod still uses its address)."""
    if pod is None or pod["metadata"].get("uid") != record.pod_uid:
        return False
    return (pod.get("status") or {}).get("phase") not in _FINISHED


def _no_new_address(pool: SpiderIPPool, taken: Set[str], intent: AllocateIntent) -> str | None:
    return None  # this writer only ever releases


async def _read_pod(core: CoreObjects, record: PoolIPAllocation) -> dict[str, Any] | None:
    try:
        return dict(await core.get_pod(record.name, namespace=record.namespace))
    except NotFound:
        return None


async def release(
    api: ApiClient, ip_text: str, *, pool: str | None, force: bool, request_timeout: float
) -> CommandView:
    try:
        ip = bare_address(ip_text)
    except ValueError:
        raise CliError(f"IP: {ip_text!r} is not an IP address", code=ExitCode.USAGE) from None
    stores = SpiderStores(api, request_timeout=request_timeout)
    pools = (await answered(stores.ippools.list(), what="list SpiderIPPools")).items
    held = find_record(pools, ip, pool=pool)
    record = held.record
    core = CoreObjects(api, request_timeout=request_timeout)
    pod = await answered(_read_pod(core, record), what=f"get pod {record.pod}")
    warnings = []
    if holder_alive(pod, record):
        message = f"IP {ip} of pool {held.pool} is held by live pod {record.pod} (UID {record.pod_uid})"
        if not force:
            raise CliError(f"{message}: refused; --force releases it anyway", code=ExitCode.INCONSISTENT)
        warnings.append(f"{message}: releasing it anyway (--force); the pod keeps using it until it is restarted")
    removed = await _write_release(stores, held, request_timeout=request_timeout)
    if not removed:
        message = f"IP {ip} of pool {held.pool}: the record no longer names UID {record.pod_uid}; nothing released"
        raise CliError(message, code=ExitCode.INCONSISTENT)
    document = {"pool": held.pool, "ip": ip, "pod": record.pod, "podUid": record.pod_uid, "released": True}
    table = Table(("RELEASED", "POOL", "POD", "UID"), [(ip, held.pool, record.pod, record.pod_uid)])
    return CommandView(document, table, warnings)


async def _write_release(stores: SpiderStores, held: HeldRecord, *, request_timeout: float) -> bool:
    writer = PoolStatusWriter(stores.ippools, redecide=_no_new_address, deadline=request_timeout)
    try:
        outcome = await writer.release(held.pool, ReleaseIntent(held.ip, held.record.pod_uid))
    except PoolNotFound:
        raise CliError(f"SpiderIPPool {held.pool}: deleted before the release", code=ExitCode.NOT_FOUND) from None
    except StatusWriteError as error:
        raise CliError(f"release {held.ip} of pool {held.pool}: {error}", code=ExitCode.API_UNREACHABLE) from None
    finally:
        await writer.close()
    return outcome.removed
