"""Entry point of the MCP Bundle: staged by build_mcpb.py as ``server/main.py``.

It runs ``python -m rivya_mcp`` after one clean-up the bundle needs and the package does not:
Claude Desktop passes an optional ``user_config`` field the user left blank as the literal text
``${user_config.<key>}`` instead of an empty string (modelcontextprotocol/mcpb#251 and #252; seen
in the wild in stickerdaniel/linkedin-mcp-server#678). Read as a value, a blank output folder would
become a relative directory named after the placeholder; dropped, the server falls back to its
documented default. Only our own ``RIVYA_*`` variables are touched.
"""

from __future__ import annotations

import os
import re
import runpy
from collections.abc import MutableMapping

ENV_PREFIX = "RIVYA_"
UNSUBSTITUTED = re.compile(r"\$\{[^}]*\}")


def drop_unsubstituted(environ: MutableMapping[str, str]) -> list[str]:
    """Remove ``RIVYA_*`` variables whose whole value is a ``${...}`` placeholder; return their names."""
    dropped = [
        name
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and UNSUBSTITUTED.fullmatch(value.strip())
    ]
    for name in dropped:
        del environ[name]
    return dropped


if __name__ == "__main__":
    drop_unsubstituted(os.environ)
    runpy.run_module("rivya_mcp", run_name="__main__", alter_sys=True)
