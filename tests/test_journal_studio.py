"""The journal's part in issue 26, on both stores (SQLite and a real PostgreSQL server):
a region edit's reference and mask kept for whoever saves its result, scoped to its owner; and
listings in pages, filtered by the text of their prompt (the gallery)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rivya_mcp.journal import TaskJournal, open_journal
from tests._journals import store_for

START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.moment = START

    def __call__(self) -> datetime:
        self.moment += timedelta(seconds=1)
        return self.moment


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "data" / "journal.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def journal(location: str) -> Iterator[TaskJournal]:
    with open_journal(location, now=Clock(), upstream="https://rivya.ai", api_key="rvya_sk_alice") as opened:
        yield opened


def _intent(journal: TaskJournal, key: str, prompt: str) -> None:
    journal.record_intent(idempotency_key=key, model="flux-kontext-max", mode="edit", prompt=prompt, params={})


REFERENCE = bytes(range(256)) * 4000  # ~1 MB, every byte value (a blob, not text)
MASK = b"\x89PNG\r\n\x1a\n mask"


def test_a_composition_is_kept_once_per_pair_and_read_back_whole(journal: TaskJournal, location: str) -> None:
    for key in ("k", "k#2", "k#3"):
        _intent(journal, key, "a lake")
        journal.record_composition(key, reference=REFERENCE, mask=MASK, feather_px=8, output_format="png")
    journal.record_composition("k", reference=REFERENCE, mask=MASK, feather_px=8, output_format="png")  # a re-send
    kept = journal.composition("k#2")
    assert kept is not None
    assert (kept.reference, kept.mask, kept.feather_px, kept.output_format) == (REFERENCE, MASK, 8, "png")
    assert journal.composition("unknown") is None
    store = store_for(location)
    try:
        with store.read() as tx:
            assert tx.one("SELECT COUNT(*) FROM composition_sources") == (1,)  # three candidates, one copy
            assert tx.one("SELECT COUNT(*) FROM compositions") == (3,)
    finally:
        store.close()


def test_another_account_never_reads_a_composition(journal: TaskJournal, location: str) -> None:
    _intent(journal, "private", "my garden")
    journal.record_composition("private", reference=REFERENCE, mask=MASK, feather_px=8, output_format="png")
    with open_journal(location, upstream="https://rivya.ai", api_key="rvya_sk_mallory") as other:
        assert other.composition("private") is None
    assert journal.composition("private") is not None


def test_forgetting_a_refused_composition_drops_its_bytes_unless_shared(journal: TaskJournal, location: str) -> None:
    for key in ("a", "b"):
        _intent(journal, key, "x")
        journal.record_composition(key, reference=REFERENCE, mask=MASK, feather_px=8, output_format="jpeg")
    journal.forget_composition("a")
    assert journal.composition("a") is None and journal.composition("b") is not None
    journal.forget_composition("b")
    store = store_for(location)
    try:
        with store.read() as tx:
            assert tx.one("SELECT COUNT(*) FROM composition_sources") == (0,)
    finally:
        store.close()


def test_listings_page_and_filter_by_prompt_text(journal: TaskJournal) -> None:
    prompts = ["A red fox", "a FOX in snow", "50% off_sale", "a heron", "Foxglove"]
    for number, prompt in enumerate(prompts):
        _intent(journal, f"k{number}", prompt)
    newest_first = [e.prompt for e in journal.list(limit=10)]
    assert newest_first == list(reversed(prompts))
    assert [e.prompt for e in journal.list(limit=2, offset=1)] == ["a heron", "50% off_sale"]
    assert [e.prompt for e in journal.list(limit=10, offset=5)] == []
    assert [e.prompt for e in journal.list(limit=10, query="fox")] == ["Foxglove", "a FOX in snow", "A red fox"]
    # The text is plain text: % and _ match themselves only.
    assert [e.prompt for e in journal.list(limit=10, query="%")] == ["50% off_sale"]
    assert [e.prompt for e in journal.list(limit=10, query="o_f")] == []  # a wildcard would match "off"
    assert [e.prompt for e in journal.list(limit=10, query="ff_s")] == ["50% off_sale"]
    assert [e.prompt for e in journal.list(limit=1, offset=1, query="fox")] == ["a FOX in snow"]
