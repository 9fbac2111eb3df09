"""`rivya-mcp demo`: the main job end to end, the way an agent host does it.

It starts `rivya-mcp serve` as a stdio subprocess and talks to it with the MCP SDK's client:
upload a reference, generate, edit, start a task without waiting and finish it with `get_task`,
showing live progress, then prints where the images were saved. Without RIVYA_API_KEY the server
runs its embedded sandbox (no credits); with it, the real API, and the demo says so first.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.dispatcher import ProgressFnT
from mcp.types import CallToolResult, TextContent

from rivya_mcp.manifest import DEFAULT_MODEL, get_manifest
from rivya_mcp.settings import DEFAULT_BASE_URL

BAR_WIDTH = 24


REAL_API_HINT = (
    "The demo stopped against the real API. Check RIVYA_API_KEY (and RIVYA_BASE_URL if you set it),\n"
    "your network and your credit balance; or unset RIVYA_API_KEY to run the demo on the sandbox."
)


@dataclass
class Step:
    label: str
    task_id: str = ""
    saved_path: str = ""
    credits: int = 0


class ProgressView:
    """A progress bar on a terminal, plain lines otherwise (logs, CI, pipes).

    The API gives no estimate of how long a task takes, so the server sends no ``total``; the bar
    then shows activity (a block that moves with each update) next to the state and elapsed time.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last_message = ""
        self._drawn = False

    def callback(self, label: str) -> ProgressFnT:
        started = time.monotonic()
        updates = 0

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            nonlocal updates
            updates += 1
            text = message or f"{progress:g}"
            if self._tty:
                self._stream.write(
                    f"\r  {_bar(progress, total, updates)} {label}: {text} ({time.monotonic() - started:4.1f}s)\x1b[K"
                )
                self._stream.flush()
                self._drawn = True
            elif text != self._last_message:
                self._stream.write(f"  … {label}: {text}\n")
                self._stream.flush()
            self._last_message = text

        return on_progress

    def done(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
        self._last_message = ""
        self._drawn = False


def _bar(progress: float, total: float | None, updates: int) -> str:
    if total:
        filled = int(min(progress / total, 1.0) * BAR_WIDTH)
        return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"
    block = 4
    start = (updates * 2) % (BAR_WIDTH - block + 1)
    return "[" + "." * start + "#" * block + "." * (BAR_WIDTH - block - start) + "]"


def _make_reference(folder: Path) -> Path:
    """A small picture to edit: a sun over hills, drawn with Pillow."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (768, 512), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.ellipse((520, 60, 660, 200), fill=(255, 210, 60))
    draw.polygon([(0, 512), (0, 330), (220, 250), (430, 360), (768, 280), (768, 512)], fill=(70, 140, 70))
    path = folder / "reference-hills.png"
    image.save(path, format="PNG")
    return path


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def _structured(result: CallToolResult) -> dict[str, Any]:
    data = result.structured_content
    return data if isinstance(data, dict) else {}


class DemoError(RuntimeError):
    """A tool answered with an error; the demo stops and shows it."""


def _root_cause(exc: BaseException) -> BaseException:
    """The first leaf of nested exception groups (a DemoError if there is one), else ``exc``."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [_root_cause(inner) for inner in exc.exceptions]
        return next((leaf for leaf in leaves if isinstance(leaf, DemoError)), leaves[0])
    return exc


async def _call(client: Client, view: ProgressView, label: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments, progress_callback=view.callback(label))
    view.done()
    if result.is_error:
        raise DemoError(f"{tool} failed:\n{_text(result)}")
    return _structured(result)


def _server_environment(real: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith("RIVYA_")}
    env.setdefault("RIVYA_LOG_LEVEL", "WARNING")
    if not real:
        env.pop("RIVYA_BASE_URL", None)
    return env


async def _run(out: TextIO) -> int:
    real = bool(os.environ.get("RIVYA_API_KEY", "").strip())
    manifest = get_manifest(os.environ.get("RIVYA_MODEL") or DEFAULT_MODEL)
    if real:
        base = os.environ.get("RIVYA_BASE_URL") or DEFAULT_BASE_URL
        out.write(
            f"RIVYA_API_KEY is set: this demo runs against the real Rivya API at {base}\n"
            f"and spends real credits ({manifest.base_credits} per image, 3 images).\n\n"
        )
    else:
        out.write("No RIVYA_API_KEY: running against the embedded Rivya sandbox. No credits are spent.\n\n")

    args = ["-m", "rivya_mcp", "serve"] + ([] if real else ["--sandbox"])
    steps: list[Step] = []
    view = ProgressView(out)
    with tempfile.TemporaryDirectory(prefix="rivya-demo-") as tmp:
        folder = Path(tmp)
        reference = _make_reference(folder)
        with open(folder / "server.log", "w", encoding="utf-8") as errlog:
            params = StdioServerParameters(command=sys.executable, args=args, env=_server_environment(real))
            try:
                async with Client(stdio_client(params, errlog=errlog)) as client:
                    await _session(client, view, out, reference, steps)
            except Exception as exc:
                # The client's task group wraps whatever the session raised in an ExceptionGroup:
                # show the cause itself, not the wrapper.
                cause = _root_cause(exc)
                if isinstance(cause, DemoError):
                    out.write(f"\n{cause}\n")
                    if real:
                        out.write(f"\n{REAL_API_HINT}\n")
                    return 1
                errlog.flush()  # the server died or could not start: show its log
                log = (folder / "server.log").read_text(encoding="utf-8", errors="replace")[-4000:]
                out.write(f"\nThe server stopped unexpectedly ({type(cause).__name__}: {cause}).\n{log}\n")
                return 1

    out.write("\nSummary\n")
    for step in steps:
        out.write(f"  {step.label:<28} {step.task_id:<30} {step.credits:>3} credits  {step.saved_path}\n")
    total = sum(step.credits for step in steps)
    out.write(f"\nCredits used: {total}. Images are saved under {Path(steps[0].saved_path).parent}\n")
    return 0


async def _session(client: Client, view: ProgressView, out: TextIO, reference: Path, steps: list[Step]) -> None:
    tools = await client.list_tools()
    out.write(f"Connected over stdio; tools: {', '.join(t.name for t in tools.tools)}\n")
    # The balance is the first call that reaches the API: if the key, the address or the network is
    # wrong, say so here (the tool's own message names the cause and the fix) instead of going on.
    credits = await _call(client, view, "credits", "get_credits", {})
    out.write(f"Balance: {credits.get('current_credits')} credits\n\n")

    out.write(f"1. upload_reference {reference.name}\n")
    upload = await _call(client, view, "upload", "upload_reference", {"source": str(reference)})
    file_id = str(upload.get("file", {}).get("id", ""))
    out.write(f"   uploaded as {file_id}\n")

    out.write("2. generate_image\n")
    generated = await _call(
        client,
        view,
        "generate",
        "generate_image",
        {
            "prompt": "A lighthouse on a cliff at sunset, watercolor",
            "aspectRatio": "16:9",
        },
    )
    steps.append(_step("generate (16:9)", generated, out))

    out.write("3. edit_image with the uploaded reference\n")
    edited = await _call(
        client,
        view,
        "edit",
        "edit_image",
        {"prompt": "Make it a snowy winter evening", "reference": file_id},
    )
    steps.append(_step("edit (reference)", edited, out))

    out.write("4. generate_image without waiting, then get_task\n")
    started = await _call(
        client,
        view,
        "start",
        "generate_image",
        {"prompt": "A red fox in tall grass, morning light", "aspectRatio": "1:1", "wait_seconds": 0},
    )
    task_id = str(started.get("task_id", ""))
    out.write(f"   started {task_id} ({started.get('status')}); finishing it with get_task\n")
    finished = await _call(client, view, "get_task", "get_task", {"task_id": task_id})
    steps.append(_step("generate + get_task (1:1)", finished, out))


def _step(label: str, data: dict[str, Any], out: TextIO) -> Step:
    step = Step(
        label=label,
        task_id=str(data.get("task_id", "")),
        saved_path=str(data.get("saved_path") or ""),
        credits=int(data.get("final_credits") or data.get("reserved_credits") or 0),
    )
    if data.get("status") != "succeeded":
        raise DemoError(f"{label}: task {step.task_id} ended as {data.get('status')}")
    out.write(f"   {step.task_id} succeeded → {step.saved_path}\n")
    return step


def run_demo() -> int:
    """Entry point of `rivya-mcp demo`."""
    return anyio.run(_run, sys.stdout)
