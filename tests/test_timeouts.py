"""A hung test fails on its own, with the suite's per-test timeout, and the run goes on."""

from __future__ import annotations

import textwrap

import pytest

HANGING = textwrap.dedent(
    """
    import threading

    import anyio
    import pytest


    @pytest.fixture
    def anyio_backend() -> str:
        return "asyncio"


    @pytest.mark.anyio
    async def test_hangs_on_the_event_loop() -> None:
        await anyio.Event().wait()  # nobody ever sets it, as with a lock that is never released


    def test_hangs_in_a_blocking_call() -> None:
        threading.Event().wait()


    def test_after_the_hangs() -> None:
        assert True
    """
)


def test_the_suite_has_a_per_test_timeout(pytestconfig: pytest.Config) -> None:
    timeout = float(pytestconfig.getini("timeout"))
    assert 0 < timeout <= 300
    assert pytestconfig.getini("timeout_method") == "signal"


def test_a_hanging_test_fails_and_the_run_goes_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hanging=HANGING)
    # The same plugin and method as the suite, with a short limit; in a subprocess, so that its
    # alarm signal cannot meet this test's own.
    result = pytester.runpytest_subprocess("-p", "timeout", "-o", "timeout=1", "-o", "timeout_method=signal")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "FAILED test_hanging.py::test_hangs_on_the_event_loop - Failed: Timeout*",
            "FAILED test_hanging.py::test_hangs_in_a_blocking_call - Failed: Timeout*",
        ]
    )
