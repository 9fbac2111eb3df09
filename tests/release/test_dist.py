"""The wheel and the sdist (issue 25 item 1): what `python -m build` makes, what the wheel carries, and
the wheel installed where a user would have it (a fresh venv outside the checkout, an empty HOME, or
`uvx --from <wheel>`) running the demo; the `postgres` extra installed from the wheel (issue 23 item 15).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import anyio
import httpx2
import psycopg
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from packaging.requirements import Requirement
from PIL import Image

import rivya_mcp
from rivya_mcp.sandbox import SandboxConfig, start_sandbox
from tests._release import (
    EXE,
    REPO,
    Dist,
    fresh_venv,
    install_dir,
    newcomer_env,
    saved_paths,
    uv_env,
    uvx_bin,
)
from tests.replicas.conftest import free_port, stop, wait_until_up

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PACKAGE = REPO / "src" / "rivya_mcp"
MODELS = REPO / "manifests" / "models"
SERVER_JSON = REPO / "manifests" / "server.json"
MCPB_MANIFEST = REPO / "manifests" / "manifest.json"
DEMO_SECONDS = 300


def _run(
    command: list[str], env: dict[str, str], cwd: Path, timeout: float = DEMO_SECONDS
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _released_version() -> str:
    server = json.loads(SERVER_JSON.read_text(encoding="utf-8"))
    [package] = server["packages"]
    assert server["version"] == package["version"]
    return str(server["version"])


# --- what `python -m build` makes --------------------------------------------------------------


def test_build_makes_one_wheel_and_one_sdist_that_twine_accepts(dist: Dist) -> None:
    assert dist.wheel.name == f"rivya_mcp-{rivya_mcp.__version__}-py3-none-any.whl"
    assert dist.sdist.name == f"rivya_mcp-{rivya_mcp.__version__}.tar.gz"
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dist.wheel), str(dist.sdist)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout


def _source_files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    }


def test_the_wheel_carries_what_runs_and_nothing_else(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = Parser().parsestr(wheel.read(f"rivya_mcp-{dist.version}.dist-info/METADATA").decode())
    info = f"rivya_mcp-{dist.version}.dist-info"
    # The package exactly as in the source tree, package data found by walking it (the viewer's HTML,
    # py.typed, whatever a module reads with importlib.resources), plus the model manifests under
    # rivya_mcp/_manifests (manifest._loader reads them there), plus the licence: no tests, no docs,
    # no scripts, no bytecode.
    expected = {f"rivya_mcp/{name}" for name in _source_files(PACKAGE)}
    expected |= {f"rivya_mcp/_manifests/{p.name}" for p in MODELS.glob("*.json")}
    expected |= {f"{info}/{name}" for name in ("METADATA", "WHEEL", "RECORD", "entry_points.txt", "licenses/LICENSE")}
    assert names == expected, {"missing": sorted(expected - names), "unexpected": sorted(names - expected)}
    assert any(not n.endswith(".py") and not n.startswith(info) for n in names)  # package data is there at all
    assert metadata["Name"] == "rivya-mcp" and metadata["Version"] == rivya_mcp.__version__
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["License-Expression"] == "MIT" and metadata.get_all("License-File") == ["LICENSE"]
    assert "postgres" in metadata.get_all("Provides-Extra")
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist")]
    for_postgres = [
        r
        for r in requirements
        if r.marker is not None and r.marker.evaluate({"extra": "postgres"}) and not r.marker.evaluate({"extra": ""})
    ]
    assert [(r.name, sorted(r.extras)) for r in for_postgres] == [("psycopg", ["binary", "pool"])]


def test_the_sdist_holds_what_builds_the_wheel(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    # `python -m build` made the wheel above from this sdist, so it builds; these are what it needs.
    for needed in ("pyproject.toml", "hatch_build.py", "README.md", "LICENSE", "src/rivya_mcp/__init__.py"):
        assert needed in names, needed
    assert {f"manifests/models/{p.name}" for p in MODELS.glob("*.json")} <= names
    assert not [n for n in names if n.startswith((".venv/", ".cache/", "dist/", ".git/")) or "__pycache__" in n]


# --- the wheel installed as a user would --------------------------------------------------------


@pytest.fixture(scope="module")
def installed(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv outside the checkout with the wheel (no extra); its bin folder."""
    with install_dir("wheel") as root:
        yield fresh_venv(root / "venv", str(dist.wheel), home=tmp_path_factory.mktemp("pip-home"))


