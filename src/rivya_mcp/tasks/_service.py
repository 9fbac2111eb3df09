"""A paid task from create to saved file: the one service every caller uses.

Tool calls (``server``), the recovery pass, webhook deliveries and the MCP Tasks extension's
follow-ups all create, follow and save tasks through :class:`TaskService`, so each step is written
once and every caller gets the same outcome for the same task:

- ``create`` records the intent, sends the create under its idempotency key and records the task
  (or why there is none), under the intent's lease on replicas;
- ``follow`` waits for a task at its documented pace (``_pace``) until it settles or the caller's
  time is up, tells ``on_status`` what happens meanwhile, takes a webhook's news early, and saves
  a succeeded task's image;
- ``save`` puts a succeeded task's image on disk once: the saved copy, another replica's, the
  spooled bytes of a failed save, or a download (each under the task's lock), finished first
  (``_finishing``: a region edit's composite, provenance).

Nothing here knows MCP: what the agent sees is made from :class:`Followed` by ``server``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal

import anyio

from rivya_mcp.client import (
    FAILED,
    LAST_LOOK_SECONDS,
    MAX_CLIENT_REQUEST_ID,
    SUCCEEDED,
    APIStatusError,
    CreateNotSettledError,
    DeadlineExceededError,
    DownloadError,
    Generation,
    ResultExpiredError,
    RivyaError,
    poll_delay,
    printable,
)
from rivya_mcp.journal import (
    MAX_REFERENCE_CHARS,
    REJECTED,
    UNCONFIRMED,
    UNSUBMITTED,
    IdempotencyKeyReused,
    JournalEntry,
)
from rivya_mcp.manifest import REFERENCE_ITEMS_KEY
from rivya_mcp.settings import Settings
from rivya_mcp.tasks._ledger import Ledger, saved_file
from rivya_mcp.tasks._pace import from_journal, is_settled
from rivya_mcp.tasks._runtime import Runtime
from rivya_mcp.tasks.images._disk import OutputFolderUnusable
from rivya_mcp.tasks.images._downloads import result_route, whole_image_type
from rivya_mcp.tasks.images._finishing import finish
from rivya_mcp.tasks.images._spool import Spool
from rivya_mcp.tasks.images._storage import IMAGE_TYPES, image_filename, save_atomically

log = logging.getLogger(__name__)

# Result images are a few MB; the cap only stops a misbehaving URL from filling the disk.
MAX_RESULT_BYTES = 64 * 1024 * 1024
# While a caller waits between status requests, it hears from the task at least this often.
PROGRESS_TICK_SECONDS = 1.0
# A succeeded task without any result URL (rivya-api §3.3: `urls` "when available") is looked at
# again, at the same pace, this many times in one follow before it is reported as paid and fetchable.
URLLESS_LOOKS = 3
# A finished task may be in the middle of being saved by the recovery or another call: wait this
# long for that (one download) even when the caller asked not to wait for the task itself.
SAVE_LOCK_GRACE_SECONDS = 10.0
# A call bounds every wait of its own (uploads, the create and its retries, status requests, the
# download) by its deadline: ``wait_seconds`` from its start, but never less than this, so a call
# that may not wait for its task (``wait_seconds: 0``) still has time to create it and to fetch a
# finished image. Whatever ``Retry-After`` asks, nothing waits past the deadline.
MIN_CALL_SECONDS = 10.0
# A download outside any call (a delivery's save, recovery, the background) ends by this, in any
# case: a result that drips a byte a second must not hold anything for long.
MAX_DOWNLOAD_SECONDS = 120.0
# A create whose answer may have reached Rivya is re-sent under its key only this long after it was
# first recorded. Rivya does not say how long it remembers idempotency keys (Stripe: 24 h); past
# that a re-send might not be recognised as one and charge again, so it is reported instead.
INTENT_MAX_AGE = timedelta(hours=24)
# One re-send of a create Rivya has not settled yet: a single attempt, given this long.
RESEND_ATTEMPT_SECONDS = 30.0
# How long one task is followed outside any call (recovery, a settled re-send) before it is left
# for get_task or the next start.
MAX_FOLLOW_SECONDS = 30 * 60.0

UpdateKind = Literal["created", "found", "looked", "busy", "waiting", "polled", "webhook", "downloading", "kept"]


@dataclass(frozen=True)
class StatusUpdate:
    """One thing worth telling whoever waits on a task (``server`` puts it in words).

    ``created``/``found``: the create answered, or an earlier task matched the key; ``looked``: the
    task's state as first known to a reading call; ``busy``: someone else is finishing it;
    ``waiting``: a tick between status requests (no request made); ``polled``: a status request's
    answer; ``webhook``: a delivery's news; ``downloading`` / ``kept``: saving its image from the
    result URL, or from the bytes kept after an earlier save failed.
    """

    kind: UpdateKind
    generation: Generation
    elapsed: float = 0.0
    next_look: float = 0.0


OnStatus = Callable[[StatusUpdate], Awaitable[None]]


async def _ignore(_: StatusUpdate) -> None:
    return None


@dataclass(frozen=True)
class SavedImage:
    path: Path
    data: bytes | None  # the bytes when just downloaded; None for a copy already on disk (read it if needed)
    from_disk: bool  # a saved copy (here or another replica's), not a download


@dataclass(frozen=True)
class Followed:
    """Where a followed task stands when ``follow`` returns.

    ``image`` is set when a succeeded task's image is on disk; ``unsaved`` when it was downloaded
    but the output folder refused it (the bytes are kept); ``downloading`` when the call's deadline
    came during the download (it goes on in the background); none of them, when the task failed,
    is still running (``next_look``: seconds until its next allowed status request), or succeeded
    without a result URL yet.
    """

    generation: Generation
    waited: float
    image: SavedImage | None = None
    unsaved: OutputFolderUnusable | None = None
    next_look: float = 0.0
    downloading: bool = False


@dataclass(frozen=True)
class Intent:
    """A create as the journal records it before the request leaves (``params`` are the wire params)."""

    idempotency_key: str
    mode: str
    model: str
    prompt: str
    params: Mapping[str, Any]
    reference: str | None
    # Credits this create will be charged (one image): what a daily budget counts.
    cost: float | None = None

    @property
    def client_request_id(self) -> str:
        """The intent's own id, sent with its create (rivya-api §3.2: at most 128 characters), so a
        task in Rivya's records can be matched to it later. The same on every re-send: the body
        of a re-sent create must not change."""
        return client_request_id(self.idempotency_key)


def client_request_id(idempotency_key: str) -> str:
    """The ``client_request_id`` of the intent recorded under ``idempotency_key``."""
    if len(idempotency_key) <= MAX_CLIENT_REQUEST_ID:
        return idempotency_key
    return "rivya-mcp-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:48]


class IntentTooOld(Exception):
    """A create that may have reached Rivya is older than ``INTENT_MAX_AGE``: never re-sent.

    The message says what to check (its ``client_request_id`` in Rivya's task list) and what each
    answer means.
    """

    def __init__(self, entry: JournalEntry, *, now: datetime) -> None:
        self.idempotency_key = entry.idempotency_key
        self.client_request_id = client_request_id(entry.idempotency_key)
        self.created_at = entry.created_at
        hours = (now - entry.created_at).total_seconds() / 3600
        super().__init__(
            f"The create sent under idempotency_key {entry.idempotency_key!r} on "
            f"{entry.created_at.isoformat(timespec='seconds')} ({hours:.0f} h ago) was never confirmed, and "
            f"Rivya may no longer remember the key after {INTENT_MAX_AGE.total_seconds() / 3600:g} h, so it is "
            "not sent again: that could charge twice. Check the tasks of this API key in your Rivya account "
            f"for one created around that time with client_request_id {self.client_request_id!r}: if there is "
            "one, it was charged, and get_task with its id fetches the image; if there is none, nothing was "
            "charged, and a new idempotency_key creates the image."
        )


def is_refusal(exc: APIStatusError) -> bool:
    """The API answered and refused the request (4xx): it did not create anything.

    408 is the exception: a request timeout says nothing about whether the work was done.
    """
    return 400 <= exc.status_code < 500 and exc.status_code != 408


def error_code(exc: RivyaError) -> str:
    """What the journal records for a failed create: the API's code, else the kind of failure."""
    return exc.code or type(exc).__name__


def same_request(earlier: JournalEntry, intent: Intent) -> bool:
    """Whether ``intent`` is the request ``earlier`` recorded under the same idempotency key.

    The reference's upload URL differs per upload, so edits compare everything but that; the
    journal shortens very long references (data URIs), which are then compared by their params.
    """
    recorded = {k: v for k, v in earlier.params.items() if k != REFERENCE_ITEMS_KEY}
    params = {k: v for k, v in intent.params.items() if k != REFERENCE_ITEMS_KEY}
    reference = intent.reference
    same_reference = reference is None or len(reference) > MAX_REFERENCE_CHARS or earlier.reference == reference
    return same_reference and (earlier.mode, earlier.model, earlier.prompt, recorded) == (
        intent.mode,
        intent.model,
        intent.prompt,
        params,
    )


class TaskService:
    """Create, follow and save paid tasks over one runtime (client, journal, locks, pace)."""

    def __init__(self, runtime: Runtime, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.runtime = runtime
        self._now = now

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    # -- create -------------------------------------------------------------------------------

    async def earlier(self, intent: Intent) -> JournalEntry | None:
        """The journal's entry for the intent's key, if any; raises ``IdempotencyKeyReused`` when
        that key named another request."""
        entry = await (await self.runtime.ledger()).by_key(intent.idempotency_key)
        if entry is not None and not same_request(entry, intent):
            raise IdempotencyKeyReused(
                f"idempotency_key {intent.idempotency_key!r} was already used for a different request "
                f"(task {entry.task_id or 'not created'})"
            )
        return entry

    async def create(
        self,
        intent: Intent,
        *,
        on_sent: Callable[[], None] | None = None,
        unclear: str | None = UNCONFIRMED,
        deadline: float | None = None,
        once: bool = False,
    ) -> Generation:
        """Record the intent, send the create under its key, record the task: exactly one charge.

        Holds the intent's lease on replicas, so no other replica's sweep re-sends it while its
        answer is on its way. See :meth:`send`.
        """
        async with self.runtime.creating(intent.idempotency_key):
            return await self.send(intent, on_sent=on_sent, unclear=unclear, deadline=deadline, once=once)

    async def send(
        self,
        intent: Intent,
        *,
        on_sent: Callable[[], None] | None = None,
        unclear: str | None = UNCONFIRMED,
        deadline: float | None = None,
        once: bool = False,
    ) -> Generation:
        """``create`` for a caller that holds the intent's lease already (the replicas' sweep).

        A refusal (4xx) ends the intent ``rejected``. An unclear failure (connection lost, timeout,
        5xx, a garbled answer, after the client's retries) means the task may exist and only a
        re-send under the same key can find it: the intent ends ``unclear`` (``unconfirmed`` for a
        tool call, whose agent is told the key), or, with ``unclear=None``, stays ``unsubmitted``
        for the next recovery pass. ``on_sent`` runs once the intent is recorded, before the
        request leaves. ``deadline`` (``anyio.current_time``) bounds every wait of the create;
        ``once``: a single attempt (a caller that paces its own re-sends).

        An intent recorded before under this key (and not refused) is re-sent as such
        (``key_sent_before``: a 409 to it means "not settled yet", never a conflict), and only
        within ``INTENT_MAX_AGE`` of its first send: older, it ends ``unconfirmed`` and
        ``IntentTooOld`` says what to check. A create that would pass the caller's daily budget raises
        ``BudgetExceeded`` before it is recorded or sent. A create Rivya has not settled
        (``CreateNotSettledError``) never ends: it stays ``unsubmitted``, and for a tool call a
        follow-up in the background keeps re-sending it under its key until it settles
        (:meth:`pursue`), then follows and saves the task; after a restart the recovery pass does.
        """
        ledger = await self.runtime.ledger()
        key = intent.idempotency_key
        earlier = await ledger.by_key(key)
        key_sent_before = earlier is not None and earlier.task_id is None and earlier.status != REJECTED
        if earlier is not None and key_sent_before and self._now() - earlier.created_at > INTENT_MAX_AGE:
            too_old = IntentTooOld(earlier, now=self._now())
            await ledger.ended(key, status=UNCONFIRMED, code="intent_expired", message=str(too_old))
            raise too_old
        await ledger.intent(
            idempotency_key=key,
            mode=intent.mode,
            model=intent.model,
            prompt=intent.prompt,
            params=intent.params,
            reference=intent.reference,
            cost=intent.cost,
            budget=self.settings.budget_credits_per_day,
        )
        if on_sent is not None:
            on_sent()
        try:
            generation = await self.runtime.client().create_generation(
                model=intent.model,
                prompt=intent.prompt,
                params=dict(intent.params),
                client_request_id=intent.client_request_id,
                idempotency_key=key,
                key_sent_before=key_sent_before,
                deadline=deadline,
                max_retries=0 if once else None,
            )
        except CreateNotSettledError:
            # Sent, perhaps charged, not settled: it stays unsubmitted, and is never "rejected".
            if unclear is not None:
                self.runtime.start_background(lambda: self.pursue(intent), name=f"create {key}")
            raise
        except APIStatusError as exc:
            if is_refusal(exc):
                await ledger.rejected(key, code=exc.code, message=exc.message)
            elif unclear is not None:
                await ledger.ended(key, status=unclear, code=exc.code, message=exc.message)
            raise
        except RivyaError as exc:
            if unclear is not None:
                await ledger.ended(key, status=unclear, code=error_code(exc), message=str(exc))
            raise
        await ledger.created(key, generation)
        if await ledger.get(generation.id) is None:
            self.runtime.pacer.started(generation)  # no journal: the first look still waits
        # The id and status as the upstream sent them, escaped: a line break in one forges no log line.
        log.info("task %s created (%s, %s)", printable(generation.id), intent.mode, printable(generation.status))
        return generation

    async def pursue(self, intent: Intent) -> Generation | None:
        """Re-send a create Rivya has not settled, under its key, until it settles; then finish the task.

        One attempt at a time, spaced like status requests at the documented pace (first after
        2-3 s, then 5-10 s, slower over time; a ``Retry-After`` is obeyed): a re-send under the key
        is what asks Rivya whether the create took. It stops when a task comes of it (followed and
        saved, as the recovery pass does), when Rivya refuses it (ended ``rejected``), when someone
        else settled it, or past ``INTENT_MAX_AGE`` (ended ``unconfirmed``, with what to check).
        """
        ledger = await self.runtime.ledger()
        key = intent.idempotency_key
        started = anyio.current_time()
        resends = 0
        asked: float | None = None
        while True:
            delay = poll_delay(resends, anyio.current_time() - started) * self.settings.poll_scale
            await anyio.sleep(max(delay, asked or 0.0))
            entry = await ledger.by_key(key)
            if entry is not None and entry.task_id is not None:
                generation = await self.latest(entry.task_id)  # settled by another call or process
                break
            if entry is not None and entry.status != UNSUBMITTED:
                return None  # refused, or ended by another caller: nothing to re-send
            resends += 1
            try:
                generation = await self.create(
                    intent, unclear=None, once=True, deadline=anyio.current_time() + RESEND_ATTEMPT_SECONDS
                )
                break
            except IntentTooOld as exc:
                log.warning("create %s: %s", key, exc)
                return None
            except RivyaError as exc:
                latest = await ledger.by_key(key)
                if latest is not None and latest.status != UNSUBMITTED and latest.task_id is None:
                    log.warning("create %s: Rivya refused the re-send (%s)", key, exc.code or type(exc).__name__)
                    return None
                asked = getattr(exc, "retry_after", None)
                log.info("create %s: not settled yet after %d re-send(s) (%s)", key, resends, type(exc).__name__)
        log.info("create %s settled: task %s (%s)", key, printable(generation.id), printable(generation.status))
        await self.finish(generation.id, prompt=intent.prompt, who=f"create {key}")
        return generation

    async def finish(
        self, task_id: str, *, prompt: str = "", max_seconds: float = MAX_FOLLOW_SECONDS, who: str = "recovery"
    ) -> None:
        """Poll a task to its end and save its image, outside any call: one step at a time under
        the task's lock, waiting for its turns outside it, so a tool call on it is never held up.
        ``who`` names the caller in the log."""
        runtime = self.runtime
        ledger = await runtime.ledger()
        started = anyio.current_time()
        while True:
            # The task's next turn (its pace is shared with tool calls and other processes).
            await anyio.sleep(await runtime.poll_due_in(task_id))
            async with runtime.following(task_id):
                latest = await ledger.get(task_id)
                if latest is not None and not latest.needs_finishing:
                    return  # a tool call finished it while we waited for the lock
                generation = await runtime.poll(task_id)
                await ledger.updated(generation)
                if generation.status == SUCCEEDED and generation.result_url is None:
                    log.warning("%s: task %s succeeded without a result URL yet; looking again", who, task_id)
                elif generation.status == SUCCEEDED:
                    try:
                        image = await self.save(
                            generation, prompt=(latest.prompt if latest else None) or prompt, locked=True
                        )
                    except ResultExpiredError as exc:
                        # Nothing left to fetch; get_task will say so. Stop trying on every start.
                        await ledger.gave_up(task_id, code="result_expired", message=str(exc))
                        log.warning("%s: task %s succeeded but its result URL expired unsaved", who, task_id)
                        return
                    log.info("%s: task %s finished; image saved to %s", who, task_id, image.path)
                    return
                elif generation.is_terminal:
                    log.info("%s: task %s ended %s", who, task_id, printable(generation.status))
                    return
            elapsed = anyio.current_time() - started
            if elapsed >= max_seconds:
                log.warning("%s: task %s unfinished after %.0f s; left for get_task", who, task_id, elapsed)
                return

    # -- follow -------------------------------------------------------------------------------

    async def latest(self, task_id: str, *, deadline: float | None = None) -> Generation:
        """The task as known now, without breaking its pace (see ``Runtime.latest``)."""
        return await self.runtime.latest(task_id, deadline=deadline)

    async def follow(
        self,
        generation: Generation,
        *,
        wait: float,
        on_status: OnStatus = _ignore,
        prompt: str = "",
        deadline: float | None = None,
    ) -> Followed:
        """Wait up to ``wait`` seconds for the task to settle, then save its image if it succeeded.

        The wait keeps the task's pace, shared with every other caller and process; a webhook
        delivery for the task ends it early. ``prompt`` names the saved file when the journal does
        not know the task's own prompt. ``deadline`` (``anyio.current_time``; default: ``wait``
        from now, at least ``MIN_CALL_SECONDS``) bounds every request: a status request the API
        asks to repeat after it (``Retry-After``) ends the wait with the task pending, and a
        download it cuts short goes on in the background (``Followed.downloading``).
        """
        runtime = self.runtime
        ledger = await runtime.ledger()
        started = anyio.current_time()
        if deadline is None:
            deadline = started + max(wait, MIN_CALL_SECONDS)
        if (not is_settled(generation) and wait <= 0) or generation.status == FAILED:
            await ledger.updated(generation)
            return await self._unsettled(generation, 0.0)
        busy = await runtime.is_busy(generation.id)
        if busy:
            await on_status(StatusUpdate("busy", generation))
        lock_wait = min(max(wait, SAVE_LOCK_GRACE_SECONDS), max(deadline - started, 0.0))
        async with runtime.following(generation.id, timeout=lock_wait) as ours:
            if not ours:
                await ledger.updated(generation)
                return await self._unsettled(generation, anyio.current_time() - started)
            if busy:
                # Whoever held the task may have moved it on (and saved it): look again, at its pace.
                generation = await runtime.latest(generation.id, deadline=deadline)
            # A webhook delivery for this task ends the wait early with the task's new state.
            with runtime.interruptible(generation.id) as follower:
                generation = await self._wait_for(
                    generation, min(started + wait, deadline), on_status, ledger, deadline
                )
            if follower.pushed is not None:
                generation = follower.pushed
                await on_status(StatusUpdate("webhook", generation))
            await ledger.updated(generation)
            if generation.status == SUCCEEDED and generation.result_url is not None:
                waited = anyio.current_time() - started
                try:
                    image = await self._save_held(
                        generation, ledger, prompt=prompt, on_status=on_status, deadline=deadline
                    )
                except OutputFolderUnusable as exc:
                    return Followed(generation, waited, unsaved=exc)
                except DeadlineExceededError:
                    # Out of this call's time mid-download: it goes on without the caller.
                    self._save_later(generation, prompt)
                    return Followed(generation, waited, downloading=True)
                return Followed(generation, waited, image=image)
        return await self._unsettled(generation, anyio.current_time() - started)

    def _save_later(self, generation: Generation, prompt: str) -> None:
        async def save() -> None:
            try:
                await self.save(generation, prompt=prompt)
            except (RivyaError, OutputFolderUnusable, OSError) as exc:
                # Not lost: the task stays unsaved in the journal; get_task or the recovery saves it.
                log.warning("task %s: its image could not be saved in the background: %s", generation.id, exc)

        log.info("task %s: the download outlived the call; it goes on in the background", generation.id)
        self.runtime.start_background(save, name=f"download {generation.id}")

    async def _unsettled(self, generation: Generation, waited: float) -> Followed:
        next_look = 0.0 if is_settled(generation) else await self.runtime.poll_due_in(generation.id)
        return Followed(generation, waited, next_look=next_look)

    async def _wait_for(
        self, generation: Generation, until: float, on_status: OnStatus, ledger: Ledger, deadline: float
    ) -> Generation:
        """Poll the task at its pace (``_pace``) until it settles or no turn is left before ``until``.

        Between turns a tick goes out every ``PROGRESS_TICK_SECONDS`` without any request, so the
        caller sees life while the documented 5-10 s pace is kept. A turn that would come after
        ``until``, or too close to the call's ``deadline`` for its request to be answered, is not
        waited for: the follow ends at once with when the next look is.
        """
        runtime = self.runtime
        task_id = generation.id
        started = anyio.current_time()
        urlless = 0
        while not is_settled(generation):
            due = await runtime.poll_due_in(task_id)
            turn = anyio.current_time() + due
            if turn > until or turn > deadline - LAST_LOOK_SECONDS:
                break
            if due > 0:
                await anyio.sleep(min(due, PROGRESS_TICK_SECONDS))
                # Another call or process may have taken the turn meanwhile: its news is in the journal.
                generation = _newer(generation, await ledger.get(task_id))
                due = 0.0 if is_settled(generation) else await runtime.poll_due_in(task_id)
                elapsed = anyio.current_time() - started
                await on_status(StatusUpdate("waiting", generation, elapsed=elapsed, next_look=due))
                continue
            try:
                polled = await runtime.try_poll(task_id, deadline=deadline)
            except DeadlineExceededError:
                # Asked to come back later than this call can wait (Retry-After): the pace now
                # holds the next turn there, so the loop ends with the task pending.
                continue
            if polled is None:  # another process polled first; its answer is in the journal
                generation = _newer(generation, await ledger.get(task_id))
                continue
            generation = polled
            await ledger.updated(generation)  # other calls and processes see the news without a request
            if generation.status == SUCCEEDED and generation.result_url is None:
                urlless += 1
                log.warning("task %s succeeded without a result URL (look %d)", task_id, urlless)
                if urlless >= URLLESS_LOOKS:
                    break
            elapsed = anyio.current_time() - started
            next_look = 0.0 if is_settled(generation) else await runtime.poll_due_in(task_id)
            await on_status(StatusUpdate("polled", generation, elapsed=elapsed, next_look=next_look))
        return generation

    # -- save ---------------------------------------------------------------------------------

    async def save(
        self,
        generation: Generation,
        *,
        prompt: str = "",
        on_status: OnStatus = _ignore,
        locked: bool = False,
        deadline: float | None = None,
    ) -> SavedImage:
        """The succeeded task's image on disk, under the task's lock (one download per image).

        ``locked``: the caller holds the lock already (``Runtime.following``). ``deadline``
        (``anyio.current_time``) bounds the download, which ``MAX_DOWNLOAD_SECONDS`` bounds in any
        case. Raises ``OutputFolderUnusable`` (bytes kept for the next save) or the download's
        error (``DeadlineExceededError`` when the deadline came first).
        """
        ledger = await self.runtime.ledger()
        if locked:
            return await self._save_held(generation, ledger, prompt=prompt, on_status=on_status, deadline=deadline)
        async with self.runtime.following(generation.id):
            return await self._save_held(generation, ledger, prompt=prompt, on_status=on_status, deadline=deadline)

    async def _save_held(
        self, generation: Generation, ledger: Ledger, *, prompt: str, on_status: OnStatus, deadline: float | None = None
    ) -> SavedImage:
        """``save`` for a caller already holding the task's lock (``Runtime.following``)."""
        runtime = self.runtime
        entry = await ledger.get(generation.id)
        path = saved_file(entry)
        if path is not None:
            return SavedImage(path, None, True)
        shared = await runtime.shared_image(generation.id)
        if shared is not None:
            # Another replica saved it: its bytes, from the database, not a second download.
            path, data = shared
            await ledger.updated(generation, saved_path=path)
            return SavedImage(path, data, True)
        spool = Spool(self.settings.data_dir)
        # A copy kept after an earlier save failed: no second download (its URL may be gone by now).
        kept = await anyio.to_thread.run_sync(spool.load, generation.id)
        mime = await _whole_or_none(generation.id, kept)
        from_spool = kept is not None and mime is not None
        if kept is not None and mime is not None:
            data = kept
            await on_status(StatusUpdate("kept", generation))
        else:
            url = generation.result_url
            if not url:
                raise DownloadError(f"task {generation.id} succeeded but the API gave no result URL")
            await on_status(StatusUpdate("downloading", generation))
            # Result URLs are input (the upstream's answer, a webhook): the SSRF rules on every hop.
            route = result_route(self.settings.base_url, allow_private_urls=self.settings.allow_private_urls)
            limit = anyio.current_time() + MAX_DOWNLOAD_SECONDS
            data = await runtime.client().download(
                url,
                max_bytes=MAX_RESULT_BYTES,
                deadline=limit if deadline is None else min(deadline, limit),
                route=route,
            )
            # Saved only once whole: a body cut short is not the image (the next save downloads again).
            mime = await whole_image_type(generation.id, data)
        # What is done to the image before it is saved (a region edit's composite, provenance):
        # one step, the same for every caller (``_finishing``). The spool keeps the download itself.
        finished = await finish(ledger, self.settings, generation, entry, data)
        # The journal's prompt first: a call that only knows the task id (get_task after a restart,
        # an edit by task id) would otherwise name the file "…_image.jpg".
        name = image_filename(
            generation.id, (entry.prompt if entry else None) or prompt, IMAGE_TYPES[finished.mime_type]
        )
        folder = Path(self.settings.output_dir)
        try:
            path = await anyio.to_thread.run_sync(
                partial(save_atomically, folder, name, finished.data, sidecar=finished.sidecar)
            )
        except OSError as exc:
            # Read-only, full, not permitted: say so (not "internal error"), and keep the paid bytes.
            if from_spool:
                kept_at: Path | None = spool.path_for(generation.id)
            else:
                kept_at = await anyio.to_thread.run_sync(spool.keep, generation.id, data)
            log.warning("task %s: could not save its image in %s: %s", generation.id, folder, exc)
            raise OutputFolderUnusable(
                str(folder.expanduser().resolve()),
                exc,
                task_id=generation.id,
                kept_at=str(kept_at) if kept_at else None,
                data=finished.data,
            ) from exc
        # Shared before the journal says "saved", so a replica that reads the journal finds the bytes.
        await runtime.share_image(path, generation.id, finished.mime_type, finished.data)
        await ledger.updated(generation, saved_path=path)
        if kept is not None:  # saved now (or unreadable): the kept copy has done its job
            await anyio.to_thread.run_sync(spool.discard, generation.id)
        log.info("task %s saved to %s", generation.id, path)
        return SavedImage(path, finished.data, False)


async def _whole_or_none(task_id: str, data: bytes | None) -> str | None:
    """The MIME type of kept bytes that are a whole image, else None (they are downloaded again)."""
    if data is None:
        return None
    try:
        return await whole_image_type(task_id, data)
    except DownloadError as exc:
        log.warning("task %s: the copy kept from an earlier download is not usable: %s", task_id, exc)
        return None


def _newer(generation: Generation, entry: JournalEntry | None) -> Generation:
    """The journal's record when it moved past what this caller last saw (another caller polled)."""
    if entry is None or entry.task_id != generation.id:
        return generation
    if entry.status != generation.status or (entry.result_urls and generation.result_url is None):
        return from_journal(entry)
    return generation
