from __future__ import annotations

import pytest

from spiderpool.core.annotations import PoolIPNumber, PoolNames
from spiderpool.core.selection_types import (
    AutoPoolRequest,
    FamilyCandidates,
    NicCandidates,
    PoolPlan,
    PoolSource,
    SelectionConfig,
    SubnetPlan,
    TopController,
)
from spiderpool.core.specs import PoolView, parse_ippool_spec


@pytest.mark.parametrize(
    ("controller", "orphan", "third_party", "group_version"),
    [
        (TopController("Pod", "p", "ns", "u", "v1"), True, False, ("", "v1")),
        (TopController("Deployment", "d", "ns", "u", "apps/v1"), False, False, ("apps", "v1")),
        (TopController("CronJob", "c", "ns", "u", "batch/v1"), False, False, ("batch", "v1")),
        (TopController("CloneSet", "c", "ns", "u", "apps.kruise.io/v1alpha1"), False, True,
         ("apps.kruise.io", "v1alpha1")),
        (TopController("VirtualMachineInstance", "v", "ns", "u", "kubevirt.io/v1"), False, True, ("kubevirt.io", "v1")),
        (TopController("Widget", "w", "ns", "u", "apps/v1"), False, True, ("apps", "v1")),
    ],
)
def test_top_controller(controller: TopController, orphan: bool, third_party: bool,
                        group_version: tuple[str, str]) -> None:
    """SET01: Top controller."""
    assert controller.is_orphan_pod is orphan
    assert controller.is_third_party is third_party
    assert controller.group_and_version == group_version


def test_family_switches() -> None:
    """SET02: Family switches."""
    config = SelectionConfig(enable_ipv4=False)
    assert not config.family_enabled(4)
    assert config.family_enabled(6)


def test_subnet_plan_with_pools_keeps_nic_and_clean_gateway() -> None:
    """SET03: Subnet plan with pools keeps NIC and clean gateway."""
    plan = SubnetPlan(source=PoolSource.SUBNETS, nic="net1", clean_gateway=True,
                      auto_pools=(AutoPoolRequest("net1", 6, "s6"),), ip_number=PoolIPNumber(1, True), reclaim=True)
    names = plan.with_pools({6: "auto6-app-net1-abcde"})
    assert names.source is PoolSource.SUBNETS
    assert [(nic.nic, nic.clean_gateway, nic.pools) for nic in names.nics] == [
        ("net1", True, PoolNames(ipv6=("auto6-app-net1-abcde",)))]


def test_plan_lookups() -> None:
    """SET04: Plan lookups."""
    pool = PoolView(name="p", spec=parse_ippool_spec({"subnet": "10.0.0.0/24"}))
    nic = NicCandidates(nic="eth0", clean_gateway=False, families=(FamilyCandidates(4, (pool,)),))
    plan = PoolPlan(source=PoolSource.POD_IPPOOL, nics=(nic,))
    assert plan.nic("eth0") is nic
    assert plan.nic("net1") is None
    family = nic.family(4)
    assert family is not None
    assert family.names == ("p",)
    assert nic.family(6) is None
    assert PoolSource.POD_IPPOOL.value == "ipam.spidernet.io/ippool"
