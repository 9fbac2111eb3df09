"""Each tool's input schema is pinned by a checked-in golden file (tests/server/golden/*.json).

Regenerate after an intended change with ``RIVYA_UPDATE_GOLDEN=1 pytest tests/server/test_golden_schemas.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from rivya_mcp.server import build_server
from rivya_mcp.settings import Settings

pytestmark = pytest.mark.anyio

GOLDEN = Path(__file__).parent / "golden"
TOOLS = ("generate_image", "edit_image", "upload_reference", "get_task", "get_credits", "list_tasks")


async def _schemas(settings: Settings) -> dict[str, dict[str, Any]]:
    async with Client(build_server(settings)) as client:
        return {t.name: t.input_schema for t in (await client.list_tools()).tools}


@pytest.mark.parametrize("tool", TOOLS)
async def test_input_schema_matches_golden(tool: str, tmp_path: Path) -> None:
    schemas = await _schemas(Settings(output_dir=tmp_path / "out", data_dir=tmp_path / "data"))
    path = GOLDEN / f"{tool}.json"
    if os.environ.get("RIVYA_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(schemas[tool], indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert schemas[tool] == json.loads(path.read_text(encoding="utf-8"))


async def test_no_tool_is_missing_a_golden_file(tmp_path: Path) -> None:
    schemas = await _schemas(Settings(output_dir=tmp_path / "out", data_dir=tmp_path / "data"))
    assert sorted(schemas) == sorted(TOOLS) == sorted(p.stem for p in GOLDEN.glob("*.json"))
