"""Install the project's CRDs over plain HTTPS, for ``spiderpool-devcluster up`` (its supervisor runs without an event
loop, and this package must not import the Kubernetes client).

The asynchronous twin for application code and tests is ``spiderpool.k8s.crds.install_crds``; both take their
definitions from ``spiderpool.k8s.crd_schema``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from spiderpool.devcluster.rest import ApiServerRest, Response
from spiderpool.k8s.crd_schema import definitions_to_install

_CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class CrdInstallError(RuntimeError):
    """The apiserver refused a CRD or did not establish it; the message carries its answer."""


def install_crds(
    rest: ApiServerRest, *, timeout: float = 60.0, crds: Sequence[Mapping[str, Any]] | None = None
) -> list[str]:
    """Create or update every CRD, wait until all are Established and served; returns their names."""
    definitions = list(crds) if crds is not None else definitions_to_install()
    for crd in definitions:
        _create_or_replace(rest, crd)
    deadline = time.monotonic() + timeout
    for crd in definitions:
        _wait_served(rest, crd, deadline=deadline)
    return [crd["metadata"]["name"] for crd in definitions]


def _create_or_replace(rest: ApiServerRest, crd: Mapping[str, Any]) -> None:
    name = crd["metadata"]["name"]
    response = rest.request("POST", _CRD_PATH, crd)
    if response.status == 409:
        current = _checked(rest.get(f"{_CRD_PATH}/{name}"), name).json()
        body = {**crd, "metadata": {**crd["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        response = rest.request("PUT", f"{_CRD_PATH}/{name}", body)
    _checked(response, name)


def _checked(response: Response, name: str) -> Response:
    if response.status >= 300:
        raise CrdInstallError(f"CRD {name}: HTTP {response.status}: {response.text[:2000]}")
    return response


def established(crd: Mapping[str, Any]) -> bool:
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _wait_served(rest: ApiServerRest, crd: Mapping[str, Any], *, deadline: float) -> None:
    """Established, and listing answers 200 (the resource's cache may still be initializing: HTTP 429)."""
    name, spec = crd["metadata"]["name"], crd["spec"]
    lists = [f"/apis/{spec['group']}/{v['name']}/{spec['names']['plural']}?limit=1" for v in spec["versions"]]
    while True:
        current = _checked(rest.get(f"{_CRD_PATH}/{name}"), name).json()
        if established(current) and all(rest.get(path).status == 200 for path in lists):
            return
        if time.monotonic() >= deadline:
            conditions = current.get("status", {}).get("conditions")
            raise CrdInstallError(f"CRD {name} not served in time; conditions: {conditions}")
        time.sleep(0.1)
