"""A local reference streamed into its upload: exactly the bytes read are kept and checked."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from rivya_mcp.references import ReferenceError
from rivya_mcp.references._image import ImageInfo, inspect_image, verify_image
from rivya_mcp.references._recorded import RecordedFile
from tests.references.conftest import image_bytes

LIMIT = 10 * 1024 * 1024


def _open(path: Path, *, prefix: int = 0, max_bytes: int = LIMIT) -> RecordedFile:
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    head = os.read(fd, prefix) if prefix else b""
    return RecordedFile(fd, path, size=size, max_bytes=max_bytes, prefix=head)


def _drain(recorded: RecordedFile) -> bytes:
    parts = []
    while chunk := recorded.read(65536):
        parts.append(chunk)
    return b"".join(parts)


def test_the_bytes_sent_are_the_file_and_a_replay_sends_them_again(tmp_path: Path) -> None:
    path = tmp_path / "r.bin"
    data = os.urandom(3 * 1024 * 1024 + 123)
    path.write_bytes(data)
    recorded = _open(path, prefix=1000)
    try:
        assert recorded.seek(0, os.SEEK_END) == len(data)
        recorded.seek(0)
        assert _drain(recorded) == data
        path.write_bytes(b"swapped")  # the path changes afterwards: a replay still sends the kept bytes
        recorded.seek(0)
        assert _drain(recorded) == data
        assert recorded.reader().read() == data
        assert recorded.failure is None
    finally:
        recorded.close()


def test_a_file_that_grows_while_sent_fails_as_changed(tmp_path: Path) -> None:
    path = tmp_path / "r.bin"
    path.write_bytes(b"a" * 2_000_000)
    recorded = _open(path)
    try:
        assert recorded.read(65536)
        with path.open("ab") as more:
            more.write(b"b" * 10)
        with pytest.raises(ReferenceError) as caught:
            _drain(recorded)
        assert caught.value.reason == "changed"
        assert "changed while it was being read" in caught.value.message
    finally:
        recorded.close()


def test_a_file_that_shrinks_while_sent_fails_as_changed(tmp_path: Path) -> None:
    path = tmp_path / "r.bin"
    path.write_bytes(b"a" * 3_000_000)
    recorded = _open(path)
    try:
        assert recorded.read(65536)
        os.truncate(path, 1_500_000)
        with pytest.raises(ReferenceError) as caught:
            _drain(recorded)
        assert caught.value.reason == "changed"
    finally:
        recorded.close()


def test_a_file_that_grows_past_the_limit_is_read_no_further(tmp_path: Path) -> None:
    path = tmp_path / "r.bin"
    path.write_bytes(b"a" * 1000)
    recorded = _open(path, max_bytes=1000)
    try:
        with path.open("ab") as more:
            more.write(b"b" * 5000)
        with pytest.raises(ReferenceError) as caught:
            _drain(recorded)
        assert caught.value.reason == "too_large"
        assert "grew past" in caught.value.message
        assert recorded.cap == 1001
    finally:
        recorded.close()


def test_the_check_reads_what_was_sent_and_waits_for_it(tmp_path: Path) -> None:
    good = image_bytes("PNG")
    bad = good[:-20] + bytes(20)  # the IEND and the last CRC destroyed
    for data, ok in ((good, True), (bad, False)):
        path = tmp_path / "r.png"
        path.write_bytes(data)
        info = inspect_image(data[:64], mime_types=["image/png"], verify=False)
        recorded = _open(path, prefix=16)
        errors: list[BaseException] = []

        def check(
            recorded: RecordedFile = recorded, errors: list[BaseException] = errors, info: ImageInfo = info
        ) -> None:
            try:
                verify_image(recorded.reader(), info)  # type: ignore[arg-type]
            except BaseException as exc:
                errors.append(exc)

        checker = threading.Thread(target=check)
        checker.start()  # blocks until the "upload" below has read the whole file
        try:
            assert _drain(recorded) == data
        finally:
            checker.join(10)
            recorded.close()
        assert not checker.is_alive()
        assert (not errors) == ok, errors
        if not ok:
            assert isinstance(errors[0], ReferenceError) and errors[0].reason == "corrupt"


def test_closing_unread_wakes_the_check_with_an_error(tmp_path: Path) -> None:
    path = tmp_path / "r.bin"
    path.write_bytes(b"a" * 3_000_000)
    recorded = _open(path)
    errors: list[BaseException] = []

    def check() -> None:
        try:
            recorded.reader().read(10)
        except BaseException as exc:
            errors.append(exc)

    checker = threading.Thread(target=check)
    checker.start()
    recorded.close()
    checker.join(10)
    assert not checker.is_alive()
    assert isinstance(errors[0], ReferenceError) and errors[0].reason == "changed"
