"""Shaping tool results: a text summary first, then a small preview, a link, structured content."""

from __future__ import annotations

from pathlib import Path

from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel

from rivya_mcp.server._errors import ToolFailure
from rivya_mcp.server._preview import Preview
from rivya_mcp.server._schemas import TaskOutput

IMAGE_URI_PREFIX = "rivya://images/"
TASKS_URI = "rivya://tasks"


def image_uri(path: Path) -> str:
    return IMAGE_URI_PREFIX + path.name


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
        f"Image ready: task {output.task_id} {output.status}.",
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
        f'To edit it, call edit_image with reference="{output.task_id}".'
    )
    content: list[ContentBlock] = [
        text("\n".join(lines)),
        ImageContent(type="image", data=preview.base64, mime_type=preview.mime_type),
        ResourceLink(
            type="resource_link",
            uri=output.resource_uri or image_uri(path),
            name=path.name,
            title="Full-resolution image",
            description=f"{preview.source_width}×{preview.source_height} image of task {output.task_id}",
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
        f"Task {output.task_id} is still {output.status} after waiting {waited:g} s. This is not an error: "
        "the task keeps running on Rivya and is paid for once.",
        _credits(output),
        f"Next step: {output.next_step}",
    ]
    if output.reused:
        lines.insert(0, "This idempotency_key matched an earlier task, so no new task was created.")
    return ok([text("\n".join(lines))], output, structured_output=structured_output)
