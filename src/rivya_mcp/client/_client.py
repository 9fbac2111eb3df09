"""``AsyncRivyaClient``: typed methods for the Rivya Public API v1 endpoints this project uses."""

from __future__ import annotations

import io
import mimetypes
import os
from collections.abc import Awaitable, Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from ._base import BaseClient, DownloadRoute, logger, new_idempotency_key
from ._constants import LAST_LOOK_SECONDS, MAX_CLIENT_REQUEST_ID
from ._exceptions import DeadlineExceededError, MalformedResponseError, UploadTooLargeError
from ._gated import Confirm
from ._models import Catalog, Credits, Generation, ModelInfo, RivyaFile, UnreadableEntry
from ._polling import PollInfo, poll_delay
from ._webhooks import WebhooksMixin

__all__ = ["AsyncRivyaClient", "OnUpdate"]

OnUpdate = Callable[[Generation, PollInfo], Awaitable[None]]
_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], body: Any, what: str) -> _M:
    try:
        return model.model_validate(body)
    except ValidationError as err:
        # Well-formed JSON of the wrong shape: repeating the request would get the same answer.
        raise MalformedResponseError(
            f"{what}: the response is not a valid {model.__name__} ({err.error_count()} problem(s))",
            retryable=False,
        ) from None


def _segment(value: str, what: str) -> str:
    """An id as one path segment; ids are quoted so they can never reach another endpoint."""
    if not value:
        raise ValueError(f"{what} must not be empty")
    return quote(value, safe="")


