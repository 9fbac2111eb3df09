"""The webhook management endpoints of rivya-api.md §3.8, and the sandbox's delivery-fault control."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rivya_mcp.sandbox._errors import validation_failed
from rivya_mcp.sandbox._routes import account_of, ok, state_of
from rivya_mcp.sandbox.webhooks._delivery import parse_delivery_faults

MAX_EVENTS = 100


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise validation_failed(["body: must be valid JSON"]) from None


def _list(items: list[dict[str, Any]]) -> dict[str, Any]:
    # Sandbox decision: lists use the `{object: "list", data: [...]}` shape of GET /api/v1/models.
    return {"object": "list", "data": items}


async def endpoints(request: Request) -> Response:
    account = account_of(request)
    state = state_of(request)
    if request.method == "POST":
        created = state.webhooks.create(
            account, await _body(request), now=state.now(), allow_loopback=state.config.webhooks_allow_loopback
        )
        # Sandbox decision: creation answers 201 (as a create of a generation or a file does).
        return ok(created, 201)
    return ok(_list(state.webhooks.listing(account)))


async def endpoint(request: Request) -> Response:
    account = account_of(request)
    state = state_of(request)
    endpoint_id = request.path_params["endpoint_id"]
    if request.method == "PATCH":
        body = await _body(request)
        allow = state.config.webhooks_allow_loopback
        return ok(state.webhooks.patch(account, endpoint_id, body, now=state.now(), allow_loopback=allow))
    if request.method == "DELETE":
        return ok(state.webhooks.revoke(account, endpoint_id, now=state.now()))
    return ok(state.webhooks.get(account, endpoint_id))


async def rotate_secret(request: Request) -> Response:
    account = account_of(request)
    state = state_of(request)
    return ok(state.webhooks.rotate(account, request.path_params["endpoint_id"], now=state.now()))


async def deliveries(request: Request) -> Response:
    account = account_of(request)
    return ok(_list(state_of(request).webhooks.deliveries(account, request.path_params["endpoint_id"])))


async def send_test(request: Request) -> Response:
    account = account_of(request)
    return ok(state_of(request).send_test_event(account, request.path_params["endpoint_id"]), 202)


async def events(request: Request) -> Response:
    account = account_of(request)
    raw = request.query_params.get("limit", str(MAX_EVENTS))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_EVENTS:
        raise validation_failed([f"limit: must be a whole number 1–{MAX_EVENTS}"])
    state = state_of(request)
    state.settle_due()
    return ok(_list(state.webhooks.events(account, limit=int(raw))))


async def delivery_faults(request: Request) -> Response:
    state = state_of(request)
    if request.method == "POST":
        try:
            state.set_delivery_faults(parse_delivery_faults(await _body(request)))
        except ValueError as exc:
            raise validation_failed([str(exc)]) from None
    elif request.method == "DELETE":
        state.set_delivery_faults([])
    return ok({"rules": state.delivery_faults()})


def webhook_routes() -> list[Route]:
    base = "/api/v1/webhooks"
    return [
        Route(base, endpoints, methods=["GET", "POST"]),
        Route(base + "/{endpoint_id}", endpoint, methods=["GET", "PATCH", "DELETE"]),
        Route(base + "/{endpoint_id}/rotate-secret", rotate_secret, methods=["POST"]),
        Route(base + "/{endpoint_id}/deliveries", deliveries, methods=["GET"]),
        Route(base + "/{endpoint_id}/test", send_test, methods=["POST"]),
        Route("/api/v1/webhook-events", events, methods=["GET"]),
        Route("/_sandbox/webhook-faults", delivery_faults, methods=["GET", "POST", "DELETE"]),
    ]
