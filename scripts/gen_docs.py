#!/usr/bin/env python3
"""Regenerate everything that is derived from the code; ``--check`` fails with a diff on drift.

Targets (each derived, never hand-edited):

- README.md between ``<!-- tools:start -->``/``<!-- tools:end -->``: the tool table (tool names and
  required arguments from the server's own tool list, credits from the model manifests) and the
  parameter table of each mode (from ``rivya_mcp.manifest.input_schema``, edit narrowing included);
- README.md between ``<!-- config:start -->``/``<!-- config:end -->``: the environment variables
  ``Settings.from_env`` reads, with their defaults from ``Settings`` and descriptions from ENV_DOCS;
- manifests/manifest.json (MCP Bundle): ``version`` and the ``tools`` list (names and descriptions
  exactly as the server lists them);
- manifests/server.json (MCP registry): both versions and ``environmentVariables``.

Usage: ``python scripts/gen_docs.py`` rewrites the files; ``python scripts/gen_docs.py --check``
exits 1 and prints a unified diff when any of them is stale.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SETTINGS_PY = REPO / "src" / "rivya_mcp" / "settings.py"
MCPB_MANIFEST = REPO / "manifests" / "manifest.json"
SERVER_JSON = REPO / "manifests" / "server.json"

TOOLS_START, TOOLS_END = "<!-- tools:start -->", "<!-- tools:end -->"
CONFIG_START, CONFIG_END = "<!-- config:start -->", "<!-- config:end -->"

# Which manifest mode a paid tool runs; every other tool spends no credits.
TOOL_MODES: dict[str, str] = {"generate_image": "generate", "edit_image": "edit"}

# One line per tool for human readers of the README (agents read the server's own descriptions).
# tests/test_docs.py checks these keys against the server's tool list.
TOOL_SUMMARIES: dict[str, str] = {
    "generate_image": "Text to image: waits for the result with progress, saves the full image, returns a preview.",
    "edit_image": "Edits one reference image (local path, URL, data URI, uploaded file id or earlier task id).",
    "upload_reference": "Uploads a reference image (path, URL or data URI) once, for several edits; returns a file id.",
    "get_task": "Status of a task; finishes, saves and returns an image that outlived its tool call.",
    "get_credits": "The account's credit balance, and what you spent today (with the daily budget left).",
    "list_tasks": "Recent tasks this server created (from the local journal), newest first.",
}


@dataclass(frozen=True)
class EnvDoc:
    """How one environment variable is documented. ``field`` names the Settings field whose default
    is shown; ``default`` is the text shown instead where the default is computed or absent."""

    description: str
    field: str | None = None
    default: str | None = None
    secret: bool = False
    required: bool = False


# The one place the environment variables are described: README config table and server.json.
# tests/test_docs.py checks the keys against what Settings.from_env reads.
ENV_DOCS: dict[str, EnvDoc] = {
    "RIVYA_API_KEY": EnvDoc(
        "Your Rivya API key, sent only as `Authorization: Bearer`. Without it the server still starts and "
        "lists its tools; each call then explains how to set the key or use `--sandbox`.",
        field="api_key",
        secret=True,
        required=True,
    ),
    "RIVYA_BASE_URL": EnvDoc("Base URL of the Rivya API.", field="base_url"),
    "RIVYA_MODEL": EnvDoc(
        "Model whose manifest drives the tool schemas and prices (shipped: {models}).",
        field="model",
    ),
    "RIVYA_OUTPUT_DIR": EnvDoc(
        "Folder for full-size images (created on demand; never the working directory). `--sandbox` and "
        "`demo` save theirs in its `sandbox` subfolder.",
        default="your Pictures folder / rivya-mcp",
    ),
    "RIVYA_DATA_DIR": EnvDoc(
        "Folder for the task journal (SQLite), so no paid task is lost across restarts. With a key, the "
        "server refuses to start if it cannot write there. `--sandbox` and `demo` use its `sandbox` subfolder, "
        "where the embedded sandbox also keeps its own tasks and files, so they survive a restart.",
        default="your per-user data folder / rivya-mcp",
    ),
    "RIVYA_WAIT_SECONDS": EnvDoc(
        "How long a generation call waits before returning the task id for `get_task` (hosts cut tool "
        "calls off near 60 s).",
        field="wait_seconds",
    ),
    "RIVYA_STRUCTURED_OUTPUT": EnvDoc(
        "Return `structuredContent` with a declared output schema; set `false` for hosts that drop "
        "images when structured content is present.",
        field="structured_output",
    ),
    "RIVYA_PROVENANCE_PROMPT": EnvDoc(
        "Also write the prompt into the IPTC provenance every saved image carries (docs/provenance.md). "
        "Off by default: anyone with a copy of the file could read it.",
        field="provenance_prompt",
    ),
    "RIVYA_TIMEOUT": EnvDoc("Timeout of each HTTP request to the Rivya API, in seconds.", field="request_timeout"),
    "RIVYA_MAX_RETRIES": EnvDoc(
        "Retries after connection errors, timeouts, 408, 429 and 5xx (backoff with jitter; a retried "
        "create never charges twice).",
        field="max_retries",
    ),
    "RIVYA_POLL_SCALE": EnvDoc("Multiplies every poll delay; for tests and benchmarks only.", field="poll_scale"),
    "RIVYA_ALLOW_PRIVATE_URLS": EnvDoc(
        "Allow reference URLs on private or loopback addresses (refused by default).",
        field="allow_private_urls",
    ),
    "RIVYA_READ_DIRS": EnvDoc(
        "Over the HTTP transports, local reference paths are read only under these folders (absolute, or "
        "starting with `~/`, separated by the OS path separator; a relative entry stops the server with an "
        "error rather than being read against whatever folder it was started in).",
        field="read_dirs",
    ),
    "RIVYA_MCP_AUTH_TOKEN": EnvDoc(
        "Bearer token the HTTP transports require; binding a non-loopback address needs one.",
        field="auth_token",
        secret=True,
    ),
    "RIVYA_ALLOWED_HOSTS": EnvDoc(
        "Extra `Host` names (with an optional port, comma-separated) the HTTP transports accept, with "
        "their http/https origins: the names remote clients or a reverse proxy use (same as "
        "`--allowed-host`). Loopback names and the bind address are always accepted.",
        field="allowed_hosts",
    ),
    "RIVYA_LOG_LEVEL": EnvDoc("Level of the log written to stderr.", field="log_level"),
    "RIVYA_PUBLIC_URL": EnvDoc(
        "The HTTP server's public base URL (same as `--public-url`): Rivya then finishes tasks by webhook at "
        "`<public URL>/webhooks/rivya`, and polling only backs it up.",
        default="none",
    ),
    "RIVYA_DATABASE_URL": EnvDoc(
        "`postgresql://…`: the task journal, saved images and task leases live in this database, shared "
        "by replicas behind a load balancer (needs `pip install 'rivya-mcp[postgres]'`; see docs/hosting.md). "
        "Unset: SQLite in the data folder.",
        field="database_url",
        secret=True,
    ),
    "RIVYA_LEASE_SECONDS": EnvDoc(
        "With a database: how long a replica's claim on a task lasts unless renewed, so how soon another "
        "replica takes over the tasks of one that died.",
        field="lease_seconds",
    ),
    "RIVYA_LOG_FORMAT": EnvDoc(
        "`json` for one JSON object per log line (with the task id when there is one), for log collectors.",
        field="log_format",
    ),
    "RIVYA_OAUTH_ISSUER": EnvDoc(
        "HTTP, with the public URL: accept only OAuth access tokens this authorization server issued for "
        "`<public URL>/mcp`, one identity per person (same as `--oauth-issuer`; see docs/identity.md).",
        default="none",
    ),
    "RIVYA_OAUTH_SCOPES": EnvDoc(
        "Scopes every access token from `RIVYA_OAUTH_ISSUER` must carry (space- or comma-separated); "
        "without them a request gets 403 `insufficient_scope`.",
        default="none",
    ),
    "RIVYA_OAUTH_AUDIENCE": EnvDoc(
        "The `aud` the issuer's tokens carry, when it cannot name `<public URL>/mcp` (an IdP that names "
        "APIs by its own identifier).",
        default="`<public URL>/mcp`",
    ),
    "RIVYA_OAUTH_CLIENT_ID": EnvDoc(
        "This server's client at the issuer, to check opaque (non-JWT) tokens by introspection.",
        default="none",
    ),
    "RIVYA_OAUTH_CLIENT_SECRET": EnvDoc(
        "The secret of `RIVYA_OAUTH_CLIENT_ID` at the issuer.",
        field="oauth_client_secret",
        secret=True,
    ),
    "RIVYA_LOGIN": EnvDoc(
        "HTTP, with the public URL: be an OAuth authorization server where people sign in with their own "
        "Rivya key, and spend it (same as `--rivya-login`; see docs/identity.md).",
        field="rivya_login",
    ),
    "RIVYA_SECRET_KEY": EnvDoc(
        "Required with `RIVYA_LOGIN`: the key material people's Rivya keys are encrypted with at rest "
        "(32+ random characters; the same on every replica; keep it, or everyone signs in again).",
        field="secret_key",
        secret=True,
    ),
    "RIVYA_BUDGET_CREDITS_PER_DAY": EnvDoc(
        "Credits each person may spend per UTC day (over stdio or with the shared token: the whole server); a "
        "create that would pass it is refused before anything is sent. `rivya-mcp usage` shows the spend.",
        field="budget_credits_per_day",
        default="no limit",
    ),
    "RIVYA_CONFIRM_ABOVE_CREDITS": EnvDoc(
        "A create costing more than this many credits asks the user first (elicitation where the client "
        "supports it; otherwise the call says to repeat it with `confirm_credits`).",
        field="confirm_above_credits",
        default="never asks",
    ),
}


# --- What the code says ------------------------------------------------------------------------


def settings_env_vars(path: Path = SETTINGS_PY) -> list[str]:
    """The ``RIVYA_*`` names read as ``env.get("…")`` or ``env["…"]`` in settings.py, in source order."""
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        key: object = None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            key = node.args[0].value
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "env"
            and isinstance(node.slice, ast.Constant)
        ):
            key = node.slice.value
        if isinstance(key, str) and key.startswith("RIVYA_"):
            found.append((node.lineno, node.col_offset, key))
    names: list[str] = []
    for _, _, key in sorted(found):
        if key not in names:
            names.append(key)
    return names


def list_server_tools() -> list[dict[str, Any]]:
    """The server's tools as an MCP client sees them (in memory, no transport, no network)."""
    import anyio
    from mcp import Client

    from rivya_mcp.server import build_server
    from rivya_mcp.settings import Settings

    async def _list(settings: Settings) -> list[dict[str, Any]]:
        async with Client(build_server(settings)) as client:
            result = await client.list_tools()
        return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in result.tools]

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(output_dir=Path(tmp) / "images", data_dir=Path(tmp) / "data")
        return anyio.run(_list, settings)


