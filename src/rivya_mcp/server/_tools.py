"""The tool bodies. Each is thin: validate → the tasks layer (create, follow, save) → shape the result."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import anyio
from mcp import MCPError
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ContentBlock
from pydantic import BaseModel, Field

from rivya_mcp.client import APIStatusError, AsyncRivyaClient, Generation, shown, shown_token
from rivya_mcp.journal import JournalEntry
from rivya_mcp.manifest import PROMPT_KEY, Manifest, Mode, to_wire_params
from rivya_mcp.server import _results as results
from rivya_mcp.server._call_failures import CallState
from rivya_mcp.server._errors import SpendingNotConfirmed, ToolInputError
from rivya_mcp.server._progress import ProgressReporter
from rivya_mcp.server._references import References, reference_item
from rivya_mcp.server._safety import safety_refusal_hint
from rivya_mcp.server._schemas import (
    CONFIRM_CREDITS,
    COUNT,
    IDEMPOTENCY_KEY,
    MAX_PREVIEWS_PER_PAGE,
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
from rivya_mcp.server.studio import (
    Candidate,
    RegionEdit,
    any_created,
    candidate_keys,
    first_error,
    gallery_blocks,
    prepare_region_edit,
    run_candidates,
    thumbnail_uri,
    variations_result,
    wants_region,
)
from rivya_mcp.tasks import (
    MIN_CALL_SECONDS,
    Followed,
    Intent,
    Ledger,
    Limits,
    LiveCatalog,
    StatusUpdate,
    TaskService,
    call_cost,
    current_caller,
    is_refusal,
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
        count = int(control.get(COUNT, 1))
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
        # Variations get one key each, derived from this one (``candidate_keys``).
        call_key = given_key or f"rivya-mcp-{uuid.uuid4().hex}"
        reference = str(control[REFERENCE]) if mode == "edit" else None  # a path keeps its white space
        region: RegionEdit | None = None
        if reference is not None and wants_region(control):
            # The reference and the mask are read and checked (and the aspect ratio chosen from the
            # reference when none was given) before anything is uploaded or paid.
            region = await prepare_region_edit(
                self.manifest, self.references, reference, control, args, client, ledger, ready=live_prompt_check
            )
        model = self.settings.model
        params = to_wire_params(self.manifest, mode, args)
        candidates = [
            Candidate(number, Intent(key, mode, model, prompt, params, reference))
            for number, key in enumerate(candidate_keys(call_key, count), start=1)
        ]
        earlier: dict[int, JournalEntry] = {}
        for candidate in candidates:
            found = await self.service.earlier(candidate.intent) if given_key else None
            if found is not None and found.task_id:
                # The agent re-sent a call it already made (e.g. after a host timeout): same task, no charge.
                candidate.earlier_task = found.task_id
            elif found is not None:
                earlier[candidate.number] = found
        # What the creates still to send cost, known before anything is uploaded or sent: the figure
        # the budget and the confirmation threshold check (``tasks.call_cost``).
        to_send = sum(candidate.earlier_task is None for candidate in candidates)
        per_image = await self._spending(tool, control, ctx, client, to_send) if to_send else 0.0
        cost = call_cost(self.catalog.current, count)
        item: dict[str, Any] | None = None
        for candidate in candidates:
            key = candidate.intent.idempotency_key
            if candidate.earlier_task is not None:
                continue
            if candidate.number in earlier:
                # Recorded but never answered, or refused (e.g. before a top-up): re-send the exact body
                # under the same key, so that a create that did arrive is returned rather than repeated.
                recorded = dict(earlier[candidate.number].params)
                candidate.intent = Intent(key, mode, model, prompt, recorded, reference, cost=per_image)
            elif reference is not None:
                if item is None:  # one upload, shared by every candidate
                    item = await self._reference_item(reference, region, client, ledger, live_prompt_check, deadline)
                with_reference = to_wire_params(self.manifest, mode, args, references=[item])
                candidate.intent = Intent(key, mode, model, prompt, with_reference, reference, cost=per_image)
            else:
                candidate.intent = dataclasses.replace(candidate.intent, cost=per_image)
        await live_prompt_check()

        def sent() -> None:
            state.idempotency_key = call_key

        async def send(intent: Intent) -> Generation:
            if region is not None:
                # Kept before the create leaves: whoever saves the result (after a restart too) composites it.
                await region.record(ledger, intent.idempotency_key)
            try:
                return await self.service.create(intent, on_sent=sent, deadline=deadline)
            except APIStatusError as exc:
                if region is not None and is_refusal(exc):
                    await ledger.forget_composition(intent.idempotency_key)
                hint = safety_refusal_hint(mode, intent.params, exc.code, exc.message)
                if hint is not None:
                    raise ToolInputError(
                        f"Error validation_failed from Rivya: {exc.message} {hint}",
                        "Call edit_image again with a lower safetyTolerance (0 or 1), or leave it out.",
                    ) from exc
                raise

        if count == 1:
            [only] = candidates
            if only.earlier_task is not None:
                generation = await self.service.latest(only.earlier_task, deadline=deadline)
                state.task_id, state.created = generation.id, True
                return await self._created(
                    generation, left_to_wait(), reporter, prompt=prompt, reused=True, deadline=deadline
                )
            generation = await send(only.intent)
            state.task_id, state.created = generation.id, True
            return await self._created(
                generation, left_to_wait(), reporter, prompt=prompt, reused=False, deadline=deadline
            )
        # Variations: side by side, each its own task; a blocking call even for a client of the Tasks
        # extension (one protocol handle follows one task), which then gets this result as it is.
        await run_candidates(
            self.service,
            candidates,
            send=send,
            wait=left_to_wait(),
            prompt=prompt,
            reporter=reporter,
            deadline=deadline,
        )
        if not any_created(candidates):
            error = first_error(candidates)
            assert error is not None
            raise error
        first = next(c for c in candidates if c.generation is not None)
        assert first.generation is not None
        state.task_id, state.created = first.generation.id, True
        result, outs = await variations_result(candidates, cost, structured_output=self.structured)
        state.candidates = [out.model_dump(mode="json") for out in outs]
        return result

    async def _reference_item(
        self,
        reference: str,
        region: RegionEdit | None,
        client: AsyncRivyaClient,
        ledger: Ledger,
        ready: Callable[[], Awaitable[None]],
        deadline: float,
    ) -> dict[str, Any]:
        """The reference as a ``referenceMediaItems`` entry; a region edit's loaded bytes are uploaded
        as they were checked and will be composited with."""
        if region is not None and region.loaded is not None:
            await ready()
            uploaded = await self.references.upload(client, region.loaded, ledger, deadline=deadline)
            return reference_item(uploaded, region.loaded.mime_type)
        return await self.references.item(reference, client, ledger, ready=ready, deadline=deadline)

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

    async def _spending(
        self, tool: str, control: dict[str, Any], ctx: Context, client: AsyncRivyaClient, creates: int
    ) -> float:
        """The credits each of this call's ``creates`` costs, after the caller's daily budget and
        (above the server's threshold) the user's confirmation allow the call's total; raises
        ``BudgetExceeded`` or ``SpendingNotConfirmed`` otherwise, before anything is uploaded or sent.
        (The journal checks the budget again, per create, in the write that records it.)"""
        budget, threshold = self.settings.budget_credits_per_day, self.settings.confirm_above_credits
        if budget is None and threshold is None:
            return float(self.catalog.current.base_credits)  # recorded with the intent; no request for it
        cost = call_cost(await self.catalog.limits(client), creates)
        total = float(cost.total)
        if budget is not None:
            await (await self.runtime.ledger()).check_budget(total, budget)
        if threshold is not None and total > threshold:
            await confirm_spending(ctx, tool=tool, cost=total, threshold=threshold, given=control.get(CONFIRM_CREDITS))
        return float(cost.per_image)

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
        loaded = await self.references.load(str(args["source"]))  # a path keeps its white space
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
        entry = await ledger.get(task_id)
        if entry is not None:
            state.task_id = task_id  # the journal shows this server created it: a failure may say so
        reporter = ProgressReporter(ctx)
        # Before the task's next turn (rivya-api §3.4 pace, shared by every call and process) the
        # journal's record answers, without a request; the wait below then polls at its turns.
        generation = await self.service.latest(task_id, deadline=deadline)
        await reporter(StatusUpdate("looked", generation))
        prompt = entry.prompt if entry and entry.prompt else ""  # a task's prompt never changes
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
        today = await (await self.runtime.ledger()).spent_today()
        if today is not None:
            spent, resets = today
            whose = "You" if current_caller().confined else "This server"
            text += f"\n{whose} spent {_amount(spent)} credits today (UTC)."
            output.spent_today = _amount(spent)
            budget = self.settings.budget_credits_per_day
            if budget is not None:
                left = max(0.0, budget - spent)
                reset = resets.strftime("%Y-%m-%d %H:%M UTC")
                text += f" Daily budget: {_amount(budget)} credits, {_amount(left)} left until {reset}."
                output.budget_per_day, output.budget_left = _amount(budget), _amount(left)
                output.budget_resets_at = resets.isoformat().replace("+00:00", "Z")
        return results.ok([results.text(text)], output, structured_output=self.structured)

    async def task_list(self, *, status: str | None, limit: int) -> TaskListOutput:
        return self._task_list(await (await self.runtime.ledger()).recent(status=status, limit=limit))

    def _task_list(self, entries: list[JournalEntry]) -> TaskListOutput:
        tasks = []
        for e in entries:
            path = saved_file(e)
            tasks.append(
                TaskSummary(
                    task_id=e.task_id,
                    status=results.shown_status(e.status),
                    model=e.model,
                    prompt=e.prompt,
                    mode=e.mode,
                    created_at=e.created_at.isoformat(),
                    updated_at=e.updated_at.isoformat(),
                    reserved_credits=_int(e.reserved_credits),
                    final_credits=_int(e.final_credits),
                    saved_path=str(path) if path else (e.saved_paths[-1] if e.saved_paths else None),
                    resource_uri=results.image_uri(path) if path else None,
                    thumbnail_uri=thumbnail_uri(path) if path else None,
                    idempotency_key=e.idempotency_key,
                    error_code=shown_token(e.error_code, what="error code") if e.error_code else None,
                )
            )
        return TaskListOutput(tasks=tasks, count=len(tasks))

    async def list_tasks(self, arguments: dict[str, Any], _ctx: Context, state: CallState) -> CallToolResult:
        args = check(self.schemas["list_tasks"], arguments)
        ledger = await self.runtime.ledger()
        limit, offset = int(args.get("limit", 20)), int(args.get("offset", 0))
        query = str(args.get("query") or "").strip() or None
        status = args.get("status")
        # One more than asked: whether there is a next page, without counting every row.
        entries = await ledger.recent(status=status, limit=limit + 1, offset=offset, query=query)
        listing = self._task_list(entries[:limit])
        listing.offset, listing.query = offset, query
        listing.next_offset = offset + limit if len(entries) > limit else None
        # Rows from before the journal recorded whose task each is: listed, never acted on.
        unowned = {e.idempotency_key for e in entries if not e.has_owner} if ledger.scoped else set()
        matching = (f" with status {status}" if status else "") + (f" whose prompt contains {query!r}" if query else "")
        if not listing.tasks:
            text = ("No tasks recorded yet" if not offset else "No more tasks") + f"{matching}."
        else:
            first = offset + 1
            lines = [f"Tasks {first}-{offset + listing.count}{matching}, most recent first:"]
            for t in listing.tasks:
                where = f" → {t.saved_path}" if t.saved_path else ""
                lines.append(
                    f"- {shown(t.task_id, limit=200) if t.task_id else '(not created)'} {t.status} "
                    f"{t.created_at or ''} {(t.prompt or '')[:60]!r}{where}"
                    + (UNOWNED_NOTE if t.idempotency_key in unowned else "")
                )
            if listing.next_offset is not None:
                lines.append(f"More: call list_tasks with offset={listing.next_offset} for the next page.")
            text = "\n".join(lines)
        content: list[ContentBlock] = [results.text(text)]
        if args.get("previews"):
            gallery = [
                (f"{shown(t.task_id or '', limit=200)}: {(t.prompt or '')[:60]}", Path(t.saved_path))
                for t in listing.tasks
                if t.resource_uri and t.saved_path
            ][:MAX_PREVIEWS_PER_PAGE]
            content += await gallery_blocks(gallery)
        state.listing = listing.model_dump(mode="json")
        return results.ok(content, listing, structured_output=self.structured)


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _amount(credits: float) -> int | float:
    """Credits as a person writes them: 16, not 16.0."""
    return int(credits) if float(credits).is_integer() else credits


class ConfirmSpending(BaseModel):
    """What the confirmation form asks (an elicitation's schema: primitives only)."""

    confirm: bool = Field(description="Spend the credits and run it")


def _can_ask(ctx: Context) -> bool:
    """The client takes form elicitations (a client declaring ``elicitation: {}`` means form)."""
    capabilities = ctx.client_capabilities
    asking = capabilities.elicitation if capabilities else None
    return asking is not None and (asking.form is not None or asking.url is None)


async def confirm_spending(ctx: Context, *, tool: str, cost: float, threshold: float, given: Any) -> None:
    """Go on only when the user agreed to spend ``cost`` credits: asked through elicitation where the
    client supports it, else told (``SpendingNotConfirmed``) how to confirm with ``confirm_credits``.

    A ``confirm_credits`` of at least the cost is the confirmation itself: the agent passes it after
    the user agreed.
    """
    if isinstance(given, int | float) and not isinstance(given, bool) and given >= cost:
        return
    if _can_ask(ctx):
        message = (
            f"{tool} will spend {_amount(cost)} credits (this server asks before any call costing more than "
            f"{_amount(threshold)}). Spend them?"
        )
        try:
            answer = await ctx.elicit(message, ConfirmSpending)
        except MCPError as exc:
            # No way to ask on this connection (e.g. the 2026-07-28 wire allows no server request).
            log.debug("could not ask for confirmation (%s); answering how to confirm instead", exc)
        else:
            if answer.action == "accept" and answer.data.confirm:
                return
            raise SpendingNotConfirmed(tool, cost, threshold, declined=True)
    raise SpendingNotConfirmed(tool, cost, threshold, declined=False)
