"""The journal's webhook records (schema step 6): event ids applied once, and the endpoint record
kept per upstream and account. On both stores: a SQLite file and PostgreSQL (shared by replicas)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rivya_mcp.journal import open_journal

KEY = "rvya_sk_test_webhook_records"


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


def test_an_event_id_is_new_once_for_every_process(location: str) -> None:
    with open_journal(location) as journal:
        assert journal.first_sight_of_event("evt_1") is True
        assert journal.first_sight_of_event("evt_1") is False
    with open_journal(location) as other:  # another process or replica on the same journal
        assert other.first_sight_of_event("evt_1") is False
        assert other.first_sight_of_event("evt_2") is True


def test_the_endpoint_record_belongs_to_one_upstream_and_account(location: str) -> None:
    with open_journal(location, upstream="https://rivya.ai", api_key=KEY) as journal:
        assert journal.owned_meta("webhook_endpoint") is None
        journal.set_owned_meta("webhook_endpoint", '{"secret": "whsec_a"}')
        journal.set_owned_meta("webhook_endpoint", '{"secret": "whsec_b"}')  # a rotation replaces it
        assert journal.owned_meta("webhook_endpoint") == '{"secret": "whsec_b"}'
    with open_journal(location, upstream="https://rivya.ai", api_key=KEY) as replica:
        assert replica.owned_meta("webhook_endpoint") == '{"secret": "whsec_b"}'
    with open_journal(location, upstream="https://rivya.ai", api_key=KEY + "_other") as other_account:
        assert other_account.owned_meta("webhook_endpoint") is None
    with open_journal(location, upstream="http://127.0.0.1:8765", api_key=KEY) as sandbox:
        assert sandbox.owned_meta("webhook_endpoint") is None
    with open_journal(location) as unscoped, pytest.raises(ValueError, match="scoped"):
        unscoped.owned_meta("webhook_endpoint")
