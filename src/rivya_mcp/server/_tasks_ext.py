"""The MCP Tasks extension (``io.modelcontextprotocol/tasks``, SEP-2663), backed by the journal.

A ``tools/call`` of ``generate_image`` or ``edit_image`` from a request that declares the
extension is answered with a durable task handle as soon as Rivya answers the create; a follow-up
in the background then does what a blocking call does after that (poll, download, save) through
the tasks layer's ``TaskService.follow``, and shapes the outcome with the same functions as a
blocking call (``ToolBodies.result_of``, and the viewer's ``for_viewer`` when the client renders
MCP Apps), so ``tasks/get`` returns the very result a blocking call returns, ``_meta`` included.
Follow-ups run in an anyio task group of an open session (``hosting``); when it ends they stop,
and the journal keeps their handles for the next ``tasks/get`` to resume.

- The handle (``taskId``) is ours: 128 random bits, a bearer token in the ``mcp_tasks`` table of
  the journal, mapped to the Rivya task. It is written before the reply leaves, so ``tasks/get``
  resolves from the first moment, from any process on the same journal, after any restart; a
  ``tasks/get`` for a task no follow-up is running for (a restart) starts one.
- The tool bodies know nothing of this envelope: the one seam is ``_tools.HAND_OVER``.
- ``tasks/cancel`` stops our follow-up only (Rivya has no cancel endpoint); the job may finish
  and is paid, and ``get_task`` (by the Rivya id, or by this handle) still fetches it.
- A request that does not declare the extension gets the plain tool call, and ``tasks/*`` from it
  is refused with -32021 (checked before anything else, as the conformance suite probes it).
- Over HTTP, ``tasks/*`` must carry ``Mcp-Name: <taskId>`` (-32020 otherwise): mcp 2.3.0 only
  checks it on core methods.
- ``notifications/tasks``: the SDK's stock ``subscriptions/listen`` handler drops ``taskIds`` (it
  echoes only its four core filters), so ``listen_gate`` (middleware, ahead of it) serves a listen
  that names ``taskIds`` itself: -32021 for a request that did not declare the extension; else the
  acknowledgement echoes the ids it accepted (known, unexpired), each task's current state follows,
  then every change this process makes (status message, completion, cancel) as a full
  ``DetailedTask``, and the stream ends gracefully once every watched task is terminal. Changes
  made by another process on a shared journal are not pushed; ``tasks/get`` shows them.
- A handle is its creator's: it is recorded with the person of the call (``tasks.current_caller``),
  ``tasks/get``, ``tasks/update``, ``tasks/cancel``, a listen and ``get_task`` by handle find it only
  for that person (anyone else: unknown or expired), and its follow-up acts for them (their key).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream
from mcp import MCPError
from mcp.server.apps import client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import require_client_extension
from mcp.server.subscriptions import SUBSCRIPTION_ID_META_KEY
from mcp.types import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    CallToolRequestParams,
    RequestParams,
    ServerNotification,
    SubscriptionFilter,
    SubscriptionsAcknowledgedNotification,
    SubscriptionsAcknowledgedNotificationParams,
    SubscriptionsListenResult,
)
from pydantic import BaseModel, ConfigDict, Field

from rivya_mcp.client import Generation, shown
from rivya_mcp.journal import AsyncJournal, McpTaskRecord
from rivya_mcp.server import _results as results
from rivya_mcp.server import _task_states as policy
from rivya_mcp.server._call_failures import CallState, call_failure
from rivya_mcp.server._progress import describe
from rivya_mcp.server._schemas import MAX_WAIT_SECONDS
from rivya_mcp.server._tools import HAND_OVER, ToolBodies
from rivya_mcp.server._viewer import for_viewer
from rivya_mcp.tasks import Caller, StatusUpdate, current_caller

log = logging.getLogger(__name__)
# The follow-up never calls get_task again sooner than this after the last call returned.
FOLLOW_FLOOR_SECONDS = 1.0

EXTENSION_ID = "io.modelcontextprotocol/tasks"
# The tools whose calls may become tasks: the two that create (and charge for) a generation.
TASK_TOOLS = frozenset({"generate_image", "edit_image"})
# Tasks exist on the 2026-07-28 wire only (a legacy connection never sees a task result).
MODERN_VERSIONS = frozenset({"2026-07-28"})
# The follow-up's state is written to the journal at most this often while it polls.
STATUS_WRITE_GAP_SECONDS = 0.5

# A handle's statusMessage, at most (it can quote upstream text: an error message, a task id).
MAX_STATUS_MESSAGE = 1000

# A listen stream's backlog of task updates; a reader that falls this far behind is dropped.
MAX_BUFFERED_UPDATES = 256


class TaskStatusNotification(BaseModel):
    """``notifications/tasks``: its params are a full ``DetailedTask`` (the SDK has no model for it)."""

    method: str = "notifications/tasks"
    params: dict[str, Any]


class TaskIdParams(RequestParams):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    task_id: str = Field(alias="taskId")


class UpdateTaskParams(TaskIdParams):
    input_responses: dict[str, Any] | None = Field(default=None, alias="inputResponses")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether *this request* declared the extension, on the modern wire (declaration is per request)."""
    if ctx.protocol_version not in MODERN_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    extensions = capabilities.extensions if capabilities else None
    return bool(extensions) and EXTENSION_ID in (extensions or {})


