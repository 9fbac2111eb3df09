"""Reading an upstream refusal of ``safetyTolerance`` on an edit clearly.

Rivya's model page says editing allows a narrower ``safetyTolerance`` range than generation
(rivya-api §7.2) but not how narrow. The edit cap of 2 in the manifest is Black Forest Labs'
number for the model with an input image: an inference, kept because it is the vendor's. When
Rivya refuses an edit's ``safetyTolerance`` anyway, the agent is told exactly that, and what to send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KEY = "safetyTolerance"


def safety_refusal_hint(mode: str, params: Mapping[str, Any], code: str | None, message: str | None) -> str | None:
    """The explanation to add to a ``validation_failed`` about ``safetyTolerance`` on an edit, or None."""
    if mode != "edit" or code != "validation_failed" or KEY.lower() not in (message or "").lower():
        return None
    sent = params.get(KEY)
    told = f"safetyTolerance={sent} was sent" if sent is not None else "safetyTolerance was left at its default"
    return (
        f"Rivya refused the edit's safetyTolerance ({told}). Editing allows a narrower range than generation; "
        "Rivya's docs do not say how narrow, and this server's cap of 2 for edits is inferred from the model "
        "vendor's (Black Forest Labs') documentation, so Rivya's own limit may be lower."
    )
