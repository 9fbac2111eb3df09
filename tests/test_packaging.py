"""Packaging manifests: the MCP Bundle manifest is valid for the pinned mcpb release, server.json is
valid for the MCP registry, and both agree with the code (version, environment variables, tools)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from packaging.requirements import Requirement

import rivya_mcp
from rivya_mcp.settings import SettingError, Settings
from tests._scripts import load_script

REPO = Path(__file__).resolve().parents[1]
MCPB_MANIFEST = REPO / "manifests" / "manifest.json"
SERVER_JSON = REPO / "manifests" / "server.json"

build_mcpb = load_script("build_mcpb")
gen_docs = load_script("gen_docs")
mcpb_entry = load_script("mcpb_entry")

# The parts of the MCP registry's server.json schema this file uses, written from
# https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json (ServerDetail,
# Package, StdioTransport, KeyValueInput/Input, Repository).
REGISTRY_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["name", "description", "version"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "name": {"type": "string", "minLength": 3, "maxLength": 200, "pattern": r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$"},
        "title": {"type": "string", "minLength": 1, "maxLength": 100},
        "description": {"type": "string", "minLength": 1, "maxLength": 100},
        "version": {"type": "string", "maxLength": 255},
        "websiteUrl": {"type": "string", "format": "uri"},
        "repository": {
            "type": "object",
            "required": ["url", "source"],
            "properties": {"url": {"type": "string"}, "source": {"type": "string"}, "subfolder": {"type": "string"}},
        },
        "packages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["registryType", "identifier", "transport"],
                "properties": {
                    "registryType": {"type": "string"},
                    "registryBaseUrl": {"type": "string", "format": "uri"},
                    "identifier": {"type": "string"},
                    "version": {"type": "string", "minLength": 1, "maxLength": 255, "not": {"const": "latest"}},
                    "runtimeHint": {"type": "string"},
                    "transport": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"enum": ["stdio", "streamable-http", "sse"]}},
                    },
                    "environmentVariables": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "description": {"type": "string"},
                                "isRequired": {"type": "boolean"},
                                "isSecret": {"type": "boolean"},
                                "default": {"type": "string"},
                                "format": {"enum": ["string", "number", "boolean", "filepath"]},
                                "placeholder": {"type": "string"},
                                "choices": {"type": "array", "items": {"type": "string"}},
                                "value": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}
REGISTRY_NAME = "io.github.rivya-mcp/rivya-mcp"
# Version ranges are refused by the registry: a package version must name one release.
RANGE = re.compile(r"[\^~<>=*|,\s]|\.x\b|^latest$")


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def mcpb_dir() -> Path:
    """The pinned @anthropic-ai/mcpb package, npm-installed once into .cache/npm and reused."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm/node not on PATH: the MCP Bundle manifest is checked with the mcpb npm package")
    return build_mcpb.ensure_mcpb()  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def env_vars() -> list[str]:
    return gen_docs.settings_env_vars()  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def server_tools(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    from mcp import Client

    from rivya_mcp.server import build_server

    async def listed(settings: Settings) -> list[dict[str, Any]]:
        async with Client(build_server(settings)) as client:
            result = await client.list_tools()
        return [{"name": t.name, "description": t.description} for t in result.tools]

    home = tmp_path_factory.mktemp("server")
    return anyio.run(listed, Settings(output_dir=home / "images", data_dir=home / "data"))


# --- MCP Bundle manifest -----------------------------------------------------------------------


def test_mcpb_manifest_matches_the_json_schema_shipped_in_mcpb(mcpb_dir: Path) -> None:
    manifest = _json(MCPB_MANIFEST)
    schema_path = mcpb_dir / "dist" / f"mcpb-manifest-v{manifest['manifest_version']}.schema.json"
    assert schema_path.is_file(), f"mcpb {build_mcpb.MCPB_VERSION} ships no schema for this manifest_version"
    schema = _json(schema_path)
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(manifest)
    ]
    assert problems == []


