"""Progress while a task is followed: ``notifications/progress`` with a readable message.

The tasks layer says what happens (``tasks.StatusUpdate``); this module puts it in words, once, for
both places an agent hears of it: a blocking call's progress notifications and a Tasks extension
handle's ``statusMessage``.
"""

from __future__ import annotations

import math

from mcp.server.mcpserver import Context

from rivya_mcp.client import FAILED, PROCESSING, QUEUED, SUCCEEDED, shown, shown_token
from rivya_mcp.tasks import StatusUpdate

STATUS_WORDS = {
    QUEUED: "queued, waiting for a worker",
    PROCESSING: "processing",
    SUCCEEDED: "finished",
    FAILED: "failed",
}


def describe_status(status: str) -> str:
    """A status in words; one the API docs do not list is named as such (and is still waited on).

    An undocumented status is repeated only when it is a plain word: one carrying markup, escape
    sequences or line breaks is upstream text the agent must not be handed (``client.shown_token``).
    """
    words = STATUS_WORDS.get(status)
    if words is not None:
        return words
    named = shown_token(status, what="status")
    if named == status:
        return f"in status {status!r}, which the Rivya docs do not list (treated as still running)"
    return f"in {named}, which the Rivya docs do not list (treated as still running)"


def describe(update: StatusUpdate) -> str:
    """One line for the agent about what just happened to the task."""
    generation = update.generation
    # Upstream text: the id as sent, but nothing in it may start a line or restyle the text.
    task_id, state = shown(generation.id, limit=200), describe_status(generation.status)
    match update.kind:
        case "created":
            return f"task created {task_id}: {state}"
        case "found":
            return f"found earlier task {task_id}: {state}"
        case "looked":
            return f"{task_id}: {state}"
        case "busy":
            return f"{task_id}: being finished in the background; waiting for it"
        case "webhook":
            return f"{task_id}: {shown_token(generation.status, what='status')} (webhook)"
        case "downloading":
            return f"{task_id}: downloading the image"
        case "kept":
            return f"{task_id}: saving the copy kept from an earlier download"
        case "waiting" | "polled":
            seen = "" if update.kind == "polled" else "last seen "
            if generation.status == FAILED or (generation.status == SUCCEEDED and generation.result is not None):
                when = ""  # settled: no more looks
            elif update.next_look > 0:
                when = f", next look in {math.ceil(update.next_look)} s"
            else:
                when = ", looking now"
            return f"{task_id}: {seen}{state} ({update.elapsed:.0f} s elapsed{when})"


class ProgressReporter:
    """Sends ``notifications/progress`` for one tool call.

    ``progress`` counts events (task created, each poll, saving), so it always increases even
    when two polls land in the same second. The total is unknown (the API gives no estimate), so
    none is sent rather than a made-up one. Without a progress token the SDK drops these quietly.
    """

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._step = 0

    async def note(self, message: str) -> None:
        self._step += 1
        await self._ctx.report_progress(self._step, None, message)

    async def __call__(self, update: StatusUpdate) -> None:
        await self.note(describe(update))
