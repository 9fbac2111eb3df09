"""Local path references: hostile files, symlinks, read_dirs, sizes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from rivya_mcp.manifest import UploadPolicy
from rivya_mcp.references import LoadedReference, ReferenceError, load_reference

from .conftest import image_bytes

pytestmark = pytest.mark.anyio


async def load(source: str | Path, policy: UploadPolicy, **kwargs: object) -> LoadedReference:
    with anyio.fail_after(5):  # a FIFO that blocks would hang here, not forever
        return await load_reference(str(source), policy=policy, **kwargs)  # type: ignore[arg-type]


async def refused(source: str | Path, policy: UploadPolicy, **kwargs: object) -> ReferenceError:
    with pytest.raises(ReferenceError) as info:
        await load(source, policy, **kwargs)
    return info.value


@pytest.fixture
def png_file(tmp_path: Path) -> Path:
    path = tmp_path / "cat.png"
    path.write_bytes(image_bytes("PNG", (64, 48)))
    return path


async def test_reads_a_png(png_file: Path, policy: UploadPolicy) -> None:
    ref = await load(png_file, policy)
    assert (ref.mime_type, ref.width, ref.height, ref.filename) == ("image/png", 64, 48, "cat.png")
    assert ref.source_kind == "path"
    assert ref.path == png_file.resolve()
    assert ref.data == png_file.read_bytes() and ref.size == len(ref.data)


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
async def test_type_comes_from_the_bytes_not_the_name(
    tmp_path: Path, policy: UploadPolicy, fmt: str, mime: str
) -> None:
    path = tmp_path / "actually.png"
    path.write_bytes(image_bytes(fmt))
    ref = await load(path, policy)
    assert ref.mime_type == mime
    assert ref.filename == "actually" + {"JPEG": ".jpg", "WEBP": ".webp"}[fmt]


async def test_tilde_is_expanded(png_file: Path, policy: UploadPolicy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(png_file.parent))
    ref = await load("~/cat.png", policy)
    assert ref.path == png_file.resolve()


async def test_relative_path_is_refused(policy: UploadPolicy) -> None:
    error = await refused("cat.png", policy)
    assert error.reason == "relative_path"
    assert "must be absolute or start with ~/" in error.message


async def test_paths_disabled_over_http(png_file: Path, policy: UploadPolicy) -> None:
    error = await refused(png_file, policy, allow_paths=False)
    assert "unless the operator sets RIVYA_READ_DIRS" in error.message


async def test_missing_file(tmp_path: Path, policy: UploadPolicy) -> None:
    assert (await refused(tmp_path / "nope.png", policy)).reason == "not_found"


async def test_directory(tmp_path: Path, policy: UploadPolicy) -> None:
    error = await refused(tmp_path, policy)
    assert error.reason == "not_a_file" and "is a directory" in error.message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
async def test_fifo_is_refused_without_blocking(tmp_path: Path, policy: UploadPolicy) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    error = await refused(fifo, policy)
    assert error.reason == "not_a_file" and "FIFO" in error.message


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
async def test_dev_zero_is_refused(policy: UploadPolicy) -> None:
    assert (await refused("/dev/zero", policy)).reason == "not_a_file"


async def test_symlink_to_dev_zero_is_refused(tmp_path: Path, policy: UploadPolicy) -> None:
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    assert (await refused(link, policy)).reason == "not_a_file"


async def test_text_file_named_png(tmp_path: Path, policy: UploadPolicy) -> None:
    path = tmp_path / "notes.png"
    path.write_text("just some notes\n")
    error = await refused(path, policy)
    assert error.reason == "not_an_image"
    assert error.message.startswith("not a JPEG, PNG or WebP image (the bytes look like text)")


async def test_gif_is_named_in_the_refusal(tmp_path: Path, policy: UploadPolicy) -> None:
    path = tmp_path / "anim.gif"
    path.write_bytes(image_bytes("GIF"))
    assert "it is a GIF image" in (await refused(path, policy)).message


async def test_type_outside_the_policy(tmp_path: Path, policy: UploadPolicy) -> None:
    narrow = UploadPolicy(max_files=1, kinds=("image",), max_bytes=policy.max_bytes, mime_types=("image/png",))
    path = tmp_path / "a.webp"
    path.write_bytes(image_bytes("WEBP"))
    error = await refused(path, narrow)
    assert error.reason == "unsupported_type" and "WebP" in error.message


async def test_oversized_file_is_refused_before_reading(tmp_path: Path, policy: UploadPolicy) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as file:  # sparse: 10.2 MB without writing them (over 10**7, under 10 MiB)
        file.write(image_bytes("PNG")[:16])
        file.truncate(10_200_000)
    error = await refused(path, policy)
    assert error.reason == "too_large"
    assert "reference is 10.2 MB; the limit is 10 MB" in error.message


async def test_exactly_the_limit_is_fine(tmp_path: Path, small_policy: UploadPolicy) -> None:
    png = image_bytes("PNG")
    path = tmp_path / "padded.png"
    # Trailing bytes after IEND are ignored by decoders, so this is a valid PNG of exactly the limit.
    path.write_bytes(png + b"\0" * (small_policy.max_bytes - len(png)))
    assert (await load(path, small_policy)).size == small_policy.max_bytes


class TestReadDirs:
    @pytest.fixture
    def allowed(self, tmp_path: Path) -> Path:
        allowed = tmp_path / "allowed"
        allowed.mkdir()
        return allowed

    async def test_file_inside(self, allowed: Path, policy: UploadPolicy) -> None:
        (allowed / "a.png").write_bytes(image_bytes("PNG"))
        assert (await load(allowed / "a.png", policy, read_dirs=(allowed,))).width == 64

    async def test_file_outside(self, allowed: Path, png_file: Path, policy: UploadPolicy) -> None:
        error = await refused(png_file, policy, read_dirs=(allowed,))
        assert error.reason == "outside_read_dirs" and str(allowed) in error.message

    async def test_dotdot_escape(self, allowed: Path, png_file: Path, policy: UploadPolicy) -> None:
        sneaky = f"{allowed}/../{png_file.name}"
        assert (await refused(sneaky, policy, read_dirs=(allowed,))).reason == "outside_read_dirs"

    async def test_symlink_inside_to_inside(self, allowed: Path, policy: UploadPolicy) -> None:
        (allowed / "real.png").write_bytes(image_bytes("PNG"))
        (allowed / "link.png").symlink_to(allowed / "real.png")
        ref = await load(allowed / "link.png", policy, read_dirs=(allowed,))
        assert ref.path == (allowed / "real.png").resolve()
        assert ref.filename == "link.png"

    async def test_symlink_inside_pointing_outside(self, allowed: Path, png_file: Path, policy: UploadPolicy) -> None:
        (allowed / "escape.png").symlink_to(png_file)
        error = await refused(allowed / "escape.png", policy, read_dirs=(allowed,))
        assert error.reason == "outside_read_dirs" and str(png_file) not in error.message  # no link target

    async def test_symlinked_directory_pointing_outside(
        self, allowed: Path, png_file: Path, policy: UploadPolicy
    ) -> None:
        (allowed / "sub").symlink_to(png_file.parent)
        error = await refused(allowed / "sub" / png_file.name, policy, read_dirs=(allowed,))
        assert error.reason == "outside_read_dirs"

    async def test_symlink_loop(self, allowed: Path, policy: UploadPolicy) -> None:
        (allowed / "a.png").symlink_to(allowed / "b.png")
        (allowed / "b.png").symlink_to(allowed / "a.png")
        await refused(allowed / "a.png", policy, read_dirs=(allowed,))


class _SwapAfterStat:
    """``os`` for the local-file module, swapping the file right after the stat that checks it.

    The race a path check can't close: between ``os.stat`` (regular file, size) and ``os.open``,
    the path is replaced. The loader must notice (the open descriptor is a different file, or a
    symlink is refused by O_NOFOLLOW) and never read what was swapped in.
    """

    def __init__(self, target: Path, swap: Callable[[], None]) -> None:
        self._target, self._swap, self.swapped = str(target), swap, False

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def stat(self, path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        info = os.stat(path, *args, **kwargs)
        if str(path) == self._target and not self.swapped:
            self.swapped = True
            self._swap()
        return info


def _replace_with(path: Path, make: Callable[[Path], None]) -> Callable[[], None]:
    def swap() -> None:
        fresh = path.with_name(path.name + ".new")
        make(fresh)
        os.replace(fresh, path)  # atomically, as an attacker racing the server would

    return swap


SWAPS: dict[str, Callable[[Path], None]] = {
    "another image": lambda p: p.write_bytes(image_bytes("PNG", (32, 32))),
    "a big file": lambda p: p.write_bytes(image_bytes("PNG") + b"\0" * (11 * 1024 * 1024)),
    "a symlink": lambda p: p.symlink_to("/etc/passwd"),
    "a fifo": lambda p: os.mkfifo(p),
}


@pytest.mark.parametrize("verify", [True, False], ids=["read-whole", "streamed"])
@pytest.mark.parametrize("swap", list(SWAPS), ids=list(SWAPS))
async def test_a_file_swapped_between_stat_and_open_is_refused(
    tmp_path: Path, policy: UploadPolicy, monkeypatch: pytest.MonkeyPatch, swap: str, verify: bool
) -> None:
    from rivya_mcp.references import _local

    path = tmp_path / "cat.png"
    path.write_bytes(image_bytes("PNG", (64, 48)))
    swapping = _SwapAfterStat(path, _replace_with(path, SWAPS[swap]))
    monkeypatch.setattr(_local, "os", swapping)
    error = await refused(path, policy, verify=verify)
    assert swapping.swapped
    assert error.reason in {"changed", "unreadable"}, error.message
    assert "try again" in error.message or "can't open" in error.message
    # Without the swap the same file loads: the refusal is the race's, not the file's.
    monkeypatch.setattr(_local, "os", os)
    path.unlink()
    path.write_bytes(image_bytes("PNG", (64, 48)))
    assert (await load(path, policy, verify=verify)).width == 64


class _DirectorySwapper:
    """Swaps ``folder/sub`` between a real directory and a symlink out of the folders, in a loop.

    The attack of issue 23 item 10: the path is checked while ``sub`` is a directory inside the
    allowed folder, and opened after ``sub`` became a link to a folder outside it.
    """

    def __init__(self, sub: Path, outside: Path) -> None:
        self._sub, self._parked, self._link = sub, sub.with_name("sub.parked"), sub.with_name("sub.link")
        self._link.symlink_to(outside)
        self._stop = threading.Event()
        self.swaps = 0
        self._thread = threading.Thread(target=self._run, name="swapper", daemon=True)

    def _run(self) -> None:
        # Two renames each way, so ``sub`` is missing only between them: it is a directory half of
        # the time and a link out of the folders the other half.
        while not self._stop.is_set():
            os.rename(self._sub, self._parked)
            os.rename(self._link, self._sub)
            time.sleep(0.0002)
            os.rename(self._sub, self._link)
            os.rename(self._parked, self._sub)
            time.sleep(0.0002)
            self.swaps += 1

    def __enter__(self) -> _DirectorySwapper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.mark.parametrize("verify", [True, False], ids=["read-whole", "streamed"])
async def test_a_directory_swapped_for_a_symlink_never_gets_past_read_dirs(
    tmp_path: Path, policy: UploadPolicy, verify: bool
) -> None:
    """Issue 23 item 10: 6 of 300 tries read the outside file. Now none may, and the legitimate
    file is still read when the swap leaves it alone."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "sub").mkdir(parents=True)
    outside.mkdir()
    (allowed / "sub" / "cat.png").write_bytes(image_bytes("PNG", (64, 48)))
    (outside / "cat.png").write_bytes(image_bytes("PNG", (32, 32)))  # the secret: told apart by its size
    target = str(allowed / "sub" / "cat.png")
    widths: list[int] = []
    reasons: list[str] = []
    with _DirectorySwapper(allowed / "sub", outside) as swapper:
        for _ in range(TRIES):
            try:
                loaded = await load(target, policy, read_dirs=(allowed,), verify=verify)
            except ReferenceError as exc:
                reasons.append(exc.reason)
            else:
                widths.append(loaded.width)
                if loaded.stream is not None:
                    loaded.stream.close()
    assert swapper.swaps > TRIES // 10  # the swap really raced the loads
    assert 32 not in widths, f"read the file outside RIVYA_READ_DIRS in {widths.count(32)} of {TRIES} tries"
    assert set(reasons) <= {"outside_read_dirs", "not_found", "changed", "unreadable"}, set(reasons)
    # Undisturbed, the very same request is served.
    assert (await load(target, policy, read_dirs=(allowed,), verify=verify)).width == 64


TRIES = 300


async def test_a_path_is_taken_exactly_as_given_white_space_included(tmp_path: Path, policy: UploadPolicy) -> None:
    """Issue 23 item 11: ``…/cat.png `` was stripped and ``…/cat.png``, another file, was read."""
    (tmp_path / "cat.png").write_bytes(image_bytes("PNG", (64, 48)))
    error = await refused(f"{tmp_path / 'cat.png'} ", policy)
    assert error.reason == "not_found"
    assert "ends with white space" in error.message, error.message
    # A file whose name does end with a space is the one read, not its namesake without it.
    (tmp_path / "cat.png ").write_bytes(image_bytes("PNG", (32, 32)))
    assert (await load(f"{tmp_path / 'cat.png'} ", policy)).width == 32
    assert (await load(tmp_path / "cat.png", policy)).width == 64
    leading = await refused(f" {tmp_path / 'cat.png'}", policy)
    assert leading.reason == "relative_path" and "begins with white space" in leading.message, leading.message