def test_mcpb_validate_accepts_the_manifest(mcpb_dir: Path) -> None:
    result = build_mcpb.run_mcpb(mcpb_dir, "validate", str(MCPB_MANIFEST))
    assert result.returncode == 0, result.stdout + result.stderr


def test_mcpb_validate_is_not_a_rubber_stamp(mcpb_dir: Path, tmp_path: Path) -> None:
    broken = _json(MCPB_MANIFEST)
    broken["server"]["type"] = "ruby"
    (tmp_path / "manifest.json").write_text(json.dumps(broken), encoding="utf-8")
    result = build_mcpb.run_mcpb(mcpb_dir, "validate", str(tmp_path / "manifest.json"))
    assert result.returncode != 0


def test_bundle_runs_the_package_with_uv() -> None:
    manifest = _json(MCPB_MANIFEST)
    server = manifest["server"]
    # "uv" (manifest 0.4): the host installs Python and the compiled dependencies; see manifests/README.md.
    assert manifest["manifest_version"] == "0.4"
    assert server["type"] == "uv"
    assert server["entry_point"] == "server/main.py"
    assert server["mcp_config"]["args"][-1] == server["entry_point"]
    assert manifest["compatibility"]["runtimes"]["python"] == _pyproject()["project"]["requires-python"]
    assert manifest["license"] == _pyproject()["project"]["license"]


def test_user_config_maps_the_key_and_output_folder(env_vars: list[str]) -> None:
    manifest = _json(MCPB_MANIFEST)
    user_config = manifest["user_config"]
    env = manifest["server"]["mcp_config"]["env"]
    assert user_config["api_key"]["type"] == "string"
    assert user_config["api_key"]["sensitive"] is True
    assert user_config["api_key"]["required"] is True
    assert user_config["output_dir"]["type"] == "directory"
    assert user_config["output_dir"]["required"] is False
    # No default: Claude Desktop does not expand ${HOME} in defaults (mcpb#251); a blank field reaches
    # the server as a placeholder that server/main.py drops, so the server's own default applies.
    assert "default" not in user_config["output_dir"]
    assert env == {"RIVYA_API_KEY": "${user_config.api_key}", "RIVYA_OUTPUT_DIR": "${user_config.output_dir}"}
    assert set(env) <= set(env_vars)
    used = {m for value in env.values() for m in re.findall(r"\$\{user_config\.([^}]+)\}", value)}
    assert used == set(user_config)


