"""``rivya-mcp usage``: spend per person and UTC day from the journal, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rivya_mcp.cli import main
from rivya_mcp.journal import TaskJournal, UsageRow, open_journal
from rivya_mcp.usage import SERVER_LABEL, format_usage

UPSTREAM = "https://rivya.ai"
OPERATOR = "rvya_sk_usage_operator_key_0123456789"
ADA = "rivya:" + "a" * 32
BOB = "oauth:https://idp.example#bob"


def test_the_table_has_a_row_per_person_and_day_and_totals() -> None:
    rows = [
        UsageRow("2026-05-12", ADA, 2, 16.0),
        UsageRow("2026-05-12", None, 1, 8.0),
        UsageRow("2026-05-11", ADA, 1, 4.5),
    ]
    text = format_usage(rows, {ADA: "Ada"}, days=2)
    lines = text.splitlines()
    assert lines[0].split() == ["Day", "(UTC)", "Person", "Name", "Tasks", "Credits"]
    assert lines[2].split() == ["2026-05-12", ADA, "Ada", "2", "16"]
    assert lines[3].startswith("2026-05-12") and SERVER_LABEL in lines[3] and lines[3].split()[-2:] == ["1", "8"]
    assert lines[4].split() == ["2026-05-11", ADA, "Ada", "1", "4.5"]
    assert lines[6].split() == ["2", "day(s)", ADA, "Ada", "3", "20.5"]  # the biggest spender first
    assert lines[7].split()[-2:] == ["1", "8"] and SERVER_LABEL in lines[7]
    assert format_usage([], {}, days=7) == "No tasks recorded in the last 7 day(s).\n"


def _record(journal: TaskJournal, person: str | None, key: str, *, task: bool, credits: float) -> None:
    view = journal.scoped(
        upstream=UPSTREAM, api_key=OPERATOR if person is None or person == BOB else "rvya_sk_ada_own", person=person
    )
    view.record_intent(
        idempotency_key=key, model="flux-kontext-max", mode="generate", prompt="p", params={}, cost=credits
    )
    if task:
        view.attach_task(key, task_id=f"task_{key}", status="queued", reserved_credits=credits)


def _fill(location: str) -> None:
    now = datetime.now(UTC)
    clock = [now - timedelta(days=1)]
    with open_journal(location, now=lambda: clock[0], upstream=UPSTREAM, api_key=OPERATOR) as journal:
        _record(journal, ADA, "ada-yesterday", task=True, credits=8)
        _record(journal, None, "server-yesterday", task=True, credits=8)
        clock[0] = now
        _record(journal, ADA, "ada-today-1", task=True, credits=8)
        _record(journal, ADA, "ada-today-2", task=True, credits=8)
        _record(journal, BOB, "bob-today", task=False, credits=8)  # in flight: counted, not yet a task
        with journal.store.write() as tx:
            tx.execute(
                "INSERT INTO identity_people (person_id, display_name, key_box, created_at, updated_at) "
                "VALUES (?, 'Ada', 'sealed', 0, 0)",
                (ADA,),
            )
    # A sandbox row in the same journal is not spend at the configured base URL.
    with open_journal(location, upstream="http://127.0.0.1:8765", api_key=OPERATOR) as sandbox:
        sandbox.record_intent(idempotency_key="sandbox", model="m", mode="generate", prompt="p", params={}, cost=99)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_usage_prints_spend_per_person_and_day(
    store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    for name in ("RIVYA_API_KEY", "RIVYA_DATABASE_URL", "RIVYA_MCP_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RIVYA_BASE_URL", UPSTREAM)
    monkeypatch.setenv("RIVYA_DATA_DIR", str(tmp_path / "data"))
    if store == "postgres":
        location = str(request.getfixturevalue("postgres_url"))
        monkeypatch.setenv("RIVYA_DATABASE_URL", location)
    else:
        (tmp_path / "data").mkdir()
        location = str(tmp_path / "data" / "journal.sqlite3")
    _fill(location)
    monkeypatch.setenv("RIVYA_API_KEY", OPERATOR)  # set, to show it is never printed

    assert main(["usage", "--days", "2"]) == 0
    out = capsys.readouterr().out
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    lines = out.splitlines()
    assert lines[0].startswith(f"Credits spent per person and UTC day at {UPSTREAM}")
    assert [today, ADA, "Ada", "2", "16"] in [line.split() for line in lines]
    assert [today, BOB, "0", "8"] in [line.split() for line in lines]
    assert [yesterday, ADA, "Ada", "1", "8"] in [line.split() for line in lines]
    assert any(line.startswith(yesterday) and SERVER_LABEL in line for line in lines)
    assert ["2", "day(s)", ADA, "Ada", "3", "24"] in [line.split() for line in lines]
    assert "99" not in out  # the sandbox row is not spend at this base URL
    assert OPERATOR not in out and "rvya_sk" not in out and "sealed" not in out

    assert main(["usage", "--days", "1"]) == 0
    assert yesterday not in capsys.readouterr().out.split("since", 1)[1]


def test_usage_without_a_journal_says_so_and_bad_days_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RIVYA_DATABASE_URL", raising=False)
    monkeypatch.setenv("RIVYA_DATA_DIR", str(tmp_path / "nothing"))
    assert main(["usage"]) == 0
    assert "nothing was spent here yet" in capsys.readouterr().out
    assert not (tmp_path / "nothing").exists()  # reading usage creates no journal
    assert main(["usage", "--days", "0"]) == 2
    assert "--days must be 1 or more" in capsys.readouterr().err
