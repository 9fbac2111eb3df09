"""The embedded sandbox's state in a folder, so that its tasks and files outlive a restart.

A host restarts its MCP servers at will (Claude Desktop does on every launch); a sandbox that
forgot its tasks would answer "not found" for every image made before (issue 23 item 13). So the
embedded sandbox (``serve --sandbox``, ``demo``) keeps, in ``<data dir>/sandbox/embedded``:

- ``state.json``: tasks, files' metadata, media links, idempotency records, wallets and the
  ledger (``SandboxState.durable``), written whole (temp file, fsync, rename) after every request
  that changed them, and once more when the sandbox stops;
- ``files/``: each uploaded file's bytes, written once;
- ``lock``: held (``flock``) by the one process whose sandbox this is. A second server started
  with ``--sandbox`` on the same data folder while the first runs gets a sandbox of its own that
  keeps nothing (it logs so), rather than two processes overwriting one state.

The port the sandbox listened on is kept too and asked for again, so result URLs recorded before
a restart still lead somewhere; if it is taken, any free port does (the server's journal files the
sandbox's tasks under a fixed name, not its address: ``tasks.EMBEDDED_SANDBOX_UPSTREAM``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from rivya_mcp.sandbox._state import SandboxState

__all__ = ["STATE_VERSION", "PersistingApp", "SandboxFolder"]

logger = logging.getLogger("rivya_mcp.sandbox")

STATE_VERSION = 1
_STATE = "state.json"
_FILES = "files"
_LOCK = "lock"


def _file_name(file_id: str) -> str:
    # File ids are the sandbox's own, but a name on disk should not depend on their shape.
    return hashlib.sha256(file_id.encode("utf-8")).hexdigest()


class SandboxFolder:
    """One embedded sandbox's folder: take it (``acquire``), ``load``, ``save`` as it changes, ``release``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock_file: IO[bytes] | None = None
        self._saved_revision: int | None = None
        self._warned = False

    def acquire(self) -> bool:
        """Take the folder for this process; False when it can't be made or another process holds it."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock_file = open(self.folder / _LOCK, "ab")
        except OSError as exc:
            logger.warning(
                "the sandbox cannot keep its state in %s (%s); it forgets its tasks when stopped", self.folder, exc
            )
            return False
        if not _try_lock(lock_file):
            lock_file.close()
            logger.warning(
                "another server's embedded sandbox keeps its state in %s; this one keeps nothing and forgets its "
                "tasks when stopped",
                self.folder,
            )
            return False
        self._lock_file = lock_file
        return True

    def load(self, state: SandboxState) -> int | None:
        """Restore the saved state into ``state``; the port it was served on, or None (nothing saved)."""
        path = self.folder / _STATE
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("version") != STATE_VERSION:
                raise ValueError(f"version {saved.get('version')!r}")
            files = {
                str(f["id"]): (self.folder / _FILES / _file_name(str(f["id"]))).read_bytes()
                for f in saved["state"]["files"]
            }
            state.restore(saved["state"], files)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Kept aside, never deleted: a sandbox starting empty is better than one not starting.
            aside = path.with_name(f"{_STATE}.unreadable")
            logger.warning("the sandbox state in %s is unreadable (%s); starting empty, the file is kept as %s",
                           path, exc, aside)  # fmt: skip
            try:
                os.replace(path, aside)
            except OSError:
                pass
            return None
        self._saved_revision = state.revision
        port = saved.get("port")
        logger.info("sandbox state restored from %s (%d tasks)", path, len(saved["state"]["tasks"]))
        return int(port) if isinstance(port, int) else None

    def save(self, state: SandboxState, *, port: int) -> None:
        """Write the state if it changed since the last save (a failure is logged once, never raised)."""
        if self._lock_file is None or state.revision == self._saved_revision:
            return
        revision = state.revision
        data, files = state.durable()
        try:
            folder = self.folder / _FILES
            folder.mkdir(exist_ok=True, mode=0o700)
            for file_id, content in files.items():
                target = folder / _file_name(file_id)
                if not target.exists():
                    _write_atomically(target, content)
            body = json.dumps({"version": STATE_VERSION, "port": port, "state": data}, ensure_ascii=False)
            _write_atomically(self.folder / _STATE, body.encode("utf-8"))
        except OSError as exc:
            if not self._warned:
                logger.warning("the sandbox could not save its state in %s (%s)", self.folder, exc)
                self._warned = True
            return
        self._saved_revision = revision

    def release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing drops the lock
            self._lock_file = None


def _try_lock(file: IO[bytes]) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; one server per data folder is assumed
        return True
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class PersistingApp:
    """The sandbox's ASGI app, saving its state after every HTTP request that changed it."""

    def __init__(self, app: Any, state: SandboxState, folder: SandboxFolder) -> None:
        self.app = app
        self.state = state
        self.folder = folder
        self.port = 0  # set once bound: saved with the state, asked for again at the next start

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope.get("type") == "http":
                self.folder.save(self.state, port=self.port)

    def close(self) -> None:
        """The last save, then the folder is free for the next process."""
        self.folder.save(self.state, port=self.port)
        self.folder.release()
