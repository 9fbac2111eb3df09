"""Settings read from the environment: the rules that refuse a value rather than guess (tables)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rivya_mcp.settings import SettingError, Settings, read_dirs_setting

SEP = os.pathsep


@pytest.mark.parametrize(
    ("value", "folders"),
    [
        (None, ()),
        ("", ()),
        (f"{SEP}{SEP}", ()),
        ("/srv/images", (Path("/srv/images"),)),
        (f"/srv/images{SEP}/srv/more", (Path("/srv/images"), Path("/srv/more"))),
        (f"/srv/images{SEP}", (Path("/srv/images"),)),
        ("/srv/trailing space ", (Path("/srv/trailing space "),)),  # a name may end with a space
    ],
)
def test_read_dirs_are_absolute_folders_as_written(value: str | None, folders: tuple[Path, ...]) -> None:
    assert read_dirs_setting(value) == tuple(folder.resolve() for folder in folders)


def test_read_dirs_expand_the_home_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert read_dirs_setting("~/pictures") == ((tmp_path / "pictures").resolve(),)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("images", "'images' is not an absolute path"),
        (f"/srv/images{SEP}./refs", "'./refs' is not an absolute path"),
        ("../elsewhere", "'../elsewhere' is not an absolute path"),
        (" /srv/images", "begins with white space"),
    ],
)
def test_a_relative_read_dir_is_refused_not_resolved_against_the_working_directory(value: str, said: str) -> None:
    """Issue 23 item 11: ``images`` became ``<cwd>/images``, whatever folder the host started in."""
    with pytest.raises(SettingError) as caught:
        read_dirs_setting(value)
    assert said in str(caught.value) and "RIVYA_READ_DIRS" in str(caught.value)
    with pytest.raises(SettingError):
        Settings.from_env({"RIVYA_READ_DIRS": value})
