"""``POST /api/v1/alerts``: edge boxes and vendor platforms raise an alert with its evidence.

Thin by design: authenticate the device, read the multipart body within a size bound, hand one
``AlertSubmission`` to the shared intake (``infra.intake``, the same path the vision worker takes) and
translate its answer. Every error is ``{"detail": "<what is wrong>"}``:

- 201 ``{alert_id, case_id, merged}``: this request delivered the alert to its case;
- 200, the same body: the event had been delivered by an earlier (or concurrent) request of the same device;
- 401 (with ``WWW-Authenticate``): no, unknown or revoked device key;
- 403: the device is bound to a merchant that does not own the camera;
- 404: unknown camera;
- 413: a part or the whole body is too large;
- 415: the body is not multipart/form-data, or an evidence part is not what it claims or not the right kind
  (snapshot: JPEG, PNG, WebP; clip: WebM, MP4);
- 422: malformed or missing ``meta`` field or part, unknown alert type, ``captured_at`` out of range;
- 503 (with ``Retry-After``): Temporal is unreachable; the evidence and the alert are kept, and the same
  ``event_id`` posted again completes the intake.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message

from domain.alerts.intake_rules import (
    MAX_META_JSON_BYTES,
    CameraNotPermitted,
    UnknownCamera,
    load_meta_json,
)
from domain.devices.models import Device
from domain.devices.service import authenticate_device
from domain.errors import ValidationFailed
from domain.evidence.content import EvidenceRejected, EvidenceTooLarge
from infra.intake import (
    AlertIntake,
    AlertRefusedByCase,
    AlertSender,
    AlertSubmission,
    DeliveryPending,
    EvidenceUpload,
)

router = APIRouter(tags=["alerts"])

RETRY_AFTER_SECONDS = 10
PART_NAMES = ("meta", "snapshot", "clip")
# Multipart framing and part headers on top of two evidence parts and the meta part.
BODY_OVERHEAD_BYTES = 64 * 1024
_WWW_AUTHENTICATE = 'Bearer realm="sunshine-devices"'


class AlertAccepted(BaseModel):
    alert_id: uuid.UUID
    case_id: str
    merged: bool  # joined a case already open for this camera and alert type


_MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["meta", "snapshot"],
                    "properties": {
                        "meta": {
                            "type": "string",
                            "description": "JSON object: event_id, camera_id, alert_type, captured_at (ISO 8601 with "
                            "offset), score, optional boxes [{x, y, w, h, label?, score?}], optional model "
                            "{name, version, sha256}, optional detail {}",
                        },
                        "snapshot": {"type": "string", "format": "binary", "description": "JPEG, PNG or WebP"},
                        "clip": {"type": "string", "format": "binary", "description": "WebM or MP4 (optional)"},
                    },
                }
            }
        },
    }
}


@router.post(
    "/alerts",
    status_code=status.HTTP_201_CREATED,
    response_model=AlertAccepted,
    summary="Raise an alert with its evidence (edge boxes, vendor platforms)",
    openapi_extra=_MULTIPART_BODY,
    responses={
        200: {"model": AlertAccepted, "description": "This event_id was delivered before: the same body"},
        401: {"description": "Missing, unknown or revoked device key"},
        403: {"description": "The device's merchant does not own the camera"},
        404: {"description": "Unknown camera"},
        413: {"description": "A part or the body is too large"},
        415: {"description": "Evidence is not what it claims, or not an accepted format for its part"},
        422: {"description": "Malformed or missing meta field or part; unknown alert type; captured_at out of range"},
        503: {"description": "Temporal unreachable; evidence and alert kept; retry the same event_id later"},
    },
)
async def post_alert(request: Request, response: Response) -> AlertAccepted:
    device = await _authenticated_device(request)
    intake = _alert_intake(request)
    body_limit = 2 * request.app.state.evidence_store.max_bytes + BODY_OVERHEAD_BYTES
    form = await _read_multipart(request, body_limit=body_limit)
    try:
        submission = AlertSubmission(
            sender=AlertSender(source=f"device:{device.key_id}", merchant_id=device.merchant_id, role="device"),
            meta=load_meta_json(await _meta_text(form)),
            snapshot=_evidence_part(form, "snapshot"),
            clip=_evidence_part(form, "clip") if "clip" in form else None,
        )
        result = await intake.receive(submission)
    except HTTPException:
        raise
    except Exception as error:
        http_error = _http_error(error)
        if http_error is None:
            raise
        raise http_error from error
    finally:
        await form.close()
    response.status_code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    return AlertAccepted(alert_id=result.alert_id, case_id=result.case_id, merged=result.merged)


def _http_error(error: Exception) -> HTTPException | None:
    """The HTTP answer for a refusal of the intake; None for anything unexpected (a 500)."""
    if isinstance(error, EvidenceTooLarge):
        return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=str(error))
    if isinstance(error, EvidenceRejected):  # UnsupportedContent, ContentTypeMismatch
        return HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=str(error))
    if isinstance(error, ValidationFailed):  # InvalidAlertMeta, CapturedAtOutOfRange
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(error))
    if isinstance(error, UnknownCamera):
        return HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error))
    if isinstance(error, CameraNotPermitted):
        return HTTPException(status.HTTP_403_FORBIDDEN, detail=str(error))
    if isinstance(error, AlertRefusedByCase):  # a bug, but the sender deserves to know the alert is kept
        return HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, detail=f"the alert is stored but {error}")
    if isinstance(error, DeliveryPending):
        return HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=str(error),
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return None


# The device


async def _authenticated_device(request: Request) -> Device:
    header = request.headers.get("authorization")
    if not header:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing device key: send 'Authorization: Bearer <device key>'",
            headers={"WWW-Authenticate": _WWW_AUTHENTICATE},
        )
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="the Authorization header must read 'Bearer <device key>'",
            headers={"WWW-Authenticate": f'{_WWW_AUTHENTICATE}, error="invalid_request"'},
        )
    device = await run_in_threadpool(_device_for_key, request.app.state.engine, key.strip())
    if device is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="unknown or revoked device key",
            headers={"WWW-Authenticate": f'{_WWW_AUTHENTICATE}, error="invalid_token"'},
        )
    return device


def _device_for_key(engine: Engine, presented_key: str) -> Device | None:
    with Session(engine, expire_on_commit=False) as session:
        return authenticate_device(session, presented_key=presented_key)


def _alert_intake(request: Request) -> AlertIntake:
    intake: AlertIntake = request.app.state.alert_intake
    return intake


# The body


class _BodyTooLarge(Exception):
    pass


async def _read_multipart(request: Request, *, body_limit: int) -> FormData:
    """The parts, refusing a body over ``body_limit`` before it is all read (by header, else while streaming)."""
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail=f"the request body is larger than {body_limit} bytes (two evidence parts and meta)",
    )
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="the body must be multipart/form-data with the parts meta, snapshot and (optionally) clip",
        )
    declared_length = request.headers.get("content-length", "")
    if declared_length.isdigit() and int(declared_length) > body_limit:
        raise too_large
    received = 0
    receive = request.receive

    async def bounded_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > body_limit:
                raise _BodyTooLarge
        return message

    bounded = Request(request.scope, receive=bounded_receive)
    try:
        form = await bounded.form(max_files=len(PART_NAMES), max_fields=len(PART_NAMES))
    except _BodyTooLarge:
        raise too_large from None
    except StarletteHTTPException as error:  # malformed multipart (Starlette says 400)
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"the multipart body is malformed: {error.detail}"
        ) from None
    try:
        _check_part_names(form)
    except HTTPException:
        await form.close()
        raise
    return form


def _check_part_names(form: FormData) -> None:
    for name in form:
        if name not in PART_NAMES:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"unknown part {name!r}; the parts are meta, snapshot and (optionally) clip",
            )
        if len(form.getlist(name)) > 1:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"part {name!r} is sent more than once")


async def _meta_text(form: FormData) -> str | bytes:
    meta = form.get("meta")
    if meta is None:
        raise _missing("meta")
    if isinstance(meta, UploadFile):  # sent as a file (curl -F meta=@meta.json)
        return await meta.read(MAX_META_JSON_BYTES + 1)  # one byte over the limit is enough to refuse it
    return meta


def _evidence_part(form: FormData, name: str) -> EvidenceUpload:
    part = form.get(name)
    if part is None:
        raise _missing(name)
    if not isinstance(part, UploadFile):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"part {name!r} must be a file part (Content-Disposition with a filename)",
        )
    if not part.size:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"part {name!r} is empty")
    return EvidenceUpload(content=part.file, declared_content_type=part.content_type)


def _missing(name: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"part {name!r} is missing")
