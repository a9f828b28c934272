from __future__ import annotations

import pytest

from spiderpool.core.errors import AnnotationError, FieldError, InvalidSpec, NoAvailablePoolError, render_value


def test_field_error_message_names_field_value_and_reason_like_kubernetes() -> None:
    """ER01: Field error message names field value and reason like kubernetes."""
    error = FieldError(field="spec.ips[2]", value="10.0.0.300", reason="not a valid IP address")
    assert str(error) == 'spec.ips[2]: Invalid value: "10.0.0.300": not a valid IP address'
    assert (error.field, error.value, error.reason) == ("spec.ips[2]", "10.0.0.300", "not a valid IP address")
    assert not error.is_required


def test_required_field_error() -> None:
    """ER02: Required field error."""
    error = FieldError.required("spec.subnet")
    assert str(error) == "spec.subnet: Required value"
    assert error.is_required


def test_invalid_spec_keeps_every_error_in_order() -> None:
    """ER03: Invalid spec keeps every error in order."""
    first = FieldError(field="a", value=1, reason="bad")
    second = FieldError.required("b")
    error = InvalidSpec([first, second])
    assert error.errors == (first, second)
    assert error.fields == ("a", "b")
    assert str(error) == "a: Invalid value: 1: bad; b: Required value"


def test_invalid_spec_needs_an_error() -> None:
    """ER04: Invalid spec needs an error."""
    with pytest.raises(ValueError, match="at least one"):
        InvalidSpec([])


@pytest.mark.parametrize(("value", "rendered"), [("x", '"x"'), (5, "5"), ([1, "a"], '[1,"a"]'), (None, "null"),
                                                 ({1, 2}, "{1, 2}")])
def test_render_value(value: object, rendered: str) -> None:
    """ER05: Render value."""
    assert render_value(value) == rendered


def test_annotation_error_names_the_annotation() -> None:
    """ER06: Annotation error names the annotation."""
    error = AnnotationError(annotation="ipam.spidernet.io/ippool", value="{", reason="not valid JSON")
    assert str(error) == 'invalid annotation ipam.spidernet.io/ippool "{": not valid JSON'


def test_no_available_pool_error_lists_each_pool_and_reason() -> None:
    """ER07: No available pool error lists each pool and reason."""
    error = NoAvailablePoolError(nic="eth0", version=4, rejections=[("a", "IPPool is disabled"), ("b", "terminating")])
    assert str(error) == "no IPv4 IPPool available for interface eth0: a: IPPool is disabled; b: terminating"
    assert error.rejections == (("a", "IPPool is disabled"), ("b", "terminating"))
