"""spiderpool-controller as a process: webhook registration and its removal on exit, Lease failover, a provided
certificate (F01-F04 in docs/controller.md)."""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from controller_support import LEASE, ControllerProcess, wait_for_registration

from spiderpool.controller.certificates import generate_serving_certificate
from spiderpool.devcluster.cluster import ControlPlane
from spiderpool.k8s.admission_registration import WebhookConfigurations
from spiderpool.k8s.client import ApiClient
from spiderpool.k8s.core_objects import CoreObjects
from spiderpool.k8s.leases import LeaseStore
from spiderpool.k8s.store import NotFound, SpiderStores

pytestmark = [pytest.mark.integration]

async def holder(leases: LeaseStore) -> str:
    try:
        return str((await leases.get(LEASE)).get("spec", {}).get("holderIdentity") or "")
    except NotFound:
        return ""


def lease_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


async def test_f01_registration_points_at_the_leader_and_is_removed_on_exit(
        control_plane: ControlPlane, api: ApiClient, tmp_path: Path) -> None:
    """F01: the leader registers the webhook configurations pointing at itself and removes them on SIGTERM; the
    Lease is released."""
    namespace = f"ctl-{uuid.uuid4().hex[:6]}"
    await CoreObjects(api).create_namespace(namespace)
    replica = ControllerProcess(control_plane, identity="c01", namespace=namespace, log_dir=tmp_path)
    try:
        replica.start(wait_for="LEADER START")
        found = await wait_for_registration(api)
        hooks = found["webhooks"]
        assert isinstance(hooks, list)
        assert {h["failurePolicy"] for h in hooks} == {"Fail"}
        assert hooks[0]["clientConfig"]["caBundle"]
        assert await holder(LeaseStore(api, namespace=namespace)) == "c01"
    finally:
        replica.process.stop(grace=10.0)
    configurations = WebhookConfigurations(api)
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        with pytest.raises(NotFound):
            await configurations.get(kind, "spiderpool-controller")
    assert await holder(LeaseStore(api, namespace=namespace)) == "", "a graceful exit releases the Lease"


async def test_f02_failover_after_sigkill_once_the_lease_expired_never_two_leaders(
        control_plane: ControlPlane, api: ApiClient, tmp_path: Path) -> None:
    """F02: two replicas, SIGKILL of the leader: the other takes the Lease once it has expired (its acquireTime is
    not before the last renewal + the lease duration; one transition); leadership intervals never overlap."""
    namespace = f"ctl-{uuid.uuid4().hex[:6]}"
    await CoreObjects(api).create_namespace(namespace)
    leases = LeaseStore(api, namespace=namespace)
    first = ControllerProcess(control_plane, identity="first", namespace=namespace, log_dir=tmp_path)
    second = ControllerProcess(control_plane, identity="second", namespace=namespace, log_dir=tmp_path)
    try:
        first.start(wait_for="LEADER START")
        second.start()  # its webhook server is up: it runs, as a candidate, beside the leader
        before_kill = (await leases.get(LEASE))["spec"]
        assert before_kill["holderIdentity"] == "first"
        os.killpg(first.process.pid or 0, 9)
        killed_at = time.time()
        samples = set()
        async with asyncio.timeout(60.0):  # a safety net only: the Lease's own record says when it changed hands
            while (current := await holder(leases)) != "second":
                samples.add(current)
                await asyncio.sleep(0.1)
        taken = (await leases.get(LEASE))["spec"]
        # the new leader's own registration (the configurations still point at the killed one until it re-points
        # them; stopping it before that would leave them pointing at a dead server for the tests that follow)
        await wait_for_registration(api, url_prefix=second.webhook_url() + "/")
        assert samples <= {"first"}
        assert taken["leaseTransitions"] == before_kill.get("leaseTransitions", 0) + 1
        # The second took the Lease only once the first's had expired: never before its last renewal + the duration.
        expiry = lease_time(before_kill["renewTime"]) + before_kill["leaseDurationSeconds"]
        assert lease_time(taken["acquireTime"]) >= expiry, (before_kill, taken)
    finally:
        first.process.stop(grace=5.0)
        second.process.stop(grace=10.0)
    intervals = sorted(first.leader_intervals(killed_at=killed_at) + second.leader_intervals())
    assert len(intervals) == 2
    assert intervals[0][1] <= intervals[1][0], f"two leaders at once: {intervals}"


