"""The request loop through ``httpx2.MockTransport``: retries, idempotency, error mapping, secrecy."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import pytest

from rivya_mcp.client import (
    MAX_RETRY_AFTER,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    InternalServerError,
    InvalidRequestError,
    MalformedResponseError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RivyaError,
    ServiceUnavailableError,
)
from rivya_mcp.settings import Secret

from .conftest import API_KEY, ClientFactory, FakeTime, error_body, task_body


class Recorder:
    """A handler that answers from a script and records every request it saw."""

    def __init__(self, *answers: httpx2.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def created(**extra: Any) -> httpx2.Response:
    return httpx2.Response(201, json=task_body(**extra))


# --- happy paths and request shape -----------------------------------------------------------


@pytest.mark.anyio
async def test_create_sends_the_documented_body_and_headers(make_client: ClientFactory) -> None:
    recorder = Recorder(created())
    client = make_client(recorder)

    task = await client.create_generation(
        model="flux-kontext-max",
        prompt="a red kite",
        params={"aspectRatio": "1:1"},
        client_request_id="trace-1",
    )

    assert task.id == "task_abc" and task.status == "queued" and not task.is_terminal
    (request,) = recorder.requests
    assert request.method == "POST"
    assert request.url == "https://api.rivya.test/api/v1/generations"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"].startswith("rivya-mcp-")
    assert json.loads(request.content) == {
        "model": "flux-kontext-max",
        "prompt": "a red kite",
        "params": {"aspectRatio": "1:1"},
        "client_request_id": "trace-1",
    }


@pytest.mark.anyio
async def test_none_means_leave_it_out(make_client: ClientFactory) -> None:
    recorder = Recorder(created())
    await make_client(recorder).create_generation(model="flux-kontext-max")
    assert json.loads(recorder.requests[0].content) == {"model": "flux-kontext-max"}


@pytest.mark.anyio
async def test_each_create_gets_its_own_key_and_a_caller_key_is_used_as_is(make_client: ClientFactory) -> None:
    recorder = Recorder(created())
    client = make_client(recorder)
    await client.create_generation(model="m", prompt="a")
    await client.create_generation(model="m", prompt="a")
    await client.create_generation(model="m", prompt="a", idempotency_key="order-123-preview")
    keys = [request.headers["Idempotency-Key"] for request in recorder.requests]
    assert keys[0] != keys[1]
    assert keys[2] == "order-123-preview"


@pytest.mark.anyio
async def test_gets_are_plain(make_client: ClientFactory) -> None:
    recorder = Recorder(httpx2.Response(200, json={"current_credits": 992, "currency_hint": "credits"}))
    credits = await make_client(recorder).get_credits()
    assert credits.current_credits == 992
    (request,) = recorder.requests
    assert "Idempotency-Key" not in request.headers
    assert request.url.path == "/api/v1/credits"


@pytest.mark.anyio
async def test_ids_stay_in_their_path_segment(make_client: ClientFactory) -> None:
    recorder = Recorder(httpx2.Response(200, json=task_body()))
    await make_client(recorder).get_generation("../credits?x=1")
    assert recorder.requests[0].url.raw_path == b"/api/v1/generations/..%2Fcredits%3Fx%3D1"


@pytest.mark.anyio
async def test_list_models_works_without_a_key(make_client: ClientFactory) -> None:
    catalog = {
        "object": "list",
        "data": [
            {"id": "flux-kontext-max", "display_name": "Flux Kontext Max", "base_credits": 8, "notices": []},
            {"id": "z-image", "category": "image", "future_field": {"x": 1}},
        ],
    }
    recorder = Recorder(httpx2.Response(200, json=catalog))
    models = await make_client(recorder, api_key=None).list_models()
    assert [model.id for model in models] == ["flux-kontext-max", "z-image"]
    assert models[0].base_credits == 8
    assert "Authorization" not in recorder.requests[0].headers


@pytest.mark.anyio
@pytest.mark.parametrize("api_key", [None, "", "   "])
async def test_missing_key_fails_before_any_request(make_client: ClientFactory, api_key: str | None) -> None:
    recorder = Recorder(created())
    client = make_client(recorder, api_key=api_key)
    assert not client.has_api_key
    for call in (
        client.create_generation(model="m", prompt="p"),
        client.get_generation("task_abc"),
        client.get_credits(),
        client.get_file("file_1"),
        client.upload_file(b"\x89PNG", kind="image"),
    ):
        with pytest.raises(MissingAPIKeyError) as caught:
            await call
        assert "RIVYA_API_KEY" in str(caught.value) and not caught.value.retryable
    assert recorder.requests == []


@pytest.mark.anyio
async def test_a_secret_key_is_accepted(make_client: ClientFactory) -> None:
    recorder = Recorder(httpx2.Response(200, json={"current_credits": 1}))
    client = make_client(recorder, api_key=None)
    client2 = type(client)(Secret(API_KEY), "https://api.rivya.test", http_client=client._http)
    await client2.get_credits()
    assert recorder.requests[0].headers["Authorization"] == f"Bearer {API_KEY}"


# --- retries -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_429_with_retry_after_is_obeyed_then_succeeds(make_client: ClientFactory, fake_time: FakeTime) -> None:
    recorder = Recorder(
        httpx2.Response(429, headers={"Retry-After": "3"}, json=error_body("rate_limited")),
        httpx2.Response(429, headers={"retry-after-ms": "1250"}, json=error_body("rate_limited")),
        created(),
    )
    task = await make_client(recorder).create_generation(model="m", prompt="p")
    assert task.id == "task_abc"
    assert fake_time.sleeps == [3.0, 1.25]
    keys = {request.headers["Idempotency-Key"] for request in recorder.requests}
    assert len(recorder.requests) == 3 and len(keys) == 1  # one key, fixed before the loop


@pytest.mark.anyio
async def test_5xx_twice_then_success_backs_off_with_jitter(make_client: ClientFactory, fake_time: FakeTime) -> None:
    recorder = Recorder(
        httpx2.Response(500, json=error_body("internal_error")),
        httpx2.Response(502, text="<html>bad gateway</html>"),
        created(),
    )
    await make_client(recorder).create_generation(model="m", prompt="p")
    assert len(recorder.requests) == 3
    assert len({request.headers["Idempotency-Key"] for request in recorder.requests}) == 1
    first, second = fake_time.sleeps
    assert 0.375 <= first <= 0.5 and 0.75 <= second <= 1.0


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [
        httpx2.ConnectError("connection refused"),
        httpx2.RemoteProtocolError("server disconnected without sending a response"),
        httpx2.ReadTimeout("timed out"),
        httpx2.Response(408, text=""),
        httpx2.Response(503, json=error_body("public_api_disabled")),
        httpx2.Response(201, text='{"id": "task_abc", "sta'),  # answer cut off after processing
    ],
    ids=["connect", "dropped", "timeout", "408", "public_api_disabled", "truncated-body"],
)
async def test_transient_failures_are_retried_with_the_same_key(
    make_client: ClientFactory, failure: httpx2.Response | Exception
) -> None:
    recorder = Recorder(failure, created())
    task = await make_client(recorder).create_generation(model="m", prompt="p")
    assert task.id == "task_abc"
    assert len(recorder.requests) == 2
    assert recorder.requests[0].headers["Idempotency-Key"] == recorder.requests[1].headers["Idempotency-Key"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("failure", "error_type"),
    [
        (httpx2.ConnectError("refused"), APIConnectionError),
        (httpx2.ConnectTimeout("slow"), APITimeoutError),
        (httpx2.Response(500, json=error_body("internal_error")), InternalServerError),
        (httpx2.Response(200, text="not json at all"), MalformedResponseError),
    ],
)
async def test_retries_run_out(
    make_client: ClientFactory, fake_time: FakeTime, failure: httpx2.Response | Exception, error_type: type[RivyaError]
) -> None:
    recorder = Recorder(failure)
    with pytest.raises(error_type) as caught:
        await make_client(recorder, max_retries=3).get_credits()
    assert caught.value.retryable
    assert len(recorder.requests) == 4 and len(fake_time.sleeps) == 3


@pytest.mark.anyio
async def test_retry_after_beyond_the_cap_gives_up(make_client: ClientFactory, fake_time: FakeTime) -> None:
    recorder = Recorder(
        httpx2.Response(429, headers={"Retry-After": str(int(MAX_RETRY_AFTER) + 1)}, json=error_body("rate_limited")),
        created(),
    )
    with pytest.raises(RateLimitError) as caught:
        await make_client(recorder).create_generation(model="m", prompt="p")
    assert caught.value.retry_after == MAX_RETRY_AFTER + 1
    assert caught.value.retryable  # retrying later may work; the client just won't wait that long
    assert len(recorder.requests) == 1 and fake_time.sleeps == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "code"),
    [
        (409, "idempotency_conflict"),
        (400, "validation_failed"),
        (402, "insufficient_credits"),
        (404, "not_found"),
        (401, "api_key_invalid"),
        (403, "api_scope_denied"),
    ],
)
async def test_permanent_errors_are_never_retried(
    make_client: ClientFactory, fake_time: FakeTime, status: int, code: str
) -> None:
    recorder = Recorder(httpx2.Response(status, headers={"Retry-After": "1"}, json=error_body(code)), created())
    with pytest.raises(APIStatusError) as caught:
        await make_client(recorder).create_generation(model="m", prompt="p")
    assert caught.value.code == code and not caught.value.retryable
    assert len(recorder.requests) == 1 and fake_time.sleeps == []


@pytest.mark.anyio
async def test_max_retries_zero_means_one_attempt(make_client: ClientFactory) -> None:
    recorder = Recorder(httpx2.Response(503, json=error_body("public_api_disabled")), created())
    with pytest.raises(ServiceUnavailableError):
        await make_client(recorder, max_retries=0).create_generation(model="m", prompt="p")
    assert len(recorder.requests) == 1


# --- error mapping --------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (401, "api_key_missing", AuthenticationError),
        (401, "api_key_invalid", AuthenticationError),
        (401, "api_key_revoked", AuthenticationError),
        (401, "api_key_expired", AuthenticationError),
        (403, "api_scope_denied", PermissionDeniedError),
        (400, "validation_failed", InvalidRequestError),
        (402, "insufficient_credits", InsufficientCreditsError),
        (400, "insufficient_credits", InsufficientCreditsError),  # the code wins over the status
        (404, "not_found", NotFoundError),
        (409, "idempotency_conflict", IdempotencyConflictError),
        (429, "rate_limited", RateLimitError),
        (503, "public_api_disabled", ServiceUnavailableError),
        (500, "internal_error", InternalServerError),
        # Codes this client does not know: fall back to the status, then to the base class.
        (400, "webhook_url_rejected", InvalidRequestError),
        (422, "file_type_not_allowed", InvalidRequestError),
        (404, "file_not_found", NotFoundError),
        (409, "chat_session_conflict", APIStatusError),
        (418, "brand_new_code", APIStatusError),
        (507, "storage_full", InternalServerError),
    ],
)
async def test_error_codes_map_to_their_class(
    make_client: ClientFactory, status: int, code: str, error_type: type[APIStatusError]
) -> None:
    recorder = Recorder(httpx2.Response(status, json=error_body(code, "Explained.", "req_9f8e7d")))
    with pytest.raises(APIStatusError) as caught:
        await make_client(recorder, max_retries=0).get_generation("task_abc")
    error = caught.value
    assert type(error) is error_type
    assert (error.code, error.status_code, error.message, error.request_id) == (
        code,
        status,
        "Explained.",
        "req_9f8e7d",
    )
    assert str(error) == f"[{code}] Explained. (request req_9f8e7d)"
    assert error.body == error_body(code, "Explained.", "req_9f8e7d")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("response", "error_type"),
    [
        (httpx2.Response(502, text="<html>Bad Gateway</html>"), InternalServerError),
        (httpx2.Response(400, json={"message": "no envelope"}), InvalidRequestError),
        (httpx2.Response(404, json={"error": "not_found"}), NotFoundError),
        (httpx2.Response(409, json={"error": {"code": 42, "message": ["odd"]}}), APIStatusError),
        (httpx2.Response(418, content=b""), APIStatusError),
    ],
)
async def test_error_bodies_of_any_shape_never_crash(
    make_client: ClientFactory, response: httpx2.Response, error_type: type[APIStatusError]
) -> None:
    with pytest.raises(APIStatusError) as caught:
        await make_client(Recorder(response), max_retries=0).get_credits()
    assert type(caught.value) is error_type
    assert caught.value.code is None
    assert str(caught.value).startswith(f"[HTTP {response.status_code}] GET /credits failed with HTTP")


@pytest.mark.anyio
async def test_request_id_falls_back_to_the_header(make_client: ClientFactory) -> None:
    response = httpx2.Response(
        404, headers={"X-Request-Id": "req_hdr"}, json={"error": {"code": "not_found", "message": "Gone."}}
    )
    with pytest.raises(NotFoundError) as caught:
        await make_client(Recorder(response)).get_generation("task_abc")
    assert caught.value.request_id == "req_hdr"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [{"status": "queued"}, {"id": "task_1"}, [], "task", {"id": None, "status": "queued"}],
)
async def test_well_formed_json_of_the_wrong_shape_is_malformed_and_not_retried(
    make_client: ClientFactory, body: Any
) -> None:
    recorder = Recorder(httpx2.Response(200, json=body))
    with pytest.raises(MalformedResponseError) as caught:
        await make_client(recorder).get_generation("task_abc")
    assert not caught.value.retryable
    assert len(recorder.requests) == 1


@pytest.mark.anyio
async def test_unknown_fields_are_kept_not_fatal(make_client: ClientFactory) -> None:
    recorder = Recorder(httpx2.Response(200, json=task_body(status="processing", progress=0.4, object="task")))
    task = await make_client(recorder).get_generation("task_abc")
    assert task.status == "processing"
    assert task.model_extra == {"progress": 0.4, "object": "task"}


# --- the key stays secret --------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_key_never_reaches_logs_errors_or_reprs(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    echoed = f"Key {API_KEY} is revoked."  # a server that echoes the key must not make us leak it
    recorder = Recorder(
        httpx2.ConnectError(f"refused while sending Bearer {API_KEY}"),
        httpx2.Response(500, json=error_body("internal_error", echoed)),
        httpx2.Response(401, json={"error": {"code": "api_key_revoked", "message": echoed, "requestId": "req_1"}}),
    )
    client = make_client(recorder)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(AuthenticationError) as caught:
            await client.create_generation(model="m", prompt="p")
    error = caught.value
    assert len(recorder.requests) == 3
    assert caplog.records, "the request loop logs at DEBUG"
    assert any(record.name == "rivya_mcp.client" for record in caplog.records)
    for text in (caplog.text, str(error), repr(error), json.dumps(error.body), repr(client), str(client)):
        assert API_KEY not in text
    assert "[redacted]" in error.message


@pytest.mark.anyio
async def test_debug_logs_name_method_path_status_attempt_and_request_id(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(
        httpx2.Response(429, headers={"Retry-After": "1"}, json=error_body("rate_limited", request_id="req_rl")),
        created(),
    )
    with caplog.at_level(logging.DEBUG, logger="rivya_mcp.client"):
        await make_client(recorder).create_generation(model="m", prompt="p")
    messages = [record.getMessage() for record in caplog.records if record.name == "rivya_mcp.client"]
    assert "request POST /generations attempt=1" in messages
    assert "request POST /generations attempt=2" in messages
    assert any("429" in m and "rate_limited" in m and "req_rl" in m for m in messages)
    assert any(m.startswith("retrying POST /generations in 1.00s") for m in messages)
    assert not any("Idempotency" in m or "Bearer" in m for m in messages)


def test_repr_of_client_shows_no_key() -> None:
    from rivya_mcp.client import AsyncRivyaClient

    client = AsyncRivyaClient(API_KEY)
    assert API_KEY not in repr(client)
    assert repr(client) == "AsyncRivyaClient(base_url='https://rivya.ai', api_key=set)"
    assert "api_key=missing" in repr(AsyncRivyaClient(None))


@pytest.mark.anyio
async def test_the_client_closes_only_what_it_owns(make_client: ClientFactory) -> None:
    from rivya_mcp.client import AsyncRivyaClient

    borrowed = make_client(Recorder(created()))
    async with borrowed:
        pass
    assert not borrowed._http.is_closed
    async with AsyncRivyaClient(API_KEY) as owned:
        pass
    assert owned._http.is_closed


def test_bad_configuration_is_refused() -> None:
    from rivya_mcp.client import AsyncRivyaClient

    with pytest.raises(ValueError):
        AsyncRivyaClient(API_KEY, max_retries=-1)
    with pytest.raises(ValueError):
        AsyncRivyaClient(API_KEY, poll_scale=-1)


def _nested(depth: int) -> bytes:
    """A task whose extra field is JSON nested ``depth`` deep (json.dumps itself cannot write one)."""
    return b'{"id": "task_abc", "status": "queued", "extra": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.anyio
@pytest.mark.parametrize("depth", [900, 100_000])  # past the scrub's stack / past json.loads' own
@pytest.mark.parametrize("status", [200, 500])
async def test_json_nested_too_deep_is_a_malformed_answer_not_a_crash(
    make_client: ClientFactory, depth: int, status: int
) -> None:
    recorder = Recorder(httpx2.Response(status, content=_nested(depth), headers={"Content-Type": "application/json"}))
    client = make_client(recorder, max_retries=0)
    with pytest.raises(RivyaError) as caught:
        await client.get_generation("task_abc")
    if status == 200:
        assert isinstance(caught.value, MalformedResponseError) and "not JSON" in str(caught.value)
    else:
        assert caught.value.status_code == 500  # the status speaks; the body is unreadable
    # A task nested within reason still reads.
    shallow = await make_client(Recorder(httpx2.Response(200, content=_nested(50)))).get_generation("task_abc")
    assert shallow.status == "queued"
