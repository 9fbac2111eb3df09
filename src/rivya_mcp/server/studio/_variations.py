"""Variations: one call, ``count`` images side by side, each its own paid task, to pick from.

- **Keys.** Candidate 1 keeps the call's idempotency key, candidate *i* gets ``<key>#<i>``
  (``candidate_keys``): each task has its own key, recorded as an intent before its create leaves
  and recovered like any other after a crash, and a retried call with the same key finds every
  one of them again (a call with a larger count adds only the missing ones). A call without a key
  gets one random key for all, so a failure can name it.
- **Running.** The creates go out side by side, then each created task is followed side by side
  for the call's wait (``run_candidates``). One candidate's failure never stops the others.
- **The result** (``variations_result``): one contact sheet of the saved images, labelled with
  their numbers, under the same 300 KB cap as a single preview; a ``resource_link`` per image;
  each candidate in the structured content; what failed, said per number. The call is an error
  only when no image came of it and none is still running.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink

from rivya_mcp.client import FAILED, Generation
from rivya_mcp.server._call_failures import CallState, call_failure
from rivya_mcp.server._errors import ToolFailure, failure_for_exception, failure_for_task_error
from rivya_mcp.server._preview import make_sheet
from rivya_mcp.server._progress import ProgressReporter, describe
from rivya_mcp.server._results import file_preview, image_uri, ok, shown_id, task_output, text
from rivya_mcp.server._schemas import MAX_IDEMPOTENCY_KEY_CHARS, CandidateOut, TaskErrorOut, TaskOutput
from rivya_mcp.server.studio._gallery import thumbnail_uri
from rivya_mcp.tasks import CallCost, Followed, Intent, StatusUpdate, TaskService

log = logging.getLogger(__name__)

__all__ = ["Candidate", "any_created", "candidate_keys", "first_error", "run_candidates", "variations_result"]


def candidate_keys(call_key: str, count: int) -> list[str]:
    """One idempotency key per candidate: the call's own for the first, ``<key>#<i>`` for the rest.

    A key that would pass the 128 characters a key may have is replaced, for candidates 2..N, by a
    digest of the call's key (still derived from it alone, so a retry finds the same tasks).
    """
    keys = [call_key]
    for number in range(2, count + 1):
        key = f"{call_key}#{number}"
        if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
            key = f"k-{hashlib.sha256(call_key.encode()).hexdigest()[:64]}#{number}"
        keys.append(key)
    return keys


@dataclass
class Candidate:
    """One image of the call: its number (as on the sheet), its create, and where it ended up."""

    number: int
    intent: Intent
    earlier_task: str | None = None  # found under its key: re-found, not created (no charge)
    generation: Generation | None = None
    followed: Followed | None = None
    error: BaseException | None = None

    @property
    def reused(self) -> bool:
        return self.earlier_task is not None


async def run_candidates(
    service: TaskService,
    candidates: Sequence[Candidate],
    *,
    send: Callable[[Intent], Awaitable[Generation]],
    wait: float,
    prompt: str,
    reporter: ProgressReporter,
    deadline: float | None = None,
) -> None:
    """Create (or re-find) and follow every candidate side by side; each records its own outcome.
    ``deadline`` ends every wait of them, as for a single image."""
    total = len(candidates)

    async def one(candidate: Candidate) -> None:
        label = f"image {candidate.number}/{total}: "

        async def on_status(update: StatusUpdate) -> None:
            await reporter.note(label + describe(update))

        try:
            if candidate.earlier_task is not None:
                candidate.generation = await service.latest(candidate.earlier_task, deadline=deadline)
                await on_status(StatusUpdate("found", candidate.generation))
            else:
                candidate.generation = await send(candidate.intent)
                await on_status(StatusUpdate("created", candidate.generation))
            candidate.followed = await service.follow(
                candidate.generation, wait=wait, on_status=on_status, prompt=prompt, deadline=deadline
            )
            candidate.generation = candidate.followed.generation
        except Exception as exc:
            if failure_for_exception(exc) is None:
                log.exception("variation %d of %d failed unexpectedly", candidate.number, total)
            candidate.error = exc

    async with anyio.create_task_group() as group:
        for candidate in candidates:
            group.start_soon(one, candidate)


def _failure(candidate: Candidate) -> ToolFailure | None:
    if candidate.error is None:
        return None
    task_id = candidate.generation.id if candidate.generation is not None else None
    failed, _ = call_failure(candidate.error, CallState(task_id=task_id, created=task_id is not None))
    return failed


async def _candidate_out(candidate: Candidate) -> tuple[CandidateOut, bytes | None, Path | None]:
    """The candidate as structured content, and its saved image's bytes and path when it has one."""
    generation, followed = candidate.generation, candidate.followed
    failed = _failure(candidate)
    if generation is None:
        assert failed is not None
        out = CandidateOut(
            number=candidate.number,
            status="not_created",
            done=True,
            next_step=failed.next_step,
            error=TaskErrorOut(code=failed.code, message=failed.message),
        )
        return out, None, None
    base = task_output(generation, reused=candidate.reused)
    out = CandidateOut(
        number=candidate.number,
        task_id=generation.id,
        status=generation.status,
        done=generation.is_terminal,
        reserved_credits=base.reserved_credits,
        final_credits=base.final_credits,
        reused=candidate.reused,
        error=base.error,
    )
    if failed is not None:
        out.error = TaskErrorOut(code=failed.code, message=failed.message)
        out.next_step = failed.next_step
        return out, None, None
    assert followed is not None
    if followed.image is not None:
        image = followed.image
        data = image.data if image.data is not None else await anyio.Path(image.path).read_bytes()
        preview, mime = await file_preview(image.path, data)
        out.saved_path, out.resource_uri = str(image.path), image_uri(image.path)
        out.thumbnail_uri, out.mime_type = thumbnail_uri(image.path), mime
        out.width, out.height = preview.source_width, preview.source_height
        out.next_step = (
            f'To keep working on image {candidate.number}, call edit_image with reference="{generation.id}".'
        )
        return out, data, image.path
    if followed.unsaved is not None:
        unsaved = failure_for_exception(followed.unsaved)
        assert unsaved is not None
        out.error = TaskErrorOut(code=unsaved.code, message=unsaved.message)
        out.next_step = unsaved.next_step
    elif generation.status == FAILED:
        error = generation.error
        task_failed = failure_for_task_error(
            error.code if error else None, error.message if error else None, generation.id
        )
        out.next_step = task_failed.next_step
    else:
        out.done = False
        out.next_step = (
            f'Call get_task with task_id="{generation.id}"; it waits for the image and saves it. '
            "Do not create it again."
        )
    return out, None, None


