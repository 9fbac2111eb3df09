"""The one error this package raises: a message the agent can act on."""

from __future__ import annotations

__all__ = ["ReferenceError", "size_changed"]


# The name shadows the builtin weakref ReferenceError on purpose: it is the project's contract.
class ReferenceError(ValueError):
    """A reference source was refused or could not be read.

    ``message`` says what happened and what to do, in words fit for the agent; ``reason`` is a
    short stable code for programs and tests (``"too_large"``, ``"forbidden_address"``, ...).
    """

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def size_changed(kind: str, claimed: tuple[int, int], checked: tuple[int, int]) -> ReferenceError:
    """A streamed image's header now claims other dimensions than the cheap check read from it."""
    return ReferenceError(
        f"the {kind} image now claims {claimed[0]}×{claimed[1]} pixels, not the {checked[0]}×{checked[1]} "
        "checked before; it changed while it was being read, try again",
        reason="changed",
    )
