"""Shaping tool results: a text summary first, then a small preview, a link, structured content.

``task_result`` turns where a followed task stands (``tasks.Followed``) into the result an agent
gets: a blocking ``generate_image``/``edit_image``/``get_task`` and a Tasks extension handle's
``tasks/get`` both come through it, so the same task reads the same either way.
"""

from __future__ import annotations

import math
from pathlib import Path

import anyio
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel

from rivya_mcp.client import DOCUMENTED_STATUSES, FAILED, SUCCEEDED, Generation, shown, shown_token
from rivya_mcp.references import sniff_image_type
from rivya_mcp.server._errors import ToolFailure, failure_for_exception, failure_for_task_error
from rivya_mcp.server._preview import (
    FileKey,
    Preview,
    cached_file_preview,
    file_key,
    make_preview,
    remember_file_preview,
)
from rivya_mcp.server._schemas import TaskErrorOut, TaskOutput
from rivya_mcp.tasks import Followed, SavedImage, is_undocumented

IMAGE_URI_PREFIX = "rivya://images/"
# A saved image's small version (``studio``'s resource template), by the same file name.
THUMBNAIL_URI_PREFIX = "rivya://thumbnails/"
TASKS_URI = "rivya://tasks"


def image_uri(path: Path) -> str:
    return IMAGE_URI_PREFIX + path.name


def shown_id(task_id: str) -> str:
    """A task id in text: as sent, unless it carries what would start a line or restyle the text."""
    return shown(task_id, limit=200)


def shown_status(status: str) -> str:
    """A status as the agent sees it (text and structured content): a documented one, a plain
    word, or a description that does not repeat upstream markup or escapes."""
    return status if status in DOCUMENTED_STATUSES else shown_token(status, what="status")


def text(value: str) -> TextContent:
    return TextContent(type="text", text=value)


def ok(content: list[ContentBlock], structured: BaseModel | None, *, structured_output: bool) -> CallToolResult:
    if structured_output and structured is not None:
        return CallToolResult(content=content, structured_content=structured.model_dump(mode="json"))
    return CallToolResult(content=content)


def failure(
    failed: ToolFailure, *, structured: BaseModel | None = None, structured_output: bool = True
) -> CallToolResult:
    result = CallToolResult(content=[text(failed.text())], is_error=True)
    if structured_output and structured is not None:
        result.structured_content = structured.model_dump(mode="json")
    return result


def _credits(output: TaskOutput) -> str:
    reserved = "?" if output.reserved_credits is None else str(output.reserved_credits)
    final = "not yet charged" if not output.done else f"{output.final_credits or 0} charged"
    return f"Credits: {reserved} reserved, {final}."


def image_result(
    output: TaskOutput, path: Path, preview: Preview, *, served_from_disk: bool, structured_output: bool
) -> CallToolResult:
    kind = (output.mime_type or "").removeprefix("image/").upper() or "image"
    lines = [
        f"Image ready: task {shown_id(output.task_id)} {output.status}.",
        f"Saved at full resolution ({preview.source_width}×{preview.source_height} {kind}): {path}",
        f"Resource: {output.resource_uri}",
        _credits(output),
    ]
    if output.source_url and not served_from_disk:
        lines.append(f"Source URL (temporary): {output.source_url}")
    if served_from_disk:
        lines.append("Served from the saved copy on disk (the upstream URL is no longer needed).")
    lines.append(
        f"The image below is a {preview.width}×{preview.height} preview; the saved file is the full image. "
        f'To edit it, call edit_image with reference="{shown_id(output.task_id)}".'
    )
    content: list[ContentBlock] = [
        text("\n".join(lines)),
        ImageContent(type="image", data=preview.base64, mime_type=preview.mime_type),
        ResourceLink(
            type="resource_link",
            uri=output.resource_uri or image_uri(path),
            name=path.name,
            title="Full-resolution image",
            description=f"{preview.source_width}×{preview.source_height} image of task {shown_id(output.task_id)}",
            mime_type=output.mime_type,
            size=path.stat().st_size,
        ),
    ]
    return ok(content, output, structured_output=structured_output)


def unsaved_result(
    failed: ToolFailure, output: TaskOutput, preview: Preview, *, structured_output: bool
) -> CallToolResult:
    """A finished, paid image that could not be saved: the error, then what there is (preview, URL)."""
    lines = [failed.text(), _credits(output)]
    if output.source_url:
        lines.append(f"Source URL (temporary): {output.source_url}")
    lines.append(f"The image below is a {preview.width}×{preview.height} preview of the unsaved image.")
    content: list[ContentBlock] = [
        text("\n".join(lines)),
        ImageContent(type="image", data=preview.base64, mime_type=preview.mime_type),
    ]
    result = CallToolResult(content=content, is_error=True)
    if structured_output:
        result.structured_content = output.model_dump(mode="json")
    return result


def pending_result(output: TaskOutput, *, waited: float, structured_output: bool) -> CallToolResult:
    lines = [
        f"Task {shown_id(output.task_id)} is still {output.status} after waiting {waited:g} s. This is not an error: "
        "the task keeps running on Rivya and is paid for once.",
        _credits(output),
        f"Next step: {output.next_step}",
    ]
    if output.reused:
        lines.insert(0, "This idempotency_key matched an earlier task, so no new task was created.")
    return ok([text("\n".join(lines))], output, structured_output=structured_output)


