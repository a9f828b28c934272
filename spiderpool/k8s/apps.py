"""List+watch sources for the application kinds that may own SpiderSubnet auto-pools.

Deployments, ReplicaSets, StatefulSets, DaemonSets (``apps/v1``), Jobs and CronJobs (``batch/v1``) of every
namespace, as raw JSON dicts for a :class:`~spiderpool.k8s.watch_cache.WatchCache`. List items carry no
``apiVersion``/``kind``, so each source comes with the ones of its kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client import ApiClient

from spiderpool.k8s.routes import ROUTES
from spiderpool.k8s.watch_cache import ListWatchSource, list_watch_source

__all__ = ["AppKindSource", "app_sources"]

_KINDS = (("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
          ("batch/v1", "Job"), ("batch/v1", "CronJob"))


@dataclass(frozen=True, slots=True)
class AppKindSource:
    api_version: str
    kind: str
    source: ListWatchSource[Any]


def app_sources(api: ApiClient) -> tuple[AppKindSource, ...]:
    """One source per application kind, across all namespaces."""
    routes = [ROUTES[key] for key in _KINDS]
    return tuple(AppKindSource(route.api_version, route.kind, list_watch_source(api, route, what=route.plural))
                 for route in routes)
