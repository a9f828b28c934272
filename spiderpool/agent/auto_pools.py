"""Finding the SpiderSubnet auto-created pool of an application, by upstream's auto-pool labels.

The agent does not create auto-pools (the controller does); when the pool a pod's subnet annotation asks for exists
already, the agent serves the pod from it.
"""

from __future__ import annotations

from collections.abc import Mapping

from spiderpool.core.selection_types import AutoPoolRequest, TopController
from spiderpool.core.specs import PoolView
from spiderpool.core.subnet_planning import (
    LABEL_APP_KIND,
    LABEL_APP_NAME,
    LABEL_APP_NAMESPACE,
    LABEL_INTERFACE,
    LABEL_IP_VERSION,
    LABEL_SUBNET,
)
from spiderpool.core.validation import is_auto_pool


def auto_pool_labels(request: AutoPoolRequest, controller: TopController) -> dict[str, str]:
    return {
        LABEL_SUBNET: request.subnet,
        LABEL_INTERFACE: request.nic,
        LABEL_IP_VERSION: f"IPv{request.version}",
        LABEL_APP_KIND: controller.kind,
        LABEL_APP_NAMESPACE: controller.namespace,
        LABEL_APP_NAME: controller.name,
    }


def find_auto_pool(request: AutoPoolRequest, controller: TopController, pools: Mapping[str, PoolView]) -> str | None:
    """The name of the auto-pool made for ``controller``'s NIC from the requested subnet, if it exists."""
    wanted = auto_pool_labels(request, controller)
    matches = sorted(
        name for name, pool in pools.items()
        if is_auto_pool(pool.labels) and not pool.deleting
        and all(pool.labels.get(key) == value for key, value in wanted.items())
    )
    return matches[0] if matches else None
