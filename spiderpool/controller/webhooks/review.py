"""The ``admission.k8s.io/v1`` AdmissionReview payloads: the request fields we read and the response we write."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from spiderpool.core.errors import FieldError


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    uid: str
    kind: str
    operation: str  # CREATE, UPDATE, DELETE
    name: str
    obj: Mapping[str, Any]  # the new object (the old one for DELETE)
    old: Mapping[str, Any] | None
    dry_run: bool = False  # nothing will be stored: decide, but book nothing


def parse_review(body: Mapping[str, Any]) -> AdmissionRequest:
    """The request of an AdmissionReview; ValueError naming the field when it is not one."""
    request = body.get("request")
    if not isinstance(request, Mapping) or not request.get("uid"):
        raise ValueError(f"request.uid: an AdmissionReview v1 request is required, got {request!r:.200}")
    obj = request.get("object") or request.get("oldObject") or {}
    kind = request.get("kind") or {}
    return AdmissionRequest(
        uid=str(request["uid"]), kind=str(kind.get("kind", "")), operation=str(request.get("operation", "")),
        name=str(request.get("name") or obj.get("metadata", {}).get("name", "")),
        obj=obj, old=request.get("oldObject"), dry_run=bool(request.get("dryRun")),
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool = True
    message: str = ""
    patch: Sequence[Mapping[str, Any]] = ()

    @classmethod
    def deny(cls, errors: Sequence[FieldError], *, kind: str, name: str) -> Verdict:
        details = "; ".join(str(error) for error in errors)
        return cls(allowed=False, message=f"{kind} {name} is invalid: {details}")


def review_response(uid: str, verdict: Verdict) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        response["status"] = {"code": 403, "reason": "Forbidden", "message": verdict.message}
    if verdict.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(list(verdict.patch))).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
