"""The one error this package raises: a message the agent can act on."""

from __future__ import annotations

__all__ = ["ReferenceError"]


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