class TasksExtension(Extension):
    identifier = EXTENSION_ID

    def __init__(
        self,
        bodies: ToolBodies,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        ttl_ms: int | None = policy.DEFAULT_TTL_MS,
    ) -> None:
        self._bodies = bodies
        self._runtime = bodies.runtime
        self._now = now
        self._ttl_ms = ttl_ms
        # handle → the cancel scope of its running follow-up (this process's).
        self._followers: dict[str, anyio.CancelScope] = {}
        # The task groups of the sessions open now (``hosting``); follow-ups run in the newest.
        self._hosts: list[TaskGroup] = []
        # Open listen streams per handle (this process's): each gets every change as a DetailedTask.
        self._watchers: dict[str, set[MemoryObjectSendStream[dict[str, Any]]]] = {}

    # -- wiring ---------------------------------------------------------------------------

    def methods(self) -> list[MethodBinding]:
        return [
            MethodBinding("tasks/get", TaskIdParams, self.get, protocol_versions=MODERN_VERSIONS),
            MethodBinding("tasks/update", UpdateTaskParams, self.update, protocol_versions=MODERN_VERSIONS),
            MethodBinding("tasks/cancel", TaskIdParams, self.cancel, protocol_versions=MODERN_VERSIONS),
        ]

    async def listen_gate(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Middleware: a ``subscriptions/listen`` naming ``taskIds`` is ours (-32021 if undeclared)."""
        if ctx.method == "subscriptions/listen" and ctx.params:
            notifications = ctx.params.get("notifications")
            if isinstance(notifications, Mapping) and "taskIds" in notifications:
                require_client_extension(ctx, EXTENSION_ID)
                if declared(ctx):
                    return await self._listen(ctx, notifications)
        return await call_next(ctx)

    async def _listen(self, ctx: ServerRequestContext[Any, Any], requested: Mapping[str, Any]) -> HandlerResult:
        """One listen stream for task updates. The core kinds it also names are acknowledged: this
        server's tools, prompts and resources lists never change, so they would never fire anyway."""
        subscription_id = ctx.request_id
        if subscription_id is None:
            raise MCPError(INVALID_REQUEST, "subscriptions/listen requires a request id")
        ids = requested.get("taskIds")
        now = self._now()
        records = [
            record
            for task_id in (ids if isinstance(ids, list) else [])
            if isinstance(task_id, str)
            and (record := await self._record(task_id)) is not None
            and not policy.is_expired(record.created_at, record.ttl_ms, now)
        ]
        honored = {key: value for key, value in requested.items() if key != "taskIds" and value}
        honored["taskIds"] = [r.mcp_task_id for r in records]
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: subscription_id}
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](MAX_BUFFERED_UPDATES)
        open_ids = {r.mcp_task_id for r in records if r.status not in policy.TERMINAL}
        for record in records:
            self._watchers.setdefault(record.mcp_task_id, set()).add(send)
        try:
            await ctx.session.send_notification(
                SubscriptionsAcknowledgedNotification(
                    params=SubscriptionsAcknowledgedNotificationParams(
                        notifications=SubscriptionFilter.model_validate(honored), _meta=meta
                    )
                ),
                related_request_id=subscription_id,
            )
            # The current state first: a change between the create and this listen is not lost.
            for record in records:
                await self._notify_one(ctx, self._detailed(record), meta)
            while open_ids:
                task = await receive.receive()
                await self._notify_one(ctx, task, meta)
                if task["status"] in policy.TERMINAL:
                    open_ids.discard(task["taskId"])
        finally:
            for record in records:
                watchers = self._watchers.get(record.mcp_task_id)
                if watchers is not None:
                    watchers.discard(send)
                    if not watchers:
                        del self._watchers[record.mcp_task_id]
            send.close()
            receive.close()
        return SubscriptionsListenResult(_meta=meta)

    async def _notify_one(
        self, ctx: ServerRequestContext[Any, Any], task: dict[str, Any], meta: dict[str, Any]
    ) -> None:
        notification = TaskStatusNotification(params={**task, "_meta": meta})
        # The session sends any model with method + params; the union type just has no member for
        # an extension's notification.
        await ctx.session.send_notification(
            cast(ServerNotification, notification), related_request_id=meta[SUBSCRIPTION_ID_META_KEY]
        )

    async def _publish(self, handle: str) -> None:
        """Hand the task's new state to every listen stream watching it (this process's)."""
        if not self._watchers.get(handle):
            return
        record = await self._record(handle)
        watchers = self._watchers.get(handle)
        if record is None or not watchers:
            return
        task = self._detailed(record)
        for send in list(watchers):
            try:
                send.send_nowait(task)
            except (anyio.WouldBlock, anyio.ClosedResourceError):
                log.warning("tasks: a listen stream fell behind on %s…; dropping it", handle[:8])
                watchers.discard(send)
                send.close()

    # -- tools/call -----------------------------------------------------------------------

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name == "get_task":
            await self._resolve_handle(params)
            return await call_next(ctx)
        if params.name not in TASK_TOOLS or not declared(ctx):
            return await call_next(ctx)
        journal = await self._journal()
        if journal is None:
            # Without the journal a handle could not outlive this call: answer the plain way.
            return await call_next(ctx)
        created: list[Generation] = []
        token = HAND_OVER.set(created.append)
        try:
            result = await call_next(ctx)
        finally:
            HAND_OVER.reset(token)
        if not created:
            # Refused before any task existed (bad input, no credits, ...): the plain error result.
            return result
        generation = created[-1]
        now = self._now()
        handle = secrets.token_hex(16)
        try:
            await journal.run(
                lambda j: j.record_mcp_task(
                    handle,
                    task_id=generation.id,
                    tool=params.name,
                    status=policy.WORKING,
                    ttl_ms=self._ttl_ms,
                    created_at=now,
                )
            )
            await journal.run(
                lambda j: j.update_mcp_task(
                    handle, status_message=describe(StatusUpdate("created", generation)), updated_at=now
                )
            )
            record = await journal.run(lambda j: j.get_mcp_task(handle))
        except Exception:
            # The task exists and is paid for: without a durable handle, answer the way a blocking
            # call past its wait does (the Rivya task id, to finish with get_task).
            log.exception("tasks: no handle could be recorded for %s; answering without one", generation.id)
            return result
        assert record is not None
        log.info("tasks: handle %s… follows %s", handle[:8], generation.id)
        self._ensure_follower(record, apps=client_supports_apps(ctx))
        return {"resultType": "task", **self._task_fields(record, first=True)}

    async def _resolve_handle(self, params: CallToolRequestParams) -> None:
        """``get_task`` accepts a handle too: it answers for the Rivya task the handle follows."""
        arguments = params.arguments
        if not arguments or not isinstance(arguments.get("task_id"), str):
            return
        try:
            journal = await self._journal()
            record = await journal.run(lambda j: j.get_mcp_task(arguments["task_id"])) if journal else None
        except Exception:
            # A journal fault must not break get_task: it still answers for Rivya task ids.
            log.exception("tasks: could not look up a handle for get_task")
            return
        if record is not None:
            arguments["task_id"] = record.task_id  # the handler is invoked with this very params object

    # -- tasks/* --------------------------------------------------------------------------

    async def get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> dict[str, Any]:
        record = await self._lookup(ctx, params)
        if record.status == policy.WORKING:
            # After a restart, or from another process on the journal: this client's follow-up.
            self._ensure_follower(record, apps=client_supports_apps(ctx))
        return {"resultType": "complete", **self._detailed(record)}

    def _detailed(self, record: McpTaskRecord) -> dict[str, Any]:
        return self._task_fields(record, detailed=True)

    async def update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> dict[str, Any]:
        # No tool of ours asks for input: there is never an outstanding key, and unknown keys are
        # ignored, as the spec says.
        await self._lookup(ctx, params)
        return {"resultType": "complete"}

    async def cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> dict[str, Any]:
        record = await self._lookup(ctx, params)
        journal = await self._journal()
        assert journal is not None  # _lookup found the record in it
        if policy.after_cancel(record.status) != record.status:
            changed = await journal.run(
                lambda j: j.update_mcp_task(
                    record.mcp_task_id,
                    status=policy.CANCELLED,
                    status_message=shown(policy.cancel_message(record.task_id), limit=MAX_STATUS_MESSAGE),
                    updated_at=self._now(),
                    only_from=record.status,
                )
            )
            follower = self._followers.pop(record.mcp_task_id, None)
            if follower is not None:
                follower.cancel()
            if changed:
                await self._publish(record.mcp_task_id)
                log.info("tasks: handle %s… cancelled; %s no longer followed", record.mcp_task_id[:8], record.task_id)
        return {"resultType": "complete"}

    async def _lookup(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> McpTaskRecord:
        require_client_extension(ctx, EXTENSION_ID)  # -32021 before anything about the id
        request = ctx.request
        headers = getattr(request, "headers", None)
        if headers is not None and headers.get("mcp-name") != params.task_id:
            # The spec makes Mcp-Name: <taskId> a MUST on tasks/* over HTTP, so a balancer can pin them.
            raise MCPError(HEADER_MISMATCH, "Mcp-Name header must equal params.taskId on tasks/* requests")
        record = await self._record(params.task_id)
        if record is None or policy.is_expired(record.created_at, record.ttl_ms, self._now()):
            raise MCPError(INVALID_PARAMS, policy.expired_message(params.task_id))
        return record

    def _task_fields(self, record: McpTaskRecord, *, detailed: bool = False, first: bool = False) -> dict[str, Any]:
        elapsed = (self._now() - record.created_at).total_seconds()
        fields: dict[str, Any] = {
            "taskId": record.mcp_task_id,
            "status": record.status,
            "createdAt": _iso(record.created_at),
            "lastUpdatedAt": _iso(record.updated_at),
            "ttlMs": record.ttl_ms,
            # The create result names Rivya's first look; later answers the pace for the task's age.
            "pollIntervalMs": policy.poll_interval_ms(
                elapsed, polls=0 if first else 1, poll_scale=self._runtime.settings.poll_scale
            ),
        }
        if record.status_message:
            fields["statusMessage"] = record.status_message
        if detailed and record.status == policy.COMPLETED and record.result is not None:
            fields["result"] = record.result
        if detailed and record.status == policy.FAILED and record.error is not None:
            fields["error"] = record.error
        return fields

    # -- the follow-up --------------------------------------------------------------------

    async def _journal(self) -> AsyncJournal | None:
        return await self._runtime.journal()

    async def _record(self, handle: str) -> McpTaskRecord | None:
        journal = await self._journal()
        return None if journal is None else await journal.run(lambda j: j.get_mcp_task(handle))

    @asynccontextmanager
    async def hosting(self) -> AsyncIterator[None]:
        """For one session's life: a task group follow-ups run in.

        The server's lifespan enters it (once for the HTTP app, once per stdio or SSE session).
        A follow-up runs in the group of the newest session still open; when that session ends its
        follow-ups stop, and the journal keeps their handles for the next ``tasks/get`` to resume.
        """
        async with anyio.create_task_group() as group:
            self._hosts.append(group)
            try:
                yield
            finally:
                self._hosts.remove(group)
                group.cancel_scope.cancel()

    def _ensure_follower(self, record: McpTaskRecord, *, apps: bool) -> None:
        handle = record.mcp_task_id
        if handle in self._followers:
            return
        if not self._hosts:
            log.warning("tasks: no session to follow %s in; the next tasks/get resumes it", record.task_id)
            return
        scope = anyio.CancelScope()
        self._followers[handle] = scope
        log.debug("tasks: following %s for handle %s…", record.task_id, handle[:8])
        # The follow-up outlives the request: it takes the caller with it (their key, their rows).
        caller = current_caller()
        self._hosts[-1].start_soon(self._follow, record, scope, apps, caller, name=f"rivya-task-{handle[:8]}")

    async def _follow(self, record: McpTaskRecord, scope: anyio.CancelScope, apps: bool, caller: Caller) -> None:
        handle = record.mcp_task_id
        try:
            async with self._runtime.acting_for(caller):
                await self._follow_as_caller(record, scope, apps)
        finally:
            if self._followers.get(handle) is scope:
                del self._followers[handle]
            log.debug("tasks: the follow-up of handle %s… ended", handle[:8])

    async def _follow_as_caller(self, record: McpTaskRecord, scope: anyio.CancelScope, apps: bool) -> None:
        try:
            with scope:
                try:
                    await self._follow_to_the_end(record, apps)
                except Exception as exc:
                    # Never out into the session's task group: the handle says what happened.
                    log.exception("tasks: the follow-up of %s stopped", record.task_id)
                    journal = await self._journal()
                    if journal is not None:
                        await self._fail(journal, record.mcp_task_id, record.task_id, exc)
        except Exception:
            log.exception("tasks: could not record that the follow-up of %s stopped", record.task_id)

    async def _follow_to_the_end(self, record: McpTaskRecord, apps: bool) -> None:
        """What a blocking call does after the create, until the handle is completed (or expires).

        Each round follows the task for up to ``MAX_WAIT_SECONDS`` at its pace. A fault a later
        round may get past (the network, the output folder) is logged and tried again at the
        task's next turn; one that will not pass (the result expired, the task is unknown) ends the
        handle with the same error result a blocking call returns.
        """
        journal = await self._journal()
        if journal is None:
            return
        handle, task_id = record.mcp_task_id, record.task_id
        service, runtime = self._bodies.service, self._runtime
        last_write = -STATUS_WRITE_GAP_SECONDS

        async def on_status(update: StatusUpdate) -> None:
            nonlocal last_write
            now = anyio.current_time()
            if now - last_write >= STATUS_WRITE_GAP_SECONDS:
                last_write = now
                await self._set_message(journal, handle, describe(update))

        while True:
            if policy.is_expired(record.created_at, record.ttl_ms, self._now()):
                log.info("tasks: handle %s… expired; %s left for get_task", handle[:8], task_id)
                return
            # Cancelled (or finished) from elsewhere, say another replica on the journal: a cancel
            # here stops this follow-up at once (its scope); one from there, at the next round.
            current = await self._record(handle)
            if current is None or current.status != policy.WORKING:
                log.info("tasks: handle %s… is no longer working; %s is no longer followed", handle[:8], task_id)
                return
            ledger = await runtime.ledger()
            entry = await ledger.get(task_id)
            try:
                generation = await service.latest(task_id)
                followed = await service.follow(
                    generation, wait=MAX_WAIT_SECONDS, on_status=on_status, prompt=(entry.prompt if entry else "") or ""
                )
                result = await self._bodies.result_of(followed, reused=False)
            except Exception as exc:
                failed, unexpected = call_failure(exc, CallState(task_id=task_id, created=True))
                if unexpected:
                    log.exception("tasks: the follow-up of %s hit an unexpected error", task_id)
                    await self._fail(journal, handle, task_id, exc)
                    return
                if not failed.retryable:
                    await self._complete(
                        journal,
                        handle,
                        results.failure(failed).model_dump(mode="json", by_alias=True, exclude_none=True),
                        message=shown(f"{task_id}: {failed.code}", limit=MAX_STATUS_MESSAGE),
                    )
                    return
                log.info("tasks: following %s: %s; looking again at its next turn", task_id, failed.code)
                await self._set_message(
                    journal, handle, shown(f"{task_id}: {failed.message} (looking again)", limit=MAX_STATUS_MESSAGE)
                )
            else:
                entry = await ledger.get(task_id)
                if entry is None:
                    raise LookupError(f"the journal has no entry for {task_id}")
                if policy.status_for(entry.status, needs_finishing=entry.needs_finishing) == policy.COMPLETED:
                    if apps:
                        result = await for_viewer(result, record.tool, {}, task_id, self._bodies, clock=self._now)
                    await self._complete(
                        journal,
                        handle,
                        result.model_dump(mode="json", by_alias=True, exclude_none=True),
                        message=describe(StatusUpdate("looked", followed.generation)),
                    )
                    return
            # Still running, or a passing fault: look again at the task's next turn (its pace is
            # kept in the journal across calls and processes), never in a tight loop.
            floor = FOLLOW_FLOOR_SECONDS * runtime.settings.poll_scale
            await anyio.sleep(max(await runtime.poll_due_in(task_id), floor))

    async def _set_message(self, journal: AsyncJournal, handle: str, message: str) -> None:
        changed = await journal.run(
            lambda j: j.update_mcp_task(
                handle, status_message=message, updated_at=self._now(), only_from=policy.WORKING
            )
        )
        if changed:
            await self._publish(handle)

    async def _complete(self, journal: AsyncJournal, handle: str, result: dict[str, Any], *, message: str) -> None:
        """Completed with ``result``, unless a cancel got there first (terminal states are absorbing)."""
        changed = await journal.run(
            lambda j: j.update_mcp_task(
                handle,
                status=policy.COMPLETED,
                result=result,
                # The last word is the outcome, not the follow-up's last "looking now".
                status_message=message,
                updated_at=self._now(),
                only_from=policy.WORKING,
            )
        )
        if changed:
            await self._publish(handle)

    async def _fail(self, journal: AsyncJournal, handle: str, task_id: str, exc: BaseException) -> None:
        changed = await journal.run(
            lambda j: j.update_mcp_task(
                handle,
                status=policy.FAILED,
                error={
                    "code": INTERNAL_ERROR,
                    "message": f"The server could not follow task {task_id} ({type(exc).__name__}; see its log).",
                },
                status_message=shown(
                    f'Call the get_task tool with task_id="{task_id}" to fetch the image.', limit=MAX_STATUS_MESSAGE
                ),
                updated_at=self._now(),
                only_from=policy.WORKING,
            )
        )
        if changed:
            await self._publish(handle)
