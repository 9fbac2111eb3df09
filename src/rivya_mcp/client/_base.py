"""The request loop: headers, auth, retries, error mapping and result downloads.

Resource methods in ``_client`` describe *what* to send; this module decides *how*: it adds the
Bearer key (and nothing else secret), keeps one Idempotency-Key per logical request, retries what
the policy in ``_retry`` allows, and turns error responses into the exception tree.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx2

from .. import __version__
from ..settings import Secret
from ._coalesced import CoalescedStream
from ._constants import API_PREFIX, DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, MAX_DOWNLOAD_REDIRECTS
from ._echoes import KeyEchoes
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    CreateNotSettledError,
    DeadlineExceededError,
    DownloadError,
    DownloadRefusedError,
    MalformedResponseError,
    MissingAPIKeyError,
    ResultExpiredError,
    RivyaError,
    UnusableAPIKeyError,
    make_status_error,
)
from ._gated import Confirm, GatedStream
from ._retry import backoff_delay, conflict_is_unsettled, parse_retry_after, plan_retry, should_retry
from ._text import printable

__all__ = ["BaseClient", "DownloadHop", "DownloadRoute", "FileParts", "Sleep"]

logger = logging.getLogger("rivya_mcp.client")

Sleep = Callable[[float], Awaitable[None]]
# Multipart file parts, built afresh for every attempt so a retried upload re-sends the whole file.
FileParts = Callable[[ExitStack], Mapping[str, tuple[str, IO[bytes] | bytes, str | None]]]

_EXPIRED_STATUSES = frozenset({403, 404, 410})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Never sent to a result URL, even when an injected HTTP client carries them by default.
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")
_REDACTED = "[redacted]"
_IDEMPOTENCY_PREFIX = "rivya-mcp-"
_DOWNLOAD_CHUNK = 64 * 1024
# What an Authorization header value can carry: visible ASCII (RFC 9110 field values; a bearer
# token has no spaces). Rivya keys are ``rvya_sk_`` plus letters, digits, ``_`` and ``-``.
_HEADER_SAFE = re.compile(r"[!-~]+")


@dataclass(frozen=True)
class DownloadHop:
    """Where one request of a download really goes: the URL to connect to (a checked address in
    place of the host name, say) and the headers and request extensions that keep the original
    name (``Host``, the TLS ``sni_hostname``)."""

    url: httpx2.URL
    headers: Mapping[str, str] = field(default_factory=dict)
    extensions: Mapping[str, Any] = field(default_factory=dict)


# Called for the result URL and for every redirect before a request goes there: a hop, or
# ``DownloadRefusedError`` to refuse it. The client knows no address policy of its own; the
# tasks layer passes the reference loader's (``references.checked_route``).
DownloadRoute = Callable[[httpx2.URL], Awaitable[DownloadHop]]


def _coerce_key(api_key: Secret | str | None) -> Secret | None:
    if isinstance(api_key, Secret):
        return api_key if api_key else None
    if api_key is None or not api_key.strip():
        return None
    return Secret(api_key.strip())


def new_idempotency_key() -> str:
    """A fresh key for one logical create request."""
    return f"{_IDEMPOTENCY_PREFIX}{uuid.uuid4()}"


class BaseClient:
    """Configuration and the HTTP machinery shared by every endpoint method."""

    def __init__(
        self,
        api_key: Secret | str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx2.AsyncClient | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = anyio.current_time,
        rng: random.Random | None = None,
        poll_scale: float = 1.0,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if poll_scale < 0:
            raise ValueError("poll_scale must be >= 0")
        self._api_key = _coerce_key(api_key)
        # Every spelling of the key an answer might echo (verbatim, encoded, its first characters).
        self._echoes = KeyEchoes(self._api_key.reveal()) if self._api_key is not None else None
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.poll_scale = poll_scale
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx2.AsyncClient()
        # Catalog entries already reported as unreadable: each is logged once per client.
        self._unreadable_logged: set[tuple[str | None, str]] = set()

    def __repr__(self) -> str:
        key = "set" if self._api_key is not None else "missing"
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={key})"

    @property
    def has_api_key(self) -> bool:
        """Whether a key is configured (calls other than ``list_models`` need one)."""
        return self._api_key is not None

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was handed in by the caller."""
        if self._owns_http:
            await self._http.aclose()

    # --- helpers ---------------------------------------------------------------------------

    def _scrub(self, value: Any) -> Any:
        """``value`` (a string, or parsed JSON) with the key removed from every string in it.

        The one place the key is taken out of what the API sent: ``_interpret`` passes every
        string of an answer through here (body, ``x-request-id``, reason phrase) before anything
        else sees it, so no error, model, log line, result or journal row can carry an echo: the
        key itself, its base64 or hex spelling, or its first characters (``_echoes``).
        """
        return self._echoes.scrub(value) if self._echoes is not None else value

    def _headers(self, *, idempotency_key: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"rivya-mcp/{__version__}"}
        if self._api_key is not None:
            secret = self._api_key.reveal()
            if not _HEADER_SAFE.fullmatch(secret):
                # Never show the key, nor the offending character (it would be part of the key).
                raise UnusableAPIKeyError(
                    "RIVYA_API_KEY contains characters an HTTP header can't carry (only printable ASCII without "
                    "spaces is allowed), so no request can be sent with it. The key is not shown here."
                )
            headers["Authorization"] = f"Bearer {secret}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def _require_key(self) -> None:
        if self._api_key is None:
            raise MissingAPIKeyError(
                "No Rivya API key is configured. Set RIVYA_API_KEY (a key from rivya.ai Settings → API Keys), "
                "or point the client at the sandbox."
            )

    # --- the request loop --------------------------------------------------------------------

    def _deadline(self, deadline: float | None, timeout: float | None) -> float | None:
        """The earlier of an absolute ``deadline`` (on the client's clock) and ``timeout`` from now."""
        candidates = [deadline] if deadline is not None else []
        if timeout is not None:
            candidates.append(self._clock() + max(timeout, 0.0))
        return min(candidates) if candidates else None

    def _remaining(self, deadline: float | None) -> float | None:
        return None if deadline is None else deadline - self._clock()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        files: FileParts | None = None,
        idempotency_key: str | None = None,
        key_sent_before: bool = False,
        require_key: bool = True,
        confirm: Confirm | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> Any:
        """Send one logical request, retrying per policy; returns the parsed JSON body.

        ``idempotency_key`` is fixed by the caller before this loop, so every attempt carries the
        same one and the server can deduplicate a create whose answer was lost. A ``409
        idempotency_conflict`` to a key already sent with this body (``conflict_is_unsettled``)
        is retried under the same key until ``deadline`` (without one, within the retry budget),
        then raised as ``CreateNotSettledError``. ``deadline`` (the client's clock) bounds every
        wait: no sleep and no attempt's timeout reaches past it; when the next wait would, the call
        raises ``DeadlineExceededError`` (``CreateNotSettledError`` for a keyed request) at once.
        ``confirm``, if given, is awaited before the last bytes of each attempt's body (see
        ``_gated``); whatever it raises propagates at once, with the request left incomplete and
        never retried. ``max_retries`` replaces the client's retry budget for this request (also
        for a conflict not settled yet: 0 sends it once, whatever the deadline).

        With a deadline, a request without a file body is also cut off there as a whole: an answer
        that trickles in byte by byte never resets a per-read timeout past it.
        """
        if require_key:
            self._require_key()
        url = f"{self.base_url}{API_PREFIX}{path}"
        headers = self._headers(idempotency_key=idempotency_key)
        retries_taken = 0
        attempts = 0
        last_error: RivyaError | None = None
        while True:
            remaining = self._remaining(deadline)
            if remaining is not None and remaining <= 0:
                raise self._out_of_time(method, path, idempotency_key, attempts, last_error, left=0.0, wanted=None)
            attempts += 1
            logger.debug("request %s %s attempt=%d", method, path, attempts)
            attempt_timeout = self.timeout if remaining is None else min(self.timeout, remaining)
            outcome: Any = None
            timed_out = True
            with anyio.move_on_after(attempt_timeout if remaining is not None and files is None else math.inf):
                outcome = await self._attempt(
                    method,
                    url,
                    path,
                    headers=headers,
                    json_body=json_body,
                    form=form,
                    files=files,
                    confirm=confirm,
                    timeout=attempt_timeout,
                )
                timed_out = False
            if timed_out:
                outcome = APITimeoutError(f"{method} {path} did not complete within {attempt_timeout:.3g}s")
            if not isinstance(outcome, RivyaError):
                return outcome
            error = last_error = outcome
            unsettled = idempotency_key is not None and conflict_is_unsettled(
                code=error.code, attempt=attempts, key_sent_before=key_sent_before
            )
            retry_after: float | None = getattr(error, "retry_after", None)
            asked = retry_after is not None and retry_after > 0
            budget = self.max_retries if max_retries is None else max_retries
            step = plan_retry(
                retryable=unsettled or error.retryable,
                retries_taken=retries_taken,
                # Not settled yet: the deadline, when there is one, is the budget (unless the caller set one).
                retry_budget=None if unsettled and deadline is not None and max_retries is None else budget,
                retry_after=retry_after,
                backoff=0.0 if asked else backoff_delay(retries_taken, self._rng),
                remaining=self._remaining(deadline),
            )
            if step.action == "out_of_time":
                left = max(self._remaining(deadline) or 0.0, 0.0)
                raise self._out_of_time(method, path, idempotency_key, attempts, error, left=left, wanted=step.delay)
            if step.action == "give_up":
                if unsettled:
                    assert idempotency_key is not None
                    raise self._not_settled(method, path, idempotency_key, attempts, error)
                if step.delay:
                    logger.debug(
                        "giving up %s %s: Retry-After %.1fs is beyond the cap (request %s)",
                        method,
                        path,
                        step.delay,
                        error.request_id,
                    )
                raise error
            logger.debug(
                "retrying %s %s in %.2fs after %s (attempt %d, request %s)",
                method,
                path,
                step.delay,
                error.code or error.status_code or type(error).__name__,
                attempts,
                error.request_id,
            )
            await self._sleep(step.delay)
            retries_taken += 1

    def _out_of_time(
        self,
        method: str,
        path: str,
        key: str | None,
        attempts: int,
        last_error: RivyaError | None,
        *,
        left: float,
        wanted: float | None,
    ) -> DeadlineExceededError:
        """The error for a call whose deadline came first; it names the wait it would have needed."""
        retry_after = getattr(last_error, "retry_after", None)
        if wanted is not None:
            asked = " (Retry-After)" if retry_after is not None and retry_after > 0 else ""
            why = f"the next try was due in {wanted:.1f} s{asked} but only {left:.1f} s were left"
        else:
            why = "no time was left" + (" for another try" if attempts else " to send it")
        last = f"; the last answer was: {last_error}" if last_error is not None else ""
        request_id = last_error.request_id if last_error is not None else None
        error: DeadlineExceededError
        if key is not None and attempts > 0:
            error = CreateNotSettledError(
                f"{method} {path} ran out of time before the API accepted it ({why}{last}). It was sent "
                f"{attempts} time(s) under Idempotency-Key {key} and may still be processed: send it again "
                "with that same key, which returns the task if it exists and creates it once otherwise.",
                idempotency_key=key,
                last_error=last_error,
                retry_after=retry_after,
                request_id=request_id,
            )
        else:
            sent = "" if attempts else " Nothing was sent."
            error = DeadlineExceededError(
                f"{method} {path} ran out of time ({why}{last}).{sent}",
                last_error=last_error,
                retry_after=retry_after,
                request_id=request_id,
            )
        error.__cause__ = last_error
        return error

    @staticmethod
    def _not_settled(method: str, path: str, key: str, attempts: int, error: RivyaError) -> CreateNotSettledError:
        settled = CreateNotSettledError(
            f"{method} {path} is not settled yet: the API answered {error.code} to Idempotency-Key {key}, "
            f"which this client had already sent with the same body ({attempts} attempt(s)), so the first "
            "request is still being processed. It may have been accepted and charged: send it again later "
            "with that same key, which returns the task once it exists.",
            idempotency_key=key,
            last_error=error,
            retry_after=getattr(error, "retry_after", None),
            request_id=error.request_id,
        )
        settled.__cause__ = error
        return settled

    async def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        *,
        headers: Mapping[str, str],
        json_body: Mapping[str, Any] | None,
        form: Mapping[str, str] | None,
        files: FileParts | None,
        confirm: Confirm | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One HTTP exchange. Returns the parsed body, or (not raises) the error it amounts to.

        Only ``confirm``'s own exceptions are raised: they are not about the exchange.
        ``timeout`` (default: the client's) may be shorter when the caller's deadline is near.
        """
        attempt_timeout = self.timeout if timeout is None else timeout
        try:
            with ExitStack() as stack:
                request = self._http.build_request(
                    method,
                    url,
                    headers=headers,
                    json=json_body,
                    data=form,
                    files=files(stack) if files is not None else None,
                    timeout=attempt_timeout,
                )
                if files is not None or confirm is not None:
                    assert isinstance(request.stream, httpx2.AsyncByteStream)  # httpx2's encoders are both
                    if files is not None:
                        request.stream = CoalescedStream(request.stream)  # one write, not ~14, before the file
                    if confirm is not None:
                        request.stream = GatedStream(request.stream, confirm)
                response = await self._http.send(request)
        except httpx2.TimeoutException as err:
            timeout_error = APITimeoutError(f"{method} {path} timed out after {attempt_timeout:.3g}s")
            timeout_error.__cause__ = err
            logger.debug("timeout %s %s", method, path)
            return timeout_error
        except httpx2.TransportError as err:
            connection_error = APIConnectionError(f"{method} {path} failed: {type(err).__name__}")
            connection_error.__cause__ = err
            logger.debug("connection error %s %s: %s", method, path, type(err).__name__)
            return connection_error
        except httpx2.DecodingError as err:
            decoding_error = MalformedResponseError(
                f"{method} {path}: the response could not be decoded", retryable=True
            )
            decoding_error.__cause__ = err
            return decoding_error
        return self._interpret(method, path, response)

    def _interpret(self, method: str, path: str, response: httpx2.Response) -> Any:
        status = response.status_code
        header_request_id: str | None = self._scrub(response.headers.get("x-request-id"))
        try:
            body: Any = self._scrub(json.loads(response.content)) if response.content else None
            parsed = True
        except (ValueError, RecursionError):
            # Not JSON, or JSON nested deeper than Python's stack (json.loads, or the scrub walking
            # it, hits the recursion limit): either way an answer that cannot be read, never a bug.
            body, parsed = None, False
        if 200 <= status < 300:
            logger.debug("response %s %s -> %d (request %s)", method, path, status, printable(header_request_id))
            if not parsed or body is None:
                # The request may have been processed and only the answer lost: retry it like a
                # dropped connection (creates carry an Idempotency-Key, so that is safe).
                return MalformedResponseError(
                    f"{method} {path} answered {status} with a body that is not JSON",
                    status_code=status,
                    request_id=header_request_id,
                    retryable=True,
                )
            return body

        code: str | None = None
        message: str | None = None
        request_id = header_request_id
        envelope = body.get("error") if isinstance(body, dict) else None
        if isinstance(envelope, dict):
            code = envelope.get("code") if isinstance(envelope.get("code"), str) else None
            message = envelope.get("message") if isinstance(envelope.get("message"), str) else None
            if isinstance(envelope.get("requestId"), str):
                request_id = envelope["requestId"]
        if message is None:
            message = f"{method} {path} failed with HTTP {status} {self._scrub(response.reason_phrase)}".rstrip()
        retry_after = parse_retry_after(response.headers)
        logger.debug(
            "response %s %s -> %d code=%s (request %s)",
            method,
            path,
            status,
            printable(code or "-"),
            printable(request_id),
        )
        return make_status_error(
            status_code=status,
            code=code,
            message=message,
            request_id=request_id,
            body=body,
            retry_after=retry_after,
            retryable=should_retry(status, code),
        )

    # --- downloads ---------------------------------------------------------------------------

    async def _download(
        self, url: str, *, max_bytes: int, deadline: float | None = None, route: DownloadRoute | None = None
    ) -> bytes:
        """Fetch a result URL with retries, never sending the API key, stopping past ``max_bytes``.

        ``deadline`` bounds every wait as in ``_request`` (``DeadlineExceededError`` when it comes first).
        Redirects are followed here, hop by hop, each through ``route`` when one is given.
        """
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        absolute = urljoin(f"{self.base_url}/", url)
        parts = urlsplit(absolute)
        if parts.scheme not in {"http", "https"}:
            raise DownloadError(f"Refusing to download a {parts.scheme or 'relative'} URL")
        # Query strings of signed URLs are credentials of their own: log only scheme, host and path.
        shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
        retries_taken = 0
        last_error: DownloadError | None = None
        while True:
            remaining = self._remaining(deadline)
            if remaining is not None and remaining <= 0:
                raise self._out_of_time("GET", shown, None, retries_taken, last_error, left=0.0, wanted=None)
            logger.debug("download %s attempt=%d", shown, retries_taken + 1)
            timeout = self.timeout if remaining is None else min(self.timeout, remaining)
            # A whole attempt, not each read, ends by ``timeout``: a body dripping a byte a second
            # would otherwise never trip a per-read timeout.
            outcome: bytes | DownloadError = DownloadError(
                f"Downloading {shown} took longer than {timeout:.3g}s", retryable=True
            )
            with anyio.move_on_after(timeout) as attempt:
                outcome = await self._download_once(absolute, shown, max_bytes=max_bytes, timeout=timeout, route=route)
            if isinstance(outcome, bytes):
                return outcome
            if attempt.cancelled_caught and remaining is not None and timeout >= remaining:
                # Cut off by the caller's deadline, not by the client's own timeout: out of time.
                raise self._out_of_time("GET", shown, None, retries_taken + 1, outcome, left=0.0, wanted=None)
            last_error = outcome
            asked = outcome.retry_after is not None and outcome.retry_after > 0
            step = plan_retry(
                retryable=outcome.retryable,
                retries_taken=retries_taken,
                retry_budget=self.max_retries,
                retry_after=outcome.retry_after,
                backoff=0.0 if asked else backoff_delay(retries_taken, self._rng),
                remaining=self._remaining(deadline),
            )
            if step.action == "out_of_time":
                left = max(self._remaining(deadline) or 0.0, 0.0)
                raise self._out_of_time("GET", shown, None, retries_taken + 1, outcome, left=left, wanted=step.delay)
            if step.action == "give_up":
                raise outcome
            logger.debug("retrying download %s in %.2fs after %s", shown, step.delay, outcome.status_code or "error")
            await self._sleep(step.delay)
            retries_taken += 1

    async def _download_once(
        self, url: str, shown: str, *, max_bytes: int, timeout: float, route: DownloadRoute | None = None
    ) -> bytes | DownloadError:
        """One download, following at most ``MAX_DOWNLOAD_REDIRECTS`` redirects by hand.

        Every hop goes through ``route`` first (the caller's address policy), so a redirect cannot
        lead where the first URL could not; a URL that comes round again is a redirect loop. Both
        are errors the caller can name (``DownloadRefusedError``, a ``DownloadError``), never
        retried. ``timeout`` bounds each request.
        """
        hop_url = httpx2.URL(url)
        visited = [hop_url]
        try:
            while True:
                hop = await route(hop_url) if route is not None else DownloadHop(hop_url)
                outcome = await self._fetch_hop(hop, hop_url, shown, max_bytes=max_bytes, timeout=timeout)
                if not isinstance(outcome, httpx2.URL):
                    return outcome
                location = outcome
                if location.scheme not in ("http", "https"):
                    return DownloadRefusedError(f"{shown} redirects to a {location.scheme or 'relative'} URL")
                if location in visited:
                    return DownloadError(
                        f"{shown} redirects in a loop (back to an earlier URL after {len(visited)} hop(s))",
                        retryable=False,
                    )
                if len(visited) > MAX_DOWNLOAD_REDIRECTS:
                    return DownloadError(f"{shown} redirects more than {MAX_DOWNLOAD_REDIRECTS} times", retryable=False)
                logger.debug("download %s redirects (hop %d)", shown, len(visited))
                visited.append(location)
                hop_url = location
        except DownloadError as refused:  # the route's refusal
            return refused
        except httpx2.TimeoutException as err:
            timeout_error = DownloadError(f"Downloading {shown} timed out", retryable=True)
            timeout_error.__cause__ = err
            return timeout_error
        except (httpx2.TransportError, httpx2.DecodingError) as err:
            connection_error = DownloadError(f"Downloading {shown} failed: {type(err).__name__}", retryable=True)
            connection_error.__cause__ = err
            return connection_error
        except httpx2.InvalidURL:
            return DownloadError(f"{shown} redirects to a URL that cannot be parsed", retryable=False)

    async def _fetch_hop(
        self, hop: DownloadHop, named: httpx2.URL, shown: str, *, max_bytes: int, timeout: float
    ) -> bytes | DownloadError | httpx2.URL:
        """One request (to ``hop``, for the URL ``named``): the body, the error it amounts to, or
        where it redirects to, resolved against ``named`` (not the address it was pinned to)."""
        request = self._http.build_request(
            "GET",
            hop.url,
            headers={"User-Agent": f"rivya-mcp/{__version__}", **hop.headers},
            extensions=dict(hop.extensions),
            timeout=timeout,
        )
        # An injected client may carry default headers; a result URL must never see the key.
        for name in _CREDENTIAL_HEADERS:
            request.headers.pop(name, None)
        response = await self._http.send(request, stream=True, follow_redirects=False)
        try:
            status = response.status_code
            location = response.headers.get("location")
            if status in _REDIRECT_STATUSES and location:
                return named.join(location)
            if status in _EXPIRED_STATUSES:
                return ResultExpiredError(
                    f"The result URL answered HTTP {status}: it has expired or does not exist. "
                    "Fetch the task again for fresh URLs, or create a new generation.",
                    status_code=status,
                )
            if status >= 400:
                return DownloadError(
                    f"Downloading {shown} failed with HTTP {status}",
                    status_code=status,
                    retry_after=parse_retry_after(response.headers),
                    retryable=should_retry(status, None),
                )
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                return self._too_large(shown, max_bytes)
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes(_DOWNLOAD_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    return self._too_large(shown, max_bytes)
                chunks.append(chunk)
        finally:
            await response.aclose()
        logger.debug("downloaded %s: %d bytes", shown, received)
        return b"".join(chunks)

    @staticmethod
    def _too_large(shown: str, max_bytes: int) -> DownloadError:
        return DownloadError(f"{shown} is larger than the {max_bytes}-byte limit", retryable=False)
