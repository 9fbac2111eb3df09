"""The one error this package raises: a message the agent can act on."""

from __future__ import annotations

__all__ = ["ImagingError"]


class ImagingError(ValueError):
    """Image bytes, a mask or a region were refused.

    ``message`` says what happened and what to do, in words fit for the agent; ``reason`` is a
    short stable code for programs and tests: ``"not_an_image"``, ``"corrupt"``,
    ``"too_many_pixels"``, ``"region_outside"``, ``"empty_region"``, ``"empty_mask"``,
    ``"too_many_images"``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
