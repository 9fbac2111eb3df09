"""Suite-wide check that no API key ever shows up in what the tests capture or write.

Every test's captured stdout, stderr and log (setup, call and teardown) is scanned, and so is
every file the test wrote under its ``tmp_path``; at the end of the session, everything under
pytest's base temp directory (module-scoped dirs: journals, saved images, logs) is scanned too.
A test that must print a key on purpose carries ``@pytest.mark.leaks_api_key_on_purpose`` and is
skipped by the stream scan (its files are still scanned: nothing should persist a key).

The hooks live here (imported by tests/conftest.py) so a pytester meta-test can load them alone.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

KEY_PATTERN = r"rvya_sk_[A-Za-z0-9_\-]{8,}"
_TEXT_KEY = re.compile(KEY_PATTERN)
_BYTES_KEY = re.compile(KEY_PATTERN.encode())
MARKER = "leaks_api_key_on_purpose"
# Files larger than this are images or padding from size tests; a key would sit in the first bytes.
_MAX_SCAN_BYTES = 32 * 1024 * 1024
_STREAM_SECTIONS = ("stdout", "stderr", "log")


def redact(key: str) -> str:
    """Name a leaked key in a failure message without repeating it."""
    return f"{key[:8]}…({len(key)} chars)"


def find_keys(text: str) -> list[str]:
    return _TEXT_KEY.findall(text)


def leaks_in_sections(sections: list[tuple[str, str]], *, when: str | None = None) -> list[str]:
    """``"Captured stderr call: rvya_sk_…(27 chars)"`` for each captured section holding a key.

    ``when`` keeps only that phase's sections: a report repeats the earlier phases' sections, and
    a leak should fail the phase it happened in, once.
    """
    found = []
    for title, content in sections:
        if not any(title.startswith(f"Captured {kind}") for kind in _STREAM_SECTIONS):
            continue
        if when is not None and not title.endswith(f" {when}"):
            continue
        found += [f"{title}: {redact(k)}" for k in dict.fromkeys(find_keys(content))]
    return found


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def leaks_in_tree(root: Path) -> list[str]:
    """``"<path>: rvya_sk_…(n chars)"`` for every regular file under ``root`` holding a key.

    Files are scanned as bytes (sqlite journals and their WAL, image metadata, logs alike).
    """
    found = []
    if not root.is_dir():
        return found
    for path in _files(root):
        try:
            with path.open("rb") as file:
                data = file.read(_MAX_SCAN_BYTES)
        except OSError:
            continue
        for key in dict.fromkeys(_BYTES_KEY.findall(data)):
            found.append(f"{path}: {redact(key.decode())}")
    return found


def decoded_key_parts(text: str, key: str) -> list[str]:
    """Every run in ``text`` that decodes (base64, URL-safe base64 or hex) to 8+ characters of the key."""
    found = []
    probe = key.removeprefix("rvya_sk_")[:8].encode()
    for run in re.findall(r"[A-Za-z0-9+/_=-]{8,}", text):
        bare = run.rstrip("=")
        candidates = []
        for start in range(4):  # a run cut out of a longer encoding starts anywhere
            chunk = bare[start:]
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            for altchars in (b"+/", b"-_"):
                try:
                    candidates.append(base64.b64decode(chunk, altchars=altchars, validate=True))
                except binascii.Error:
                    pass
        for start in range(4):  # after a 0x, say
            try:
                candidates.append(bytes.fromhex(bare[start : len(bare) - (len(bare) - start) % 2]))
            except ValueError:
                pass
        if any(probe in candidate for candidate in candidates):
            found.append(run)
    return found


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: the test prints an API key deliberately; its captured output is not scanned for keys",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield
    problems: list[str] = []
    if item.get_closest_marker(MARKER) is None:
        problems += leaks_in_sections(report.sections, when=report.when)
    if report.when == "teardown":
        tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
        if isinstance(tmp_path, Path):
            problems += leaks_in_tree(tmp_path)
    if problems and not report.failed:
        report.outcome = "failed"
        report.longrepr = "An API key leaked into what this test captured or wrote:\n  " + "\n  ".join(problems)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(factory, "_basetemp", None) is None:
        return  # no test asked for a temporary directory
    problems = leaks_in_tree(factory.getbasetemp())
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "API keys leaked into files under the test temp dir:\n  " + "\n  ".join(problems)
        if reporter is not None:
            reporter.write_sep("=", "API key leak", red=True)
            reporter.write_line(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
