"""The words for a failed write: what happened and what to do, by errno (a table)."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from rivya_mcp.journal import JournalError
from rivya_mcp.tasks import DataFolderUnusable, describe_os_error, describe_storage_error


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "operation not permitted"),
        (errno.ENOSPC, "no space left"),
        (errno.EDQUOT, "quota"),
        (errno.ENOTDIR, "part of the path is a file"),
        (errno.EEXIST, "already has that name"),
    ],
)
def test_known_errors_say_what_happened(code: int, said: str) -> None:
    what, fix = describe_os_error(OSError(code, "os words"))
    assert said in what and fix


def test_an_unknown_errno_keeps_the_os_words() -> None:
    assert describe_os_error(OSError(errno.EIO, "Input/output error"))[0] == "Input/output error"


@pytest.mark.parametrize(
    ("message", "said"),
    [
        ("attempt to write a readonly database", "read-only"),
        ("database or disk is full", "no space left"),
        ("unable to open database file", "cannot be opened"),
    ],
)
def test_sqlite_errors(message: str, said: str) -> None:
    assert said in describe_storage_error(sqlite3.OperationalError(message))[0]


def test_a_journal_error_is_described_by_its_cause() -> None:
    try:
        try:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        except sqlite3.Error as inner:
            raise JournalError("can't open the task journal") from inner
    except JournalError as outer:
        unusable = DataFolderUnusable("/data", outer)
    assert unusable.reason == "the journal file or its folder is read-only"
    assert str(unusable).startswith("The data folder /data cannot hold the task journal: the journal file")
    assert "RIVYA_DATA_DIR" in str(unusable)
