"""The error types of the pure core.

Every validation error names the field path (Kubernetes style, e.g. ``spec.ips[2]``), the offending value and the
reason, so a webhook can turn it into an admission ``StatusCause`` and a human can fix the manifest without guessing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import orjson

_REQUIRED: Final = "Required value"


def render_value(value: object) -> str:
    """The value as JSON when it is JSON (how the API server echoes it), else its ``repr``."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


class FieldError(ValueError):
    """One field failed validation: ``field`` (path), ``value`` (as given) and ``reason``."""

    field: str
    value: object
    reason: str

    def __init__(self, *, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        if reason == _REQUIRED:
            message = f"{field}: {_REQUIRED}"
        else:
            message = f"{field}: Invalid value: {render_value(value)}: {reason}"
        super().__init__(message)

    @classmethod
    def required(cls, field: str) -> FieldError:
        return cls(field=field, value=None, reason=_REQUIRED)

    @property
    def is_required(self) -> bool:
        return self.reason == _REQUIRED


class InvalidSpec(ValueError):
    """One or more field errors found in one object or one list; ``errors`` keeps each of them."""

    errors: tuple[FieldError, ...]

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = tuple(errors)
        if not self.errors:
            raise ValueError("InvalidSpec needs at least one FieldError")
        super().__init__("; ".join(str(error) for error in self.errors))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(error.field for error in self.errors)


class AllocationsFormatError(ValueError):
    """``status.allocatedIPs`` is malformed; the message says what is wrong and at which key."""


class PoolSelectionError(ValueError):
    """Pool candidates could not be resolved for a pod (bad input, missing pool, unsupported request)."""


class AnnotationError(PoolSelectionError):
    """A pod or namespace annotation is malformed; ``annotation`` names it, ``value`` is its raw text."""

    annotation: str
    value: str
    reason: str

    def __init__(self, *, annotation: str, value: str, reason: str) -> None:
        self.annotation = annotation
        self.value = value
        self.reason = reason
        super().__init__(f"invalid annotation {annotation} {render_value(value)}: {reason}")


class NoAvailablePoolError(PoolSelectionError):
    """Every candidate pool of one NIC and IP family was rejected; ``rejections`` says which and why."""

    nic: str
    version: int
    rejections: tuple[tuple[str, str], ...]

    def __init__(self, *, nic: str, version: int, rejections: Sequence[tuple[str, str]], detail: str = "") -> None:
        self.nic = nic
        self.version = version
        self.rejections = tuple(rejections)
        reasons = "; ".join(f"{pool}: {reason}" for pool, reason in self.rejections)
        message = f"no IPv{version} IPPool available for interface {nic}"
        if detail:
            message += f" ({detail})"
        if reasons:
            message += f": {reasons}"
        super().__init__(message)
