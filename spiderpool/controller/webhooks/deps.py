"""What every webhook handler needs: the stores to read peers from, the per-family ledger, the cluster flags, the
NetworkAttachmentDefinitions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from spiderpool.controller.context import ClusterFlags
from spiderpool.controller.webhooks.ledger import AdmissionLedger
from spiderpool.controller.webhooks.review import AdmissionRequest, Verdict
from spiderpool.k8s.network_attachments import NetworkAttachments
from spiderpool.k8s.store import SpiderStores


@dataclass(frozen=True, slots=True)
class WebhookDeps:
    stores: SpiderStores
    ledger: AdmissionLedger
    cluster: ClusterFlags
    nads: NetworkAttachments | None = None  # for the SpiderMultusConfig NAD-name check


Handler = Callable[[WebhookDeps, AdmissionRequest], Awaitable[Verdict]]
