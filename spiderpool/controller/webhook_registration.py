"""The Mutating/ValidatingWebhookConfigurations that point the API server at this controller (outside a cluster).

In a cluster the chart installs them behind a Service; outside one, the controller registers ``clientConfig.url``
+ ``caBundle`` of its own server, and removes them on exit only if they still point at it.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, Final

from spiderpool.controller.webhooks.routes import RESOURCES, mutate_path, validate_path
from spiderpool.k8s.admission_registration import WebhookConfigurations
from spiderpool.k8s.store import StoreError

log = logging.getLogger(__name__)

MUTATING: Final = "MutatingWebhookConfiguration"
VALIDATING: Final = "ValidatingWebhookConfiguration"
DEFAULT_NAME: Final = "spiderpool-controller"


def _webhook(kind: str, *, url: str, ca_bundle: str, operations: list[str], verb: str) -> dict[str, Any]:
    return {
        "name": f"{kind}.{verb}.spiderpool.spidernet.io",
        "clientConfig": {"url": url, "caBundle": ca_bundle},
        "rules": [{"apiGroups": ["spiderpool.spidernet.io"], "apiVersions": ["v2beta1"], "operations": operations,
                   "resources": [RESOURCES[kind]], "scope": "*"}],
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 10,
    }


def webhook_configurations(*, name: str, base_url: str, ca_pem: bytes) -> list[dict[str, Any]]:
    """The mutating (CREATE/UPDATE) and validating (CREATE/UPDATE/DELETE) configurations for the three kinds."""
    ca_bundle = base64.b64encode(ca_pem).decode()
    mutating = [_webhook(kind, url=base_url + mutate_path(kind), ca_bundle=ca_bundle,
                         operations=["CREATE", "UPDATE"], verb="mutate") for kind in RESOURCES]
    validating = [_webhook(kind, url=base_url + validate_path(kind), ca_bundle=ca_bundle,
                           operations=["CREATE", "UPDATE", "DELETE"], verb="validate") for kind in RESOURCES]
    return [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": MUTATING, "metadata": {"name": name},
         "webhooks": mutating},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": VALIDATING, "metadata": {"name": name},
         "webhooks": validating},
    ]


class WebhookRegistration:
    def __init__(self, configurations: WebhookConfigurations, *, name: str, base_url: str, ca_pem: bytes) -> None:
        self._configurations = configurations
        self._bodies = webhook_configurations(name=name, base_url=base_url, ca_pem=ca_pem)
        self.name = name
        self.base_url = base_url

    async def register(self) -> None:
        for body in self._bodies:
            await self._configurations.put(body)
        log.info("webhook configurations %s registered at %s", self.name, self.base_url)

    async def unregister(self) -> None:
        """Delete the configurations if they still point at us (another replica may have taken them over)."""
        for kind in (VALIDATING, MUTATING):
            try:
                current = await self._configurations.get(kind, self.name)
                url = current["webhooks"][0]["clientConfig"].get("url", "")
                if url.startswith(self.base_url + "/"):
                    await self._configurations.delete(kind, self.name, uid=current["metadata"]["uid"])
            except StoreError as error:
                log.warning("removing %s %s: %s", kind, self.name, error)