async def test_f03_two_registered_replicas_admit_one_of_twenty_overlapping_pools(
        control_plane: ControlPlane, api: ApiClient, tmp_path: Path) -> None:
    """F03: two replicas each registered, 20 concurrent overlapping creations: exactly one stored; both
    registrations removed on exit."""
    namespace = f"ctl-{uuid.uuid4().hex[:6]}"
    await CoreObjects(api).create_namespace(namespace)
    replicas = [ControllerProcess(control_plane, identity=f"r{i}", namespace=namespace, log_dir=tmp_path,
                                  register="replica") for i in range(2)]
    configurations = WebhookConfigurations(api)
    try:
        for replica in replicas:  # "registered" is logged once both configurations are written
            replica.start(wait_for=f"spiderpool-controller-{replica.identity} registered at")
        for replica in replicas:
            await configurations.get("ValidatingWebhookConfiguration", f"spiderpool-controller-{replica.identity}")
        stores = SpiderStores(api)
        prefix = f"c03-{uuid.uuid4().hex[:6]}"
        # A CIDR no other test uses: a pool left by another test in an overlapping CIDR would refuse all twenty.
        bodies = [{"metadata": {"name": f"{prefix}-{i}"},
                   "spec": {"subnet": "10.197.0.0/24", "ips": [f"10.197.0.{i + 1}", "10.197.0.100"]}}
                  for i in range(20)]
        outcomes = await asyncio.gather(*(stores.ippools.create(body) for body in bodies),  # type: ignore[arg-type]
                                        return_exceptions=True)
        refusals = [str(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
        assert len(refusals) == 19
        assert all("10.197.0.100" in refusal for refusal in refusals), refusals
        stored = [p for p in (await stores.ippools.list()).items if p["metadata"]["name"].startswith(prefix)]
        assert len(stored) == 1
    finally:
        for replica in replicas:
            replica.process.stop(grace=10.0)
    for replica in replicas:
        with pytest.raises(NotFound):
            await configurations.get("MutatingWebhookConfiguration", f"spiderpool-controller-{replica.identity}")


async def test_f04_serves_a_provided_certificate_and_registers_its_ca(
        control_plane: ControlPlane, api: ApiClient, tmp_path: Path) -> None:
    """F04: what the chart and cert-manager do: the certificate comes from files; the webhooks answer with it and
    the configurations register its CA."""
    certificate = generate_serving_certificate(hosts=("127.0.0.1",))
    cert_file, key_file = certificate.write(tmp_path / "tls")
    ca_file = tmp_path / "tls" / "ca.crt"
    ca_file.write_bytes(certificate.ca_pem)
    namespace = f"ctl-{uuid.uuid4().hex[:6]}"
    await CoreObjects(api).create_namespace(namespace)
    tls_args = ["--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file), "--tls-ca-file", str(ca_file)]
    replica = ControllerProcess(control_plane, identity="c04", namespace=namespace, log_dir=tmp_path,
                                register="replica", extra_args=tls_args)
    try:
        replica.start(wait_for="spiderpool-controller-c04 registered at")
        configurations = WebhookConfigurations(api)
        found = await configurations.get("MutatingWebhookConfiguration", "spiderpool-controller-c04")
        assert base64.b64decode(found["webhooks"][0]["clientConfig"]["caBundle"]) == certificate.ca_pem
        name = f"c04-{uuid.uuid4().hex[:6]}"
        created = await SpiderStores(api).ippools.create(
            {"metadata": {"name": name}, "spec": {"subnet": "10.198.0.0/24", "ips": ["10.198.0.10"]}})
        assert "spiderpool.spidernet.io" in created["metadata"].get("finalizers", []), "mutated by the webhook"
    finally:
        replica.process.stop(grace=10.0)
