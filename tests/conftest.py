"""Suite-wide fixtures. Part-specific fixtures live in each folder's conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
