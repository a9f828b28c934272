"""The one mapping from an API server answer (or none) to a typed error, status by status."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from spiderpool.k8s.api_errors import (
    AccessDenied,
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    StoreError,
    TooManyRequests,
    Transient,
    Unauthorized,
    Unavailable,
    error_for_body,
    error_for_exception,
    is_transient,
)


def _status(code: int, reason: str, message: str) -> bytes:
    return orjson.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                         "reason": reason, "message": message})


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (400, "BadRequest", Invalid),
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (404, "NotFound", NotFound),
        (409, "AlreadyExists", AlreadyExists),
        (409, "Conflict", Conflict),
        (410, "Expired", Gone),
        (422, "Invalid", Invalid),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
        (503, "ServiceUnavailable", ServerError),
        (504, "Timeout", ServerError),
        (418, "", StoreError),
    ],
)
def test_ae10_each_status_maps_to_one_type(code: int, reason: str, expected: type[StoreError]) -> None:
    """AE10: HTTP status (and Status reason, for 409) -> exactly one type; the message names the request."""
    error = error_for_body(code, _status(code, reason, "the server's words"), what="get Thing x", resource_version="7")
    assert type(error) is expected
    assert (error.status, error.reason) == (code, reason)
    assert str(error).startswith("get Thing x: HTTP ")
    assert "the server's words" in str(error)
    assert is_transient(error) is (code == 429 or code >= 500)


def test_ae11_a_lost_compare_and_swap_carries_its_version() -> None:
    """AE11: Conflict keeps the resourceVersion the write was based on."""
    error = error_for_body(409, _status(409, "Conflict", "changed"), what="replace x", resource_version="41")
    assert isinstance(error, Conflict)
    assert error.stale_resource_version == "41"


def test_ae12_only_a_status_body_is_quoted() -> None:
    """AE12: an error body that is not a Status (it could be anything, an object with secrets) is not copied into
    the message; plain text is cut."""
    secret = orjson.dumps({"kind": "Secret", "data": {"token": "c2VjcmV0"}})
    assert "c2VjcmV0" not in str(error_for_body(500, secret, what="get x"))
    assert len(str(error_for_body(502, b"x" * 10_000, what="get x"))) < 400


@pytest.mark.parametrize(
    "failure",
    [ConnectionRefusedError(111, "Connection refused"), aiohttp.ServerDisconnectedError(), TimeoutError(),
     aiohttp.ClientPayloadError("truncated")],
    ids=["refused", "disconnected", "timeout", "payload"],
)
def test_ae13_no_answer_is_unavailable(failure: BaseException) -> None:
    """AE13: every way of getting no answer is one kind: Unavailable, status 0, transient, a ConnectionError."""
    error = error_for_exception(failure, what="list pools")
    assert type(error) is Unavailable
    assert error.status == 0
    assert isinstance(error, Transient)
    assert isinstance(error, ConnectionError)
    assert str(error).startswith("list pools: API server unavailable: ")


def test_ae14_access_denied_covers_both_refusals() -> None:
    """AE14: 401 and 403 share a base, so "the credentials do not allow this" is caught once."""
    assert isinstance(error_for_body(401, b"", what="x"), AccessDenied)
    assert isinstance(error_for_body(403, b"", what="x"), AccessDenied)
    assert not is_transient(error_for_body(403, b"", what="x"))
