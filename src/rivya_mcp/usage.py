"""``rivya-mcp usage``: credits spent per person and UTC day, read from the journal, for the operator.

The numbers are the journal's (``TaskJournal.usage``: what each row counts against a budget, the
same rule); people's names come from rivya-login's sign-ins when there are any. Nothing secret is
read or shown: a person is their id (``oauth:<issuer>#<subject>`` or ``rivya:<fingerprint>``), never
a key or a token.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from rivya_mcp.journal import JournalError, Store, TaskJournal, UsageRow, day_start, open_journal
from rivya_mcp.settings import Settings

__all__ = ["UsageError", "format_usage", "usage_report"]

SERVER_LABEL = "(this server: stdio or the shared token)"
HEADERS = ("Day (UTC)", "Person", "Name", "Tasks", "Credits")


def _credits(value: float) -> str:
    return f"{value:g}"


def format_usage(rows: list[UsageRow], names: dict[str, str], *, days: int) -> str:
    """The table ``rivya-mcp usage`` prints: a row per person and day, then each person's total."""
    if not rows:
        return f"No tasks recorded in the last {days} day(s).\n"
    table = [
        (row.day, row.person or SERVER_LABEL, names.get(row.person or "", ""), str(row.tasks), _credits(row.credits))
        for row in rows
    ]
    totals: dict[str | None, list[float]] = {}
    for row in rows:
        total = totals.setdefault(row.person, [0, 0.0])
        total[0] += row.tasks
        total[1] += row.credits
    for person, (tasks, credits) in sorted(totals.items(), key=lambda item: (-item[1][1], item[0] or "")):
        table.append(
            (f"{days} day(s)", person or SERVER_LABEL, names.get(person or "", ""), f"{tasks:g}", _credits(credits))
        )
    widths = [max(len(HEADERS[i]), *(len(line[i]) for line in table)) for i in range(len(HEADERS))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if i >= 3 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    body = [line(cells) for cells in table[: len(rows)]]
    footer = [line(cells) for cells in table[len(rows) :]]
    return "\n".join([line(HEADERS), rule, *body, rule, *footer]) + "\n"


def _names(store: Store) -> dict[str, str]:
    """rivya-login's display names by person id (none when nobody signed in here)."""
    try:
        with store.read() as tx:
            return {
                str(person): str(name) for person, name in tx.all("SELECT person_id, display_name FROM identity_people")
            }
    except Exception:  # an older database without the table: ids alone
        return {}


class UsageError(Exception):
    """What stops the table (the message for stderr) and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def usage_report(settings: Settings, *, days: int, now: datetime | None = None) -> str:
    """The text of ``rivya-mcp usage`` for the last ``days`` UTC days (today included).

    Raises ``UsageError``: a bad ``days`` (2), a journal that can't be read (1).
    """
    if days < 1:
        raise UsageError("--days must be 1 or more", 2)
    if settings.database_url is not None:
        location: str | Path = settings.database_url.reveal()
    else:
        location = Path(settings.data_dir).expanduser() / "journal.sqlite3"
        if not location.is_file():
            return f"No task journal at {location} (RIVYA_DATA_DIR): nothing was spent here yet.\n"
    try:
        # Scoped to the configured base URL only (no key is needed or read): sandbox rows are not credits.
        journal: TaskJournal = open_journal(location, upstream=settings.base_url)
    except JournalError as exc:
        raise UsageError(str(exc), 1) from exc
    with journal:
        since = day_start(now or datetime.now(UTC)) - timedelta(days=days - 1)
        rows = journal.usage(since=since)
        names = _names(journal.store)
    heading = f"Credits spent per person and UTC day at {settings.base_url}, since {since:%Y-%m-%d}:\n"
    return heading + format_usage(rows, names, days=days)
