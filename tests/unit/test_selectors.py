from __future__ import annotations

import pytest

from spiderpool.core.errors import InvalidSpec
from spiderpool.core.selectors import (
    LabelSelector,
    Requirement,
    parse_label_selector,
    selector_from_labels,
    validate_label_selector,
)

LABELS = {"app": "web", "tier": "front", "node-role.kubernetes.io/master": ""}


@pytest.mark.parametrize(
    ("raw", "matches"),
    [
        ({}, True),
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "db"}}, False),
        ({"matchLabels": {"app": "web", "tier": "front"}}, True),
        ({"matchLabels": {"missing": ""}}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "web"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "In", "values": ["x"]}]}, False),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "NotIn", "values": ["web"]}]}, True),
        ({"matchExpressions": [{"key": "node-role.kubernetes.io/master", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "missing", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]},
         False),
        ({"matchLabels": None, "matchExpressions": None}, True),
    ],
)
def test_matching_follows_kubernetes_semantics(raw: dict[str, object], matches: bool) -> None:
    """SL01: Matching follows kubernetes semantics."""
    selector = parse_label_selector(raw, field="spec.podAffinity")
    assert selector is not None
    assert selector.matches(LABELS) is matches


def test_absent_selector_parses_to_none() -> None:
    """SL02: Absent selector parses to none."""
    assert parse_label_selector(None, field="f") is None


@pytest.mark.parametrize(
    "requirement",
    [
        Requirement("app", "In"),
        Requirement("app", "NotIn"),
        Requirement("app", "Exists", ("x",)),
        Requirement("app", "DoesNotExist", ("x",)),
        Requirement("app", "Equals", ("web",)),
    ],
)
def test_a_selector_kubernetes_would_refuse_raises_on_match(requirement: Requirement) -> None:
    """SL03: A selector kubernetes would refuse raises on match."""
    with pytest.raises(ValueError, match="app"):
        LabelSelector(match_expressions=(requirement,)).matches(LABELS)


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ([], ("spec.nodeAffinity",)),
        ({"matchLabels": ["a"]}, ("spec.nodeAffinity.matchLabels",)),
        ({"matchLabels": {"a": 1}}, ("spec.nodeAffinity.matchLabels[a]",)),
        ({"matchExpressions": {}}, ("spec.nodeAffinity.matchExpressions",)),
        ({"matchExpressions": ["x"]}, ("spec.nodeAffinity.matchExpressions[0]",)),
        ({"matchExpressions": [{"key": 1, "operator": None, "values": "a"}]},
         ("spec.nodeAffinity.matchExpressions[0].key", "spec.nodeAffinity.matchExpressions[0].operator",
          "spec.nodeAffinity.matchExpressions[0].values")),
    ],
)
def test_parse_reports_each_malformed_field(raw: object, fields: tuple[str, ...]) -> None:
    """SL04: Parse reports each malformed field."""
    with pytest.raises(InvalidSpec) as caught:
        parse_label_selector(raw, field="spec.nodeAffinity")
    assert caught.value.fields == fields


@pytest.mark.parametrize(
    ("selector", "fields"),
    [
        (LabelSelector(match_labels=(("app", "web"),)), ()),
        (LabelSelector(match_labels=(("example.com/app", "web"),)), ()),
        (LabelSelector(match_labels=(("-bad", "web"),)), ("f.matchLabels",)),
        (LabelSelector(match_labels=(("Bad.Prefix/app", "web"),)), ("f.matchLabels",)),
        (LabelSelector(match_labels=(("app", "bad value"),)), ("f.matchLabels[app]",)),
        (LabelSelector(match_labels=(("app", "x" * 64),)), ("f.matchLabels[app]",)),
        (LabelSelector(match_labels=(("app", ""),)), ()),
        (LabelSelector(match_expressions=(Requirement("app", "Equal", ("a",)),)), ("f.matchExpressions[0].operator",)),
        (LabelSelector(match_expressions=(Requirement("app", "In"),)), ("f.matchExpressions[0].values",)),
        (LabelSelector(match_expressions=(Requirement("app", "Exists", ("a",)),)), ("f.matchExpressions[0].values",)),
        (LabelSelector(match_expressions=(Requirement("app", "In", ("ok", "not ok")),)),
         ("f.matchExpressions[0].values[1]",)),
    ],
)
def test_validate_label_selector(selector: LabelSelector, fields: tuple[str, ...]) -> None:
    """SL05: Validate label selector."""
    assert tuple(error.field for error in validate_label_selector(selector, field="f")) == fields


def test_to_dict_round_trips() -> None:
    """SL06: To dict round trips."""
    raw = {"matchLabels": {"b": "2", "a": "1"},
           "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}, {"key": "e", "operator": "Exists"}]}
    selector = parse_label_selector(raw, field="f")
    assert selector is not None
    assert selector.to_dict() == raw
    assert parse_label_selector(selector.to_dict(), field="f") == selector
    assert LabelSelector().to_dict() == {}
    assert LabelSelector().is_empty


def test_selector_from_labels() -> None:
    """SL07: Selector from labels."""
    selector = selector_from_labels({"b": "2", "a": "1"})
    assert selector.match_labels == (("a", "1"), ("b", "2"))
    assert selector.matches({"a": "1", "b": "2", "c": "3"})
