"""Magic prompt tokens that steer a sandbox task (sandbox only; never sent to the real API)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN_RE = re.compile(r"\[sandbox:(fail|moderated|seconds=([0-9]+(?:\.[0-9]+)?))\]", re.IGNORECASE)


@dataclass(frozen=True)
class Magic:
    fail: bool = False
    moderated: bool = False
    seconds: float | None = None


def parse_magic(prompt: str) -> Magic:
    fail = moderated = False
    seconds: float | None = None
    for match in _TOKEN_RE.finditer(prompt):
        word = match.group(1).lower()
        if word == "fail":
            fail = True
        elif word == "moderated":
            moderated = True
        else:
            seconds = float(match.group(2))
    return Magic(fail=fail, moderated=moderated, seconds=seconds)


def strip_magic(prompt: str) -> str:
    """The prompt as drawn on the image: without the steering tokens."""
    return " ".join(_TOKEN_RE.sub(" ", prompt).split())
