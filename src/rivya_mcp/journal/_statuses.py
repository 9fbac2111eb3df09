"""What a journal row's status means, written once: terminal or not, and whether it needs finishing.

The task statuses are Rivya's (``rivya_mcp.client``: queued → processing → succeeded | failed);
the journal adds the statuses of an intent that has no task yet. The rule "this task still has to
be polled or saved" exists twice by necessity, as a Python predicate (for one entry) and as a SQL
condition (for a query over many): both are built here from the same constants, side by side, and
``tests/test_journal_statuses.py`` holds them to the same answers.
"""

from __future__ import annotations

from typing import Final

from rivya_mcp.client import FAILED, SUCCEEDED
from rivya_mcp.client import TERMINAL_STATUSES as TASK_TERMINAL_STATUSES

__all__ = [
    "ABANDONED",
    "INTENT_END_STATUSES",
    "REJECTED",
    "SPENT_SQL",
    "TERMINAL_STATUSES",
    "UNCONFIRMED",
    "UNFINISHED_SQL",
    "UNSUBMITTED",
    "UNSUBMITTED_SQL",
    "credits_spent",
    "is_terminal",
    "needs_finishing",
]

# Status of an intent whose create POST has not been answered yet.
UNSUBMITTED: Final = "unsubmitted"
# Status of an intent the API refused outright (validation, credits): never re-sent.
REJECTED: Final = "rejected"
# Status of an intent whose create failed without a clear answer (connection lost, 5xx, garbled
# body) after the client's own retries, and the agent was told: whether a task exists is unknown.
# Not re-sent on its own: the agent may already have asked again under another key.
UNCONFIRMED: Final = "unconfirmed"
# Status of an unsubmitted intent that recovery found too old to re-send.
ABANDONED: Final = "abandoned"
# Intent states that never became a task (yet): an agent's retry with the same key can revive them.
INTENT_END_STATUSES: Final = frozenset({REJECTED, UNCONFIRMED, ABANDONED})
# Undocumented statuses whose meaning is plain if Rivya ever sends them: the journal keeps them
# terminal (never re-polled forever); rivya-api.md documents only succeeded and failed.
_PLAINLY_FINAL: Final = frozenset({"canceled", "cancelled", "expired"})
TERMINAL_STATUSES: Final = TASK_TERMINAL_STATUSES | _PLAINLY_FINAL | INTENT_END_STATUSES


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES


def needs_finishing(*, task_id: str | None, status: str, saved: bool, error_code: str | None) -> bool:
    """A created task still to be polled (not terminal), or saved (succeeded, not saved, not given up on)."""
    if task_id is None:
        return False
    if not is_terminal(status):
        return True
    return status == SUCCEEDED and not saved and error_code is None


_TERMINAL_LIST: Final = ", ".join(f"'{status}'" for status in sorted(TERMINAL_STATUSES))
# ``needs_finishing`` over the ``tasks`` table (``saved_paths`` is a JSON list; '[]' when none).
UNFINISHED_SQL: Final = (
    f"task_id IS NOT NULL AND (status NOT IN ({_TERMINAL_LIST}) "
    f"OR (status = '{SUCCEEDED}' AND saved_paths = '[]' AND error_code IS NULL))"
)
# Intents whose create was never answered.
UNSUBMITTED_SQL: Final = f"task_id IS NULL AND status = '{UNSUBMITTED}'"


def credits_spent(*, status: str, final: float | None, reserved: float | None, cost: float | None) -> float:
    """What a row counts against a budget: a refusal or an abandoned intent nothing; a failed task
    what it was finally charged (0: rivya-api.md §3.3 shows ``final_credits: 0``, refunds inferred);
    a settled one its ``final_credits``; a running one its ``reserved_credits``; an intent whose
    answer is not in yet (or unclear: it may have been charged) the cost it was recorded with."""
    if status in (REJECTED, ABANDONED):
        return 0.0
    if status == FAILED:
        return float(final or 0)
    if final is not None:
        return float(final)
    return float(reserved if reserved is not None else cost or 0)


# ``credits_spent`` over the ``tasks`` table: summed for a budget and for the usage table.
SPENT_SQL: Final = (
    f"CASE WHEN status IN ('{REJECTED}', '{ABANDONED}') THEN 0 "
    f"WHEN status = '{FAILED}' THEN COALESCE(final_credits, 0) "
    "WHEN final_credits IS NOT NULL THEN final_credits "
    "ELSE COALESCE(reserved_credits, cost, 0) END"
)
