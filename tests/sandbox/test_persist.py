"""A sandbox with a state folder keeps its tasks, files and links across a restart (issue 23 item 13)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2

from rivya_mcp.sandbox import SandboxConfig, start_sandbox
from tests.sandbox.conftest import AUTH, MODEL, image_bytes, open_image

FAST = SandboxConfig(queued_seconds=0.05, processing_seconds=0.1)


def _create(base: str, prompt: str, key: str) -> dict[str, Any]:
    response = httpx2.post(
        f"{base}/api/v1/generations",
        json={"model": MODEL, "prompt": prompt, "params": {"aspectRatio": "1:1"}},
        headers={**AUTH, "Idempotency-Key": key},
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text  # 200: an idempotent replay
    body: dict[str, Any] = response.json()
    return body


def _get(base: str, path: str) -> httpx2.Response:
    return httpx2.get(f"{base}{path}", headers=AUTH, timeout=10)


def test_tasks_files_and_links_outlive_a_restart_on_the_same_port(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    with start_sandbox(FAST, state_dir=folder) as first:
        assert first.keeps_state
        task = _create(first.base_url, "A lighthouse", "persist-1")
        upload = httpx2.post(
            f"{first.base_url}/api/v1/files",
            files={"file": ("r.png", image_bytes(), "image/png")},
            data={"kind": "image"},
            headers=AUTH,
            timeout=10,
        )
        assert upload.status_code == 201, upload.text
        file = upload.json()
        before = {t["id"]: t for t in first.state.snapshot()["tasks"]}
        port = first.base_url.rsplit(":", 1)[1]
    with start_sandbox(FAST, state_dir=folder) as second:
        assert second.base_url.endswith(f":{port}")  # asked for again: recorded URLs still lead here
        after = {t["id"]: t for t in second.state.snapshot()["tasks"]}
        assert after.keys() == before.keys()
        fixed = ("account", "prompt", "params", "created_at", "finishes_at", "idempotency_key", "reserved_credits")
        assert {k: after[task["id"]][k] for k in fixed} == {k: before[task["id"]][k] for k in fixed}
        got = _get(second.base_url, f"/api/v1/generations/{task['id']}").json()
        assert got["status"] == "succeeded"
        image = httpx2.get(got["result"]["primary_url"], timeout=10)
        assert image.status_code == 200 and open_image(image.content).size == (1024, 1024)
        assert _get(second.base_url, f"/api/v1/files/{file['id']}").status_code == 200
        assert httpx2.get(file["url"], timeout=10).content == image_bytes()
        # The idempotency record came back too: a replay is the same task, not a second charge.
        assert _create(second.base_url, "A lighthouse", "persist-1")["id"] == task["id"]
        assert [e["delta"] for e in second.state.snapshot()["ledger"] if e["delta"] < 0] == [-8]
    assert json.loads((folder / "state.json").read_text())["version"] == 1


def test_a_second_sandbox_on_a_held_folder_keeps_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    with start_sandbox(FAST, state_dir=folder) as first, start_sandbox(FAST, state_dir=folder) as second:
        assert first.keeps_state and not second.keeps_state
        _create(second.base_url, "Not kept", "second-1")
    with start_sandbox(FAST, state_dir=folder) as third:
        assert third.keeps_state and third.state.snapshot()["tasks"] == []


def test_an_unreadable_state_is_kept_aside_and_the_sandbox_starts_empty(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "state.json").write_text("{ not json")
    with start_sandbox(FAST, state_dir=folder) as sandbox:
        assert sandbox.keeps_state and sandbox.state.snapshot()["tasks"] == []
        _create(sandbox.base_url, "A fresh start", "fresh-1")
    assert (folder / "state.json.unreadable").read_text() == "{ not json"
    assert len(json.loads((folder / "state.json").read_text())["state"]["tasks"]) == 1


def test_a_wallet_is_topped_up_to_the_starting_balance_at_each_start(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    with start_sandbox(FAST.updated({"starting_balance": 10}), state_dir=folder) as first:
        _create(first.base_url, "Spend 8", "wallet-1")
        assert _get(first.base_url, "/api/v1/credits").json()["current_credits"] == 2
    with start_sandbox(FAST.updated({"starting_balance": 10}), state_dir=folder) as second:
        assert _get(second.base_url, "/api/v1/credits").json()["current_credits"] == 10