def test_bundle_holds_what_uv_needs_to_build_and_run(mcpb_dir: Path, tmp_path: Path) -> None:
    bundle = build_mcpb.build(tmp_path, package_dir=mcpb_dir)
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        assert archive.read("manifest.json") == MCPB_MANIFEST.read_bytes()
        assert archive.read("server/main.py") == (REPO / "scripts" / "mcpb_entry.py").read_bytes()
    expected = {"pyproject.toml", "README.md", "LICENSE", "src/rivya_mcp/__init__.py", "src/rivya_mcp/__main__.py"}
    expected.add("hatch_build.py")  # pyproject.toml names it: without it uv cannot build the bundle
    # Package data (the MCP Apps viewer's HTML, py.typed, …): every file of the package, found by walking it.
    package = REPO / "src" / "rivya_mcp"
    expected |= {
        f"src/rivya_mcp/{p.relative_to(package).as_posix()}"
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    expected |= {f"manifests/models/{p.name}" for p in (REPO / "manifests" / "models").glob("*.json")}
    assert expected <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert bundle.name == f"rivya-mcp-{rivya_mcp.__version__}.mcpb"


def test_entry_point_drops_placeholders_the_host_left_unsubstituted() -> None:
    environ = {
        "RIVYA_OUTPUT_DIR": "${user_config.output_dir}",
        "RIVYA_API_KEY": "rvya_sk_real",
        "RIVYA_BASE_URL": " ${user_config.base_url} ",
        "HOME": "${HOME}",
        "RIVYA_DATA_DIR": "/data/${user}",
    }
    dropped = mcpb_entry.drop_unsubstituted(environ)
    assert sorted(dropped) == ["RIVYA_BASE_URL", "RIVYA_OUTPUT_DIR"]
    assert environ == {"RIVYA_API_KEY": "rvya_sk_real", "HOME": "${HOME}", "RIVYA_DATA_DIR": "/data/${user}"}


# --- MCP registry server.json ------------------------------------------------------------------


def test_server_json_matches_the_registry_schema() -> None:
    data = _json(SERVER_JSON)
    validator = jsonschema.Draft7Validator(REGISTRY_SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    problems = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(data)]
    assert problems == []
    assert re.fullmatch(
        r"https://static\.modelcontextprotocol\.io/schemas/\d{4}-\d{2}-\d{2}/server\.schema\.json", data["$schema"]
    )


def test_server_json_describes_the_pypi_package() -> None:
    data = _json(SERVER_JSON)
    assert data["name"] == REGISTRY_NAME
    [package] = data["packages"]
    assert package["registryType"] == "pypi"
    assert package["identifier"] == _pyproject()["project"]["name"]
    assert package["transport"] == {"type": "stdio"}
    assert not RANGE.search(package["version"])


def test_server_json_environment_variables(env_vars: list[str]) -> None:
    [package] = _json(SERVER_JSON)["packages"]
    variables = {v["name"]: v for v in package["environmentVariables"]}
    assert len(variables) == len(package["environmentVariables"])
    assert set(variables) == set(env_vars)
    assert all(v["description"].strip() for v in variables.values())
    assert variables["RIVYA_API_KEY"]["isSecret"] is True
    assert variables["RIVYA_API_KEY"]["isRequired"] is True
    assert variables["RIVYA_MCP_AUTH_TOKEN"]["isSecret"] is True
    # The database URL may carry a password.
    secrets = [n for n, v in variables.items() if v["isSecret"]]
    assert secrets == [
        "RIVYA_API_KEY",
        "RIVYA_MCP_AUTH_TOKEN",
        "RIVYA_DATABASE_URL",
        "RIVYA_OAUTH_CLIENT_SECRET",
        "RIVYA_SECRET_KEY",
    ]


# --- Agreement with the code -------------------------------------------------------------------


def test_versions_agree_with_the_package() -> None:
    pyproject = _pyproject()
    # The version lives in one place; hatch reads it from __init__.py.
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "src/rivya_mcp/__init__.py"
    server = _json(SERVER_JSON)
    versions = {
        "manifest.json": _json(MCPB_MANIFEST)["version"],
        "server.json": server["version"],
        "server.json package": server["packages"][0]["version"],
    }
    assert versions == dict.fromkeys(versions, rivya_mcp.__version__)


def test_env_var_scan_finds_what_settings_really_read(env_vars: list[str], tmp_path: Path) -> None:
    # The scan is the reference for both manifests; each name it finds must change Settings.
    assert "RIVYA_API_KEY" in env_vars
    assert len(env_vars) == len(set(env_vars))
    baseline = Settings.from_env({})

    def changes(name: str, value: str) -> bool:
        try:
            return Settings.from_env({name: value}) != baseline
        except SettingError:  # refused (a relative RIVYA_READ_DIRS): read all the same
            return True

    for name in env_vars:
        candidates = ("7", "true", "false", str(tmp_path))
        assert any(changes(name, value) for value in candidates), name


def test_mcpb_tools_are_the_server_tools(server_tools: list[dict[str, Any]]) -> None:
    assert _json(MCPB_MANIFEST)["tools"] == server_tools
    assert _json(MCPB_MANIFEST)["tools_generated"] is False


def _requirement(name: str) -> Requirement:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (found,) = [r for r in map(Requirement, declared) if r.name == name]
    return found


@pytest.mark.parametrize(
    ("system", "machine", "implementation", "python", "wanted"),
    [
        # zlib-ng 1.x ships wheels for these (checked with `pip download --only-binary :all: --platform …`).
        ("Linux", "x86_64", "CPython", "3.11", True),
        ("Linux", "aarch64", "CPython", "3.14", True),
        ("Darwin", "arm64", "CPython", "3.13", True),
        ("Darwin", "x86_64", "CPython", "3.12", True),
        # No wheel, or no way to tell from a marker whether there is one: pip would compile it.
        ("Windows", "AMD64", "CPython", "3.12", False),  # a 32-bit Python on 64-bit Windows says AMD64 too
        ("Windows", "ARM64", "CPython", "3.13", False),
        ("Linux", "i686", "CPython", "3.12", False),
        ("Linux", "armv7l", "CPython", "3.12", False),
        ("Linux", "x86_64", "PyPy", "3.11", False),
        ("Linux", "x86_64", "CPython", "3.15", False),
    ],
)
def test_zlib_ng_is_required_only_where_a_wheel_is_installed(
    system: str, machine: str, implementation: str, python: str, wanted: bool
) -> None:
    marker = _requirement("zlib-ng").marker
    assert marker is not None
    environment = {
        "platform_system": system,
        "platform_machine": machine,
        "platform_python_implementation": implementation,
        "python_version": python,
        "python_full_version": f"{python}.0",
    }
    assert marker.evaluate(environment) is wanted


def _load_build_hook() -> Any:
    spec = importlib.util.spec_from_file_location("hatch_build", REPO / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("version", "refused"),
    [((3, 10, 13), True), ((3, 9, 18), True), ((3, 11, 0), False), ((3, 13, 1), False)],
)
def test_an_older_python_is_refused_at_install_with_a_message_that_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], version: tuple[int, int, int], refused: bool
) -> None:
    # pip resolves dependencies before it applies requires-python to an editable install, so on
    # 3.10 the Quick start ended in "No matching distribution found for httpx2". The metadata hook
    # runs first, on the installing interpreter.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "custom" in pyproject["tool"]["hatch"]["metadata"]["hooks"]
    assert pyproject["project"]["requires-python"] == ">=3.11"
    hook_module = _load_build_hook()
    hook = hook_module.PythonVersionCheck(str(REPO), {})
    monkeypatch.setattr(sys, "version_info", version)
    if refused:
        with pytest.raises(SystemExit) as exited:
            hook.update({})
        assert exited.value.code == 1
        assert re.search(r"needs Python 3\.11 or newer; this is Python 3\.\d+\.\d+", capsys.readouterr().err)
    else:
        hook.update({})
        assert capsys.readouterr().err == ""


