"""Suite-wide fixtures and checks. Part-specific fixtures live in each folder's conftest.py."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

# The API-key leak scan (captured output, tmp files, the session's temp dir): see tests/_leaks.py.
from tests._leaks import pytest_configure as _leak_scan_configure
from tests._leaks import pytest_runtest_makereport, pytest_sessionfinish
from tests._postgres import fresh_schema, throwaway_cluster
from tests._release import Dist, build_dist

pytest_plugins = ["pytester"]

__all__ = ["pytest_runtest_makereport", "pytest_sessionfinish"]


def pytest_configure(config: pytest.Config) -> None:
    _leak_scan_configure(config)
    # Our own DEBUG records are captured too, so the leak scan sees every line we could log.
    logging.getLogger("rivya_mcp").setLevel(logging.DEBUG)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL: RIVYA_TEST_DATABASE_URL, else a throwaway cluster started for the session."""
    given = os.environ.get("RIVYA_TEST_DATABASE_URL")
    if given:
        yield given
        return
    with throwaway_cluster() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A URL to an empty schema of its own (each test starts from nothing)."""
    return fresh_schema(postgres_server)


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """The wheel and the sdist, built once per session with ``python -m build`` (tests/_release.py)."""
    return build_dist(tmp_path_factory.mktemp("dist"))
