"""Magic prompt tokens that steer a sandbox task (sandbox only; never sent to the real API)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN_RE = re.compile(
    r"\[sandbox:(fail|moderated|seconds=([0-9]+(?:\.[0-9]+)?)|result=([A-Za-z0-9_-]{1,64}))\]", re.IGNORECASE
)


@dataclass(frozen=True)
class Magic:
    fail: bool = False
    moderated: bool = False
    seconds: float | None = None
    # The name of an image put with ``PUT /_sandbox/results/{name}``: the task's result is exactly
    # those bytes instead of a rendered picture (e.g. a file signed with C2PA, which the sandbox
    # cannot make itself).
    result: str | None = None


def parse_magic(prompt: str) -> Magic:
    fail = moderated = False
    seconds: float | None = None
    result: str | None = None
    for match in _TOKEN_RE.finditer(prompt):
        word = match.group(1).lower()
        if word == "fail":
            fail = True
        elif word == "moderated":
            moderated = True
        elif word.startswith("result="):
            result = match.group(3)
        else:
            seconds = float(match.group(2))
    return Magic(fail=fail, moderated=moderated, seconds=seconds, result=result)


def strip_magic(prompt: str) -> str:
    """The prompt as drawn on the image: without the steering tokens."""
    return " ".join(_TOKEN_RE.sub(" ", prompt).split())
