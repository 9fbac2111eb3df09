"""File naming, atomic collision-safe saving, and safe lookups for the image resource."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rivya_mcp.references import sniff_image_type
from rivya_mcp.tasks import (
    image_filename,
    mime_for,
    resolve_served_file,
    save_atomically,
    slugify,
)

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 20
PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 20
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"x" * 8


def test_filename_is_dated_traceable_and_slugged() -> None:
    when = datetime(2026, 11, 26, 23, 59, tzinfo=UTC)
    assert image_filename("task_abc123", "A red fox!", "jpg", when=when) == "2026-11-26_task_abc123_a-red-fox.jpg"


@pytest.mark.parametrize(
    ("prompt", "slug"),
    [
        ("A red fox in tall grass", "a-red-fox-in-tall-grass"),
        ("Ünïcödé café", "unicode-cafe"),
        ("한국어 프롬프트", "image"),
        ("", "image"),
        ("slow one [sandbox:seconds=3]", "slow-one"),
        ("../../etc/passwd", "etc-passwd"),
        ("word " * 30, "word-word-word-word-word-word-word-word"),
    ],
)
def test_slugify(prompt: str, slug: str) -> None:
    assert slugify(prompt) == slug
    assert len(slug) <= 40


def test_task_id_is_sanitised_in_name() -> None:
    name = image_filename("task/../x", "p", "png", when=datetime(2026, 1, 1, tzinfo=UTC))
    assert "/" not in name and ".." not in name


def test_save_never_overwrites_and_leaves_no_temp_files(tmp_path: Path) -> None:
    first = save_atomically(tmp_path / "out", "2026-01-01_task_a_fox.jpg", JPEG)
    second = save_atomically(tmp_path / "out", "2026-01-01_task_a_fox.jpg", JPEG + b"2")
    third = save_atomically(tmp_path / "out", "2026-01-01_task_a_fox.jpg", JPEG + b"3")
    assert [p.name for p in (first, second, third)] == [
        "2026-01-01_task_a_fox.jpg",
        "2026-01-01_task_a_fox-2.jpg",
        "2026-01-01_task_a_fox-3.jpg",
    ]
    assert first.read_bytes() == JPEG and third.read_bytes() == JPEG + b"3"
    assert first.is_absolute()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in (first, second, third))


def test_save_resolves_relative_and_home_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    saved = save_atomically(Path("~/pics"), "a.png", PNG)
    assert saved == (tmp_path / "pics" / "a.png").resolve()


def test_failed_write_removes_reserved_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_atomically(tmp_path, "a.jpg", JPEG)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("data", "mime"), [(JPEG, "image/jpeg"), (PNG, "image/png"), (WEBP, "image/webp"), (b"GIF89a", None)]
)
def test_sniff(data: bytes, mime: str | None) -> None:
    assert sniff_image_type(data) == mime


def test_resolve_served_file_refuses_escapes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "ok.jpg").write_bytes(JPEG)
    (tmp_path / "secret.jpg").write_bytes(JPEG)
    (out / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    assert resolve_served_file(out, "ok.jpg") == (out / "ok.jpg").resolve()
    for name in ("../secret.jpg", "link.jpg", "sub/ok.jpg", ".hidden.jpg", "ok.txt", "missing.jpg", "..", ""):
        assert resolve_served_file(out, name) is None, name
    assert mime_for(out / "ok.jpg") == "image/jpeg"
