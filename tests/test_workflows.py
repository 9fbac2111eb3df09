"""The GitHub workflows and compose.yaml, validated offline against the schemas check-jsonschema ships
(issue 25 items 4 and 5), and read for what they promise: CI runs .ci/run; one version tag builds and
publishes everything. They cannot run here; docs/releasing.md says what was and was not run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def _validate(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return loaded


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = job.get("steps", [])
    return steps


def _uses(job: dict[str, Any]) -> list[str]:
    return [step["uses"].split("@")[0] for step in _steps(job) if "uses" in step]


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in _steps(job))


def test_the_workflows_are_there() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "release.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_a_workflow_matches_the_github_workflow_schema(workflow: Path) -> None:
    done = _validate("vendor.github-workflows", workflow)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_refuses_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    # A job without runs-on, and a trigger that does not exist.
    broken.write_text("on: {pushed: {}}\njobs:\n  build:\n    steps:\n      - run: true\n", encoding="utf-8")
    done = _validate("vendor.github-workflows", broken)
    assert done.returncode == 1, done.stdout + done.stderr


@pytest.mark.parametrize("compose", ["compose.yaml", "scripts/ci/compose/compose.ci.yaml"])
def test_compose_files_match_the_compose_spec(compose: str) -> None:
    done = _validate("vendor.compose-spec", REPO / compose)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_schema_check_refuses_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  web:\n    image: x\n    ports: 8080\n", encoding="utf-8")
    assert _validate("vendor.compose-spec", broken).returncode == 1


def test_ci_runs_ci_run_on_linux_and_the_portable_tests_elsewhere() -> None:
    jobs = _load(REPO / ".github" / "workflows" / "ci.yml")["jobs"]
    assert "bash .ci/run" in _runs(jobs["linux"])
    portable = jobs["portable"]
    assert set(portable["strategy"]["matrix"]["os"]) == {"macos-latest", "windows-latest"}
    pytest_line = next(s["run"] for s in _steps(portable) if "pytest" in s.get("run", ""))
    paths = [word for word in pytest_line.split() if word.startswith("tests/")]
    assert "tests/e2e" in paths and "tests/server" in paths
    assert all((REPO / path).exists() for path in paths), paths


def test_one_version_tag_builds_and_publishes_everything() -> None:
    release = _load(REPO / ".github" / "workflows" / "release.yml")
    # ruamel reads the key `on` as the string "on" (YAML 1.2), not True.
    assert release["on"] == {"push": {"tags": ["v*"]}}
    assert release["permissions"] == {}
    jobs = release["jobs"]
    build = _runs(jobs["build"])
    assert "python -m build" in build and "twine check --strict" in build and "scripts/build_mcpb.py" in build
    assert 'test "$GITHUB_REF_NAME" = "v$version"' in build  # the tag must name the package's version
    # PyPI by trusted publishing: an OIDC token, no password.
    assert jobs["pypi"]["permissions"] == {"id-token": "write"}
    assert "pypa/gh-action-pypi-publish" in _uses(jobs["pypi"])
    assert "secrets." not in (REPO / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    # The bundle on the GitHub release.
    assert "gh release create" in _runs(jobs["github-release"]) and ".mcpb" in _runs(jobs["github-release"])
    # The container with its SBOM and provenance.
    push = next(s for s in _steps(jobs["container"]) if s.get("uses", "").startswith("docker/build-push-action"))
    assert push["with"]["push"] is True and push["with"]["sbom"] is True
    assert str(push["with"]["provenance"]).startswith("mode=max")
    # server.json to the MCP registry, after PyPI (the registry checks the package exists).
    registry = jobs["mcp-registry"]
    assert registry["needs"] == "pypi" and registry["permissions"]["id-token"] == "write"
    assert "mcp-publisher login github-oidc" in _runs(registry)
    publish = next(s for s in _steps(registry) if "mcp-publisher publish" in s.get("run", ""))
    assert (REPO / publish["working-directory"] / "server.json").is_file()


def test_the_changelog_has_the_section_the_release_notes_are_cut_from() -> None:
    import re

    import rivya_mcp

    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    # The same cut as release.yml's awk: from "## [<version>]" to the next "## ".
    heading = re.search(rf"^## \[?{re.escape(rivya_mcp.__version__)}\]?.*$", changelog, re.MULTILINE)
    assert heading is not None, f"CHANGELOG.md has no section for {rivya_mcp.__version__}"
    section = changelog[heading.end() :].split("\n## ", 1)[0]
    assert section.strip()
