"""Downloaded images that could not be saved in the output folder, kept until they can be.

A paid image whose save failed (read-only folder, full disk, permission) would otherwise be
downloaded again by every ``get_task`` and fail the same way, and be lost once its URL expires.
Its bytes are kept here, in ``<data dir>/spool`` (owner-only: 0700 folder, 0600 files, as the
journal), and the next save of that task takes them from here instead of downloading again.
A file is removed once its image is saved.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SPOOL_FOLDER = "spool"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class Spool:
    def __init__(self, data_dir: Path) -> None:
        self.folder = Path(data_dir).expanduser().resolve() / SPOOL_FOLDER

    def path_for(self, task_id: str) -> Path:
        # Task ids are API-made; only a safe spelling reaches the file system.
        return self.folder / f"{_UNSAFE.sub('-', task_id).strip('-') or 'task'}.image"

    def keep(self, task_id: str, data: bytes) -> Path | None:
        """Write ``data`` for ``task_id`` atomically (0600); None when even that fails (logged)."""
        target = self.path_for(task_id)
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temp_name = tempfile.mkstemp(dir=self.folder, prefix=".partial-", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:  # mkstemp makes it 0600
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp_name, target)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning("could not keep the image of task %s in %s either: %s", task_id, self.folder, exc)
            return None
        return target

    def load(self, task_id: str) -> bytes | None:
        try:
            return self.path_for(task_id).read_bytes()
        except OSError:
            return None

    def discard(self, task_id: str) -> None:
        try:
            self.path_for(task_id).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove the kept copy of task %s: %s", task_id, exc)