def test_the_installed_wheel_prints_the_released_version(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = _run([str(installed / f"rivya-mcp{EXE}"), "--version"], newcomer_env(home), cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    version = _released_version()
    assert done.stdout.strip() == f"rivya-mcp {version}"
    assert version == json.loads(MCPB_MANIFEST.read_text(encoding="utf-8"))["version"] == rivya_mcp.__version__
    where = _run(
        [str(installed / f"python{EXE}"), "-c", "import rivya_mcp; print(rivya_mcp.__file__)"],
        newcomer_env(home),
        cwd=tmp_path,
    )
    assert Path(where.stdout.strip()).is_relative_to(installed.parent), where.stdout + where.stderr


def _assert_demo_saved_images(done: subprocess.CompletedProcess[str], home: Path) -> None:
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    saved = saved_paths(done.stdout)
    assert len(saved) == 3, done.stdout
    for path in saved:
        # The default output folder of an empty HOME, sandbox images apart from real ones.
        assert path.is_relative_to(home) and path.parent.name == "sandbox", path
        with Image.open(path) as image:
            image.verify()


def test_the_installed_wheel_runs_the_demo_in_an_empty_home(installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = _run([str(installed / f"rivya-mcp{EXE}"), "demo"], newcomer_env(home, RIVYA_POLL_SCALE="0.3"), cwd=tmp_path)
    _assert_demo_saved_images(done, home)


def test_uvx_from_the_wheel_prints_the_version_and_runs_the_demo(dist: Dist, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = uv_env(newcomer_env(home, RIVYA_POLL_SCALE="0.3"))
    uvx = [str(uvx_bin()), "--from", str(dist.wheel), "rivya-mcp"]
    version = _run([*uvx, "--version"], env, cwd=tmp_path)
    assert version.returncode == 0, version.stderr[-3000:]
    assert version.stdout.strip() == f"rivya-mcp {_released_version()}"
    _assert_demo_saved_images(_run([*uvx, "demo"], env, cwd=tmp_path), home)


# --- the postgres extra, from the wheel (issue 23 item 15) ---------------------------------------


def test_without_the_extra_a_database_url_says_which_extra_to_install(
    installed: Path, tmp_path: Path, postgres_url: str
) -> None:
    env = newcomer_env(tmp_path / "home", RIVYA_DATABASE_URL=postgres_url, RIVYA_API_KEY="rvya_sk_no_extra")
    done = _run([str(installed / f"rivya-mcp{EXE}"), "serve"], env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "pip install 'rivya-mcp[postgres]'" in done.stderr, done.stderr


@pytest.fixture(scope="module")
def installed_postgres(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with ``<wheel>[postgres]``, the form docs/hosting.md gives; its bin folder."""
    with install_dir("wheel-postgres") as root:
        requirement = f"rivya-mcp[postgres] @ {dist.wheel.as_uri()}"
        yield fresh_venv(root / "venv", requirement, home=tmp_path_factory.mktemp("pip-home"))


def test_the_postgres_extra_from_the_wheel_serves_from_the_shared_database(
    installed_postgres: Path, tmp_path: Path, postgres_url: str
) -> None:
    home = tmp_path / "home"
    log = tmp_path / "server.log"
    sandbox = start_sandbox(SandboxConfig(queued_seconds=0.2, processing_seconds=0.5))
    port = free_port()
    env = newcomer_env(
        home,
        RIVYA_DATABASE_URL=postgres_url,
        RIVYA_API_KEY=f"rvya_sk_extra_{uuid.uuid4().hex[:8]}",
        RIVYA_BASE_URL=sandbox.base_url,
        RIVYA_POLL_SCALE="0.1",
    )
    command = [str(installed_postgres / f"rivya-mcp{EXE}"), "serve", "--transport", "http", "--port", str(port)]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/readyz", server, log)  # ready: the database answers and LISTEN is up

        async def generate() -> dict[str, object]:
            async with (
                httpx2.AsyncClient(timeout=httpx2.Timeout(120.0)) as http,
                Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
            ):
                result = await client.call_tool("generate_image", {"prompt": "a red kite", "aspectRatio": "1:1"})
            assert not result.is_error and result.structured_content is not None, result.content
            return result.structured_content

        data = anyio.run(generate)
    finally:
        stop(server)
        sandbox.stop()
    assert data["status"] == "succeeded"
    # The image went into the shared database (what makes it readable on another replica).
    saved_name = Path(str(data["saved_path"])).name
    with psycopg.connect(postgres_url) as conn:
        (stored,) = conn.execute("SELECT data FROM images WHERE name = %s", (saved_name,)).fetchone() or (None,)
    assert stored is not None
    with Image.open(io.BytesIO(bytes(stored))) as image:
        image.verify()
