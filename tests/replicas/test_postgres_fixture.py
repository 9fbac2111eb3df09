"""The test cluster's own contract: no PostgreSQL binaries is a loud failure with the fix, never a skip."""

from __future__ import annotations

import pytest

from tests import _postgres


def test_missing_binaries_fail_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_postgres.glob, "glob", lambda _pattern: [])
    monkeypatch.setattr(_postgres.shutil, "which", lambda _name: None)
    with pytest.raises(RuntimeError, match=r"apt-get install postgresql"), _postgres.throwaway_cluster():
        pytest.fail("a cluster started without binaries")


def test_schema_urls_keep_every_connection_in_their_schema() -> None:
    url = _postgres.schema_url("postgresql://postgres@127.0.0.1:5/postgres", "t_1")
    assert url == "postgresql://postgres@127.0.0.1:5/postgres?options=-csearch_path%3Dt_1"
    assert _postgres.schema_url(url.split("?")[0] + "?sslmode=disable", "t_2").endswith("&options=-csearch_path%3Dt_2")
