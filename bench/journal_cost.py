"""Journal cost per task: SQLite (a local file, synchronous=FULL) vs PostgreSQL (loopback, fsync on).

One task's journal work as the server does it: record the intent, attach the task, two status
updates (processing, succeeded with its URL), record the saved path, and three reads by task id
(get_task on a finished task). Run by 1 and by 8 threads at once (8 callers: one server's
concurrent calls, or replicas sharing the database). PostgreSQL is a throwaway cluster from the
Debian binaries (tests/_postgres.py) with durability on, as a real server would run.

A second table prices the images decision (docs/hosting.md): saving one sandbox-rendered image
(a real JPEG) as a local file (``save_atomically``: temp file, fsync, rename) vs in the ``images``
table, and reading it back.
"""

from __future__ import annotations

import argparse
import random
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
from rivya_mcp.journal.postgres import PostgresStore
from rivya_mcp.tasks import save_atomically

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
        images = []
        # The sandbox's renders are small; real results are a few MB: 2 MB of random bytes stand in.
        for image in (sample_image(), random.Random(0).randbytes(2 * 1024 * 1024)):
            images += price_image(image, Path(tmp) / "out", fresh_schema(server), max(10, tasks // 4))
    body = table(["store", "threads", "tasks", "median ms / task", "p99 ms / task", "tasks/s"], rows)
    body += "\n\n" + table(["image store", "image KB", "median save ms", "p99 save ms", "median read ms"], images)
    print_report("Journal cost per task (intent, attach, 3 updates, 3 reads) and one image saved", body)


def price_image(image: bytes, folder: Path, url: str, count: int) -> list[list[str]]:
    file_save, file_read, db_save, db_read = [], [], [], []
    with open_journal(url) as journal:
        store = journal.store
        assert isinstance(store, PostgresStore)
        for n in range(count):
            name = f"2026-01-01_task_{n}_{len(image)}.jpg"
            started = time.perf_counter()
            path = save_atomically(folder, name, image)
            file_save.append(time.perf_counter() - started)
            started = time.perf_counter()
            path.read_bytes()
            file_read.append(time.perf_counter() - started)
            started = time.perf_counter()
            store.put_image(name, f"task_{n}", "image/jpeg", image)
            db_save.append(time.perf_counter() - started)
            started = time.perf_counter()
            store.get_image(name)
            db_read.append(time.perf_counter() - started)
    size = f"{len(image) / 1024:.0f}"
    return [
        [label, size, f"{median(save) * 1000:.2f}", f"{percentile(save, 99) * 1000:.2f}", f"{median(read) * 1000:.2f}"]
        for label, save, read in (("local file", file_save, file_read), ("PostgreSQL images table", db_save, db_read))
    ]


def sample_image() -> bytes:
    """A 16:9 JPEG as the sandbox renders it for a generation (the size a replica stores)."""
    from rivya_mcp.sandbox import RenderSpec, output_size, render

    width, height = output_size(16, 9)
    spec = RenderSpec(width, height, "JPEG", "a lighthouse at dusk", "bench", "task_bench")
    return render(spec)


if __name__ == "__main__":
    main()
