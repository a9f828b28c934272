"""The API server's structural defaulting of a custom resource, for unit tests that start from a stored object.

Like ``k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting``: a missing property with a ``default`` gets
it, then every present object (and array item) is defaulted recursively; ``null`` is left alone.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from spiderpool.k8s.crd_schema import custom_resource_definitions


def crd_schema(kind: str) -> Mapping[str, Any]:
    for crd in custom_resource_definitions():
        if crd["spec"]["names"]["kind"] == kind:
            schema: Mapping[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return schema
    raise LookupError(f"no CRD of kind {kind}")


def apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    result = copy.deepcopy(value)
    _default(result, schema)
    return result


def _default(value: Any, schema: Mapping[str, Any]) -> None:
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default(value[name], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for item in value:
            _default(item, schema["items"])
