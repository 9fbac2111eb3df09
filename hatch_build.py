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

    def update(self, metadata: dict[str, Any]) -> None:
        if sys.version_info[:2] < MINIMUM_PYTHON:
            found = ".".join(str(part) for part in sys.version_info[:3])
            wanted = ".".join(str(part) for part in MINIMUM_PYTHON)
            raise RuntimeError(
                f"rivya-mcp needs Python {wanted} or newer; this is Python {found} ({sys.executable}). "
                f"Create the virtual environment with a newer interpreter, e.g. `python{wanted} -m venv .venv`."
            )
