"""A durable record of every task this server creates: the policy, over one of two stores.

The rules below are written once, here; the rows live in a store (``rivya_mcp.journal``):
a local SQLite file (the embedded default) or a PostgreSQL database shared by replicas.

Crash safety comes from the order of writes. The server records an *intent* (idempotency key,
model, prompt, params, reference) **before** it sends the create POST, and attaches the task id
when the answer arrives. After a crash:

- ``unsubmitted()`` lists intents that never got a task id. Re-sending each with the same
  ``Idempotency-Key`` returns the original task if the first POST did reach the API, and creates
  it otherwise: either way nobody pays twice. Store the *wire* params in ``params`` so the body
  can be re-sent exactly (a different body under the same key is a 409 conflict).
- ``unfinished()`` lists tasks that are not terminal yet, or succeeded but were never saved.

An intent that did not become a task ends in one of three states, none of them re-sent by
recovery: ``rejected`` (the API refused it), ``unconfirmed`` (the create failed in a way that
leaves open whether the API processed it, and the agent was told so) and ``abandoned`` (too old
to re-send safely). Each can still get its task later: an agent that repeats the call with the
same idempotency key re-sends the recorded body, and ``attach_task`` accepts the answer.

Every row also records whose task it is: the ``upstream`` (the normalised base URL) and the
``account`` (an HMAC-SHA256 of the API key under a random secret kept in the journal's ``meta``
table; never the key, never a plain hash). A journal opened for an upstream and a key acts only on
its own rows: recovery never re-sends a sandbox create to the real API, nor one account's create
under another key. Rows from before schema version 2 have neither (``NULL``): they belong to no
known account, so they are never re-sent, polled or updated, only listed (see ``list``). The
Tasks extension's handles (``mcp_tasks``, schema version 7) are owned the same way: another
account's server on the same journal does not know them. The owner is ``Owner`` (``_account``);
the scoping is policy, so it is written here once and holds on both stores.

Over HTTP with identity (docs/identity.md) a row also records the ``person`` it belongs to, and a
journal scoped to a person sees only that person's rows, handles and files: one shared key
(``--oauth-issuer``) is many people, each with a history of their own; with ``--rivya-login`` each
person's own key is their account as well. ``NULL`` is the server's one person (stdio, the shared
token), whose scope sees no person's rows. ``scoped`` makes such a view of an open journal. A row
also keeps the ``cost`` its create was recorded with, so a daily budget counts a create from the
moment it is recorded (``record_intent(budget=…)``), before the API has answered.

Prompts, params and result URLs are stored as given (result URLs may be pre-signed), so the SQLite
file is created 0600 on POSIX.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rivya_mcp.journal._account import NO_ACCOUNT, Owner, account_fingerprint, normalise_upstream
from rivya_mcp.journal._identity_schema import IDENTITY_STEP
from rivya_mcp.journal._postgres_schema import SHARED_TABLES
from rivya_mcp.journal._sqlite import BUSY_TIMEOUT_SECONDS as BUSY_TIMEOUT_SECONDS
from rivya_mcp.journal._sqlite import SqliteStore
from rivya_mcp.journal._statuses import (
    INTENT_END_STATUSES,
    REJECTED,
    SPENT_SQL,
    TERMINAL_STATUSES,
    UNFINISHED_SQL,
    UNSUBMITTED,
    UNSUBMITTED_SQL,
    is_terminal,
    needs_finishing,
)
from rivya_mcp.journal._store import JournalError, Migration, Store, StoreIntegrityError, Transaction
from rivya_mcp.settings import Secret

logger = logging.getLogger("rivya_mcp.journal")

# Long references (data URIs) are shortened: the journal is for recovery and listing, and the
# create params (not the raw reference) are what gets re-sent.
MAX_REFERENCE_CHARS = 2048
MAX_LIST_LIMIT = 1000


class IdempotencyKeyReused(ValueError):
    """The idempotency key was already used for a different request."""


class BudgetExceeded(Exception):
    """A create would take its person past the daily budget: refused before it is recorded or sent.

    ``spent`` is what this person's rows count today (UTC), ``cost`` what the refused create would
    have added, ``resets_at`` the next UTC midnight.
    """

    def __init__(self, *, limit: float, spent: float, cost: float, resets_at: datetime) -> None:
        self.limit, self.spent, self.cost, self.resets_at = limit, spent, cost, resets_at
        super().__init__(
            f"this create costs {_credits(cost)} credits and {_credits(self.left)} of the daily budget of "
            f"{_credits(limit)} are left; it resets at {_iso(resets_at)}"
        )

    @property
    def left(self) -> float:
        return max(0.0, self.limit - self.spent)


@dataclass(frozen=True)
class UsageRow:
    """Spend of one person on one UTC day (``rivya-mcp usage``). ``person`` None: the server's own."""

    day: str
    person: str | None
    tasks: int  # creates that became tasks
    credits: float


