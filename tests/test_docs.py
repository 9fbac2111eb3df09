"""scripts/gen_docs.py: the README tables and the packaging manifests are current, and the data the
script documents (ENV_DOCS, TOOL_SUMMARIES) covers exactly what the code has."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rivya_mcp.manifest import DEFAULT_MODEL, get_manifest
from rivya_mcp.settings import Settings
from tests._scripts import load_script

gen_docs = load_script("gen_docs")


@pytest.fixture(scope="module")
def files() -> dict[Path, tuple[str, str]]:
    return gen_docs.generated_files()  # type: ignore[no-any-return]


def test_generated_docs_are_current(files: dict[Path, tuple[str, str]]) -> None:
    diff = gen_docs.drift(files)
    assert not diff, f"run `python scripts/gen_docs.py` and commit the result:\n{diff}"


def test_check_fails_with_a_diff_when_the_readme_drifts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = gen_docs.README.read_text(encoding="utf-8").replace("| `generate_image` |", "| `make_picture` |")
    readme = tmp_path / "README.md"
    readme.write_text(stale, encoding="utf-8")
    monkeypatch.setattr(gen_docs, "README", readme)
    monkeypatch.setattr(gen_docs, "REPO", tmp_path.parent)  # diff labels are relative to REPO
    said: list[str] = []
    assert gen_docs.main(["--check"], out=said.append) == 1
    assert "-| `make_picture` |" in said[0] and "+| `generate_image` |" in said[0]
    assert readme.read_text(encoding="utf-8") == stale  # --check never writes


def test_markers_are_required() -> None:
    with pytest.raises(ValueError, match="tools:start"):
        gen_docs.replace_between("# no markers\n", gen_docs.TOOLS_START, gen_docs.TOOLS_END, "body")


def test_every_env_var_settings_reads_is_described_once() -> None:
    assert set(gen_docs.ENV_DOCS) == set(gen_docs.settings_env_vars())


def test_env_docs_name_real_settings_fields() -> None:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for name, doc in gen_docs.ENV_DOCS.items():
        if doc.field is not None:
            assert doc.field in fields, name
            assert fields[doc.field].default is not dataclasses.MISSING, f"{name}: computed default needs a text"
        else:
            assert doc.default, f"{name}: give a default text or a Settings field"


def test_tool_summaries_cover_the_server_tools(files: dict[Path, tuple[str, str]]) -> None:
    tools = gen_docs.list_server_tools()
    assert set(gen_docs.TOOL_SUMMARIES) == {t["name"] for t in tools}
    assert set(gen_docs.TOOL_MODES) <= set(gen_docs.TOOL_SUMMARIES)


def test_parameter_table_shows_the_narrowed_edit_range_once(files: dict[Path, tuple[str, str]]) -> None:
    readme = files[gen_docs.README][1]
    assert readme.count("Parameters of `generate_image` and `edit_image`") == 1
    assert "Parameters of `edit_image`" not in readme  # no second, near-identical table
    table = readme.split("Parameters of `generate_image` and `edit_image`")[1]
    manifest = get_manifest(DEFAULT_MODEL)
    narrowed = [p for p in manifest.params if "edit" in p.narrow]
    assert narrowed, "the default model narrows no parameter for editing any more; drop this test"
    for param in narrowed:
        edit, generate = param.for_mode("edit"), param.for_mode("generate")
        row = next(line for line in table.splitlines() if line.startswith(f"| `{param.key}` |"))
        assert f"{generate.min:g}–{generate.max:g} (`edit_image`: " in row
        assert f"{edit.min:g}–{edit.max:g})" in row