def _settings_default(field_name: str) -> object:
    from rivya_mcp.settings import Settings

    for f in dataclasses.fields(Settings):
        if f.name == field_name:
            if f.default is dataclasses.MISSING:
                raise ValueError(f"Settings.{field_name} has no static default; give EnvDoc a default text")
            return f.default
    raise KeyError(f"Settings has no field {field_name!r}")


def _default_text(value: object) -> str | None:
    if value is None or value == ():
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def env_default(name: str) -> tuple[str | None, bool]:
    """(default text, whether it is a literal value) for one documented variable."""
    doc = ENV_DOCS[name]
    if doc.field is not None:
        return _default_text(_settings_default(doc.field)), True
    return doc.default, False


def env_description(name: str) -> str:
    from rivya_mcp.manifest import load_manifests

    return ENV_DOCS[name].description.format(models=", ".join(f"`{m}`" for m in sorted(load_manifests())))


# --- README sections ---------------------------------------------------------------------------


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(value: object) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def _allowed(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return ", ".join(_code(v) for v in prop["enum"])
    if prop.get("type") == "boolean":
        return "`true`, `false`"
    if "minimum" in prop or "maximum" in prop:
        low, high = prop.get("minimum", "…"), prop.get("maximum", "…")
        kind = "whole number" if prop.get("type") == "integer" else "number"
        return f"{kind} {low}–{high}"
    parts = []
    if prop.get("minLength"):
        parts.append("non-empty")
    if "maxLength" in prop:
        parts.append(f"at most {prop['maxLength']} characters")
    return ", ".join(parts) or "any text"


def tools_section(tools: Sequence[dict[str, Any]]) -> str:
    from rivya_mcp.manifest import DEFAULT_MODEL, input_schema, load_manifests

    manifests = load_manifests()
    default = manifests[DEFAULT_MODEL]
    lines = [
        "| Tool | What it does | Credits | Required arguments |",
        "| --- | --- | --- | --- |",
    ]
    for tool in tools:
        name = tool["name"]
        credits = str(default.base_credits) if name in TOOL_MODES else "free"
        required = tool.get("inputSchema", {}).get("required", [])
        args = ", ".join(f"`{a}`" for a in required) or "none"
        lines.append(f"| `{name}` | {_cell(TOOL_SUMMARIES[name])} | {credits} | {args} |")
    prices = ", ".join(f"`{m.id}` {m.base_credits}" for m in manifests.values())
    lines += [
        "",
        f"Credits are per image for the default model `{DEFAULT_MODEL}` (set another with `RIVYA_MODEL`; "
        f"base price per model: {prices}). A task that fails is not charged.",
    ]

    # Models that share one parameter table share one set of tables.
    groups: list[list[str]] = []
    for model_id, manifest in manifests.items():
        for group in groups:
            if manifests[group[0]].params == manifest.params and manifests[group[0]].raw.get(
                "prompt"
            ) == manifest.raw.get("prompt"):
                group.append(model_id)
                break
        else:
            groups.append([model_id])
    for group in groups:
        manifest = manifests[group[0]]
        # One table for both tools: they share the parameter table, and the Allowed column says
        # where editing differs from generating (a narrower range, a parameter only one has).
        by_mode = {mode: input_schema(manifest, mode) for mode in ("generate", "edit")}
        keys = list(dict.fromkeys([*by_mode["generate"]["properties"], *by_mode["edit"]["properties"]]))
        models = ", ".join(f"`{m}`" for m in group)
        lines += [
            "",
            f"Parameters of `generate_image` and `edit_image` ({models}); `edit_image` also takes `reference`:",
            "",
            "| Argument | Type | Default | Allowed | Description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for key in keys:
            generate = by_mode["generate"]["properties"].get(key)
            edit = by_mode["edit"]["properties"].get(key)
            prop = generate or edit
            assert prop is not None
            allowed = _allowed(prop)
            if generate is None:
                allowed = f"`edit_image` only: {allowed}"
            elif edit is None:
                allowed = f"`generate_image` only: {allowed}"
            elif _allowed(edit) != allowed:
                allowed = f"{allowed} (`edit_image`: {_allowed(edit)})"
            required = [m for m in ("generate", "edit") if key in by_mode[m]["required"]]
            if required:
                default_text = "required"
            elif "default" in prop:
                default_text = _code(prop["default"])
            else:
                default_text = "none"
            lines.append(
                f"| `{key}` | {prop['type']} | {default_text} | {_cell(allowed)} | {_cell(prop['description'])} |"
            )
    return "\n".join(lines)


def config_section(env_vars: Sequence[str]) -> str:
    lines = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    for name in env_vars:
        default, literal = env_default(name)
        shown = "none" if default is None else (_code(default) if literal else default)
        lines.append(f"| `{name}` | {_cell(shown)} | {_cell(env_description(name))} |")
    return "\n".join(lines)


def replace_between(text: str, start: str, end: str, body: str) -> str:
    """Put ``body`` between the two markers (each on its own line), keeping the markers."""
    head, found_start, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if not found_start or not found_end:
        raise ValueError(f"README.md needs the markers {start} and {end}")
    return f"{head}{start}\n{body}\n{end}{tail}"


def documented_env_vars() -> list[str]:
    """The variables Settings.from_env reads, in the order of ENV_DOCS (key first, then by topic)."""
    read = settings_env_vars()
    missing = sorted(set(read) - set(ENV_DOCS))
    if missing:
        raise KeyError(f"describe {', '.join(missing)} in ENV_DOCS (scripts/gen_docs.py)")
    return [name for name in ENV_DOCS if name in read]


def render_readme(text: str, tools: Sequence[dict[str, Any]], env_vars: Sequence[str]) -> str:
    text = replace_between(text, TOOLS_START, TOOLS_END, tools_section(tools))
    return replace_between(text, CONFIG_START, CONFIG_END, config_section(env_vars))


# --- Packaging manifests -----------------------------------------------------------------------


def render_mcpb_manifest(current: dict[str, Any], tools: Sequence[dict[str, Any]], version: str) -> dict[str, Any]:
    updated = dict(current)
    updated["version"] = version
    updated["tools"] = [{"name": t["name"], "description": t.get("description", "")} for t in tools]
    return updated


def render_server_json(current: dict[str, Any], env_vars: Sequence[str], version: str) -> dict[str, Any]:
    updated = dict(current)
    updated["version"] = version
    packages = []
    for package in current["packages"]:
        package = dict(package)
        package["version"] = version
        variables = []
        for name in env_vars:
            doc = ENV_DOCS[name]
            default, literal = env_default(name)
            variable: dict[str, Any] = {
                "name": name,
                "description": env_description(name).replace("`", ""),
                "isRequired": doc.required,
                "isSecret": doc.secret,
            }
            if default is not None and literal:
                variable["default"] = default
            variables.append(variable)
        package["environmentVariables"] = variables
        packages.append(package)
    updated["packages"] = packages
    return updated


def dump_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- Driver ------------------------------------------------------------------------------------


def generated_files() -> dict[Path, tuple[str, str]]:
    """Every target as ``{path: (current text, generated text)}``."""
    from rivya_mcp import __version__

    tools = list_server_tools()
    env_vars = documented_env_vars()
    readme = README.read_text(encoding="utf-8")
    mcpb = MCPB_MANIFEST.read_text(encoding="utf-8")
    server = SERVER_JSON.read_text(encoding="utf-8")
    return {
        README: (readme, render_readme(readme, tools, env_vars)),
        MCPB_MANIFEST: (mcpb, dump_json(render_mcpb_manifest(json.loads(mcpb), tools, __version__))),
        SERVER_JSON: (server, dump_json(render_server_json(json.loads(server), env_vars, __version__))),
    }


def drift(files: dict[Path, tuple[str, str]]) -> str:
    """A unified diff of every stale target; empty when all are current."""
    chunks = []
    for path, (current, generated) in files.items():
        if current != generated:
            rel = path.relative_to(REPO).as_posix()
            chunks.extend(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    generated.splitlines(keepends=True),
                    fromfile=f"{rel} (current)",
                    tofile=f"{rel} (generated)",
                )
            )
    return "".join(chunks)


def main(argv: Sequence[str] | None = None, *, out: Callable[[str], object] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff instead of writing files")
    args = parser.parse_args(argv)
    files = generated_files()
    diff = drift(files)
    if args.check:
        if diff:
            out(diff)
            out("Generated docs are stale: run `python scripts/gen_docs.py` and commit the result.")
            return 1
        return 0
    for path, (current, generated) in files.items():
        if current != generated:
            path.write_text(generated, encoding="utf-8")
            out(f"updated {path.relative_to(REPO).as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
