"""The API client and task journal a server uses: given, or made on first use and closed last.

The journal is awaited through ``AsyncJournal`` (``rivya_mcp.journal``): opened in a worker thread
on first use, and every read and write after that too, so no journal lock ever stops the loop.

It also owns the two things that span sessions: the per-task locks that keep a tool call and the
background recovery from polling or saving one task at the same time, and the recovery pass that
the first session starts (see ``_recovery``).

Whose work it is comes from ``acting_for(caller)`` (``_caller``): inside it, ``client()`` spends
the caller's key and ``ledger()`` sees the caller's rows alone; the locks, the pace and the
replicas' coordination stay one per server, since a task is one task whoever follows it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.abc

from rivya_mcp.client import (
    FAILED,
    SUCCEEDED,
    AsyncRivyaClient,
    DeadlineExceededError,
    Generation,
    MissingAPIKeyError,
)
from rivya_mcp.journal import AsyncJournal, JournalEntry, JournalError, Store, TaskJournal, normalise_upstream
from rivya_mcp.journal import open_journal as open_journal_at
from rivya_mcp.settings import Secret, Settings
from rivya_mcp.tasks._caller import _ACTING, SERVER, Caller, Keyring, UnknownTask, _Acting, current_caller
from rivya_mcp.tasks._ledger import Ledger, saved_file
from rivya_mcp.tasks._pace import PollPacer, from_journal
from rivya_mcp.tasks.images._disk import DataFolderUnusable
from rivya_mcp.tasks.images._storage import resolve_served_file, save_atomically

if TYPE_CHECKING:
    from rivya_mcp.tasks._replicas import Coordinator

log = logging.getLogger(__name__)

JOURNAL_FILENAME = "journal.sqlite3"

# What a call without a key says: how to set one, or how to try everything without one.
MISSING_KEY_HELP = (
    "No Rivya API key is configured. Set RIVYA_API_KEY in this MCP server's environment "
    "(create a key in your Rivya account settings), or start the server with --sandbox to try "
    "everything offline without a key or credits."
)

# While webhook deliveries verify, polls are this many times further apart than the documented
# pace: the delivery normally finishes a task, and a lost one costs at most one of these longer
# gaps. Until then (being verified at start, or no known convention verifies Rivya's signatures,
# or the endpoint could not be registered) the documented pace applies.
WEBHOOK_FALLBACK_POLL_FACTOR = 3.0

# What webhook completion is doing, as the readiness check and ``doctor`` name it: ``off`` (no
# public URL), ``verifying`` (registering, waiting for the test delivery), ``verified`` (deliveries
# verify with the pinned convention), ``unverified`` (they do not, or none came: polling only).
WebhookState = Literal["off", "verifying", "verified", "unverified"]


@dataclass
class _Follower:
    scope: anyio.CancelScope
    pushed: Generation | None = None


# The recovery pass, given the moment this server started: it handles what was recorded before.
Recovery = Callable[[datetime], Awaitable[None]]
# With a shared database: runs for the server's life, taking over what dead replicas left.
Sweeper = Callable[[], Coroutine[Any, Any, None]]


# The journal's name for the embedded sandbox (``serve --sandbox``, ``demo``), whatever port it
# listens on this time: its tasks stay this server's across restarts (``Settings.upstream_name``).
EMBEDDED_SANDBOX_UPSTREAM = "sandbox://embedded"


def open_journal(settings: Settings) -> TaskJournal:
    """The journal in ``settings.data_dir``, scoped to the settings' upstream and key.

    Scoped: rows recorded under another base URL (the sandbox's) or another key are never
    re-sent, polled or shown as this server's. Raises ``DataFolderUnusable`` saying why and what to do.
    With ``settings.database_url`` it is the PostgreSQL journal every replica shares, scoped the
    same way; it raises ``JournalError`` (password-free) when the database can't be reached.
    """
    upstream = settings.upstream_name or settings.base_url
    if settings.database_url is not None:
        return open_journal_at(settings.database_url.reveal(), upstream=upstream, api_key=settings.api_key)
    folder = Path(settings.data_dir).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return TaskJournal(folder / JOURNAL_FILENAME, upstream=upstream, api_key=settings.api_key)
    except (OSError, JournalError) as exc:
        raise DataFolderUnusable(str(folder), exc) from exc


class Runtime:
    """Owns what it creates; never closes what it was given.

    Nothing is created at construction (building a server has no side effects): the client on
    the first call that needs the API, the journal on the first call that needs it. Sessions
    (stdio, each SSE connection, each in-memory client) enter :meth:`session`; the last one out
    closes what this runtime created.

    The first session also starts the recovery pass in the background; it runs while that
    session lasts and, if cut short, goes on in another open session (SSE and Streamable HTTP
    keep several) or else with the next one to start, until it has finished once. It covers only
    what was recorded before the first session began: this process's own tasks are followed by
    the calls that made them.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: AsyncRivyaClient | None = None,
        journal: TaskJournal | None = None,
        local_paths: bool = True,
    ) -> None:
        self.settings = settings
        self.local_paths = local_paths
        self._client = client
        self._journal = AsyncJournal(journal) if journal is not None else None
        self._owns_client = False
        self._owns_journal = False
        self._opening: anyio.Lock | None = None
        self._sessions = 0
        self._task_locks: dict[str, anyio.Lock] = {}
        # When each task may next be polled, shared with other processes through the journal. Once
        # webhook deliveries verify, polling becomes the slow fallback (``set_webhooks``).
        self.pacer = PollPacer(scale=settings.poll_scale)
        self.webhooks: WebhookState = "verifying" if settings.public_url else "off"
        # The task groups of the sessions open now; work that outlives a call runs in the oldest.
        self._hosts: list[anyio.abc.TaskGroup] = []
        # Waits a webhook delivery may cut short: task id → (the wait's cancel scope, what was pushed).
        self._followers: dict[str, _Follower] = {}
        self._recovery: Recovery | None = None
        self._recovery_state = "idle"  # idle → running → done (back to idle when cut short)
        # Set when the session running the pass ends before it: the other sessions' hosts wake.
        self._recovery_released: anyio.Event | None = None
        # Blocks that must end before the pass polls anything (``recovery_after``), and what wakes it.
        self._recovery_holds = 0
        self._recovery_gate: anyio.Event | None = None
        self._sweeper: Sweeper | None = None
        # Set when the journal is in PostgreSQL (settings.database_url): leases, wake-ups, images.
        self.coordinator: Coordinator | None = None
        self.started_at: datetime | None = None
        # People's own keys for work no request carries (set by the transport with rivya-login).
        self._keyring: Keyring | None = None

    def set_recovery(self, recovery: Recovery | None, *, sweeper: Sweeper | None = None) -> None:
        self._recovery = recovery
        self._sweeper = sweeper

    def set_keyring(self, keyring: Keyring | None) -> None:
        """How to find a person's own key when no request carries it (``_caller.Keyring``)."""
        self._keyring = keyring

    @property
    def acts_for_people(self) -> bool:
        """People with their own keys may have work here (the recovery looks for it without a server key)."""
        return self._keyring is not None

    def set_webhooks(self, state: WebhookState) -> None:
        """Say what webhook completion is doing; the slow fallback pace holds only while ``verified``."""
        if state != self.webhooks:
            log.debug("webhooks: %s → %s", self.webhooks, state)
        self.webhooks = state
        # With rivya-login, people's tasks are theirs at Rivya and their deliveries never come here.
        slower = state == "verified" and not self.settings.rivya_login
        factor = WEBHOOK_FALLBACK_POLL_FACTOR if slower else 1.0
        self.pacer.scale = self.settings.poll_scale * factor

    def start_background(self, work: Callable[[], Awaitable[object]], *, name: str) -> bool:
        """Run ``work`` beside the sessions, in the oldest open one's task group; False when none is open.

        For what must go on after a call returned (following a create Rivya has not settled, a
        download the call's deadline cut short). The oldest session is the longest-lived: the HTTP
        app's own (``transport`` holds one for the app's life), stdio's only one. The work stops
        with that session (the journal keeps what the next start needs); an exception is logged,
        never raised into the session. It acts for the caller current here, in a block of its own
        (the call's block, and the client it made for a person's key, ends with the call).
        """
        if not self._hosts:
            log.warning("%s: no open session to run it in; the next start's recovery pass takes it up", name)
            return False

        caller = current_caller()

        async def guarded() -> None:
            try:
                async with self.acting_for(caller):
                    await work()
            except Exception:
                log.exception("%s: stopped by an unexpected error", name)

        self._hosts[0].start_soon(guarded, name=name)
        return True

    @property
    def can_call_api(self) -> bool:
        """The current caller has a key to spend: their own, a client given, or the operator's
        (no request is made to find out)."""
        if current_caller().api_key is not None:
            return True
        return self._client is not None or self.settings.api_key is not None

    @asynccontextmanager
    async def acting_for(self, caller: Caller) -> AsyncIterator[Caller]:
        """Make ``caller`` current for the block: their key, their rows (see ``_caller``).

        The block's own API client (for a caller with their own key) is closed when it ends: a
        background follow-up started inside it enters a block of its own.
        """
        acting = _Acting(caller)
        token = _ACTING.set(acting)
        try:
            yield caller
        finally:
            _ACTING.reset(token)
            if acting.client is not None:
                with anyio.CancelScope(shield=True):
                    await acting.client.aclose()

    async def recall(self, upstream: str | None, account: str | None, person: str | None) -> Caller | None:
        """The caller who may finish rows of (upstream, account, person) here, with the key they
        were sent with, or None: never with another key (the recovery, the sweep, webhooks).

        The operator's rows and their people's (``--oauth-issuer``) take the operator's key; a
        person's own rows (``--rivya-login``) take that person's key from the keyring, checked
        against the row's account fingerprint.
        """
        root = await self._root_journal()
        if root.owner is None:
            return SERVER  # an unscoped journal (tests, inspection): every row is the server's
        if upstream is None or account is None or upstream != normalise_upstream(self.settings.base_url):
            return None
        if account == root.owner[1] and account:
            return Caller(person=person)
        if person is None or self._keyring is None:
            return None
        own = await self._keyring(person)
        if own is None or await root.run(lambda journal: journal.account_of(own)) != account:
            return None
        return Caller(person=person, api_key=own)

    async def pending_callers(self) -> tuple[list[Caller], int]:
        """Every owner with unanswered creates or unfinished tasks whom this server can act for, and
        how many such rows it must leave alone (another upstream, another key, a key it can't read)."""
        root = await self._root_journal()
        if root.owner is None:
            return [SERVER], 0
        callers: list[Caller] = []
        left = 0
        for upstream, account, person, rows in await root.run(lambda journal: journal.pending_owners()):
            try:
                caller = await self.recall(upstream, account, person)
            except Exception as exc:
                log.warning("recovery: the key of a person with unfinished work can't be read (%s)", type(exc).__name__)
                caller = None
            if caller is None:
                left += rows
            elif caller not in callers:
                callers.append(caller)
        return callers, left

    async def caller_of(self, task_id: str) -> Caller | None:
        """Whom the task ``task_id`` belongs to, as a caller this server can act for (None: not ours)."""
        root = await self._root_journal()
        entry = await root.run(lambda journal: journal.row_of(task_id))
        if entry is None:
            return None
        try:
            return await self.recall(entry.upstream, entry.account, entry.person)
        except Exception as exc:
            log.warning("the key of the person of task %s can't be read (%s)", task_id, type(exc).__name__)
            return None

    @asynccontextmanager
    async def following(self, task_id: str, *, timeout: float = math.inf) -> AsyncIterator[bool]:
        """Hold the task's lock while polling or saving it; yields False if it stayed busy for ``timeout``.

        One holder at a time per task means no doubled polling (and rate-limit use) and no second
        download of an image someone is already saving.
        """
        deadline = anyio.current_time() + timeout
        lock = self._task_locks.get(task_id)
        if lock is None:
            # fast_acquire: a free lock is taken without a trip through the event loop.
            lock = self._task_locks[task_id] = anyio.Lock(fast_acquire=True)
        acquired = False
        try:
            lock.acquire_nowait()  # the usual case, nobody else on this task: no timer needed
            acquired = True
        except anyio.WouldBlock:
            with anyio.move_on_after(timeout):
                await lock.acquire()
                acquired = True
        try:
            if acquired and self.coordinator is not None:
                # The local lock keeps this process's own callers in line without a database trip;
                # the lease does the same across replicas.
                async with self.coordinator.lease(
                    f"task:{task_id}", timeout=max(0.0, deadline - anyio.current_time())
                ) as had:
                    yield had
            else:
                yield acquired
        finally:
            if acquired:
                lock.release()
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._task_locks.pop(task_id, None)

    @asynccontextmanager
    async def creating(self, idempotency_key: str) -> AsyncIterator[None]:
        """Hold the intent's lease while its create is recorded, sent and answered (replicas only).

        So another replica's sweep never re-sends an intent whose answer is still on its way; a
        replica that dies mid-create lets the lease lapse, and the sweep re-sends it under its key.
        """
        if self.coordinator is None:
            yield
            return
        async with self.coordinator.lease(f"intent:{idempotency_key}"):
            yield

    async def _paced(self, task_id: str) -> tuple[Ledger, JournalEntry | None, bool]:
        ledger = await self.ledger()
        entry = await ledger.get(task_id)
        if entry is None and current_caller().confined:
            raise UnknownTask(task_id)  # someone else's, or nobody's: never asked of the API for them
        # A finished task the journal has a result for is read, not polled: no pace to keep.
        settled = entry is not None and (
            entry.status == FAILED or (entry.status == SUCCEEDED and bool(entry.result_urls))
        )
        return ledger, entry, not settled

    async def poll_due_in(self, task_id: str) -> float:
        """Seconds until ``task_id`` may be asked for its status (0: now), per its pace (``_pace``)."""
        ledger, entry, paced = await self._paced(task_id)
        return await self.pacer.due_in(task_id, ledger, entry) if paced else 0.0

    async def try_poll(self, task_id: str, *, deadline: float | None = None) -> Generation | None:
        """``GET`` the task if it is its turn now (a settled one is read from the journal); None when
        another caller took the turn. ``deadline`` (``anyio.current_time``) bounds the request:
        ``DeadlineExceededError`` when the API asks to wait past it (the pace then holds the next
        turn at least that far off)."""
        ledger, entry, paced = await self._paced(task_id)
        if not paced and entry is not None:
            if entry.status == FAILED or saved_file(entry) is not None:
                # Settled and on record (perhaps by another process): the documented advice is to
                # stop polling a finished task, and the journal already has the answer.
                return from_journal(entry)
            # Succeeded but not saved yet: one read (not a poll) for its result URL as it is now,
            # since how long result URLs live is not documented (rivya-api §3.3).
            return await self.client().get_generation(task_id, deadline=deadline)
        return await self.pacer.poll(self.client(), ledger, task_id, entry, deadline=deadline)

    async def poll(self, task_id: str, *, deadline: float | None = None) -> Generation:
        """``GET`` the task at its next turn, waiting for it if need be (``DeadlineExceededError``
        when that turn, or the API's ``Retry-After``, comes after ``deadline``)."""
        while True:
            due = await self.poll_due_in(task_id)
            if due > 0:
                if deadline is not None and anyio.current_time() + due >= deadline:
                    raise DeadlineExceededError(
                        f"the next status request of task {task_id} is due in {due:.1f} s, after this call's deadline"
                    )
                await anyio.sleep(due)
            generation = await self.try_poll(task_id, deadline=deadline)
            if generation is not None:
                return generation

    async def latest(self, task_id: str, *, deadline: float | None = None) -> Generation:
        """The task as known now without breaking its pace: the journal's record before its turn,
        a status request once it is due (or when the journal does not know the task).

        One journal read answers the usual cases (a finished task on record, a turn not yet due):
        every read is a trip to the journal's thread, the larger part of a ``get_task``'s cost."""
        ledger, entry, paced = await self._paced(task_id)
        if entry is not None:
            if not paced and (entry.status == FAILED or saved_file(entry) is not None):
                return from_journal(entry)  # settled and on record: what ``try_poll`` would answer
            if paced and await self.pacer.due_in(task_id, ledger, entry) > 0:
                return from_journal(entry)
        return await self.poll(task_id, deadline=deadline)

    @contextmanager
    def interruptible(self, task_id: str) -> Iterator[_Follower]:
        """Run a wait for ``task_id`` that ``push`` can end early with a newer state of the task."""
        follower = _Follower(anyio.CancelScope())
        self._followers[task_id] = follower
        try:
            with follower.scope:
                yield follower
        finally:
            if self._followers.get(task_id) is follower:
                del self._followers[task_id]

    def push(self, generation: Generation) -> bool:
        """Hand a newer state of a task (from a webhook) to the call waiting on it; False if none is."""
        follower = self._followers.get(generation.id)
        if follower is None:
            return False
        follower.pushed = generation
        follower.scope.cancel()
        return True

    async def is_busy(self, task_id: str) -> bool:
        lock = self._task_locks.get(task_id)
        if lock is not None and lock.locked():
            return True
        return self.coordinator is not None and await self.coordinator.held_elsewhere(f"task:{task_id}")

    async def shared_image(self, task_id: str) -> tuple[Path, bytes] | None:
        """The image another replica saved for ``task_id``, put in this one's output folder (replicas only)."""
        if self.coordinator is None:
            return None
        found = await self.coordinator.image_of_task(task_id)
        if found is None:
            return None
        name, data = found
        output_dir = Path(self.settings.output_dir)
        path = resolve_served_file(output_dir, name)
        if path is None:
            path = await anyio.to_thread.run_sync(save_atomically, output_dir, name, data)
        return path, data

    async def share_image(self, path: Path, task_id: str, mime_type: str, data: bytes) -> None:
        """Put a saved image where every replica can read it (replicas only)."""
        if self.coordinator is not None:
            await self.coordinator.share_image(path.name, task_id, mime_type, data)

    def client(self) -> AsyncRivyaClient:
        """The API client of the current caller: their own key's, or the operator's."""
        acting = _ACTING.get()
        if acting is not None and acting.caller.api_key is not None:
            if acting.client is None:
                acting.client = self._new_client(acting.caller.api_key)
            return acting.client
        if self._client is None:
            if self.settings.api_key is None:
                # Refused before any request: the message says how to fix it.
                raise MissingAPIKeyError(MISSING_KEY_HELP)
            self._client = self._new_client(self.settings.api_key)
            self._owns_client = True
        return self._client

    def _new_client(self, api_key: Secret) -> AsyncRivyaClient:
        return AsyncRivyaClient(
            api_key=api_key,
            base_url=self.settings.base_url,
            timeout=self.settings.request_timeout,
            max_retries=self.settings.max_retries,
            poll_scale=self.settings.poll_scale,
        )

    async def ledger(self) -> Ledger:
        """The journal's wrapper; raises ``DataFolderUnusable`` (or, with a shared database,
        ``JournalError``) when it cannot be opened.

        Never a silent "journal off": without it a crash could lose a paid task or re-send one
        twice, and the results' promises (paid once, recovered after a crash) would be false.
        The CLI checks the folder before serving (``open_journal``), a replica its database when
        its session starts; this covers one that broke since. Opening runs in a worker thread
        (it may wait on a lock or a database), once.

        The journal is the current caller's view (``acting_for``): their rows alone.
        """
        root = await self._root_journal()
        acting = _ACTING.get()
        if acting is None or (acting.caller.person is None and acting.caller.api_key is None):
            return Ledger(root)
        if acting.journal is None or acting.journal_root is not root:
            caller = acting.caller
            key = caller.api_key or self.settings.api_key
            # In a worker thread: the view's account fingerprint may read the journal's secret.
            view = await root.run(
                lambda journal: journal.scoped(upstream=self.settings.base_url, api_key=key, person=caller.person)
            )
            acting.journal, acting.journal_root = root.view(view), root
        return Ledger(acting.journal)

    async def _root_journal(self) -> AsyncJournal:
        """The journal as opened (scoped to the operator's upstream and key), opened on first use."""
        if self._journal is None:
            if self._opening is None:
                self._opening = anyio.Lock()
            async with self._opening:
                if self._journal is None:
                    opened = await anyio.to_thread.run_sync(open_journal, self.settings)
                    self._journal = AsyncJournal(opened)
                    self._owns_journal = True
        if self.coordinator is None and self.settings.database_url is not None:
            from rivya_mcp.tasks._replicas import coordinator_for

            self.coordinator = coordinator_for(self._journal, lease_seconds=self.settings.lease_seconds)
            if self.coordinator is not None:
                self.coordinator.on_task_changed = self._changed_elsewhere
        return self._journal

    def store(self) -> Store | None:
        """The journal's store while it is open, else None (where identity keeps its sign-ins)."""
        return None if self._journal is None else self._journal.sync.store

    async def _changed_elsewhere(self, task_id: str) -> None:
        """Another replica recorded a webhook's news about ``task_id``: a waiter here takes it from the journal."""
        if task_id not in self._followers or self._journal is None:
            return
        # Whoever's task it is: the waiter here is the one following it.
        entry = await self._journal.run(lambda journal: journal.row_of(task_id))
        if entry is not None and entry.is_terminal:
            self.push(from_journal(entry))

    async def announce(self, generation: Generation) -> bool:
        """A webhook's news about a task: wake the call waiting on it here, or on another replica.

        True when a call here takes it over (it then fetches and saves the image itself).
        """
        if self.coordinator is not None:
            await self.coordinator.task_changed(generation.id)
        return self.push(generation)

    async def journal(self) -> AsyncJournal | None:
        """The journal itself (opened on first use), None when it is unavailable."""
        return (await self.ledger()).journal

    @property
    def sessions(self) -> int:
        """Sessions open now (each inside :meth:`session`)."""
        return self._sessions

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Runtime]:
        self._sessions += 1
        if self.started_at is None:
            self.started_at = datetime.now(UTC)
        error: Exception | None = None
        try:
            if self.settings.database_url is not None:
                # A replica without its database must not serve (its tasks would be recorded
                # nowhere another replica can see): fail the start, loudly, instead.
                await self.ledger()
            async with anyio.create_task_group() as background:
                self._hosts.append(background)
                if self.coordinator is not None:
                    # Replicas: one LISTEN connection, and a sweep that takes over (for the server's
                    # life, not only at start) what any replica, this one included, left behind.
                    # They replace the start-up recovery pass.
                    if self._sessions == 1:
                        background.start_soon(self.coordinator.listen)
                        if self._sweeper is not None:
                            background.start_soon(self._sweeper)
                elif self._recovery is not None and self._recovery_state != "done":
                    background.start_soon(self._host_recovery, self._recovery, self.started_at)
                try:
                    yield self
                except Exception as exc:
                    # Raised below, outside the task group, so callers see it unwrapped.
                    error = exc
                finally:
                    self._hosts.remove(background)
                    background.cancel_scope.cancel()
            if error is not None:
                raise error
        finally:
            self._sessions -= 1
            if self._sessions == 0:
                await self.aclose()

    def hold_recovery(self) -> Callable[[], None]:
        """Keep the recovery pass from polling until the returned release is called (once is enough).

        News that costs no request (the webhook events missed while the server was down) is
        applied first; the pass then polls only what is left.
        """
        self._recovery_holds += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._recovery_holds -= 1
            if self._recovery_holds == 0 and self._recovery_gate is not None:
                gate, self._recovery_gate = self._recovery_gate, None
                gate.set()

        return release

    async def _host_recovery(self, recovery: Recovery, started_at: datetime) -> None:
        """In one session's background: run the pass if no session does, else stand by to take it over."""
        while self._recovery_holds:
            if self._recovery_gate is None:
                self._recovery_gate = anyio.Event()
            await self._recovery_gate.wait()
        while self._recovery_state != "done":
            if self._recovery_state == "idle":
                self._recovery_state = "running"
                await self._recover(recovery, started_at)
            else:
                if self._recovery_released is None:
                    self._recovery_released = anyio.Event()
                await self._recovery_released.wait()

    async def _recover(self, recovery: Recovery, started_at: datetime) -> None:
        finished = False
        try:
            await recovery(started_at)
            finished = True
        except Exception:
            # A broken pass is not retried every session; the next server start tries again.
            log.exception("recovery: stopped by an unexpected error")
            finished = True
        finally:
            self._recovery_state = "done" if finished else "idle"
            released, self._recovery_released = self._recovery_released, None
            if released is not None:
                released.set()  # wakes every standing-by host: the first to run takes the pass over

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            client, self._client, self._owns_client = self._client, None, False
            await client.aclose()
        if self._owns_journal and self._journal is not None:
            journal, self._journal, self._owns_journal = self._journal, None, False
            self.coordinator = None
            await anyio.to_thread.run_sync(journal.close)
