"""List+watch sources for the application kinds that may own SpiderSubnet auto-pools.

Deployments, ReplicaSets, StatefulSets, DaemonSets (``apps/v1``), Jobs and CronJobs (``batch/v1``) of every
namespace, as raw JSON dicts for a :class:`~spiderpool.k8s.watch_cache.WatchCache`. List items carry no
``apiVersion``/``kind``, so each source comes with the ones of its kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client import ApiClient, AppsV1Api, BatchV1Api

from spiderpool.k8s.watch_cache import ListWatchSource, list_watch_source

__all__ = ["AppKindSource", "app_sources"]


@dataclass(frozen=True, slots=True)
class AppKindSource:
    api_version: str
    kind: str
    source: ListWatchSource[Any]


def app_sources(api: ApiClient) -> tuple[AppKindSource, ...]:
    """One source per application kind, across all namespaces."""
    apps, batch = AppsV1Api(api), BatchV1Api(api)
    return (
        AppKindSource("apps/v1", "Deployment",
                      list_watch_source(apps.list_deployment_for_all_namespaces, what="deployments")),
        AppKindSource("apps/v1", "ReplicaSet",
                      list_watch_source(apps.list_replica_set_for_all_namespaces, what="replicasets")),
        AppKindSource("apps/v1", "StatefulSet",
                      list_watch_source(apps.list_stateful_set_for_all_namespaces, what="statefulsets")),
        AppKindSource("apps/v1", "DaemonSet",
                      list_watch_source(apps.list_daemon_set_for_all_namespaces, what="daemonsets")),
        AppKindSource("batch/v1", "Job", list_watch_source(batch.list_job_for_all_namespaces, what="jobs")),
        AppKindSource("batch/v1", "CronJob",
                      list_watch_source(batch.list_cron_job_for_all_namespaces, what="cronjobs")),
    )
