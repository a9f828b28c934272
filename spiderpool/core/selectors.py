"""Kubernetes label selectors (``metav1.LabelSelector``): parsing, validation and matching.

Matching follows ``metav1.LabelSelectorAsSelector``: every ``matchLabels`` pair and every expression must hold; an
empty selector matches everything. A selector Kubernetes would refuse to convert (unknown operator, ``In`` without
values, ``Exists`` with values) raises ``ValueError`` on ``matches`` so the caller can report why a pool was skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from spiderpool.core.errors import FieldError, InvalidSpec

IN: Final = "In"
NOT_IN: Final = "NotIn"
EXISTS: Final = "Exists"
DOES_NOT_EXIST: Final = "DoesNotExist"
OPERATORS: Final = (IN, NOT_IN, EXISTS, DOES_NOT_EXIST)

_NAME_PART: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise ValueError for a requirement Kubernetes would refuse (as ``labels.NewRequirement`` does)."""
        if self.operator in (IN, NOT_IN):
            if not self.values:
                raise ValueError(f"operator {self.operator} on key {self.key!r} needs at least one value")
        elif self.operator in (EXISTS, DOES_NOT_EXIST):
            if self.values:
                raise ValueError(f"operator {self.operator} on key {self.key!r} takes no values")
        else:
            allowed = ", ".join(OPERATORS)
            raise ValueError(f"unknown operator {self.operator!r} on key {self.key!r} (allowed: {allowed})")

    def matches(self, labels: Mapping[str, str]) -> bool:
        self.check()
        present = self.key in labels
        if self.operator == IN:
            return present and labels[self.key] in self.values
        if self.operator == NOT_IN:
            return not present or labels[self.key] not in self.values
        if self.operator == EXISTS:
            return present
        return not present


@dataclass(frozen=True, slots=True)
class LabelSelector:
    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        return all(requirement.matches(labels) for requirement in self.match_expressions)

    def to_dict(self) -> dict[str, object]:
        """The Kubernetes wire form (fields omitted when empty, like Go's ``omitempty``)."""
        body: dict[str, object] = {}
        if self.match_labels:
            body["matchLabels"] = dict(self.match_labels)
        if self.match_expressions:
            body["matchExpressions"] = [_requirement_to_dict(requirement) for requirement in self.match_expressions]
        return body


def _requirement_to_dict(requirement: Requirement) -> dict[str, object]:
    body: dict[str, object] = {"key": requirement.key, "operator": requirement.operator}
    if requirement.values:
        body["values"] = list(requirement.values)
    return body


def selector_from_labels(labels: Mapping[str, str]) -> LabelSelector:
    return LabelSelector(match_labels=tuple(sorted(labels.items())))


def parse_label_selector(raw: object, *, field: str) -> LabelSelector | None:
    """A ``metav1.LabelSelector`` dict (None for null/absent); InvalidSpec for wrong types, naming each field."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidSpec([FieldError(field=field, value=raw, reason="must be a label selector object")])
    errors: list[FieldError] = []
    labels = _parse_match_labels(raw.get("matchLabels"), field=f"{field}.matchLabels", errors=errors)
    expressions = _parse_expressions(raw.get("matchExpressions"), field=f"{field}.matchExpressions", errors=errors)
    if errors:
        raise InvalidSpec(errors)
    return LabelSelector(match_labels=labels, match_expressions=expressions)


def _parse_match_labels(raw: object, *, field: str, errors: list[FieldError]) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        errors.append(FieldError(field=field, value=raw, reason="must be a map of string to string"))
        return ()
    pairs: list[tuple[str, str]] = []
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str):
            errors.append(FieldError(field=f"{field}[{key}]", value=value, reason="keys and values must be strings"))
        else:
            pairs.append((key, value))
    return tuple(sorted(pairs))


def _parse_expressions(raw: object, *, field: str, errors: list[FieldError]) -> tuple[Requirement, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(FieldError(field=field, value=raw, reason="must be a list of requirements"))
        return ()
    requirements = []
    for index, item in enumerate(raw):
        requirement = _parse_requirement(item, field=f"{field}[{index}]", errors=errors)
        if requirement is not None:
            requirements.append(requirement)
    return tuple(requirements)


def _parse_requirement(raw: object, *, field: str, errors: list[FieldError]) -> Requirement | None:
    if not isinstance(raw, Mapping):
        errors.append(FieldError(field=field, value=raw, reason="must be an object with key, operator and values"))
        return None
    key, operator, values = raw.get("key"), raw.get("operator"), raw.get("values")
    before = len(errors)
    if not isinstance(key, str):
        errors.append(FieldError(field=f"{field}.key", value=key, reason="must be a string"))
    if not isinstance(operator, str):
        errors.append(FieldError(field=f"{field}.operator", value=operator, reason="must be a string"))
    if values is not None and (not isinstance(values, list) or not all(isinstance(v, str) for v in values)):
        errors.append(FieldError(field=f"{field}.values", value=values, reason="must be a list of strings"))
    if len(errors) > before or not isinstance(key, str) or not isinstance(operator, str):
        return None
    return Requirement(key=key, operator=operator, values=tuple(values or ()))


def validate_label_selector(selector: LabelSelector, *, field: str) -> list[FieldError]:
    """The checks of ``metav1validation.ValidateLabelSelector`` (label keys, values, operators, value counts)."""
    errors: list[FieldError] = []
    for key, value in selector.match_labels:
        errors.extend(_label_key_errors(key, field=f"{field}.matchLabels"))
        errors.extend(_label_value_errors(value, field=f"{field}.matchLabels[{key}]"))
    for index, requirement in enumerate(selector.match_expressions):
        item = f"{field}.matchExpressions[{index}]"
        errors.extend(_label_key_errors(requirement.key, field=f"{item}.key"))
        try:
            requirement.check()
        except ValueError as error:
            bad_field = f"{item}.operator" if requirement.operator not in OPERATORS else f"{item}.values"
            bad_value: object = requirement.operator if bad_field.endswith("operator") else list(requirement.values)
            errors.append(FieldError(field=bad_field, value=bad_value, reason=str(error)))
        for position, value in enumerate(requirement.values):
            errors.extend(_label_value_errors(value, field=f"{item}.values[{position}]"))
    return errors


def _label_key_errors(key: str, *, field: str) -> list[FieldError]:
    prefix, slash, name = key.rpartition("/")
    problems = []
    if slash and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        problems.append("prefix must be a DNS-1123 subdomain of at most 253 characters")
    if not name or len(name) > 63 or not _NAME_PART.fullmatch(name):
        problems.append("name must be 1-63 alphanumeric characters, '-', '_' or '.', starting and ending alphanumeric")
    return [FieldError(field=field, value=key, reason=f"invalid label key: {p}") for p in problems]


def _label_value_errors(value: str, *, field: str) -> list[FieldError]:
    if value == "" or (len(value) <= 63 and _NAME_PART.fullmatch(value)):
        return []
    reason = ("invalid label value: at most 63 alphanumeric characters, '-', '_' or '.', "
              "starting and ending alphanumeric")
    return [FieldError(field=field, value=value, reason=reason)]
