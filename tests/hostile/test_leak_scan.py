"""The suite-wide API-key leak scan (tests/_leaks.py) catches real leaks: proven with pytester."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._leaks import MARKER, find_keys, leaks_in_sections, leaks_in_tree, redact

# Built at run time so that no source file, here or in the inner run, holds a key-shaped string.
FAKE_KEY = "rvya_sk_" + "leaky_fake_" * 2

INNER_CONFTEST = "from tests._leaks import pytest_configure, pytest_runtest_makereport, pytest_sessionfinish\n"

INNER_TESTS = f"""
import logging
import pytest

KEY = "rvya_sk_" + "leaky_fake_" * 2

def test_prints_a_key():
    print("connecting with", KEY)

def test_logs_a_key():
    logging.getLogger("rivya_mcp.demo").warning("Authorization: Bearer %s", KEY)

def test_stderr_in_setup(capsys_setup_leak):
    pass

@pytest.fixture
def capsys_setup_leak():
    import sys
    sys.stderr.write(KEY + "\\n")

def test_writes_a_key_to_its_tmp_path(tmp_path):
    (tmp_path / "journal.sqlite3").write_bytes(b"\\x00header" + KEY.encode() + b"\\x00")

def test_clean(tmp_path):
    print("rvya_sk_short")  # too short to be a key
    (tmp_path / "ok.txt").write_text("nothing to see")

@pytest.mark.{MARKER}
def test_deliberate_print_is_excluded():
    print(KEY)
"""

INNER_MODULE_DIR = """
import pytest

KEY = "rvya_sk_" + "leaky_fake_" * 2

@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    path = tmp_path_factory.mktemp("shared")
    (path / "server.log").write_text("started with key " + KEY)
    return path

def test_uses_a_module_dir(shared):
    assert shared.is_dir()
"""


@pytest.mark.leaks_api_key_on_purpose  # the inner run's report, echoed here, shows its leaked keys
def test_the_hooks_fail_leaking_tests_and_pass_clean_ones(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", f"--basetemp={pytester.path / 'inner-tmp'}")
    # A leak fails the phase it happened in: the call (failed), a setup or teardown (error).
    result.assert_outcomes(passed=3, failed=2, errors=2)
    expected = {
        "test_prints_a_key": "FAILED",
        "test_logs_a_key": "FAILED",
        "test_stderr_in_setup": "ERROR",
        "test_writes_a_key_to_its_tmp_path": "ERROR",
    }
    for name, outcome in expected.items():
        result.stdout.fnmatch_lines([f"{outcome} test_inner.py::{name}*"])
    result.stdout.fnmatch_lines(["*An API key leaked*", f"*{redact(FAKE_KEY)}*"])
    _forget_inner_leaks(pytester.path)


@pytest.mark.leaks_api_key_on_purpose
def test_the_session_scan_catches_module_scoped_temp_dirs(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_module_dir=INNER_MODULE_DIR)
    result = pytester.runpytest("-p", "no:cacheprovider", f"--basetemp={pytester.path / 'inner-tmp'}")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*API key leak*", "*server.log*"])
    _forget_inner_leaks(pytester.path)


def test_scanning_functions(tmp_path: Path) -> None:
    assert find_keys(f"x {FAKE_KEY} y rvya_sk_short") == [FAKE_KEY]
    assert leaks_in_sections([("Captured log call", f"INFO key={FAKE_KEY}"), ("Captured stdout setup", "fine")]) == [
        f"Captured log call: {redact(FAKE_KEY)}"
    ]
    assert FAKE_KEY not in redact(FAKE_KEY)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "image.png").write_bytes(b"\x89PNG....tEXtComment\x00" + FAKE_KEY.encode())
    found = leaks_in_tree(tmp_path)
    assert len(found) == 1 and "image.png" in found[0]
    (tmp_path / "sub" / "image.png").unlink()  # this test's own tmp_path is scanned at teardown
    assert leaks_in_tree(tmp_path) == []


def _forget_inner_leaks(root: Path) -> None:
    """The inner run's leaked files sit under this session's temp dir; the outer scan must not see them."""
    for line in leaks_in_tree(root):
        Path(line.rsplit(": ", 1)[0]).unlink()
    assert leaks_in_tree(root) == []
