"""The Rivya Public API v1 routes the sandbox emulates, plus the media route serving its URLs."""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rivya_mcp.sandbox._auth import authenticate
from rivya_mcp.sandbox._catalog import model_list
from rivya_mcp.sandbox._errors import REQUEST_ID_HEADER, new_request_id, validation_failed
from rivya_mcp.sandbox._openapi import openapi_document
from rivya_mcp.sandbox._state import SandboxState, fingerprint
from rivya_mcp.sandbox._upload import read_upload
from rivya_mcp.sandbox._validate import validate_create

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_IDEMPOTENCY_KEY = 255  # Sandbox decision: the docs give no limit.


def state_of(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={REQUEST_ID_HEADER: new_request_id(), **(headers or {})})


def account_of(request: Request) -> str:
    """Authenticate (401s), then count the request against the key's rate limit (429)."""
    account = authenticate(request.headers.get("authorization"))
    state = state_of(request)
    state.check_rate(account)
    state.saw_base_url(base_url(request))
    return account


async def list_models(request: Request) -> Response:
    # Public: the docs say no key is needed, so an Authorization header is not even looked at.
    return ok(model_list(state_of(request).profile))


async def openapi(request: Request) -> Response:
    # Public and read-only (rivya-api.md §1): no key is looked at, nothing is counted.
    state = state_of(request)
    return ok(openapi_document(state.profile, webhook_signing=state.webhook_signing(), base_url=base_url(request)))


async def create_generation(request: Request) -> Response:
    account = account_of(request)
    state = state_of(request)
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise validation_failed(["body: must be valid JSON"]) from None
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and (not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY):
        raise validation_failed([f"Idempotency-Key: must be 1–{MAX_IDEMPOTENCY_KEY} characters"])
    body_fingerprint = fingerprint(body)
    profile = state.profile
    replay_headers = {"Idempotent-Replayed": "true"} if profile.replay_header else {}
    if key is not None:
        existing = state.replay(account, key, body_fingerprint)
        if existing is not None:
            # Sandbox decision: a replay answers 200 with the task as it is now (same id, no charge).
            return ok(state.task_json(account, existing, base_url(request)), 200, replay_headers)
    create = validate_create(body, lambda url: state.resolve_reference(account, url))
    task_id, replayed = state.create_task(account, create, idempotency_key=key, body_fingerprint=body_fingerprint)
    if replayed:
        return ok(state.task_json(account, task_id, base_url(request)), 200, replay_headers)
    # Sandbox decision: a new task answers the profile's status (201 Created by default), showing
    # the task as it was created (queued).
    return ok(state.task_json(account, task_id, base_url(request), as_created=True), profile.create_status)


async def get_generation(request: Request) -> Response:
    account = account_of(request)
    return ok(state_of(request).task_json(account, request.path_params["task_id"], base_url(request)))


async def upload_file(request: Request) -> Response:
    account = account_of(request)
    profile = state_of(request).profile
    upload = await read_upload(request, megabyte=profile.megabyte)
    body = state_of(request).add_file(
        account,
        kind=upload.kind,
        name=upload.name,
        mime_type=upload.mime_type,
        data=upload.data,
        model=upload.model,
        client_request_id=upload.client_request_id,
        base_url=base_url(request),
    )
    # Sandbox decision: an upload answers the profile's status (201 Created by default).
    return ok(body, profile.upload_status)


async def get_file(request: Request) -> Response:
    account = account_of(request)
    return ok(state_of(request).file_json(account, request.path_params["file_id"], base_url(request)))


async def get_credits(request: Request) -> Response:
    account = account_of(request)
    state = state_of(request)
    profile = state.profile
    return ok(profile.with_extras({"current_credits": profile.number(state.balance(account))}, "credits"))


async def media(request: Request) -> Response:
    """Serve a result or uploaded file by its unguessable token. No API key: like a signed CDN URL."""
    state = state_of(request)
    token = request.path_params["token"]
    # Rendering takes tens of milliseconds: keep it off the event loop.
    item = await anyio.to_thread.run_sync(state.media, token)
    headers = {"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff"}
    return Response(item.data, media_type=item.mime_type, headers=headers)


def api_routes() -> list[Route]:
    return [
        Route("/api/v1/models", list_models, methods=["GET"]),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        Route("/api/v1/generations", create_generation, methods=["POST"]),
        Route("/api/v1/generations/{task_id}", get_generation, methods=["GET"]),
        Route("/api/v1/files", upload_file, methods=["POST"]),
        Route("/api/v1/files/{file_id}", get_file, methods=["GET"]),
        Route("/api/v1/credits", get_credits, methods=["GET"]),
        Route("/_sandbox/media/{token}", media, methods=["GET"]),
    ]