class AsyncRivyaClient(WebhooksMixin, BaseClient):
    """Async client for the Rivya Public API v1.

    Usage::

        async with AsyncRivyaClient(api_key=settings.api_key) as client:
            task = await client.create_generation(model="flux-kontext-max", prompt="a red kite")
            task = await client.wait_for_generation(task.id, timeout=45)

    Args:
        api_key: the ``rvya_sk_…`` key; sent only as ``Authorization: Bearer``. None (or empty)
            means calls that need a key raise ``MissingAPIKeyError`` before sending anything.
        base_url: API origin, without ``/api/v1``.
        timeout: seconds per HTTP attempt.
        max_retries: retries after the first attempt for retryable failures.
        http_client: an ``httpx2.AsyncClient`` to use (tests pass one on a mock or ASGI
            transport); it is not closed by this client.
        sleep, clock: the time seams; every wait goes through ``sleep`` and every elapsed-time
            reading through ``clock``.
        rng: randomness for retry jitter (seed it in tests).
        poll_scale: multiplies every poll delay (tests and benchmarks shrink it).
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- models and credits ----------------------------------------------------------------

    async def read_catalog(self, *, deadline: float | None = None, timeout: float | None = None) -> Catalog:
        """The public catalog, read entry by entry: one entry that cannot be read is set aside
        (and logged once per client) while every other one is still read.

        The endpoint is public, so this works without a key (one is sent when configured).
        """
        body = await self._request("GET", "/models", require_key=False, deadline=self._deadline(deadline, timeout))
        items = body.get("data") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise MalformedResponseError("GET /models: expected a list of models", retryable=False)
        models: list[ModelInfo] = []
        unreadable: list[UnreadableEntry] = []
        for index, item in enumerate(items):
            try:
                models.append(ModelInfo.model_validate(item))
            except ValidationError as err:
                entry_id = item.get("id") if isinstance(item, dict) else None
                problems = "; ".join(
                    f"{'.'.join(str(part) for part in e['loc']) or 'entry'}: {e['msg']}" for e in err.errors()
                )
                unreadable.append(UnreadableEntry(index, entry_id if isinstance(entry_id, str) else None, problems))
        for entry in unreadable:
            if (entry.id, entry.problem) not in self._unreadable_logged:
                self._unreadable_logged.add((entry.id, entry.problem))
                logger.warning(
                    "model catalog: entry %d (%s) skipped, it cannot be read: %s",
                    entry.index,
                    entry.id or "no id",
                    entry.problem,
                )
        return Catalog(models, unreadable)

    async def list_models(self, *, deadline: float | None = None, timeout: float | None = None) -> list[ModelInfo]:
        """Every readable model in the public catalog, callable or not (see ``ModelInfo.is_callable``).

        An entry that cannot be read is skipped and logged once (``read_catalog`` says which).
        """
        return (await self.read_catalog(deadline=deadline, timeout=timeout)).models

    async def get_openapi(self, *, deadline: float | None = None, timeout: float | None = None) -> dict[str, Any]:
        """``GET /api/v1/openapi.json``: the API's own contract (public, read-only, rivya-api.md §1).

        Compare it with the client's assumptions with ``compare_openapi``. Raises
        ``NotFoundError`` where it is not served, ``MalformedResponseError`` when it is not an object.
        """
        body = await self._request(
            "GET", "/openapi.json", require_key=False, deadline=self._deadline(deadline, timeout)
        )
        if not isinstance(body, dict):
            raise MalformedResponseError("GET /openapi.json: expected a JSON object", retryable=False)
        return body

    async def get_credits(self, *, deadline: float | None = None, timeout: float | None = None) -> Credits:
        """The account's current credit balance."""
        body = await self._request("GET", "/credits", deadline=self._deadline(deadline, timeout))
        return _parse(Credits, body, "GET /credits")

    # --- generations -----------------------------------------------------------------------

    async def create_generation(
        self,
        *,
        model: str,
        prompt: str | None = None,
        params: Mapping[str, Any] | None = None,
        client_request_id: str | None = None,
        idempotency_key: str | None = None,
        key_sent_before: bool = False,
        deadline: float | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Generation:
        """Submit a generation task; returns it queued (poll with ``wait_for_generation``).

        Args:
            params: model-specific parameters, already in wire form (see ``manifest.to_wire_params``).
            client_request_id: your own trace id (at most 128 characters), stored with the task so
                it can be matched to your intent later; it does not deduplicate.
            idempotency_key: reuse one to make a repeated call return the original task; by default
                a fresh key is made per call and kept across this call's retries.
            key_sent_before: this key was already sent with this same body (an earlier call or
                process whose answer was lost): a ``409 idempotency_conflict`` even to the first
                attempt then means "not settled yet" and is retried, not raised as a conflict.
            deadline, timeout: when the call must end (the client's clock, or seconds from now).
            max_retries: this call's retry budget instead of the client's (0: one attempt), for a
                caller that paces its own re-sends.

        Raises:
            CreateNotSettledError: the create was sent and is not settled (or not accepted) by the
                deadline; it carries the key to send it again with. Never a reason for a new key.
            IdempotencyConflictError: the first attempt's key was used for a different body.
            ValueError: ``client_request_id`` is too long, or ``key_sent_before`` without a key;
                nothing was sent.
        """
        if client_request_id is not None and len(client_request_id) > MAX_CLIENT_REQUEST_ID:
            raise ValueError(f"client_request_id must be at most {MAX_CLIENT_REQUEST_ID} characters; nothing was sent")
        if key_sent_before and idempotency_key is None:
            raise ValueError("key_sent_before needs the idempotency_key that was sent")
        body: dict[str, Any] = {"model": model}
        if prompt is not None:
            body["prompt"] = prompt
        if params is not None:
            body["params"] = dict(params)
        if client_request_id is not None:
            body["client_request_id"] = client_request_id
        key = idempotency_key if idempotency_key is not None else new_idempotency_key()
        data = await self._request(
            "POST",
            "/generations",
            json_body=body,
            idempotency_key=key,
            key_sent_before=key_sent_before,
            deadline=self._deadline(deadline, timeout),
            max_retries=max_retries,
        )
        return _parse(Generation, data, "POST /generations")

    async def get_generation(
        self, task_id: str, *, deadline: float | None = None, timeout: float | None = None
    ) -> Generation:
        """The task's current state.

        Raises ``DeadlineExceededError`` when the deadline comes first (e.g. the API asks, with
        ``Retry-After``, for a wait longer than what is left): the task is unchanged, ask later.
        """
        path = f"/generations/{_segment(task_id, 'task_id')}"
        body = await self._request("GET", path, deadline=self._deadline(deadline, timeout))
        return _parse(Generation, body, "GET /generations/{id}")

    async def wait_for_generation(
        self,
        task_id: str,
        *,
        timeout: float | None,
        deadline: float | None = None,
        on_update: OnUpdate | None = None,
    ) -> Generation:
        """Poll a task until it finishes or ``timeout`` seconds pass (or ``deadline`` comes).

        Call it right after the create: the first look comes ``FIRST_POLL_DELAY`` (2.5 s) after
        the call starts, then the interval follows ``poll_delay`` (times ``poll_scale``) with the
        wait's age standing in for the task's, so the documented 5-10 s pace holds (rivya-api
        §3.4). A ``Retry-After`` on a status request is obeyed by the request loop, within the
        deadline. The last sleep is cut to the deadline and one final poll happens there, given
        ``LAST_LOOK_SECONDS`` of its own (one attempt, and a retry only if it fits).
        Returns the terminal task, or the last one seen when time ran out (not an error: the task
        keeps running and can be polled again). ``timeout=None`` (and no ``deadline``) waits as
        long as it takes. When time runs out before any poll has answered (every one was asked to
        wait past the deadline), ``DeadlineExceededError`` is raised: the task id is still good.

        ``on_update`` is awaited after every poll with the task and a ``PollInfo``.

        A poll that still fails after the request loop's own retries propagates: by then the API
        has been unreachable for several seconds, and the caller, who holds the task id, is
        better placed to report that and resume than a loop that would hide the outage until the
        deadline.
        """
        _segment(task_id, "task_id")
        started = self._clock()
        deadline = self._deadline(deadline, timeout)
        polls = 0
        previous_status: str | None = None
        latest: Generation | None = None
        while True:
            delay = poll_delay(polls, self._clock() - started) * self.poll_scale
            last_poll = False
            if deadline is not None:
                remaining = deadline - self._clock()
                if delay >= remaining:
                    delay, last_poll = max(remaining, 0.0), True
            if delay > 0:
                await self._sleep(delay)
            try:
                # The final look happens at the deadline itself, so it gets a short window of its own.
                look_by = self._clock() + LAST_LOOK_SECONDS if last_poll else deadline
                generation = await self.get_generation(task_id, deadline=look_by)
            except DeadlineExceededError:
                if latest is None:
                    raise
                return latest
            latest = generation
            polls += 1
            changed = generation.status != previous_status
            previous_status = generation.status
            if on_update is not None:
                await on_update(generation, PollInfo(elapsed=self._clock() - started, polls=polls, changed=changed))
            if generation.is_terminal or last_poll:
                return generation

    # --- files -----------------------------------------------------------------------------

    async def upload_file(
        self,
        source: Path | bytes | IO[bytes],
        *,
        kind: str,
        filename: str | None = None,
        mime_type: str | None = None,
        model: str | None = None,
        client_request_id: str | None = None,
        idempotency_key: str | None = None,
        max_bytes: int | None = None,
        confirm: Confirm | None = None,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> RivyaFile:
        """Upload a reference file; pass the result's ``as_reference_item()`` in params.

        A ``Path`` is streamed from disk in chunks (re-opened for each attempt, so a retried upload
        sends the whole file again) and never read into memory. A seekable binary file object is
        sent from its start (rewound for a retry), its size taken from ``seek(0, 2)``; the caller
        closes it. Whatever its ``read`` raises propagates as is, and is not retried.

        ``confirm`` lets a check of the file run while it is sent: it is awaited (once per attempt)
        before the last 128 KiB of the body go out. If it raises, the upload is abandoned with the
        body incomplete, so the API never receives the file, and the exception propagates as is.

        Args:
            kind: ``image``, ``video`` or ``audio``.
            filename: name sent with the file (defaults to the path's name, or ``upload``).
            mime_type: the part's declared type (guessed from the name when None); the API checks
                the bytes' signature regardless.
            model: lets the API apply that model's size and type rules.
            client_request_id: your trace id, at most 128 characters (§3.6).
            max_bytes: refuse locally, before sending, a file larger than this.
            deadline, timeout: when the call must end (the client's clock, or seconds from now).

        The returned file carries ``kind`` and, when ``mime_type`` was given (e.g. sniffed from
        the bytes), that type, wherever the API's answer does not state them (the file object's
        fields are not documented, §3.6), so ``as_reference_item()`` always has both.
        """
        if client_request_id is not None and len(client_request_id) > MAX_CLIENT_REQUEST_ID:
            raise ValueError(f"client_request_id must be at most {MAX_CLIENT_REQUEST_ID} characters; nothing was sent")
        if isinstance(source, Path):
            size = source.stat().st_size
            name = filename or source.name or "upload"
        elif isinstance(source, bytes):
            size = len(source)
            name = filename or "upload"
        else:
            size = source.seek(0, os.SEEK_END)
            source.seek(0)
            name = filename or "upload"
        if max_bytes is not None and size > max_bytes:
            raise UploadTooLargeError(f"{name} is {size} bytes, more than the {max_bytes}-byte limit; it was not sent")
        content_type = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"

        def file_parts(stack: ExitStack) -> dict[str, tuple[str, IO[bytes] | bytes, str | None]]:
            content: IO[bytes] | bytes
            if isinstance(source, Path):
                content = stack.enter_context(source.open("rb"))
            elif not isinstance(source, bytes):
                content = source  # httpx2 rewinds it before sending
            else:
                content = io.BytesIO(source)  # read in chunks: one bytes body would be copied whole by h11
            return {"file": (name, content, content_type)}

        form = {"kind": kind}
        if model is not None:
            form["model"] = model
        if client_request_id is not None:
            form["client_request_id"] = client_request_id
        key = idempotency_key if idempotency_key is not None else new_idempotency_key()
        data = await self._request(
            "POST",
            "/files",
            form=form,
            files=file_parts,
            idempotency_key=key,
            confirm=confirm,
            deadline=self._deadline(deadline, timeout),
        )
        return _parse(RivyaFile, data, "POST /files").with_known(kind=kind, mime_type=mime_type)

    async def get_file(self, file_id: str, *, deadline: float | None = None, timeout: float | None = None) -> RivyaFile:
        """Metadata of an uploaded file (it may lack ``kind``: see ``RivyaFile.as_reference_item``)."""
        path = f"/files/{_segment(file_id, 'file_id')}"
        body = await self._request("GET", path, deadline=self._deadline(deadline, timeout))
        return _parse(RivyaFile, body, "GET /files/{id}")

    # --- results ---------------------------------------------------------------------------

    async def download(
        self,
        url: str,
        *,
        max_bytes: int,
        deadline: float | None = None,
        timeout: float | None = None,
        route: DownloadRoute | None = None,
    ) -> bytes:
        """Fetch a result image. The API key is never sent; more than ``max_bytes`` is refused.

        Redirects are followed by hand (at most ``MAX_DOWNLOAD_REDIRECTS``; a loop is a
        ``DownloadError`` that says so), and ``route``, when given, decides where each hop may
        connect: the server passes the reference loader's SSRF rules (``tasks``), so neither the
        URL nor a redirect reaches a loopback, private or metadata address. Raises
        ``ResultExpiredError`` when the URL answers 403, 404 or 410, ``DownloadRefusedError`` when
        ``route`` refuses a hop, and ``DeadlineExceededError`` when the deadline comes first.
        """
        return await self._download(url, max_bytes=max_bytes, deadline=self._deadline(deadline, timeout), route=route)