def _line(out: CandidateOut) -> str:
    head = f"Image {out.number}: "
    if out.task_id is None:
        message = out.error.message if out.error else "not created"
        return f"{head}not created: {message} Next step: {out.next_step}"
    found = " (an earlier task under this idempotency_key; nothing new charged)" if out.reused else ""
    task = shown_id(out.task_id)  # an id in text as the upstream sent it, without what would restyle it
    if out.saved_path:
        kind = (out.mime_type or "").removeprefix("image/").upper() or "image"
        return (
            f"{head}task {task} succeeded{found}; saved at full resolution ({out.width}×{out.height} {kind}): "
            f"{out.saved_path} (resource {out.resource_uri})."
        )
    if out.error is not None:
        return f"{head}task {task} {out.status}{found}: {out.error.message} Next step: {out.next_step}"
    return f"{head}task {task} is still {out.status}{found}. Next step: {out.next_step}"


async def variations_result(
    candidates: Sequence[Candidate], cost: CallCost, *, structured_output: bool
) -> tuple[CallToolResult, list[CandidateOut]]:
    """The one result for a call of ``count`` > 1 (see the module's docstring), and its candidates."""
    shaped = [await _candidate_out(c) for c in candidates]
    outs = [out for out, _, _ in shaped]
    saved = [(out, data, path) for out, data, path in shaped if data is not None and path is not None]
    created = [c for c in candidates if c.generation is not None and not c.reused]
    lines = [
        f"Variations: {len(candidates)} images of one prompt, each its own task at {cost.per_image:g} credits "
        f"({cost} for the call when all are created; a task that fails is refunded). "
        f"{len(created)} created now, {sum(c.reused for c in candidates)} found under their idempotency keys.",
        *(_line(out) for out in outs),
    ]
    content: list[ContentBlock] = [text("")]
    if saved:
        sheet = await anyio.to_thread.run_sync(
            lambda: make_sheet([data for _, data, _ in saved], numbers=[out.number for out, _, _ in saved])
        )
        numbers = ", ".join(str(out.number) for out, _, _ in saved)
        lines.append(
            f"The image below is one {sheet.preview.width}×{sheet.preview.height} contact sheet of image(s) {numbers}, "
            "labelled with these numbers; each full image is at its path and resource link."
        )
        content.append(ImageContent(type="image", data=sheet.preview.base64, mime_type=sheet.preview.mime_type))
        for out, _, path in saved:
            content.append(
                ResourceLink(
                    type="resource_link",
                    uri=out.resource_uri or image_uri(path),
                    name=path.name,
                    title=f"Image {out.number} of {len(candidates)} (full resolution)",
                    description=f"{out.width}×{out.height} image of task {shown_id(out.task_id or '')}",
                    mime_type=out.mime_type,
                    size=path.stat().st_size,
                )
            )
        lines.append(
            'To keep working on one, call edit_image with reference="<its task id>" (with mask or region to change '
            "only part of it, or count for variations of it)."
        )
    content[0] = text("\n".join(lines))
    first = next((out for out, _, _ in saved), None) or next((o for o in outs if o.task_id), outs[0])
    head = next(c for c in candidates if c.number == first.number)
    output = (
        task_output(head.generation, reused=head.reused)
        if head.generation is not None
        else TaskOutput(task_id="", status=first.status, done=True)
    )
    output.saved_path, output.resource_uri, output.mime_type = first.saved_path, first.resource_uri, first.mime_type
    output.thumbnail_uri = first.thumbnail_uri
    output.width, output.height, output.next_step = first.width, first.height, first.next_step
    output.count, output.call_credits, output.candidates = len(candidates), cost.total, outs
    result = ok(content, output, structured_output=structured_output)
    pending = any(out.task_id and not out.done for out in outs)
    if not saved and not pending:
        result.is_error = True
    return result, outs


def any_created(candidates: Sequence[Candidate]) -> bool:
    return any(c.generation is not None for c in candidates)


def first_error(candidates: Sequence[Candidate]) -> BaseException | None:
    return next((c.error for c in candidates if c.error is not None), None)
