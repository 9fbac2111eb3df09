"""What a failed write means, in words a user can act on (read-only, no space, permission, ...)."""

from __future__ import annotations

import errno
import sqlite3

from rivya_mcp.journal import JournalDamaged

__all__ = ["DataFolderUnusable", "OutputFolderUnusable", "describe_os_error", "describe_storage_error"]

# errno → (what happened, what fixes it). Anything else falls back to the OS's own words.
_OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.EROFS: ("it is on a read-only file system", "use a folder on a writable disk"),
    errno.EACCES: ("permission denied", "make it writable for the user running rivya-mcp, or use another folder"),
    errno.EPERM: ("operation not permitted", "make it writable for the user running rivya-mcp, or use another folder"),
    errno.ENOSPC: ("no space left on the device", "free some space on that disk, or use a folder on another disk"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space within the quota, or use another folder"),
    errno.ENOTDIR: ("part of the path is a file, not a folder", "use a path made of folders only"),
    errno.EEXIST: ("a file (not a folder) already has that name", "use a path made of folders only"),
    errno.ENAMETOOLONG: ("the path is too long", "use a shorter path"),
    errno.ENOENT: ("a folder on the path does not exist and could not be created", "create the folder"),
}


def describe_os_error(exc: OSError) -> tuple[str, str]:
    """(what happened, what to do) for a failed write, by errno."""
    known = _OS_ERRORS.get(exc.errno or -1)
    if known is not None:
        return known
    return (exc.strerror or str(exc) or type(exc).__name__, "check the folder, or use another one")


def describe_storage_error(exc: BaseException) -> tuple[str, str]:
    """As ``describe_os_error``, also for the errors sqlite3 raises for a file it cannot write."""
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    if isinstance(exc, sqlite3.Error):
        text = str(exc)
        if "readonly" in text or "read-only" in text:
            return ("the journal file or its folder is read-only", "make it writable, or use another folder")
        if "disk is full" in text or "database or disk is full" in text:
            return _OS_ERRORS[errno.ENOSPC]
        if "unable to open" in text:
            return ("the journal file cannot be opened or created there", "make the folder writable, or use another")
        return (text, "move the journal file aside, or use another folder")
    return (str(exc) or type(exc).__name__, "check the folder, or use another one")


class DataFolderUnusable(RuntimeError):
    """The task journal cannot be opened in the data folder, so no paid task may be started."""

    def __init__(self, folder: str, cause: BaseException) -> None:
        self.folder = folder
        if isinstance(cause, JournalDamaged):
            # The folder is fine; the file in it is not: its own words name the file and the way out.
            self.reason, self.fix = cause.damage, cause.fix
            super().__init__(str(cause))
            return
        self.reason, self.fix = describe_storage_error(cause.__cause__ or cause)
        super().__init__(
            f"The data folder {folder} cannot hold the task journal: {self.reason}. rivya-mcp records every "
            "paid task there before sending it, so that a crash never loses or double-charges one, and will not "
            f"create tasks without it. To fix it, {self.fix}, or set RIVYA_DATA_DIR to a writable folder; "
            "then restart the server."
        )


class OutputFolderUnusable(RuntimeError):
    """A finished image could not be written to the output folder (its bytes may be kept elsewhere)."""

    def __init__(self, folder: str, cause: OSError, *, task_id: str, kept_at: str | None, data: bytes) -> None:
        self.folder = folder
        self.task_id = task_id
        self.kept_at = kept_at
        self.data = data  # the image, for a preview: the agent still sees what it paid for
        self.reason, self.fix = describe_os_error(cause)
        kept = (
            f" The downloaded image is kept at {kept_at}; the next get_task saves it from there without "
            "downloading it again."
            if kept_at
            else " It could not be kept in the data folder either, so it will be downloaded again (while its "
            "source URL lasts)."
        )
        super().__init__(
            f"Task {task_id} succeeded and is paid for, but its image could not be saved in the output folder "
            f"{folder}: {self.reason}.{kept}"
        )