def _python_310() -> str:
    """A working Python 3.10: ``python3.10`` on PATH, pyenv's (whose shim only runs a version that is
    selected), or one uv installed. None is a failure, not a skip: CI has one (.github/workflows/ci.yml)."""
    from uv import find_uv_bin

    candidates = [shutil.which("python3.10")]
    pyenv = shutil.which("pyenv")
    if pyenv is not None:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False).stdout.strip()
        candidates += sorted(str(p) for p in Path(root).glob("versions/3.10*/bin/python3.10"))
    found = subprocess.run(
        [find_uv_bin(), "python", "find", "3.10"],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"UV_PYTHON_DOWNLOADS": "never"},
    )
    candidates.append(found.stdout.strip() if found.returncode == 0 else None)
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 10)":
            return candidate
    raise AssertionError("no Python 3.10 found (python3.10 on PATH, or pyenv's): install one to run this test")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_quick_start_on_python_3_10_shows_the_reason_first(tmp_path: Path) -> None:
    # The Quick start's first command, on 3.10. The message used to be line 34 of 44, at the end of
    # a traceback through hatchling; now it is the whole of the build's output that pip quotes.
    venv_dir = tmp_path / "venv310"
    subprocess.run([_python_310(), "-m", "venv", str(venv_dir)], check=True, timeout=120)
    done = subprocess.run(
        [str(venv_dir / "bin" / "pip"), "install", "-q", "-e", str(REPO)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    lines = (done.stdout + done.stderr).splitlines()
    where = [i for i, line in enumerate(lines) if "rivya-mcp needs Python 3.11 or newer; this is Python 3.10" in line]
    assert where and where[0] < 8, "\n".join(lines)
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    assert len(lines) < 25, "\n".join(lines)
