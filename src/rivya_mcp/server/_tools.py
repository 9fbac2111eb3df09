"""The tool bodies. Each is thin: validate → the tasks layer (create, follow, save) → shape the result."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from rivya_mcp.client import APIStatusError, Generation
from rivya_mcp.journal import JournalEntry
from rivya_mcp.manifest import PROMPT_KEY, Manifest, Mode, to_wire_params
from rivya_mcp.server import _results as results
from rivya_mcp.server._call_failures import CallState
from rivya_mcp.server._errors import ToolInputError
from rivya_mcp.server._progress import ProgressReporter
from rivya_mcp.server._references import References, reference_item
from rivya_mcp.server._safety import safety_refusal_hint
from rivya_mcp.server._schemas import (
    IDEMPOTENCY_KEY,
    MAX_WAIT_SECONDS,
    REFERENCE,
    WAIT_SECONDS,
    CreditsOutput,
    FileOut,
    JsonObject,
    TaskListOutput,
    TaskSummary,
    UploadOutput,
)
from rivya_mcp.server._validation import check, check_generation
from rivya_mcp.tasks import (
    MIN_CALL_SECONDS,
    Followed,
    Intent,
    Limits,
    LiveCatalog,
    StatusUpdate,
    TaskService,
    saved_file,
)

log = logging.getLogger(__name__)

UNOWNED_NOTE = " (recorded before rivya-mcp noted the API key and base URL of each task: never resumed)"


# The one seam for a caller that follows the task itself (the MCP Tasks extension,
# ``_tasks_ext``): while set, generate_image/edit_image hand the created (or re-found) task to it as
# soon as the create is answered and return without waiting. The body knows nothing of protocol
# tasks; everything before the create (validation, uploads, the journal's intent) is unchanged.
HAND_OVER: ContextVar[Callable[[Generation], None] | None] = ContextVar("rivya_mcp_hand_over", default=None)


class ToolBodies:
    """The six tools, over one task service (client, journal, pace) and one manifest."""

    def __init__(self, service: TaskService, manifest: Manifest, schemas: dict[str, JsonObject]) -> None:
        self.service = service
        self.runtime = service.runtime
        self.settings = service.runtime.settings
        self.manifest = manifest
        self.schemas = schemas
        # The live catalog's second opinion on the manifest's limits (read when first needed).
        self.catalog = LiveCatalog(manifest)
        self.references = References(service, manifest, self.catalog)

    @property
    def structured(self) -> bool:
        return self.settings.structured_output

    def _wait(self, control: dict[str, Any]) -> float:
        requested = control.get(WAIT_SECONDS, self.settings.wait_seconds)
        return max(0.0, min(float(requested), MAX_WAIT_SECONDS))

    @staticmethod
    def _deadline(started: float, wait: float) -> float:
        """When every wait of a call started at ``started`` must end: ``wait`` seconds on, but
        never sooner than ``MIN_CALL_SECONDS`` (the create, the upload, the download need that)."""
        return started + max(wait, MIN_CALL_SECONDS)

    async def result_of(self, followed: Followed, *, reused: bool) -> CallToolResult:
        """What the agent gets for a followed task (blocking calls and Tasks handles alike)."""
        return await results.task_result(
            followed, reused=reused, structured_output=self.structured, wait_seconds=self.settings.wait_seconds
        )

    # --- generate / edit ---------------------------------------------------------------------

    async def generate_image(self, arguments: dict[str, Any], ctx: Context, state: CallState) -> CallToolResult:
        return await self._generate("generate", "generate_image", arguments, ctx, state)

    async def edit_image(self, arguments: dict[str, Any], ctx: Context, state: CallState) -> CallToolResult:
        return await self._generate("edit", "edit_image", arguments, ctx, state)

    async def _generate(
        self, mode: Mode, tool: str, arguments: dict[str, Any], ctx: Context, state: CallState
    ) -> CallToolResult:
        started = anyio.current_time()
        args, control = check_generation(self.manifest, mode, self.schemas[tool], arguments)
        wait = self._wait(control)
        # Every wait of this call (uploads, the create and its retries, status requests, the
        # download) ends by then, whatever Retry-After asks; the task is then returned pending.
        deadline = self._deadline(started, wait)
        client = self.runtime.client()
        prompt = str(args[PROMPT_KEY])
        self._check_prompt(prompt, tool, self.catalog.current)  # the limits known without a request

        async def live_prompt_check() -> None:
            # Before anything leaves for the API: the live catalog (read once per process) may list
            # the model as not callable, and its prompt limit may be stricter.
            self._check_prompt(prompt, tool, await self.catalog.require_callable(client))

        def left_to_wait() -> float:
            return max(0.0, started + wait - anyio.current_time())

        ledger = await self.runtime.ledger()
        reporter = ProgressReporter(ctx)
        given_key: str | None = control.get(IDEMPOTENCY_KEY)
        # Always send a key, recorded before the request leaves: after a crash or a dropped
        # answer, re-sending with the same key returns the original task instead of a new charge.
        key = given_key or f"rivya-mcp-{uuid.uuid4().hex}"
        reference = str(control[REFERENCE]).strip() if mode == "edit" else None
        intent = Intent(
            idempotency_key=key,
            mode=mode,
            model=self.settings.model,
            prompt=prompt,
            params=to_wire_params(self.manifest, mode, args),
            reference=reference,
        )
        earlier = await self.service.earlier(intent) if given_key else None
        if earlier is not None and earlier.task_id:
            # The agent re-sent a call it already made (e.g. after a host timeout): same task, no charge.
            generation = await self.service.latest(earlier.task_id, deadline=deadline)
            state.task_id, state.created = generation.id, True
            return await self._created(
                generation, left_to_wait(), reporter, prompt=prompt, reused=True, deadline=deadline
            )
        if earlier is not None:
            # Recorded but never answered, or refused (e.g. before a top-up): re-send the exact body
            # under the same key, so that a create that did arrive is returned rather than repeated.
            intent = Intent(key, mode, self.settings.model, prompt, dict(earlier.params), reference)
        elif reference is not None:
            item = await self.references.item(reference, client, ledger, ready=live_prompt_check, deadline=deadline)
            params = to_wire_params(self.manifest, mode, args, references=[item])
            intent = Intent(key, mode, self.settings.model, prompt, params, reference)
        await live_prompt_check()

        def sent() -> None:
            state.idempotency_key = key

        try:
            generation = await self.service.create(intent, on_sent=sent, deadline=deadline)
        except APIStatusError as exc:
            hint = safety_refusal_hint(mode, intent.params, exc.code, exc.message)
            if hint is not None:
                raise ToolInputError(
                    f"Error validation_failed from Rivya: {exc.message} {hint}",
                    "Call edit_image again with a lower safetyTolerance (0 or 1), or leave it out.",
                ) from exc
            raise
        state.task_id, state.created = generation.id, True
        return await self._created(generation, left_to_wait(), reporter, prompt=prompt, reused=False, deadline=deadline)

    async def _created(
        self,
        generation: Generation,
        wait: float,
        reporter: ProgressReporter,
        *,
        prompt: str,
        reused: bool,
        deadline: float,
    ) -> CallToolResult:
        await reporter(StatusUpdate("found" if reused else "created", generation))
        if (hand_over := HAND_OVER.get()) is not None:
            hand_over(generation)
            return await self.result_of(Followed(generation, 0.0), reused=reused)
        followed = await self.service.follow(
            generation, wait=wait, on_status=reporter, prompt=prompt, deadline=deadline
        )
        return await self.result_of(followed, reused=reused)

    def _check_prompt(self, prompt: str, tool: str, limits: Limits) -> None:
        limit = limits.max_prompt_length
        if len(prompt) > limit:
            raise ToolInputError(
                f"The prompt is {len(prompt)} characters; {self.settings.model} takes at most {limit}.",
                f"Shorten the prompt to {limit} characters or fewer and call {tool} again.",
            )

    # --- references --------------------------------------------------------------------------

    async def upload_reference(self, arguments: dict[str, Any], _ctx: Context, _state: CallState) -> CallToolResult:
        deadline = self._deadline(anyio.current_time(), self.settings.wait_seconds)
        args = check(self.schemas["upload_reference"], arguments)
        client = self.runtime.client()
        loaded = await self.references.load(str(args["source"]).strip())
        uploaded = await self.references.upload(client, loaded, await self.runtime.ledger(), deadline=deadline)
        item = reference_item(uploaded, loaded.mime_type)
        output = UploadOutput(
            file=FileOut.model_validate(uploaded.model_dump(mode="json")),
            reference_item=item,
            next_step=f'Call edit_image with reference="{uploaded.id}" and a prompt describing the change.',
        )
        text = (
            f"Uploaded {uploaded.name or loaded.filename} ({uploaded.mime_type or loaded.mime_type}, "
            f"{uploaded.size or loaded.size} bytes, {loaded.width}×{loaded.height}) as {uploaded.id}. "
            "Uploading costs no credits.\n"
            + "".join(f"Note: {note}\n" for note in loaded.notes)
            + f"Next step: {output.next_step}"
        )
        return results.ok([results.text(text)], output, structured_output=self.structured)

    # --- readers -----------------------------------------------------------------------------

    async def get_task(self, arguments: dict[str, Any], ctx: Context, state: CallState) -> CallToolResult:
        started = anyio.current_time()
        args = check(self.schemas["get_task"], arguments)
        wait = self._wait(args)
        deadline = self._deadline(started, wait)
        self.runtime.client()  # a missing key is refused before anything else
        ledger = await self.runtime.ledger()
        task_id = str(args["task_id"])
        state.asked_for = task_id
        if await ledger.get(task_id) is not None:
            state.task_id = task_id  # the journal shows this server created it: a failure may say so
        reporter = ProgressReporter(ctx)
        # Before the task's next turn (rivya-api §3.4 pace, shared by every call and process) the
        # journal's record answers, without a request; the wait below then polls at its turns.
        generation = await self.service.latest(task_id, deadline=deadline)
        await reporter(StatusUpdate("looked", generation))
        entry = await ledger.get(task_id)
        prompt = entry.prompt if entry and entry.prompt else ""
        wait = max(0.0, started + wait - anyio.current_time())
        followed = await self.service.follow(
            generation, wait=wait, on_status=reporter, prompt=prompt, deadline=deadline
        )
        return await self.result_of(followed, reused=False)

    async def get_credits(self, arguments: dict[str, Any], _ctx: Context, _state: CallState) -> CallToolResult:
        check(self.schemas["get_credits"], arguments)
        client = self.runtime.client()
        credits = await client.get_credits(deadline=self._deadline(anyio.current_time(), self.settings.wait_seconds))
        cost = (await self.catalog.limits(client)).base_credits
        text = (
            f"Balance: {credits.current_credits} credits. generate_image and edit_image cost {cost} credits "
            f"per image (about {credits.current_credits // cost if cost else 0} more images)."
        )
        output = CreditsOutput(current_credits=credits.current_credits)
        return results.ok([results.text(text)], output, structured_output=self.structured)

    async def task_list(self, *, status: str | None, limit: int) -> TaskListOutput:
        return self._task_list(await (await self.runtime.ledger()).recent(status=status, limit=limit))

    def _task_list(self, entries: list[JournalEntry]) -> TaskListOutput:
        tasks = [
            TaskSummary(
                task_id=e.task_id,
                status=e.status,
                model=e.model,
                prompt=e.prompt,
                mode=e.mode,
                created_at=e.created_at.isoformat(),
                updated_at=e.updated_at.isoformat(),
                reserved_credits=_int(e.reserved_credits),
                final_credits=_int(e.final_credits),
                saved_path=str(path) if (path := saved_file(e)) else (e.saved_paths[-1] if e.saved_paths else None),
                idempotency_key=e.idempotency_key,
                error_code=e.error_code,
            )
            for e in entries
        ]
        return TaskListOutput(tasks=tasks, count=len(tasks))

    async def list_tasks(self, arguments: dict[str, Any], _ctx: Context, _state: CallState) -> CallToolResult:
        args = check(self.schemas["list_tasks"], arguments)
        ledger = await self.runtime.ledger()
        entries = await ledger.recent(status=args.get("status"), limit=int(args.get("limit", 20)))
        listing = self._task_list(entries)
        # Rows from before the journal recorded whose task each is: listed, never acted on.
        unowned = {e.idempotency_key for e in entries if not e.has_owner} if ledger.scoped else set()
        if not listing.tasks:
            text = "No tasks recorded yet" + (f" with status {args['status']}." if args.get("status") else ".")
        else:
            lines = [f"{listing.count} most recent task(s):"]
            for t in listing.tasks:
                where = f" → {t.saved_path}" if t.saved_path else ""
                lines.append(
                    f"- {t.task_id or '(not created)'} {t.status} {t.created_at or ''} {(t.prompt or '')[:60]!r}{where}"
                    + (UNOWNED_NOTE if t.idempotency_key in unowned else "")
                )
            text = "\n".join(lines)
        return results.ok([results.text(text)], listing, structured_output=self.structured)


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)
