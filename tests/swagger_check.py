"""Does a JSON document decode into the Go type go-swagger generates from a schema (as ``json.Unmarshal`` does)?

Checks what would make upstream's generated client fail or lose data: a property the model does not have, a value of
the wrong JSON type (``null`` decodes into any Go type), a missing required property. Returns the problems found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def decode_problems(value: Any, schema: Mapping[str, Any], definitions: Mapping[str, Any], path: str = "$"
                    ) -> list[str]:
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
    if value is None:
        return []
    kind = schema.get("type")
    checks = {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "array": lambda v: isinstance(v, list), "object": lambda v: isinstance(v, dict)}
    if kind in checks and not checks[kind](value):
        return [f"{path}: expected {kind}, got {value!r}"]
    if kind == "array":
        return [p for i, item in enumerate(value) for p in decode_problems(item, schema["items"], definitions,
                                                                            f"{path}[{i}]")]
    if kind == "object":
        properties = schema.get("properties") or {}
        problems = [f"{path}.{key}: not a property of the model" for key in value if key not in properties]
        problems += [f"{path}.{key}: required" for key in schema.get("required") or [] if key not in value]
        for key, item in value.items():
            if key in properties:
                problems += decode_problems(item, properties[key], definitions, f"{path}.{key}")
        return problems
    return []
