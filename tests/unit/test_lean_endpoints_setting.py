"""``enableStatelessSpiderEndpoint`` (ours): the conf.yml key, and ``spiderpoolctl check`` under the lean mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spiderpool.cli.consistency import check_consistency, needs_endpoint
from spiderpool.cluster_config import ClusterSettings, ConfigError, load_cluster_settings, parse_conf_yml
from spiderpool.core.allocations import PoolIPAllocation, encode_allocated_ips


def test_the_key_defaults_to_lean_endpoints_and_reads_true(tmp_path: Path) -> None:
    """LS01: The key defaults to lean endpoints (false) and reads true (the full mode)."""
    assert ClusterSettings().enable_stateless_spider_endpoint is False
    assert load_cluster_settings(None, {}).enable_stateless_spider_endpoint is False
    assert parse_conf_yml("enableIPv4: true\n") == {"enable_ipv4": True}
    (tmp_path / "conf.yml").write_text("enableStatelessSpiderEndpoint: true\n")
    assert load_cluster_settings(tmp_path, {}).enable_stateless_spider_endpoint is True


def test_a_non_boolean_value_is_refused_naming_the_key() -> None:
    """LS02: A non boolean value is refused naming the key."""
    with pytest.raises(ConfigError, match=r"conf.yml: enableStatelessSpiderEndpoint: expected true or false, "
                                          r"got 'no thanks'"):
        parse_conf_yml("enableStatelessSpiderEndpoint: no thanks\n")


def _pod(name: str, uid: str, *, owner: str | None = None, annotations: dict[str, str] | None = None
         ) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "ns", "name": name, "uid": uid, "annotations": annotations or {}}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner, "name": "o", "controller": True}]
    return {"metadata": meta, "status": {"phase": "Running"}}


def test_only_statefulset_kubevirt_and_ippools_pods_need_an_endpoint() -> None:
    """LS03: Only StatefulSet kubevirt and IPPools pods need an endpoint."""
    assert needs_endpoint(_pod("a", "u", owner="StatefulSet"))
    assert needs_endpoint(_pod("a", "u", owner="VirtualMachineInstance"))
    assert needs_endpoint(_pod("a", "u", annotations={"ipam.spidernet.io/ippools": "[]"}))
    assert not needs_endpoint(_pod("a", "u", owner="ReplicaSet"))
    assert not needs_endpoint(_pod("a", "u"))


def test_check_reports_a_missing_endpoint_only_for_pods_that_need_one() -> None:
    """LS04: Check reports a missing endpoint only for pods that need one."""
    records = {"10.77.0.1": PoolIPAllocation("ns/lean", "u1"), "10.77.0.2": PoolIPAllocation("ns/db-0", "u2")}
    status = {"allocatedIPs": encode_allocated_ips(records), "allocatedIPCount": 2, "totalIPCount": 8}
    pool = {"metadata": {"name": "p"}, "status": status,
            "spec": {"ipVersion": 4, "subnet": "10.77.0.0/24", "ips": ["10.77.0.1-10.77.0.8"]}}
    pods = {("ns", "lean"): _pod("lean", "u1", owner="ReplicaSet"),
            ("ns", "db-0"): _pod("db-0", "u2", owner="StatefulSet")}
    findings = check_consistency([pool], [], pods)
    assert [(f.kind, f.ip, f.pod) for f in findings] == [("RecordWithoutEndpoint", "10.77.0.2", "ns/db-0")]
    assert findings[0].detail == "pod ns/db-0 has no SpiderEndpoint"
