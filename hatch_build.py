"""Build-time check: refuse an unsupported Python with a message that says so.

pip resolves dependencies before it applies the project's own ``requires-python`` to an editable
install, so on Python 3.10 the Quick start used to end in "No matching distribution found for
httpx2", which names the wrong cause. Hatchling runs this metadata hook first, on the interpreter
that is installing us.
"""

from __future__ import annotations

import sys
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

MINIMUM_PYTHON = (3, 11)


class PythonVersionCheck(MetadataHookInterface):
    PLUGIN_NAME = "custom"

    def update(self, metadata: dict[str, Any]) -> None:  # noqa: ARG002 (the interface's signature)
        message = refusal(sys.version_info[:3], sys.executable)
        if message is not None:
            # Not an exception: pip would show its traceback, 30 lines of hatchling's frames with the
            # message on the last one. Exiting prints only this box, as the whole of the subprocess's
            # output that pip quotes.
            sys.stderr.write(message)
            sys.stderr.flush()
            raise SystemExit(1)


def refusal(version: tuple[int, ...], executable: str) -> str | None:
    """The message that refuses ``version``, or None when it is new enough."""
    if tuple(version[:2]) >= MINIMUM_PYTHON:
        return None
    found = ".".join(str(part) for part in version[:3])
    wanted = ".".join(str(part) for part in MINIMUM_PYTHON)
    rule = "=" * 78
    return (
        f"{rule}\n"
        f"rivya-mcp needs Python {wanted} or newer; this is Python {found} ({executable}).\n"
        f"Create the virtual environment with a newer interpreter, e.g. `python{wanted} -m venv .venv`.\n"
        f"{rule}\n"
    )
