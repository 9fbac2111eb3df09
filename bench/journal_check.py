"""What checking the SQLite journal at start costs: ``PRAGMA quick_check`` vs ``integrity_check``.

The journal is checked each time it is opened (docs/architecture.md, "A damaged journal"), so that
a file a crash or a disk damaged is refused instead of used. This prices the two checks SQLite
offers on journals of growing size, filled as the server fills them (a task row per generation,
with its Tasks handle and a webhook event): how long opening takes without a check, with each
check, and the file's size. The OS page cache is warm (the journal was just written), which is the
usual case for a server restarted by its host; a cold cache adds the file's read time to both.

    .venv/bin/python bench/journal_check.py                 # 1k, 10k, 100k tasks
    .venv/bin/python bench/journal_check.py --tasks 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import median, print_report, table

from rivya_mcp.journal import TaskJournal

PARAMS = json.dumps({"aspectRatio": "16:9", "outputFormat": "jpeg", "promptUpsampling": "false", "safetyTolerance": 2})


def fill(path: Path, tasks: int) -> None:
    """A journal with ``tasks`` finished generations, written in one transaction (the rows the
    server writes one by one; the file is the same)."""
    TaskJournal(path).close()  # the schema, as the server creates it
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        for n in range(tasks):
            key, task_id = f"rivya-mcp-{uuid.uuid4()}", f"task_{uuid.uuid4().hex[:24]}"
            stamp = f"2026-12-{1 + n % 28:02d}T10:{n % 60:02d}:00.{n % 1_000_000:06d}+00:00"
            connection.execute(
                "INSERT INTO tasks (idempotency_key, task_id, model, mode, prompt, params, status, reserved_credits, "
                "final_credits, result_urls, saved_paths, created_at, submitted_at, updated_at, upstream, account) "
                "VALUES (?, ?, 'flux-kontext-max', 'generate', ?, ?, 'succeeded', 8, 8, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    task_id,
                    f"A lighthouse on a cliff at sunset, watercolor, variation {n}",
                    PARAMS,
                    json.dumps([f"https://rivya.ai/media/{task_id}.jpg?sig={uuid.uuid4().hex}"]),
                    json.dumps([f"/home/me/Pictures/rivya-mcp/{task_id}.jpg"]),
                    stamp,
                    stamp,
                    stamp,
                    "https://rivya.ai",
                    "0" * 64,
                ),
            )
            connection.execute(
                "INSERT INTO mcp_tasks (mcp_task_id, task_id, tool, status, status_message, ttl_ms, created_at, "
                "updated_at) VALUES (?, ?, 'generate_image', 'completed', ?, 86400000, ?, ?)",
                (uuid.uuid4().hex, task_id, f"{task_id}: finished", stamp, stamp),
            )
            connection.execute(
                "INSERT INTO webhook_events (event_id, received_at) VALUES (?, ?)", (f"evt_{uuid.uuid4().hex}", stamp)
            )
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def timed(path: Path, pragma: str | None, repeat: int) -> float:
    """Median seconds to open the journal and run ``pragma`` on it (None: open only)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("PRAGMA journal_mode = WAL").fetchone()
        if pragma is not None:
            assert connection.execute(pragma).fetchall() == [("ok",)]
        times.append(time.perf_counter() - started)
        connection.close()
    return median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="journal-check-") as tmp:
        for tasks in args.tasks:
            path = Path(tmp) / f"journal-{tasks}.sqlite3"
            fill(path, tasks)
            opened = timed(path, None, args.repeat)
            quick = timed(path, "PRAGMA quick_check", args.repeat)
            full = timed(path, "PRAGMA integrity_check", args.repeat)
            rows.append(
                [
                    f"{tasks:,}",
                    f"{path.stat().st_size / 2**20:.1f}",
                    f"{opened * 1000:.1f}",
                    f"{quick * 1000:.1f}",
                    f"{full * 1000:.1f}",
                ]
            )
    print_report(
        "Opening the journal with a check (median ms, warm page cache)",
        table(["tasks (+ handles, events)", "file MB", "open only", "quick_check", "integrity_check"], rows),
    )


if __name__ == "__main__":
    main()
