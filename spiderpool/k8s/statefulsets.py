"""StatefulSets of every namespace as a list+watch source (the leak collector reacts to scale-downs)."""

from __future__ import annotations

from typing import Any, cast

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.routes import ROUTES
from spiderpool.k8s.watch_cache import ListWatchSource, list_watch_source

__all__ = ["statefulset_source"]


def statefulset_source(api: ApiClient) -> ListWatchSource[dict[str, Any]]:
    source = list_watch_source(api, ROUTES[("apps/v1", "StatefulSet")], what="statefulsets")
    return cast(ListWatchSource[dict[str, Any]], source)
