"""The webhooks' pure rules and payloads: core.pool_admission, core.pool_mutation, review, certificates."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import orjson
from cryptography import x509

from spiderpool.controller.certificates import generate_serving_certificate
from spiderpool.controller.webhooks.review import Verdict, parse_review, review_response
from spiderpool.core.allocations import PoolIPAllocation
from spiderpool.core.errors import FieldError
from spiderpool.core.pool_admission import (
    PeerPool,
    PeerSubnet,
    ippool_peer_errors,
    ippool_subnet_errors,
    reserved_allocated_errors,
    subnet_peer_errors,
    subnet_pool_errors,
    terminating_spec_errors,
)
from spiderpool.core.pool_mutation import mutate_ippool, mutate_reservedip, mutate_subnet
from spiderpool.core.specs import parse_ippool_spec, parse_reservedip_spec, parse_subnet_spec


def _pool(name: str, subnet: str, *ips: str, allocated: dict[str, str] | None = None) -> PeerPool:
    records = {ip: PoolIPAllocation(pod=pod, pod_uid="u") for ip, pod in (allocated or {}).items()}
    return PeerPool(name=name, spec=parse_ippool_spec({"subnet": subnet, "ips": list(ips)}), allocated=records)


def test_peer_pools_identical_or_disjoint_subnets() -> None:
    """WR01: Peer pools identical or disjoint subnets."""
    mine = parse_ippool_spec({"subnet": "10.0.1.0/24", "ips": ["10.0.1.5"]})
    errors = ippool_peer_errors("mine", mine, [_pool("wide", "10.0.0.0/16", "10.0.0.5"),
                                                _pool("far", "10.9.0.0/16", "10.9.0.5")])
    assert [(e.field, e.value) for e in errors] == [("spec.subnet", "10.0.1.0/24")]
    assert "wide" in errors[0].reason


def test_peer_pools_same_subnet_overlap_names_first_common_range() -> None:
    """WR02: Peer pools same subnet overlap names first common range."""
    mine = parse_ippool_spec({"subnet": "10.0.0.0/24", "ips": ["10.0.0.10-10.0.0.20"], "excludeIPs": ["10.0.0.10"]})
    peers = [_pool("a", "10.0.0.0/24", "10.0.0.10"), _pool("b", "10.0.0.0/24", "10.0.0.18-10.0.0.30"),
             _pool("mine", "10.0.0.0/24", "10.0.0.10-10.0.0.20")]
    errors = ippool_peer_errors("mine", mine, peers)
    assert [(e.field, e.value) for e in errors] == [("spec.ips", "10.0.0.18-10.0.0.20")]


def test_pool_ips_must_come_from_its_subnet() -> None:
    """WR03: Pool ips must come from its subnet."""
    owner = PeerSubnet(name="s", spec=parse_subnet_spec({"subnet": "10.0.0.0/24", "ips": ["10.0.0.10-10.0.0.50"]}))
    inside = parse_ippool_spec({"subnet": "10.0.0.0/24", "ips": ["10.0.0.10-10.0.0.20"]})
    outside = parse_ippool_spec({"subnet": "10.0.0.0/24", "ips": ["10.0.0.49-10.0.0.60"]})
    assert ippool_subnet_errors(inside, owner) == []
    assert [e.value for e in ippool_subnet_errors(outside, owner)] == ["10.0.0.51-10.0.0.60"]


def test_subnets_never_overlap_and_keep_their_pools_ips() -> None:
    """WR04: Subnets never overlap and keep their pools ips."""
    spec = parse_subnet_spec({"subnet": "10.0.0.0/24", "ips": ["10.0.0.15-10.0.0.50"]})
    peers = [PeerSubnet(name="same", spec=parse_subnet_spec({"subnet": "10.0.0.0/24"})),
             PeerSubnet(name="v6", spec=parse_subnet_spec({"subnet": "fd00::/64"}))]
    assert [e.reason for e in subnet_peer_errors("mine", spec, peers)] == [
        "overlaps spec.subnet 10.0.0.0/24 of SpiderSubnet same"]
    errors = subnet_pool_errors(spec, [_pool("p", "10.0.0.0/24", "10.0.0.10-10.0.0.20")])
    assert [(e.value, "SpiderIPPool p" in e.reason) for e in errors] == [("10.0.0.10-10.0.0.14", True)]


def test_reserving_an_allocated_ip_names_pool_and_pod() -> None:
    """WR05: Reserving an allocated IP names pool and pod."""
    spec = parse_reservedip_spec({"ips": ["10.0.0.1-10.0.0.9"]})
    pools = [_pool("p", "10.0.0.0/24", "10.0.0.1-10.0.0.20", allocated={"10.0.0.5": "ns/web", "10.0.0.15": "ns/x"})]
    errors = reserved_allocated_errors(spec, pools)
    assert [e.value for e in errors] == ["10.0.0.5"]
    assert "ns/web" in errors[0].reason
    assert "SpiderIPPool p" in errors[0].reason


def test_terminating_spec_is_frozen() -> None:
    """WR06: Terminating spec is frozen."""
    assert terminating_spec_errors({"a": 1}, {"a": 1}) == []
    assert [e.field for e in terminating_spec_errors({"a": 1}, {"a": 2})] == ["spec"]


def test_mutate_ippool_adds_finalizer_label_canonical_spec_and_owner() -> None:
    """WR07: Mutate IPPool adds finalizer label canonical spec and owner."""
    subnet = PeerSubnet(name="s", uid="uid-s", spec=parse_subnet_spec(
        {"subnet": "10.6.0.0/16", "gateway": "10.6.0.1", "routes": [{"dst": "10.7.0.0/16", "gw": "10.6.0.1"}]}))
    obj = {"metadata": {"name": "p"}, "spec": {"subnet": "10.6.0.1/16", "ips": ["10.6.0.20", "10.6.0.10-10.6.0.19"]}}
    ops = {op["path"]: op["value"] for op in mutate_ippool(obj, subnets=[subnet])}
    assert ops["/metadata/finalizers"] == ["spiderpool.spidernet.io"]
    assert ops["/metadata/labels"] == {"ipam.spidernet.io/ippool-cidr": "10-6-0-0-16",
                                       "ipam.spidernet.io/owner-spider-subnet": "s"}
    assert ops["/spec"]["subnet"] == "10.6.0.0/16"
    assert ops["/spec"]["ips"] == ["10.6.0.10-10.6.0.20"]
    assert ops["/spec"]["gateway"] == "10.6.0.1"
    assert ops["/spec"]["routes"] == [{"dst": "10.7.0.0/16", "gw": "10.6.0.1"}]
    assert ops["/metadata/ownerReferences"][0]["uid"] == "uid-s"


def test_mutations_leave_unparseable_specs_to_validation() -> None:
    """WR08: Mutations leave unparseable specs to validation."""
    broken = {"metadata": {"name": "x"}, "spec": {"subnet": "not-a-cidr"}}
    assert mutate_ippool(broken, subnets=[]) == []
    assert mutate_subnet(broken) == []
    assert mutate_reservedip({"metadata": {"name": "x"}, "spec": {"ips": []}}) == []


def test_mutate_reservedip_sets_version_and_merges() -> None:
    """WR09: Mutate reservedip sets version and merges."""
    ops = mutate_reservedip({"metadata": {"name": "r"}, "spec": {"ips": ["fd00::5", "fd00::3-fd00::4"]}})
    assert ops == [{"op": "add", "path": "/spec", "value": {"ipVersion": 6, "ips": ["fd00::3-fd00::5"]}}]


def test_review_round_trip_carries_uid_message_and_patch() -> None:
    """WR10: Review round trip carries UID message and patch."""
    request = parse_review({"request": {"uid": "u1", "kind": {"kind": "SpiderIPPool"}, "operation": "CREATE",
                                        "object": {"metadata": {"name": "p"}}}})
    assert (request.uid, request.kind, request.name) == ("u1", "SpiderIPPool", "p")
    denied = Verdict.deny([FieldError(field="spec.gateway", value="10.1.0.1", reason="outside spec.subnet")],
                          kind="SpiderIPPool", name="p")
    response = review_response("u1", denied)["response"]
    assert response["allowed"] is False
    assert 'spec.gateway: Invalid value: "10.1.0.1"' in response["status"]["message"]
    patched = review_response("u1", Verdict(patch=[{"op": "add", "path": "/x", "value": 1}]))["response"]
    assert orjson.loads(base64.b64decode(patched["patch"])) == [{"op": "add", "path": "/x", "value": 1}]


def test_serving_certificate_verifies_against_its_ca(tmp_path: Path) -> None:
    """WR11: Serving certificate verifies against its CA."""
    certificate = generate_serving_certificate(hosts=("127.0.0.1",))
    leaf = x509.load_pem_x509_certificate(certificate.cert_pem)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    cert_file, key_file = certificate.write(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(str(cert_file), str(key_file))
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(certificate.ca_pem))
