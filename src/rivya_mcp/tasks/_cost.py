"""What a call costs, known before anything is sent: ``count`` images at the model's price each.

The one function a budget or a confirmation threshold reads (issue 24 builds them): the tool
descriptions, the results and any spending check all state this same figure. The price per image
is the stricter of the manifest's and the live catalog's (``Limits.base_credits``).
"""

from __future__ import annotations

from dataclasses import dataclass

from rivya_mcp.tasks._catalog import Limits

__all__ = ["MAX_COUNT", "CallCost", "call_cost"]

# Variations per call: the contact sheet labels 1..4, and four tasks side by side stay well within
# what a host waits for and a rate limit allows.
MAX_COUNT = 4


@dataclass(frozen=True)
class CallCost:
    """``count`` images at ``per_image`` credits: ``total`` is reserved when the creates are sent
    (a failed task is refunded)."""

    per_image: int | float
    count: int

    @property
    def total(self) -> int | float:
        return self.per_image * self.count

    def __str__(self) -> str:
        if self.count == 1:
            return f"{_number(self.total)} credits"
        return f"{_number(self.total)} credits ({self.count} images × {_number(self.per_image)})"


def call_cost(limits: Limits, count: int = 1) -> CallCost:
    """The cost of one generate/edit call that creates ``count`` images (1..``MAX_COUNT``)."""
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be between 1 and {MAX_COUNT}, not {count}")
    return CallCost(per_image=limits.base_credits, count=count)


def _number(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
