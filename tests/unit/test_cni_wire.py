"""The executable <-> agent wire format: percent-encoding round trips and strict decoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spiderpool.wire import CniPassthrough, WireError, decode_header_value, encode_header_value


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        pytest.param(
            "IgnoreUnknown=1;K8S_POD_NAME=web-0", "IgnoreUnknown=1;K8S_POD_NAME=web-0", id="cni-args-untouched"
        ),
        pytest.param("/opt/cni/bin:/usr/lib/cni", "/opt/cni/bin:/usr/lib/cni", id="path-untouched"),
        pytest.param("a b%c\r\n", "a%20b%25c%0D%0A", id="space-percent-crlf"),
        pytest.param("é", "%C3%A9", id="utf8"),
        pytest.param("", "", id="empty"),
    ],
)
def test_encoding_matches_the_c_side(value: str, encoded: str) -> None:
    """CNW01: Encoding matches the c side."""
    assert encode_header_value(value) == encoded
    assert decode_header_value("X-Cni-Args", encoded) == value


@given(st.text())
def test_any_text_round_trips(value: str) -> None:
    """CNW02: Any text round trips."""
    encoded = encode_header_value(value)
    assert all(0x21 <= ord(ch) < 0x7F for ch in encoded)
    assert decode_header_value("X-Cni-Netns", encoded) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("a b", "not a percent-encoded value", id="raw-space"),
        pytest.param("%zz", "not a percent-encoded value", id="bad-hex"),
        pytest.param("abc%4", "not a percent-encoded value", id="short-escape"),
        pytest.param("%FF", "not UTF-8 at byte 0", id="not-utf8"),
    ],
)
def test_malformed_values_name_the_variable(text: str, reason: str) -> None:
    """CNW03: Malformed values name the variable."""
    with pytest.raises(WireError) as caught:
        decode_header_value("X-Cni-Ifname", text)
    assert caught.value.env_name == "CNI_IFNAME"
    assert str(caught.value) == f"CNI_IFNAME (header X-Cni-Ifname): {reason}: {text!r}"


def test_passthrough_round_trips_through_headers() -> None:
    """CNW04: Passthrough round trips through headers."""
    original = CniPassthrough(
        command="ADD", container_id="c1", netns="/proc/1/ns/net", ifname="eth0", args=None, path="", stdin=b"{}"
    )
    headers = original.to_headers()
    assert "X-Cni-Args" not in headers  # unset stays unset
    assert headers["X-Cni-Path"] == ""  # set-but-empty stays set
    lowered = {name.lower(): value for name, value in headers.items()}

    class CaseInsensitive(dict[str, str]):
        def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
            return lowered.get(key.lower(), default)

    assert CniPassthrough.from_headers(CaseInsensitive(), b"{}") == original
