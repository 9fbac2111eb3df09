"""What one history per person costs the journal: its new reads, on a SQLite journal of N tasks.

N tasks (default 100,000) spread over 30 days and 20 people (half of them the server's own rows),
each with a saved image. Timed, as the server does them (each in a worker thread, never on the
event loop): making a person's scoped view, the budget check and today's spend (every create), the
image ownership check (every ``resources/read`` of an image: a LIKE over ``saved_paths``, then an
exact name match), and the operator's ``usage`` over 30 days. Medians of 20 runs.

    .venv/bin/python bench/people_journal.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table

from rivya_mcp.journal import TaskJournal, day_start

UPSTREAM = "https://rivya.ai"
KEY = "rvya_sk_bench_people_0123456789"
PEOPLE = [f"oauth:https://idp.example#person{n}" for n in range(20)]
RUNS = 20


def fill(journal: TaskJournal, rows: int, now: datetime) -> None:
    assert journal.owner is not None
    upstream, account = journal.owner
    with journal.store.write() as tx:
        for n in range(rows):
            created = (now - timedelta(minutes=(rows - n) * 30 * 24 * 60 / rows)).isoformat(timespec="microseconds")
            person = PEOPLE[n % len(PEOPLE)] if n % 2 else None
            tx.execute(
                "INSERT INTO tasks (idempotency_key, task_id, model, mode, params, status, reserved_credits, "
                "final_credits, saved_paths, created_at, updated_at, upstream, account, person, cost) "
                "VALUES (?, ?, 'flux-kontext-max', 'generate', '{}', 'succeeded', 8, 8, ?, ?, ?, ?, ?, ?, 8)",
                (f"k{n}", f"task_{n}", json.dumps([f"/out/{created[:10]}_task_{n}_a-prompt.jpg"]), created, created,
                 upstream, account, person),
            )  # fmt: skip


def timed(work: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    rows = parser.parse_args().rows
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        journal = TaskJournal(Path(folder) / "journal.sqlite3", now=lambda: now, upstream=UPSTREAM, api_key=KEY)
        fill(journal, rows, now)
        person = PEOPLE[1]
        view = journal.scoped(upstream=UPSTREAM, api_key=KEY, person=person)
        latest = rows - 1  # an odd row: person PEOPLE[(rows - 1) % 20]
        own = next(n for n in range(rows - 1, 0, -1) if n % 2 and PEOPLE[n % len(PEOPLE)] == person)
        name = f"{(now - timedelta(minutes=(rows - own) * 30 * 24 * 60 / rows)).date()}_task_{own}_a-prompt.jpg"
        results = [
            ("a person's scoped view", timed(lambda: journal.scoped(upstream=UPSTREAM, api_key=KEY, person=person))),
            ("today's spend (get_credits, budget)", timed(view.spent_today)),
            ("budget check before a create", timed(lambda: view.check_budget(8, 10_000))),
            ("image check: the person's own image", timed(lambda: view.may_serve_image(name))),
            (
                "image check: another person's image (refused)",
                timed(lambda: journal.scoped(upstream=UPSTREAM, api_key=KEY, person=PEOPLE[3]).may_serve_image(name)),
            ),
            ("image check: no such image", timed(lambda: view.may_serve_image("missing.jpg"))),
            ("usage, 30 days (the operator)", timed(lambda: journal.usage(since=day_start(now) - timedelta(days=29)))),
        ]
        assert view.may_serve_image(name) and latest >= own
        journal.close()
    print(f"SQLite journal of {rows:,} tasks, 20 people; median of {RUNS} runs\n")
    print(table(["Read", "ms"], [(what, f"{ms:.2f}") for what, ms in results]))


if __name__ == "__main__":
    main()
