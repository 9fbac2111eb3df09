"""What the release tests share: the built distributions, a newcomer's environment, uv.

The wheel and the sdist are built once per session with ``python -m build`` (the command
docs/releasing.md names), and everything installed from them runs outside the checkout with an
empty ``HOME`` and no ``RIVYA_*`` variables, as on a stranger's machine. uv comes from PyPI (the
test extra); its cache lives in ``.cache/uv`` (git-ignored) so that a second run does not download
every dependency again, which is what a user's own uv cache does too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UV_CACHE = REPO / ".cache" / "uv"
BIN = "Scripts" if sys.platform == "win32" else "bin"
EXE = ".exe" if sys.platform == "win32" else ""
# A fresh venv plus the wheel's dependencies: PyPI (or the machine's pip mirror) may be slow.
INSTALL_SECONDS = 600


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path

    @property
    def version(self) -> str:
        # rivya_mcp-<version>-py3-none-any.whl (the name is normalised: no dash in a version).
        return self.wheel.name.split("-")[1]


def build_dist(out: Path) -> Dist:
    """``python -m build`` of the checkout into ``out``: the sdist first, then the wheel built from it."""
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, f"python -m build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return Dist(wheel=wheels[0], sdist=sdists[0])


def newcomer_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of someone who never used rivya-mcp: an empty HOME, none of our variables, no
    venv of the checkout on PATH, no XDG folders pointing elsewhere."""
    checkout_bin = str(REPO / ".venv" / BIN)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != checkout_bin)
    dropped = ("RIVYA_", "VIRTUAL_ENV", "PYTHON", "UV_", "XDG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(HOME=str(home), PATH=path, USERPROFILE=str(home))
    env.update(extra)
    return env


def uv_env(env: dict[str, str]) -> dict[str, str]:
    """uv's settings for these tests, on top of a newcomer's environment.

    - the shared cache (see the module docstring);
    - the machine's Python only: uv would otherwise download a managed one, and our machines reach
      no host but the package registries; every supported OS has a Python 3.11+ to find here;
    - the system's certificate store, where the machine's trust lives (pip is configured the same
      way here); uv's own bundled roots are the default.
    """
    return env | {"UV_CACHE_DIR": str(UV_CACHE), "UV_PYTHON_DOWNLOADS": "never", "UV_SYSTEM_CERTS": "1"}


def uv_bin() -> Path:
    """The uv binary of the test extra (the PyPI package ``uv``)."""
    from uv import find_uv_bin

    return Path(find_uv_bin())


def uvx_bin() -> Path:
    found = uv_bin().with_name(f"uvx{EXE}")
    assert found.is_file(), f"the uv package installed no uvx next to {uv_bin()}"
    return found


def tool_dir(where: Path, *names: str) -> Path:
    """A folder holding only links to uv's commands, to put on PATH as a host would find them
    (the test venv's own bin folder would bring its python and rivya-mcp along)."""
    where.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = uv_bin().with_name(f"{name}{EXE}")
        link = where / source.name
        if not link.exists():
            link.symlink_to(source)
    return where


@contextmanager
def install_dir(prefix: str) -> Iterator[Path]:
    """A folder for installed code (a venv, an unpacked bundle) outside pytest's temp dir.

    The leak scan (tests/_leaks.py) reads every file under pytest's temp dir for API keys, and our
    own source holds the sandbox's key prefix as a literal; an installed copy of the package is not
    something a test wrote. What the installed server writes (journal, images, logs) goes to the
    tests' HOME folders, which stay under pytest's temp dir and are scanned.
    """
    with tempfile.TemporaryDirectory(prefix=f"rivya-{prefix}-") as where:
        yield Path(where)


def fresh_venv(where: Path, *requirements: str, home: Path) -> Path:
    """A new virtual environment (the base interpreter, not the checkout's venv) with ``requirements``
    pip-installed; returns its bin folder."""
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    bin_dir = where / BIN
    done = subprocess.run(
        [str(bin_dir / f"python{EXE}"), "-m", "pip", "install", "--quiet", *requirements],
        cwd=where,
        env=newcomer_env(home),
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, f"pip install {requirements} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return bin_dir


def saved_paths(demo_stdout: str) -> list[Path]:
    """The image paths ``rivya-mcp demo`` prints (``… succeeded → <path>``)."""
    return [Path(line.split("→ ", 1)[1].strip()) for line in demo_stdout.splitlines() if "succeeded → " in line]


# The names every installed form of the server lists (the bundle's manifest.json lists them too).
TOOLS = {"generate_image", "edit_image", "upload_reference", "get_task", "get_credits", "list_tasks"}
VIEWER_URI = "ui://rivya/viewer"


async def check_stdio_server(command: str, args: list[str], env: dict[str, str], *, generate: bool) -> Path | None:
    """Start the server as a host does (``command`` + ``args`` over stdio, with ``env`` and nothing
    else), list its tools, read the viewer's HTML (package data) and, with ``generate``, make one
    image; return its saved path."""
    from mcp import Client, StdioServerParameters
    from mcp.types import TextContent

    async with Client(StdioServerParameters(command=command, args=args, env=env)) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert tools == TOOLS
        viewer = await client.read_resource(VIEWER_URI)
        (content,) = viewer.contents
        html = getattr(content, "text", "")
        assert html.lstrip().lower().startswith("<!doctype html") and "</html>" in html.lower()
        if not generate:
            return None
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse at dawn", "aspectRatio": "1:1"})
        text = "\n".join(c.text for c in result.content if isinstance(c, TextContent))
        assert not result.is_error, text
        assert result.structured_content is not None, text
        assert result.structured_content["status"] == "succeeded"
        saved = Path(result.structured_content["saved_path"])
        assert saved.is_file() and saved.stat().st_size > 0
        return saved