def day_start(moment: datetime) -> datetime:
    """The UTC midnight that starts ``moment``'s day: budgets are per UTC day."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class JournalEntry:
    """One task (or intent to create one), as recorded. Times are UTC."""

    idempotency_key: str
    task_id: str | None
    model: str
    mode: str
    prompt: str | None
    params: dict[str, Any]
    reference: str | None
    status: str
    reserved_credits: float | None
    final_credits: float | None
    result_urls: tuple[str, ...]
    saved_paths: tuple[str, ...]
    error_code: str | None
    error_message: str | None
    created_at: datetime  # when the intent was recorded
    submitted_at: datetime | None  # when the task id was attached
    updated_at: datetime
    remote_created_at: str | None  # the API's own created_at, as it sent it
    # Whose task: the normalised base URL and the keyed fingerprint of the API key. None for rows
    # recorded before schema version 2 (no known account: never re-sent, only listed).
    upstream: str | None = None
    account: str | None = None
    # The person the row belongs to (an identity's stable id); None: the server's one person.
    person: str | None = None
    # Credits the create was recorded with (what a budget counts until the API answers).
    cost: float | None = None

    @property
    def has_owner(self) -> bool:
        return self.account is not None

    @property
    def is_terminal(self) -> bool:
        return is_terminal(self.status)

    @property
    def needs_finishing(self) -> bool:
        """A created task still to be polled, or saved (``TaskJournal.unfinished`` lists these)."""
        return needs_finishing(
            task_id=self.task_id, status=self.status, saved=bool(self.saved_paths), error_code=self.error_code
        )

    def to_public_dict(self) -> dict[str, Any]:
        """The entry as tool output / resource JSON (plain JSON types only)."""
        return {
            "task_id": self.task_id,
            "status": self.status,
            "model": self.model,
            "mode": self.mode,
            "prompt": self.prompt,
            "params": dict(self.params),
            "reference": self.reference,
            "idempotency_key": self.idempotency_key,
            "reserved_credits": self.reserved_credits,
            "final_credits": self.final_credits,
            "result_urls": list(self.result_urls),
            "saved_paths": list(self.saved_paths),
            "error": {"code": self.error_code, "message": self.error_message}
            if self.error_code or self.error_message
            else None,
            "created_at": _iso(self.created_at),
            "submitted_at": _iso(self.submitted_at) if self.submitted_at else None,
            "updated_at": _iso(self.updated_at),
        }


_Entries = list[JournalEntry]  # `list` is shadowed by TaskJournal.list inside the class
_Owners = list[tuple[str | None, str | None, str | None, int]]
_Usage = list[UsageRow]

FINGERPRINT_SECRET = "account_fingerprint_secret"


# The schema, in the SQL both stores accept. Migration i takes it from version i to i + 1.
# Append; never edit a shipped step. Times are ISO-8601 UTC text with microseconds (they sort as
# text on both engines), lists and params JSON text: one row decoder for both stores.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        common=(
            """
            CREATE TABLE tasks (
                idempotency_key   TEXT PRIMARY KEY,
                task_id           TEXT UNIQUE,
                model             TEXT NOT NULL,
                mode              TEXT NOT NULL,
                prompt            TEXT,
                params            TEXT NOT NULL,
                reference         TEXT,
                status            TEXT NOT NULL,
                reserved_credits  NUMERIC,
                final_credits     NUMERIC,
                result_urls       TEXT NOT NULL DEFAULT '[]',
                saved_paths       TEXT NOT NULL DEFAULT '[]',
                error_code        TEXT,
                error_message     TEXT,
                created_at        TEXT NOT NULL,
                submitted_at      TEXT,
                updated_at        TEXT NOT NULL,
                remote_created_at TEXT
            )
            """,
            "CREATE INDEX tasks_created ON tasks (created_at)",
            "CREATE INDEX tasks_status ON tasks (status)",
        ),
        # PostgreSQL has no rowid: a sequence orders rows recorded in the same microsecond.
        # Its shared-state tables (images, leases) came with its first release, so they are in v1.
        postgres=(
            "ALTER TABLE tasks ADD COLUMN seq BIGSERIAL",
            *SHARED_TABLES,
        ),
    ),
    # v2: whose task each row is (upstream, account), and the secret the account fingerprints use.
    # Existing rows keep NULL in both: nobody can tell now which base URL or key they were sent
    # with, so they are never re-sent or polled under the current one (see the module docstring).
    # The secret is drawn by the database itself inside the migration's transaction, so that two
    # replicas migrating a shared database can't each write their own: 256 random bits from
    # SQLite's randomblob, and from PostgreSQL's gen_random_uuid (built in since 13; two v4 UUIDs
    # give 244 random bits, from the server's strong random source), as 64 hex characters.
    Migration(
        common=(
            "ALTER TABLE tasks ADD COLUMN upstream TEXT",
            "ALTER TABLE tasks ADD COLUMN account TEXT",
            "CREATE INDEX tasks_owner ON tasks (upstream, account)",
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
        sqlite=(f"INSERT INTO meta (name, value) VALUES ('{FINGERPRINT_SECRET}', lower(hex(randomblob(32))))",),
        postgres=(
            f"INSERT INTO meta (name, value) VALUES ('{FINGERPRINT_SECRET}', "
            "replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''))",
        ),
    ),
    # v3: the MCP Tasks extension's handles (server/_tasks_ext.py): additive, one row per protocol
    # task. ``task_id`` is the Rivya task the handle follows (``tasks.task_id``); the rest is
    # protocol state Rivya knows nothing of. ``result`` is the final tool result as JSON, so
    # ``tasks/get`` on a finished task needs no API call and outlives the result URL.
    Migration(
        common=(
            """
            CREATE TABLE mcp_tasks (
                mcp_task_id    TEXT PRIMARY KEY,
                task_id        TEXT NOT NULL,
                tool           TEXT NOT NULL,
                status         TEXT NOT NULL,
                status_message TEXT,
                result         TEXT,
                error          TEXT,
                ttl_ms         INTEGER,
                created_at     TEXT NOT NULL,
                updated_at     TEXT NOT NULL
            )
            """,
            "CREATE INDEX mcp_tasks_task ON mcp_tasks (task_id)",
        ),
    ),
    # v4: uploaded reference files. A file id is recognised by this record of what the API
    # returned, never by its shape (the docs never show a file id, rivya-api.md §3.6).
    Migration(
        common=(
            """
            CREATE TABLE files (
                file_id     TEXT PRIMARY KEY,
                kind        TEXT,
                name        TEXT,
                mime_type   TEXT,
                size        NUMERIC,
                created_at  TEXT NOT NULL
            )
            """,
        ),
    ),
    # v5: the pace of status requests holds per task across calls, processes and replicas
    # (rivya-api §3.4): when the task was last polled, and the earliest moment the next poll is allowed.
    Migration(
        common=(
            "ALTER TABLE tasks ADD COLUMN polled_at TEXT",
            "ALTER TABLE tasks ADD COLUMN next_poll_at TEXT",
        ),
    ),
    # v6: webhook deliveries already applied, by event id: a duplicate or replayed delivery changes
    # nothing, whichever replica it reaches. The webhook endpoint's record (signing secret included,
    # which Rivya shows only once) sits in ``meta``, shared by every process on this journal.
    Migration(common=("CREATE TABLE webhook_events (event_id TEXT PRIMARY KEY, received_at TEXT NOT NULL)",)),
    # v7: a Tasks extension handle is its owner's, like the task it follows: with one journal
    # shared by two keys (one data folder, one database), the other key's server must not answer
    # ``tasks/get`` or ``tasks/cancel`` for it, nor mark it failed. Existing handles take the owner
    # of their task (the same journal recorded both); one whose task is not there keeps NULL and
    # belongs to nobody known.
    Migration(
        common=(
            "ALTER TABLE mcp_tasks ADD COLUMN upstream TEXT",
            "ALTER TABLE mcp_tasks ADD COLUMN account TEXT",
            "UPDATE mcp_tasks SET "
            "upstream = (SELECT t.upstream FROM tasks t WHERE t.task_id = mcp_tasks.task_id), "
            "account = (SELECT t.account FROM tasks t WHERE t.task_id = mcp_tasks.task_id)",
            "CREATE INDEX mcp_tasks_owner ON mcp_tasks (upstream, account)",
        ),
    ),
    # v8: one history per person (identity over HTTP): the person a task, handle and uploaded file
    # belong to (NULL: the server's one person, as every earlier row), and the credits a create was
    # recorded with, which a daily budget counts until the API's answer names the reserved credits.
    Migration(
        common=(
            "ALTER TABLE tasks ADD COLUMN person TEXT",
            "ALTER TABLE tasks ADD COLUMN cost NUMERIC",
            "CREATE INDEX tasks_person_day ON tasks (person, created_at)",
            "ALTER TABLE mcp_tasks ADD COLUMN person TEXT",
            "ALTER TABLE files ADD COLUMN person TEXT",
        ),
    ),
    # v9: rivya-login's sign-ins (``_identity_schema``), in the same database as the tasks.
    IDENTITY_STEP,
    # v10: region edits. The model redraws the whole image; the server keeps its output inside a mask
    # only, so whoever saves the result (the call, get_task, the recovery after a restart, a webhook,
    # another replica) needs the reference's bytes and the mask: both are kept from before the create
    # is sent. ``composition_sources`` holds each (reference, mask) pair once, by its digest, however
    # many candidates (``count``) share it.
    Migration(
        common=(
            """
            CREATE TABLE compositions (
                idempotency_key TEXT PRIMARY KEY,
                source_digest   TEXT NOT NULL,
                feather_px      INTEGER NOT NULL,
                output_format   TEXT NOT NULL,
                created_at      TEXT NOT NULL
            )
            """,
            "CREATE INDEX compositions_source ON compositions (source_digest)",
        ),
        sqlite=(
            "CREATE TABLE composition_sources (digest TEXT PRIMARY KEY, reference BLOB NOT NULL, "
            "mask BLOB NOT NULL, created_at TEXT NOT NULL)",
        ),
        postgres=(
            "CREATE TABLE composition_sources (digest TEXT PRIMARY KEY, reference BYTEA NOT NULL, "
            "mask BYTEA NOT NULL, created_at TEXT NOT NULL)",
        ),
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = (
    "idempotency_key, task_id, model, mode, prompt, params, reference, status, reserved_credits, "
    "final_credits, result_urls, saved_paths, error_code, error_message, created_at, submitted_at, "
    "updated_at, remote_created_at, upstream, account, person, cost"
)


# get_task reads one finished task three times per call, and again on every call: a query plus
# decoding each (~16 µs). Entries read are kept until a commit: ``PRAGMA data_version`` (~3 µs)
# changes when any other connection or process commits, and this connection's writes clear them.
READ_CACHE_ENTRIES = 256


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _ReadCache:
    """Entries read, by task id, valid while the store's change token stays ``version``; shared by
    a journal and its scoped views (entries are kept unscoped, and each view filters its own)."""

    def __init__(self) -> None:
        self.entries: dict[str, JournalEntry] = {}
        self.version: object = None


class TaskJournal:
    """The journal's rules over a store. Thread-safe.

    ``TaskJournal(path)`` opens (or creates) a local SQLite file; ``TaskJournal(store=...)`` uses
    the store given (see :func:`open_journal` for a ``postgresql://`` URL). The schema is brought
    up to date on opening, whichever the store.

    Given ``upstream`` (a base URL) and ``api_key``, the journal is *scoped*: it records them with
    every new row and reads, updates, re-sends and lists only rows of that upstream and account
    (``list`` also shows rows of no known account). The key is used only to compute its keyed
    fingerprint and is not kept. Without them (tests, inspection tools) it sees every row.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        now: Callable[[], datetime] = _utc_now,
        store: Store | None = None,
        upstream: str | None = None,
        api_key: Secret | str | None = None,
        person: str | None = None,
        _parent: TaskJournal | None = None,
    ) -> None:
        if _parent is not None:
            store = _parent.store
        elif (path is None) == (store is None):
            raise ValueError("give a path (SQLite) or a store, not both")
        if api_key is not None and upstream is None:
            raise ValueError("an api_key scopes the journal only together with its upstream")
        if person is not None and upstream is None:
            raise ValueError("a person scopes the journal only together with an upstream")
        self.store: Store = store if store is not None else SqliteStore(Path(path))  # type: ignore[arg-type]
        # A scoped view shares its parent's store, lock and read cache, and closes none of them.
        self._owns_store = _parent is None
        self.path: Path | None = (
            _parent.path if _parent is not None else (Path(path).expanduser() if path is not None else None)
        )
        self._now: Callable[[], datetime] = _parent._now if _parent is not None else now
        self._lock: threading.RLock = _parent._lock if _parent is not None else threading.RLock()
        # task id → entry (see READ_CACHE_ENTRIES).
        self._reads: _ReadCache = _parent._reads if _parent is not None else _ReadCache()
        self._secret: bytes | None = _parent._secret if _parent is not None else None
        if _parent is None:
            self.store.migrate(MIGRATIONS)
        # Whose rows this journal reads and writes, or None: every row (see ``Owner``).
        self.owner: Owner | None = None
        # The person of this journal's rows (with an owner): None is the server's one person.
        self.person: str | None = person
        if upstream is not None:
            try:
                account = self.account_of(api_key)
            except BaseException:
                if self._owns_store:
                    self.store.close()
                raise
            self.owner = Owner(normalise_upstream(upstream), account)

    def scoped(self, *, upstream: str, api_key: Secret | str | None, person: str | None) -> TaskJournal:
        """A view of this journal acting only on the rows of ``upstream``, ``api_key``'s account and
        ``person`` (see the module docstring); it shares this journal's store, lock and read cache,
        and closing it closes nothing."""
        return TaskJournal(upstream=upstream, api_key=api_key, person=person, _parent=self)

    def account_of(self, api_key: Secret | str | None) -> str:
        """The keyed fingerprint this journal records for rows sent with ``api_key`` (``NO_ACCOUNT``: none)."""
        key = api_key.reveal() if isinstance(api_key, Secret) else api_key
        return account_fingerprint(self._fingerprint_secret(), key) if key else NO_ACCOUNT

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        if not self._owns_store:
            return
        with self._lock:
            self.store.close()

    def __enter__(self) -> TaskJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------------------

    def first_sight_of_event(self, event_id: str) -> bool:
        """Record a webhook event id; True the first time it is seen (by any process or replica),
        False for every repeat."""
        with self._write() as tx:
            inserted = tx.all(
                "INSERT INTO webhook_events (event_id, received_at) VALUES (?, ?) "
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                (event_id, self._stamp()),
            )
            return bool(inserted)

    def record_intent(
        self,
        *,
        idempotency_key: str,
        model: str,
        mode: str,
        prompt: str | None,
        params: Mapping[str, Any],
        reference: str | None = None,
        cost: float | None = None,
        budget: float | None = None,
    ) -> JournalEntry:
        """Record a create request before it is sent. Re-recording the same request is a no-op.

        Except for an intent that ended without a task (rejected, unconfirmed, abandoned): being
        recorded again means it is about to be re-sent, so it is ``unsubmitted`` again until the
        answer arrives (a crash during that re-send then leaves it for recovery, as a first send would).

        ``cost`` is what the create will be charged (credits); with ``budget`` (credits per UTC day)
        a new or revived intent is refused with ``BudgetExceeded`` when this scope's spend today
        plus ``cost`` would pass it. The check and the insert are one write transaction, which every
        process and replica takes in turn: of two creates racing for the last credits, one passes.

        Raises ``IdempotencyKeyReused`` when the key is already recorded for a different request.
        """
        if not idempotency_key:
            raise ValueError("idempotency_key must not be empty")
        params_json = json.dumps(dict(params), sort_keys=True, ensure_ascii=False, allow_nan=False)
        reference = _shorten_reference(reference)
        now = self._stamp()
        with self._write() as tx:
            existing = self._one(tx, "idempotency_key = ?", (idempotency_key,))
            if existing is not None and not self._owns(existing):
                # The key is the table's primary key, so it can name one request only, whoever sent it.
                raise IdempotencyKeyReused(
                    f"idempotency key {idempotency_key!r} was already used under another API key or base URL; "
                    "use a new key to create a new task"
                )
            if existing is not None:
                same = (existing.model, existing.mode, existing.prompt, existing.reference) == (
                    model,
                    mode,
                    prompt,
                    reference,
                ) and _canonical(existing.params) == params_json
                if not same:
                    raise IdempotencyKeyReused(
                        f"idempotency key {idempotency_key!r} was already used for a different request; "
                        "use a new key to create a new task"
                    )
                if existing.task_id is None and existing.status in INTENT_END_STATUSES:
                    self._check_budget(tx, cost, budget, besides=idempotency_key)
                    tx.execute(
                        "UPDATE tasks SET status = ?, error_code = NULL, error_message = NULL, updated_at = ? "
                        "WHERE idempotency_key = ?",
                        (UNSUBMITTED, now, idempotency_key),
                    )
                    return self._must(tx, "idempotency_key = ?", (idempotency_key,))
                return existing
            self._check_budget(tx, cost, budget)
            upstream, account = self.owner or (None, None)
            tx.execute(
                "INSERT INTO tasks (idempotency_key, model, mode, prompt, params, reference, status, created_at, "
                "updated_at, upstream, account, person, cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    idempotency_key,
                    model,
                    mode,
                    prompt,
                    params_json,
                    reference,
                    UNSUBMITTED,
                    now,
                    now,
                    upstream,
                    account,
                    self.person if self.owner is not None else None,
                    cost,
                ),
            )
            return self._must(tx, "idempotency_key = ?", (idempotency_key,))

    def _check_budget(self, tx: Transaction, cost: float | None, budget: float | None, *, besides: str = "") -> None:
        if budget is None or not cost:
            return
        start = day_start(self._now())
        spent = self._spent(tx, start, besides=besides)
        if spent + cost > budget:
            raise BudgetExceeded(limit=budget, spent=spent, cost=cost, resets_at=start + timedelta(days=1))

    def _spent(self, tx: Transaction, since: datetime, *, besides: str) -> float:
        where, args = self._mine("created_at >= ? AND idempotency_key <> ?", (_iso(since), besides))
        row = tx.one(f"SELECT COALESCE(SUM({SPENT_SQL}), 0) FROM tasks WHERE {where}", args)
        return float(row[0]) if row else 0.0

    def attach_task(
        self,
        idempotency_key: str,
        *,
        task_id: str,
        status: str,
        reserved_credits: float | None = None,
        created_at: str | datetime | None = None,
    ) -> JournalEntry:
        """Attach the API's answer to a recorded intent. Attaching the same task again is fine.

        An intent that ended without a task (rejected, unconfirmed, abandoned) takes the task too:
        the agent repeated the call with the same key (say after topping up credits) and the
        re-sent body created it. Its old error is cleared, since it no longer describes the entry.
        """
        remote_created = _iso(created_at) if isinstance(created_at, datetime) else created_at
        now = self._stamp()
        with self._write() as tx:
            entry = self._must(tx, *self._mine("idempotency_key = ?", (idempotency_key,)))
            if entry.task_id is not None and entry.task_id != task_id:
                raise ValueError(
                    f"idempotency key {idempotency_key!r} already belongs to task {entry.task_id}, not {task_id}"
                )
            revived = entry.task_id is None and entry.status in INTENT_END_STATUSES
            try:
                tx.execute(
                    "UPDATE tasks SET task_id = ?, status = ?, reserved_credits = COALESCE(?, reserved_credits), "
                    "remote_created_at = COALESCE(?, remote_created_at), "
                    "error_code = CASE WHEN ? THEN NULL ELSE error_code END, "
                    "error_message = CASE WHEN ? THEN NULL ELSE error_message END, "
                    "submitted_at = COALESCE(submitted_at, ?), updated_at = ? WHERE idempotency_key = ?",
                    (
                        task_id,
                        status if revived else _next_status(entry.status, status),
                        reserved_credits,
                        remote_created,
                        revived,
                        revived,
                        now,
                        now,
                        idempotency_key,
                    ),
                )
            except StoreIntegrityError:
                raise ValueError(f"task {task_id} is already recorded under another idempotency key") from None
            return self._must(tx, "idempotency_key = ?", (idempotency_key,))

    def reject_intent(self, idempotency_key: str, *, error_code: str | None, error_message: str | None) -> JournalEntry:
        """Mark an intent the API refused outright, so that it is never re-sent."""
        return self.end_intent(idempotency_key, status=REJECTED, error_code=error_code, error_message=error_message)

    def end_intent(
        self, idempotency_key: str, *, status: str, error_code: str | None, error_message: str | None
    ) -> JournalEntry:
        """Mark an intent that did not become a task as ``rejected``, ``unconfirmed`` or ``abandoned``.

        Recovery re-sends only ``unsubmitted`` intents, so ending one keeps it from being re-sent.
        """
        if status not in INTENT_END_STATUSES:
            raise ValueError(f"an intent can end as one of {sorted(INTENT_END_STATUSES)}, not {status!r}")
        now = self._stamp()
        with self._write() as tx:
            entry = self._must(tx, *self._mine("idempotency_key = ?", (idempotency_key,)))
            if entry.task_id is not None:
                raise ValueError(f"intent {idempotency_key!r} already has task {entry.task_id}; use update()")
            tx.execute(
                "UPDATE tasks SET status = ?, error_code = ?, error_message = ?, updated_at = ? "
                "WHERE idempotency_key = ?",
                (status, error_code, error_message, now, idempotency_key),
            )
            return self._must(tx, "idempotency_key = ?", (idempotency_key,))

    def update(
        self,
        task_id: str,
        *,
        status: str | None = None,
        final_credits: float | None = None,
        result_urls: list[str] | tuple[str, ...] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        saved_path: str | Path | None = None,
    ) -> JournalEntry:
        """Change what is given (``None`` leaves a field alone).

        ``result_urls`` replaces the list; ``saved_path`` is appended to ``saved_paths`` once. A
        terminal status is never replaced by a non-terminal one (a late, stale poll answer).
        An update that would change nothing writes nothing (``updated_at`` stays): re-reading a
        finished task on every ``get_task`` would otherwise cost a synchronous commit each time.

        Raises KeyError when no entry has ``task_id``.
        """
        with self._lock:
            current = self._cached(task_id)
        if current is None or not self._owns(current):
            raise KeyError(f"no journal entry with task_id {task_id!r}")
        if (
            (status is None or _next_status(current.status, status) == current.status)
            and (final_credits is None or final_credits == current.final_credits)
            and (result_urls is None or tuple(result_urls) == current.result_urls)
            and (error_code is None or error_code == current.error_code)
            and (error_message is None or error_message == current.error_message)
            and (saved_path is None or str(saved_path) in current.saved_paths)
        ):
            return current
        now = self._stamp()
        with self._write() as tx:
            entry = self._must(tx, *self._mine("task_id = ?", (task_id,)))
            saved = list(entry.saved_paths)
            if saved_path is not None and str(saved_path) not in saved:
                saved.append(str(saved_path))
            tx.execute(
                "UPDATE tasks SET status = ?, final_credits = COALESCE(?, final_credits), result_urls = ?, "
                "error_code = COALESCE(?, error_code), error_message = COALESCE(?, error_message), "
                "saved_paths = ?, updated_at = ? WHERE task_id = ?",
                (
                    _next_status(entry.status, status) if status is not None else entry.status,
                    final_credits,
                    json.dumps(list(result_urls if result_urls is not None else entry.result_urls)),
                    error_code,
                    error_message,
                    json.dumps(saved),
                    now,
                    task_id,
                ),
            )
            return self._must(tx, "task_id = ?", (task_id,))

    # -- poll pace (schema v5) ----------------------------------------------------------------

    def poll_times(self, task_id: str) -> tuple[datetime | None, datetime | None] | None:
        """(last status request, earliest next one) recorded for ``task_id``; None: no such task."""
        with self._lock, self.store.read() as tx:
            row = tx.one("SELECT polled_at, next_poll_at FROM tasks WHERE task_id = ?", (task_id,))
        if row is None:
            return None
        return tuple(datetime.fromisoformat(v) if v else None for v in row)  # type: ignore[return-value]

    def claim_poll(self, task_id: str, *, interval: float, defer_only: bool = False) -> datetime | None:
        """Take the task's next status request for the caller, if the pace allows it now.

        Returns None when taken: the last poll is now and the next is allowed ``interval`` seconds
        later, for every process and replica sharing this journal. Otherwise returns the time it is
        allowed. The take is one conditional ``UPDATE ... RETURNING`` (inside the store's write
        transaction, serialised across processes by SQLite's lock and across replicas by
        PostgreSQL's): of two callers due at once, exactly one polls.
        ``defer_only`` pushes the next allowed poll to at least ``interval`` seconds from now (a
        ``Retry-After``) without taking one, and returns None. Raises KeyError for an unknown task.
        """
        now = self._now()
        stamp, due = _iso(now), _iso(now + timedelta(seconds=max(interval, 0.0)))
        with self._write() as tx:
            if defer_only:
                tx.execute(
                    "UPDATE tasks SET next_poll_at = ? "
                    "WHERE task_id = ? AND (next_poll_at IS NULL OR next_poll_at < ?)",
                    (due, task_id, due),
                )
            elif tx.all(
                "UPDATE tasks SET polled_at = ?, next_poll_at = ? "
                "WHERE task_id = ? AND (next_poll_at IS NULL OR next_poll_at <= ?) RETURNING task_id",
                (stamp, due, task_id, stamp),
            ):
                return None
            row = tx.one("SELECT next_poll_at FROM tasks WHERE task_id = ?", (task_id,))
        if row is None:
            raise KeyError(f"no journal entry with task_id {task_id!r}")
        return None if defer_only else datetime.fromisoformat(row[0])

    # -- reads -----------------------------------------------------------------------------

    def get(self, task_id: str) -> JournalEntry | None:
        """The entry of ``task_id``; a snapshot, shared with later reads until something changes."""
        with self._lock:
            entry = self._cached(task_id)
        return entry if entry is not None and self._owns(entry) else None

    def find_by_idempotency_key(self, key: str) -> JournalEntry | None:
        with self.store.read() as tx:
            return self._one(tx, *self._mine("idempotency_key = ?", (key,)))

    def list(
        self, *, status: str | None = None, limit: int = 20, offset: int = 0, query: str | None = None
    ) -> _Entries:
        """Most recent first, optionally only one status, or only prompts containing ``query``
        (case-insensitive, as plain text); ``offset`` skips that many (pages of a gallery).

        A scoped journal lists its own rows and, for the server's one person, those of no known
        account (recorded before schema version 2): the user should still see them, though nothing
        acts on them any more. A person sees their own rows only.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if offset < 0:
            raise ValueError("offset must not be negative")
        clauses: list[str] = []
        args: tuple[Any, ...] = ()
        if status is not None:
            clauses.append("status = ?")
            args = (*args, status)
        if query:
            # LOWER on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
            clauses.append("LOWER(prompt) LIKE ? ESCAPE '\\'")
            args = (*args, f"%{_like_escaped(query.lower())}%")
        where = " AND ".join(clauses) or "TRUE"
        if self.owner is not None:
            mine, mine_args = self._mine("TRUE", ())
            unowned = " OR account IS NULL" if self.person is None else ""
            where, args = f"({where}) AND (({mine}){unowned})", (*args, *mine_args)
        order = self.store.insertion_order
        return self._many(
            f"{where} ORDER BY created_at DESC, {order} DESC LIMIT ? OFFSET ?",
            (*args, min(limit, MAX_LIST_LIMIT), offset),
        )

    def unsubmitted(self) -> _Entries:
        """Intents whose create POST was never answered, oldest first: re-send with the same key."""
        where, args = self._mine(UNSUBMITTED_SQL, ())
        return self._many(f"{where} ORDER BY created_at, {self.store.insertion_order}", args)

    def unfinished(self) -> _Entries:
        """Tasks not terminal yet, or succeeded but not saved (and not given up on), oldest first.

        To give up saving a succeeded task (e.g. its URL expired), ``update`` it with an ``error_code``.
        """
        where, args = self._mine(UNFINISHED_SQL, ())
        return self._many(f"{where} ORDER BY created_at, {self.store.insertion_order}", args)

    def pending_elsewhere(self) -> int:
        """Unanswered creates and unfinished tasks this scoped journal leaves alone: recorded under
        another upstream or account, or under none known. 0 for an unscoped journal."""
        if self.owner is None:
            return 0
        # NULL-safe "not mine" in the SQL both engines accept (SQLite's ``IS ?`` is not PostgreSQL's).
        with self._lock, self.store.read() as tx:
            row = tx.one(
                f"SELECT COUNT(*) FROM tasks WHERE (({UNSUBMITTED_SQL}) OR ({UNFINISHED_SQL})) "
                "AND NOT COALESCE(upstream = ? AND account = ? AND COALESCE(person, '') = ?, FALSE)",
                (*self.owner, self.person or ""),
            )
        return int(row[0]) if row else 0

    # -- whose rows (every owner: for the recovery, webhooks and the operator) ---------------

    def pending_owners(self) -> _Owners:
        """(upstream, account, person, rows) of every owner with unanswered creates or unfinished
        tasks, whatever this journal's scope: the recovery resumes each with its own key."""
        with self._lock, self.store.read() as tx:
            rows = tx.all(
                f"SELECT upstream, account, person, COUNT(*) FROM tasks WHERE ({UNSUBMITTED_SQL}) "
                f"OR ({UNFINISHED_SQL}) GROUP BY upstream, account, person"
            )
        return [(row[0], row[1], row[2], int(row[3])) for row in rows]

    def row_of(self, task_id: str) -> JournalEntry | None:
        """``task_id``'s row whoever owns it: for the server's own bookkeeping (whose key finishes
        it, which waiter to wake), never to show a caller (``get`` is theirs)."""
        with self._lock:
            return self._cached(task_id)

    def spent_today(self) -> tuple[float, datetime]:
        """Credits this scope's rows count today (``credits_spent``), and when the day ends (UTC)."""
        start = day_start(self._now())
        with self._lock, self.store.read() as tx:
            return self._spent(tx, start, besides=""), start + timedelta(days=1)

    def check_budget(self, cost: float, budget: float) -> None:
        """Raise ``BudgetExceeded`` if a create of ``cost`` would pass ``budget`` now (a read: the
        early answer before uploads; ``record_intent`` decides for good)."""
        with self._lock, self.store.read() as tx:
            self._check_budget(tx, cost, budget)

    def usage(self, *, since: datetime) -> _Usage:
        """Spend per UTC day and person since ``since``, newest day first (this scope's upstream, or all)."""
        where, args = "created_at >= ?", (_iso(since),)
        args_: tuple[Any, ...] = args
        if self.owner is not None:
            where, args_ = f"{where} AND upstream = ?", (*args, self.owner[0])
        day = "substr(created_at, 1, 10)"
        with self._lock, self.store.read() as tx:
            rows = tx.all(
                f"SELECT {day}, person, SUM(CASE WHEN task_id IS NULL THEN 0 ELSE 1 END), "
                f"COALESCE(SUM({SPENT_SQL}), 0) FROM tasks WHERE {where} GROUP BY {day}, person",
                args_,
            )
        usage = [UsageRow(str(r[0]), r[1], int(r[2] or 0), float(r[3] or 0)) for r in rows]
        # Newest day first; within a day the server's own person, then people by id.
        return sorted(sorted(usage, key=lambda u: u.person or ""), key=lambda u: u.day, reverse=True)

    def may_serve_image(self, name: str) -> bool:
        """Whether this scope may read the saved image called ``name`` (a bare file name).

        A person: only an image one of their own tasks saved. The server's one person: its own,
        and any not recorded as some person's (older images, or saved before the journal knew).
        An unscoped journal (inspection): any.
        """
        if self.owner is None:
            return True
        # saved_paths is a JSON list of paths: the name ends a JSON string. LIKE narrows, Python decides.
        pattern = "%" + name.replace("!", "!!").replace("%", "!%").replace("_", "!_") + '"%'
        like = "saved_paths LIKE ? ESCAPE '!'"
        where, args = self._mine(like, (pattern,))
        if any(_names(entry, name) for entry in self._many(where, args)):
            return True
        if self.person is not None:
            return False
        return not any(_names(entry, name) for entry in self._many(f"{like} AND person IS NOT NULL", (pattern,)))

    # -- region edits (schema v10) --------------------------------------------------------

    def record_composition(
        self, idempotency_key: str, *, reference: bytes, mask: bytes, feather_px: int, output_format: str
    ) -> None:
        """Keep what a region edit's result is composited with, before its create is sent.

        ``mask`` is the mask as an image (a greyscale PNG of the reference's size). Recording the
        same key again changes nothing (a re-sent request); the bytes are stored once per pair.
        """
        digest = hashlib.sha256(len(reference).to_bytes(8, "big") + reference + mask).hexdigest()
        now = self._stamp()
        with self._write() as tx:
            tx.execute(
                "INSERT INTO composition_sources (digest, reference, mask, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (digest) DO NOTHING",
                (digest, reference, mask, now),
            )
            tx.execute(
                "INSERT INTO compositions (idempotency_key, source_digest, feather_px, output_format, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
                (idempotency_key, digest, feather_px, output_format, now),
            )

    def composition(self, idempotency_key: str) -> Composition | None:
        """The region edit recorded for ``idempotency_key`` (this journal's own rows only), or None."""
        where, args = self._mine("idempotency_key = ?", (idempotency_key,))
        with self._lock, self.store.read() as tx:
            row = tx.one(
                "SELECT s.reference, s.mask, c.feather_px, c.output_format FROM compositions c "
                "JOIN composition_sources s ON s.digest = c.source_digest WHERE c.idempotency_key = ? "
                f"AND c.idempotency_key IN (SELECT idempotency_key FROM tasks WHERE {where})",
                (idempotency_key, *args),
            )
        if row is None:
            return None
        return Composition(bytes(row[0]), bytes(row[1]), int(row[2]), str(row[3]))

    def forget_composition(self, idempotency_key: str) -> None:
        """Drop a region edit whose create was refused (nothing will ever be composited for it)."""
        with self._write() as tx:
            tx.execute("DELETE FROM compositions WHERE idempotency_key = ?", (idempotency_key,))
            tx.execute(
                "DELETE FROM composition_sources WHERE NOT EXISTS "
                "(SELECT 1 FROM compositions c WHERE c.source_digest = composition_sources.digest)"
            )

    # -- MCP task handles (the Tasks extension) --------------------------------------------

    def record_mcp_task(
        self, mcp_task_id: str, *, task_id: str, tool: str, status: str, ttl_ms: int | None, created_at: datetime
    ) -> McpTaskRecord:
        """Record a handle, owned by this journal's owner (like the task it follows)."""
        stamp = _iso(created_at)
        upstream, account = self.owner or (None, None)
        person = self.person if self.owner is not None else None
        with self._write() as tx:
            tx.execute(
                "INSERT INTO mcp_tasks (mcp_task_id, task_id, tool, status, ttl_ms, created_at, updated_at, "
                "upstream, account, person) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (mcp_task_id, task_id, tool, status, ttl_ms, stamp, stamp, upstream, account, person),
            )
        record = self.get_mcp_task(mcp_task_id)
        assert record is not None
        return record

    def get_mcp_task(self, mcp_task_id: str) -> McpTaskRecord | None:
        """The handle, if it is this journal's owner's and person's: anyone else's is unknown here (None)."""
        where, args = self._mine("mcp_task_id = ?", (mcp_task_id,))
        with self._lock, self.store.read() as tx:
            row = tx.one(f"SELECT {_MCP_COLUMNS} FROM mcp_tasks WHERE {where}", args)
        return None if row is None else _mcp_record(row)

    def update_mcp_task(
        self,
        mcp_task_id: str,
        *,
        status: str | None = None,
        status_message: str | None = None,
        result: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None,
        updated_at: datetime,
        only_from: str | None = None,
    ) -> bool:
        """Change what is given; with ``only_from``, only while the task is still in that status.

        The conditional write is what keeps terminal states absorbing across processes and
        replicas: a cancel and a finishing follow-up can race, and whichever commits first wins.
        Returns whether a row changed; another owner's handle is never changed (False).
        """
        # The condition is added in Python rather than as ``? IS NULL OR status = ?``: PostgreSQL
        # can't type a NULL parameter that is only compared with IS NULL.
        where, args = self._mine("mcp_task_id = ?", (mcp_task_id,))
        if only_from is not None:
            where, args = f"{where} AND status = ?", (*args, only_from)
        with self._write() as tx:
            changed = tx.all(
                "UPDATE mcp_tasks SET status = COALESCE(?, status), status_message = COALESCE(?, status_message), "
                f"result = COALESCE(?, result), error = COALESCE(?, error), updated_at = ? WHERE {where} "
                "RETURNING mcp_task_id",
                (
                    status,
                    status_message,
                    None if result is None else json.dumps(dict(result), ensure_ascii=False),
                    None if error is None else json.dumps(dict(error), ensure_ascii=False),
                    _iso(updated_at),
                    *args,
                ),
            )
        return bool(changed)

    # -- uploaded files (schema v4) -------------------------------------------------------

    def record_file(
        self, file_id: str, *, kind: str | None, name: str | None, mime_type: str | None, size: float | None
    ) -> None:
        """Remember a file ``POST /api/v1/files`` returned (recording it again is harmless)."""
        person = self.person if self.owner is not None else None
        with self._write() as tx:
            tx.execute(
                "INSERT INTO files (file_id, kind, name, mime_type, size, created_at, person) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (file_id) DO NOTHING",
                (file_id, kind, name, mime_type, size, self._stamp(), person),
            )

    def owned_meta(self, name: str) -> str | None:
        """A small value this journal keeps for its upstream and account (e.g. the webhook endpoint)."""
        with self._lock, self.store.read() as tx:
            row = tx.one("SELECT value FROM meta WHERE name = ?", (self._owned_name(name),))
        return None if row is None else str(row[0])

    def set_owned_meta(self, name: str, value: str) -> None:
        with self._write() as tx:
            tx.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (self._owned_name(name), value),
            )

    def _owned_name(self, name: str) -> str:
        if self.owner is None:
            raise ValueError("owned values need a journal scoped to an upstream and an account")
        upstream, account = self.owner
        return f"{name}:{upstream}:{account}"

    def has_file(self, file_id: str) -> bool:
        """Whether ``file_id`` is a file this journal saw uploaded (for a person: uploaded by them)."""
        where, args = ("file_id = ?", (file_id,))
        if self.person is not None:
            where, args = self._person_only(where, args)
        with self._lock, self.store.read() as tx:
            return tx.one(f"SELECT 1 FROM files WHERE {where}", args) is not None

    def file_mime_type(self, file_id: str) -> str | None:
        """The type recorded when ``file_id`` was uploaded (the one sniffed from its bytes), if any."""
        with self._lock, self.store.read() as tx:
            row = tx.one("SELECT mime_type FROM files WHERE file_id = ?", (file_id,))
        return None if row is None or row[0] is None else str(row[0])

    # -- internals -------------------------------------------------------------------------

    def _mine(self, where: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        """``where`` narrowed to this journal's owner (unchanged when unscoped).

        The one place rows are narrowed to their owner, for every owned table (``tasks``,
        ``mcp_tasks``): both name the owner's columns ``upstream`` and ``account``.
        """
        if self.owner is None:
            return where, args
        where, args = self._person_only(where, args)
        return f"({where}) AND upstream = ? AND account = ?", (*args, *self.owner)

    def _person_only(self, where: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        """``where`` narrowed to this scope's person (handles and files record no account). NULL is
        the server's one person; spelled ``person = ?`` / ``person IS NULL`` so the (person,
        created_at) index serves the budget's sum."""
        if self.owner is None:
            return where, args
        if self.person is None:
            return f"({where}) AND person IS NULL", args
        return f"({where}) AND person = ?", (*args, self.person)

    def _owns(self, entry: JournalEntry) -> bool:
        return self.owner is None or ((entry.upstream, entry.account) == self.owner and entry.person == self.person)

    def _fingerprint_secret(self) -> bytes:
        if self._secret is not None:
            return self._secret
        with self._lock, self.store.read() as tx:
            row = tx.one("SELECT value FROM meta WHERE name = ?", (FINGERPRINT_SECRET,))
        if row is None:
            raise JournalError(
                f"the task journal at {self.store.location} has no account secret; move it aside and restart"
            )
        self._secret = bytes.fromhex(str(row[0]))  # written once, by the migration: never changes
        return self._secret

    @contextmanager
    def _write(self) -> Iterator[Transaction]:
        with self._lock:
            try:
                with self.store.write() as tx:
                    yield tx
            finally:
                # The store's change token does not move for this journal's own commits.
                self._reads.entries.clear()

    def _cached(self, task_id: str) -> JournalEntry | None:
        """The row of ``task_id`` whoever owns it (callers check ``_owns``), from memory when nobody
        has committed since it was read. Hold the lock."""
        reads = self._reads
        version = self.store.change_token()
        if version != reads.version:
            reads.entries.clear()
            reads.version = version
        entry = reads.entries.get(task_id)
        if entry is None:
            with self.store.read() as tx:
                entry = self._one(tx, "task_id = ?", (task_id,))
            if entry is not None:
                if len(reads.entries) >= READ_CACHE_ENTRIES:
                    reads.entries.clear()
                reads.entries[task_id] = entry
        return entry

    def _stamp(self) -> str:
        return _iso(self._now())

    def _one(self, tx: Transaction, where: str, args: tuple[Any, ...]) -> JournalEntry | None:
        row = tx.one(f"SELECT {_COLUMNS} FROM tasks WHERE {where}", args)
        return None if row is None else _entry(row)

    def _must(self, tx: Transaction, where: str, args: tuple[Any, ...]) -> JournalEntry:
        entry = self._one(tx, where, args)
        if entry is None:
            raise KeyError(f"no journal entry with {where.split()[0]} {args[0]!r}")
        return entry

    def _many(self, clause: str, args: tuple[Any, ...]) -> _Entries:
        with self._lock, self.store.read() as tx:
            rows = tx.all(f"SELECT {_COLUMNS} FROM tasks WHERE {clause}", args)
        return [_entry(row) for row in rows]


def open_journal(
    location: str | Path,
    *,
    now: Callable[[], datetime] = _utc_now,
    upstream: str | None = None,
    api_key: Secret | str | None = None,
) -> TaskJournal:
    """The journal at a SQLite path, or in the PostgreSQL database of a ``postgresql://`` URL.

    ``upstream`` and ``api_key`` scope it to one account (see :class:`TaskJournal`).
    """
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        from rivya_mcp.journal.postgres import PostgresStore

        return TaskJournal(store=PostgresStore(text), now=now, upstream=upstream, api_key=api_key)
    return TaskJournal(Path(location), now=now, upstream=upstream, api_key=api_key)


@dataclass(frozen=True)
class Composition:
    """A region edit as kept for its save: the reference's bytes, the mask (a greyscale PNG of the
    reference's size), the feather and the output format of the composite."""

    reference: bytes = field(repr=False)
    mask: bytes = field(repr=False)
    feather_px: int
    output_format: str


@dataclass(frozen=True)
class McpTaskRecord:
    """One MCP Tasks extension handle (``mcp_tasks``). Times are UTC."""

    mcp_task_id: str
    task_id: str  # the Rivya task it follows
    tool: str
    status: str  # working | completed | failed | cancelled (the protocol's)
    status_message: str | None
    result: dict[str, Any] | None  # the final CallToolResult, as JSON
    error: dict[str, Any] | None  # a JSON-RPC error {code, message} for ``failed``
    ttl_ms: int | None
    created_at: datetime
    updated_at: datetime


_MCP_COLUMNS = "mcp_task_id, task_id, tool, status, status_message, result, error, ttl_ms, created_at, updated_at"


def _mcp_record(row: tuple[Any, ...]) -> McpTaskRecord:
    return McpTaskRecord(
        mcp_task_id=row[0],
        task_id=row[1],
        tool=row[2],
        status=row[3],
        status_message=row[4],
        result=json.loads(row[5]) if row[5] else None,
        error=json.loads(row[6]) if row[6] else None,
        ttl_ms=None if row[7] is None else int(row[7]),
        created_at=datetime.fromisoformat(row[8]),
        updated_at=datetime.fromisoformat(row[9]),
    )


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    (key, task_id, model, mode, prompt, params, reference, status, reserved, final) = row[:10]
    (urls, saved, error_code, error_message, created, submitted, updated, remote_created) = row[10:18]
    (upstream, account, person, cost) = row[18:]
    return JournalEntry(
        idempotency_key=key,
        task_id=task_id,
        model=model,
        mode=mode,
        prompt=prompt,
        params=json.loads(params),
        reference=reference,
        status=status,
        reserved_credits=_number(reserved),
        final_credits=_number(final),
        result_urls=tuple(json.loads(urls)),
        saved_paths=tuple(json.loads(saved)),
        error_code=error_code,
        error_message=error_message,
        created_at=datetime.fromisoformat(created),
        submitted_at=datetime.fromisoformat(submitted) if submitted else None,
        updated_at=datetime.fromisoformat(updated),
        remote_created_at=remote_created,
        upstream=upstream,
        account=account,
        person=person,
        cost=_number(cost),
    )


def _number(value: Any) -> float | None:
    # SQLite gives back the int or float it stored; PostgreSQL's NUMERIC comes back a Decimal.
    if value is None or isinstance(value, int | float):
        return value
    return float(value)


def _next_status(current: str, new: str) -> str:
    if current in TERMINAL_STATUSES and new not in TERMINAL_STATUSES:
        logger.debug("ignoring status %r after terminal %r", new, current)
        return current
    return new


def _names(entry: JournalEntry, name: str) -> bool:
    return any(Path(saved).name == name for saved in entry.saved_paths)


def _credits(value: float) -> str:
    return f"{value:g}"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:  # a naive clock is taken to be UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, ensure_ascii=False, allow_nan=False)


def _like_escaped(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern (with ``ESCAPE '\\'``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _shorten_reference(reference: str | None) -> str | None:
    if reference is None:
        return None
    if reference[:5].lower() == "data:":
        header = reference.split(",", 1)[0][:64]
        return f"{header},… ({len(reference)} characters)"
    if len(reference) > MAX_REFERENCE_CHARS:
        return reference[: MAX_REFERENCE_CHARS - 1] + "…"
    return reference
