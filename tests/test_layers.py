"""The layers, held to docs/architecture.md: what each package may import, and only public faces.

Read from the source (``ast``), so a new import that breaks a rule fails here with its file and
line, before anyone has to find the seam in an import graph.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "rivya_mcp"
PACKAGES = (
    "manifest",
    "client",
    "references",
    "imaging",
    "sandbox",
    "journal",
    "tasks",
    "server",
    "identity",
    "transport",
    "doctor",
)

# Which of our packages each may import (besides itself and the top-level `settings`). The arrows
# of docs/architecture.md's picture: each layer uses only those below it.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "manifest": frozenset(),
    "client": frozenset(),
    "references": frozenset({"manifest"}),
    "imaging": frozenset({"references"}),
    "sandbox": frozenset({"manifest"}),
    "journal": frozenset({"client"}),
    "tasks": frozenset({"client", "journal", "manifest", "references", "imaging"}),
    "server": frozenset({"client", "journal", "manifest", "references", "imaging", "tasks"}),
    "identity": frozenset({"client", "journal", "references"}),
    "transport": frozenset({"client", "journal", "server", "tasks", "identity"}),
    # `rivya-mcp doctor`, beside the CLI: asks the API and looks at the folders, never serves.
    "doctor": frozenset({"client", "journal", "manifest", "tasks"}),
}
# The MCP SDK belongs to the layers an agent and a host see; below them nothing knows MCP.
MCP_FREE = frozenset({"manifest", "client", "references", "imaging", "sandbox", "journal", "tasks", "doctor"})
MAX_MODULES_PER_PACKAGE = 15

# Tests that reach into a module on purpose, to inject a fault or a clock at the operating system's
# edge (monkeypatching the module's own ``os``, reader or clock). Each names why.
WHITE_BOX: dict[str, str] = {
    "tests/references/test_local_paths.py": "swaps a file between stat and open through the module's os",
    "tests/references/test_urls.py": "answers the fetcher's DNS lookups (public names, private addresses)",
    "tests/hostile/test_reference_sources.py": "counts and caps the local reader's reads",
    "tests/manifest/test_loader.py": "resets the once-per-process meta-schema check",
    "tests/server/test_preview_cache.py": "moves the preview cache's clock",
    "tests/server/test_viewer.py": "builds the server without the viewer to compare results",
    "tests/imaging/test_c2pa.py": "switches the C2PA check off to show what stamping would break",
}


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # the dotted module imported from (or imported)
    names: tuple[str, ...]  # names imported from it (empty for `import x`)


def _imports(path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield Import(path, node.lineno, node.module, tuple(alias.name for alias in node.names))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name, ())


def _package_of(path: Path) -> str | None:
    relative = path.relative_to(SRC)
    return relative.parts[0] if len(relative.parts) > 1 else None


def _private_modules_reached(imp: Import) -> list[str]:
    """The private modules (``_name``) ``imp`` reaches, as dotted names."""
    parts = imp.module.split(".")
    reached = [".".join(parts[: i + 1]) for i, part in enumerate(parts) if part.startswith("_") and i > 0]
    if not reached:
        reached = [
            f"{imp.module}.{name}" for name in imp.names if name.startswith("_") and _is_module(imp.module, name)
        ]
    return reached


def _is_module(package: str, name: str) -> bool:
    if not package.startswith("rivya_mcp"):
        return False
    folder = SRC.joinpath(*package.split(".")[1:])
    return (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file()


def _our_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "rivya_mcp" and len(parts) > 1 and parts[1] in PACKAGES else None


def _src_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_each_package_imports_only_the_layers_below_it() -> None:
    broken: list[str] = []
    for path in _src_files():
        package = _package_of(path)
        if package not in MAY_IMPORT:
            continue
        for imp in _imports(path):
            other = _our_package(imp.module)
            if other is not None and other != package and other not in MAY_IMPORT[package]:
                broken.append(f"{path.relative_to(ROOT)}:{imp.line}: {package} imports {imp.module}")
            if package in MCP_FREE and (imp.module == "mcp" or imp.module.startswith(("mcp.", "mcp_types"))):
                broken.append(f"{path.relative_to(ROOT)}:{imp.line}: {package} imports the MCP SDK ({imp.module})")
    assert not broken, "\n".join(broken)


def test_no_module_imports_a_private_module_of_another_package() -> None:
    broken: list[str] = []
    for path in _src_files():
        # A package is a layer, its subpackages its own insides: rivya_mcp.<package>.
        package = _package_of(path)
        own = f"rivya_mcp.{package}" if package else "rivya_mcp"
        for imp in _imports(path):
            for private in _private_modules_reached(imp):
                home = private.rsplit(".", 1)[0]
                if home != own and not (package and home.startswith(own + ".")):
                    broken.append(f"{path.relative_to(ROOT)}:{imp.line}: imports {private}")
    assert not broken, "\n".join(broken)


def test_no_private_names_of_the_sdk() -> None:
    broken: list[str] = []
    scripts = [*ROOT.joinpath("tests").rglob("*.py"), *ROOT.joinpath("bench").rglob("*.py")]
    for path in [*_src_files(), *(p for p in scripts if "node_modules" not in p.parts)]:
        for imp in _imports(path):
            if imp.module.split(".")[0] not in ("mcp", "mcp_types"):
                continue
            private = [p for p in imp.module.split(".") if p.startswith("_")] + [
                n for n in imp.names if n.startswith("_")
            ]
            if private:
                broken.append(f"{path.relative_to(ROOT)}:{imp.line}: {imp.module} {private}")
        if path != Path(__file__).resolve() and "_lowlevel_server" in path.read_text(encoding="utf-8"):
            broken.append(f"{path.relative_to(ROOT)}: uses MCPServer._lowlevel_server")
    assert not broken, "\n".join(broken)


FOLDERS = sorted({init.parent for init in SRC.rglob("__init__.py")} - {SRC})


def test_every_package_is_in_the_layer_rules() -> None:
    assert {folder.relative_to(SRC).parts[0] for folder in FOLDERS} == set(MAY_IMPORT)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda folder: folder.relative_to(SRC).as_posix())
def test_packages_are_small_and_say_their_job(folder: Path) -> None:
    modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= MAX_MODULES_PER_PACKAGE, f"{folder.name} has {len(modules)} modules"
    docstring = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
    assert docstring, f"{folder.name}/__init__.py has no docstring saying its job"


def test_tests_and_benchmarks_import_public_faces() -> None:
    broken: list[str] = []
    files = [
        p
        for p in (*ROOT.joinpath("tests").rglob("*.py"), *ROOT.joinpath("bench").rglob("*.py"))
        if "node_modules" not in p.parts
    ]
    files += list(ROOT.joinpath("scripts").rglob("*.py"))
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        if name in WHITE_BOX:
            continue
        for imp in _imports(path):
            if not imp.module.startswith("rivya_mcp"):
                continue
            for private in _private_modules_reached(imp):
                broken.append(f"{name}:{imp.line}: imports {private}")
    assert not broken, "\n".join(broken)


def test_the_white_box_list_is_still_needed() -> None:
    """An entry whose file no longer reaches into a private module is stale: remove it."""
    for name in WHITE_BOX:
        path = ROOT / name
        reached = [
            p for imp in _imports(path) if imp.module.startswith("rivya_mcp") for p in _private_modules_reached(imp)
        ]
        assert reached, f"{name} is listed as white-box but imports only public faces"


BLOCK_PSYCOPG = """
import sys
class NoPostgresExtra:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("psycopg", "psycopg_pool", "psycopg_binary"):
            raise ImportError("the postgres extra is not installed")
sys.meta_path.insert(0, NoPostgresExtra())
import rivya_mcp.cli, rivya_mcp.journal, rivya_mcp.tasks, rivya_mcp.server, rivya_mcp.transport
from rivya_mcp.cli import main
sys.exit(main(["serve", "--help"]))
"""


def test_the_server_imports_without_the_postgres_extra() -> None:
    """psycopg is the `postgres` extra: `uvx rivya-mcp` and the Claude Desktop bundle have none."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", BLOCK_PSYCOPG], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--transport" in done.stdout
