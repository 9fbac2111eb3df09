"""The one error envelope: ``{"error": {"code", "message", "requestId"}}`` (rivya-api.md §4)."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.responses import JSONResponse

REQUEST_ID_HEADER = "x-request-id"


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


class SandboxError(Exception):
    """An API error answered with the documented envelope."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str, request_id: str, extras: dict[str, Any] | None = None) -> dict[str, Any]:
    """The documented envelope; ``extras`` (a profile's unknown fields) go inside and beside it."""
    body: dict[str, Any] = {"error": {"code": code, "message": message, "requestId": request_id, **(extras or {})}}
    if extras:
        body["object"] = "error"
    return body


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    extras: dict[str, Any] | None = None,
) -> JSONResponse:
    """Build the envelope response; the request id is also sent as a header (a sandbox addition)."""
    rid = request_id or new_request_id()
    all_headers = {REQUEST_ID_HEADER: rid, **(headers or {})}
    return JSONResponse(error_body(code, message, rid, extras), status_code=status, headers=all_headers)


def validation_failed(problems: list[str]) -> SandboxError:
    return SandboxError(400, "validation_failed", "; ".join(problems))


def not_found(what: str) -> SandboxError:
    return SandboxError(404, "not_found", f"{what} was not found.")
