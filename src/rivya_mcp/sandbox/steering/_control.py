"""The control surface under ``/_sandbox/`` (not part of the Rivya API): inspect and steer the sandbox."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rivya_mcp.sandbox._config import config_problems
from rivya_mcp.sandbox._errors import validation_failed
from rivya_mcp.sandbox._routes import base_url, ok, state_of
from rivya_mcp.sandbox._upload import sniff_mime
from rivya_mcp.sandbox.steering._clock import iso
from rivya_mcp.sandbox.steering._faults import parse_rules

RESULT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


async def _json(request: Request, *, optional: bool = False) -> Any:
    raw = await request.body()
    if optional and not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise validation_failed(["body: must be valid JSON"]) from None


async def get_state(request: Request) -> Response:
    return ok(state_of(request).snapshot(base_url(request)))


async def faults(request: Request) -> Response:
    state = state_of(request)
    if request.method == "POST":
        try:
            state.set_faults(parse_rules(await _json(request)))
        except ValueError as exc:
            raise validation_failed([str(exc)]) from None
    elif request.method == "DELETE":
        state.set_faults([])
    return ok({"rules": state.faults()})


async def reset(request: Request) -> Response:
    body = await _json(request, optional=True)
    balance = body.get("balance") if isinstance(body, dict) else None
    if not isinstance(body, dict) or (balance is not None and config_problems({"starting_balance": balance})):
        raise validation_failed(['body: must be {} or {"balance": <integer >= 0>}'])
    state = state_of(request)
    state.reset(balance=balance)
    return ok({"reset": True, "starting_balance": state.config.starting_balance})


async def config(request: Request) -> Response:
    state = state_of(request)
    if request.method == "POST":
        changes = await _json(request)
        if not isinstance(changes, dict):
            raise validation_failed(["body: must be an object of config fields"])
        problems = config_problems(changes)
        if problems:
            raise validation_failed(problems)
        try:
            state.update_config(changes)
        except (ValueError, TypeError) as exc:
            raise validation_failed([str(exc)]) from None
    return ok(state.config.as_dict())


async def clock(request: Request) -> Response:
    state = state_of(request)
    if request.method == "POST":
        body = await _json(request)
        seconds = body.get("advance") if isinstance(body, dict) else None
        if (
            not isinstance(seconds, int | float)
            or isinstance(seconds, bool)
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise validation_failed(['body: must be {"advance": <seconds >= 0>}'])
        state.advance_clock(float(seconds))
    return ok({"now": iso(state.now()), "timestamp": state.now()})


# A fixed result is a test fixture, not an upload: the same cap as the API's own uploads.
MAX_FIXED_RESULT_BYTES = 10 * 1024 * 1024


async def put_result(request: Request) -> Response:
    """``PUT /_sandbox/results/{name}`` with an image as the body: ``[sandbox:result=name]`` tasks
    return exactly these bytes (say, a file signed with C2PA, which the sandbox cannot make)."""
    name = request.path_params["name"]
    data = await request.body()
    mime = sniff_mime(data[:16])
    problems = []
    if not RESULT_NAME.fullmatch(name):
        problems.append("name: 1-64 letters, digits, '-' or '_'")
    if mime is None or not mime.startswith("image/"):
        problems.append("body: must be a JPEG, PNG or WebP image")
    if len(data) > MAX_FIXED_RESULT_BYTES:
        problems.append(f"body: at most {MAX_FIXED_RESULT_BYTES} bytes")
    if problems:
        raise validation_failed(problems)
    assert mime is not None
    state_of(request).put_result(name, data, mime)
    return ok({"name": name, "mime_type": mime, "size": len(data)})


async def health(_request: Request) -> Response:
    return ok({"ok": True})


def control_routes() -> list[Route]:
    return [
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/state", get_state, methods=["GET"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/config", config, methods=["GET", "POST"]),
        Route("/_sandbox/clock", clock, methods=["GET", "POST"]),
        Route("/_sandbox/results/{name}", put_result, methods=["PUT"]),
    ]