def task_output(generation: Generation, *, reused: bool) -> TaskOutput:
    error = generation.error
    return TaskOutput(
        task_id=generation.id,  # exact (JSON carries it safely): the agent passes it back
        status=shown_status(generation.status),
        done=generation.is_terminal,
        model=shown(generation.model, limit=200) if generation.model is not None else None,
        reserved_credits=generation.reserved_credits,
        final_credits=generation.final_credits,
        source_url=generation.result.primary_url if generation.result else None,
        reused=reused,
        error=TaskErrorOut(
            code=shown_token(error.code, what="error code") if error.code is not None else None,
            message=shown(error.message) if error.message is not None else None,
        )
        if error
        else None,
    )


async def task_result(
    followed: Followed, *, reused: bool, structured_output: bool, wait_seconds: float
) -> CallToolResult:
    """The result for a task as ``follow`` left it: the image, the failure, or the task still running.

    ``wait_seconds`` is the server's default wait, named in the advice to call get_task.
    """
    generation = followed.generation
    if followed.image is not None:
        return await _delivered(generation, followed.image, reused=reused, structured_output=structured_output)
    output = task_output(generation, reused=reused)
    if followed.unsaved is not None:
        # Still an error (the file the agent will hand on does not exist), but with what it paid
        # for: the preview and the source URL.
        exc = followed.unsaved
        preview = await anyio.to_thread.run_sync(make_preview, exc.data)
        output.mime_type = sniff_image_type(exc.data)
        output.width, output.height = preview.source_width, preview.source_height
        failed = failure_for_exception(exc)
        assert failed is not None
        output.next_step = failed.next_step
        return unsaved_result(failed, output, preview, structured_output=structured_output)
    if generation.status == FAILED:
        error = generation.error
        task_failed = failure_for_task_error(
            error.code if error else None, error.message if error else None, generation.id
        )
        output.next_step = task_failed.next_step
        return failure(task_failed, structured=output, structured_output=structured_output)
    if generation.status == SUCCEEDED:
        # Paid and not lost, but no image in this result: the download outlived the call's time (it
        # goes on in the background), or the API has not given a result URL yet.
        if followed.downloading:
            why = (
                "but downloading its image from Rivya took longer than this call may wait. The download "
                "goes on in the background and the image is saved when it completes."
            )
            later = "in a little while; it returns the image once the download has finished"
        else:
            why = "but the Rivya API has not given its result URL yet, so the image could not be fetched."
            later = "in a few seconds; it fetches the image once the API gives its URL"
        return _paid_not_delivered(generation, output, why=why, later=later, structured_output=structured_output)
    due = followed.next_look
    when = f"the next status check is allowed in {math.ceil(due)} s; " if due > 0 else ""
    note = ""
    if is_undocumented(generation.status):
        named = repr(output.status) if output.status == generation.status else "(not shown: not a plain word)"
        note = f"Its status {named} is not one the Rivya docs list; it is treated as still running. "
    output.next_step = (
        f'{note}Call get_task with task_id="{shown_id(generation.id)}"; {when}it waits up to '
        f"{wait_seconds:g} s (at the documented polling pace) and returns the image when done."
    )
    return pending_result(output, waited=round(followed.waited, 1), structured_output=structured_output)


def _paid_not_delivered(
    generation: Generation, output: TaskOutput, *, why: str, later: str, structured_output: bool
) -> CallToolResult:
    """A succeeded task whose image this result does not carry: paid, not lost, fetched later."""
    output.done = False
    output.next_step = f'Call get_task with task_id="{shown_id(generation.id)}" {later}. Do not create the image again.'
    credits = generation.final_credits or generation.reserved_credits
    paid = f"it is paid ({credits} credits)" if credits else "it is paid"
    summary = (
        f"Task {shown_id(generation.id)} succeeded and {paid}, {why} This is not an error: nothing is lost.\n"
        f"Next step: {output.next_step}"
    )
    return ok([text(summary)], output, structured_output=structured_output)


async def _delivered(
    generation: Generation, image: SavedImage, *, reused: bool, structured_output: bool
) -> CallToolResult:
    output = task_output(generation, reused=reused)
    preview, output.mime_type = await file_preview(image.path, image.data)
    output.saved_path = str(image.path)
    output.resource_uri = image_uri(image.path)
    output.thumbnail_uri = THUMBNAIL_URI_PREFIX + image.path.name
    output.width, output.height = preview.source_width, preview.source_height
    output.next_step = f'To change this image, call edit_image with reference="{shown_id(generation.id)}".'
    return image_result(
        output, image.path, preview, served_from_disk=image.from_disk, structured_output=structured_output
    )


async def file_preview(path: Path, data: bytes | None) -> tuple[Preview, str | None]:
    """The preview and MIME type of the saved file ``path`` (``data``: its bytes, if at hand).

    A file already previewed is answered from memory, without reading it again or leaving
    the event loop (one stat): that is every get_task on a finished task.
    """
    try:
        key: FileKey | None = file_key(path.stat(), str(path))
    except OSError:
        key = None
    cached = cached_file_preview(key) if key is not None else None
    if cached is not None:
        return cached
    if data is None:
        data = await anyio.Path(path).read_bytes()
    preview = await anyio.to_thread.run_sync(make_preview, data)
    mime = sniff_image_type(data)
    if key is not None:
        remember_file_preview(key, preview, mime)
    return preview, mime
