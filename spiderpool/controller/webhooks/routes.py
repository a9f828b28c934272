"""Upstream's webhook paths and the handler serving each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from spiderpool.controller.webhooks import coordinator, ippool, multus_config, reservedip, subnet
from spiderpool.controller.webhooks.deps import Handler

# kind (lower case, as in upstream's paths) -> plural, for the webhook configuration rules
RESOURCES: Final = {"spiderippool": "spiderippools", "spidersubnet": "spidersubnets",
                    "spiderreservedip": "spiderreservedips", "spidermultusconfig": "spidermultusconfigs",
                    "spidercoordinator": "spidercoordinators"}


def mutate_path(kind: str) -> str:
    return f"/mutate-spiderpool-spidernet-io-v2beta1-{kind}"


def validate_path(kind: str) -> str:
    return f"/validate-spiderpool-spidernet-io-v2beta1-{kind}"


HANDLERS: Final[Mapping[str, Handler]] = {
    mutate_path("spiderippool"): ippool.mutate,
    validate_path("spiderippool"): ippool.validate,
    mutate_path("spidersubnet"): subnet.mutate,
    validate_path("spidersubnet"): subnet.validate,
    mutate_path("spiderreservedip"): reservedip.mutate,
    validate_path("spiderreservedip"): reservedip.validate,
    mutate_path("spidermultusconfig"): multus_config.mutate,
    validate_path("spidermultusconfig"): multus_config.validate,
    mutate_path("spidercoordinator"): coordinator.mutate,
    validate_path("spidercoordinator"): coordinator.validate,
}
