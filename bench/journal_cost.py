"""Journal cost per task: SQLite (a local file, synchronous=FULL) vs PostgreSQL (loopback, fsync on).

One task's journal work as the server does it: record the intent, attach the task, two status
updates (processing, succeeded with its URL), record the saved path, and three reads by task id
(get_task on a finished task). Run by 1 and by 8 threads at once (8 callers: one server's
concurrent calls, or replicas sharing the database). PostgreSQL is a throwaway cluster from the
Debian binaries (tests/_postgres.py) with durability on, as a real server would run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import median, percentile, print_report, table
from tests._postgres import fresh_schema, throwaway_cluster

from rivya_mcp.journal import TaskJournal, open_journal

PARAMS = {"aspectRatio": "16:9", "outputFormat": "jpeg", "promptUpsampling": "false", "safetyTolerance": 2}


def one_task(journal: TaskJournal) -> float:
    key = uuid.uuid4().hex
    task_id = f"task_{key[:24]}"
    started = time.perf_counter()
    journal.record_intent(idempotency_key=key, model="flux-kontext-max", mode="generate", prompt="a fox",
                          params=PARAMS)  # fmt: skip
    journal.attach_task(key, task_id=task_id, status="queued", reserved_credits=20)
    journal.update(task_id, status="processing")
    journal.update(task_id, status="succeeded", final_credits=20, result_urls=[f"https://x/{task_id}.jpg"])
    journal.update(task_id, saved_path=f"/out/{task_id}.jpg")
    for _ in range(3):
        journal.get(task_id)
    return time.perf_counter() - started


def run(journal: TaskJournal, threads: int, tasks_per_thread: int) -> tuple[float, list[float]]:
    times: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [one_task(journal) for _ in range(tasks_per_thread)]
        with lock:
            times.extend(mine)

    for _ in range(3):
        one_task(journal)  # warm-up
    pool = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="tasks per configuration")
    parser.add_argument("--quick", action="store_true", help="40 tasks")
    args = parser.parse_args()
    tasks = 40 if args.quick else args.tasks
    rows = []
    with throwaway_cluster(durable=True) as server, tempfile.TemporaryDirectory(prefix="rivya-bench-") as tmp:
        stores = [("SQLite file", lambda: TaskJournal(Path(tmp) / f"{uuid.uuid4().hex}.sqlite3")),
                  ("PostgreSQL (loopback)", lambda: open_journal(fresh_schema(server)))]  # fmt: skip
        for label, opener in stores:
            for threads in (1, 8):
                with opener() as journal:
                    wall, times = run(journal, threads, max(1, tasks // threads))
                rows.append(
                    [
                        label,
                        threads,
                        len(times),
                        f"{median(times) * 1000:.2f}",
                        f"{percentile(times, 99) * 1000:.2f}",
                        f"{len(times) / wall:.0f}",
                    ]
                )
    body = table(["store", "threads", "tasks", "median ms / task", "p99 ms / task", "tasks/s"], rows)
    print_report("Journal cost per task (intent, attach, 3 updates, 3 reads)", body)


if __name__ == "__main__":
    main()
