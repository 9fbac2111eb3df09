"""Hypothesis strategies built from a tool's live (flat) input schema, and mutations outside it.

Our schemas are flat objects whose properties are strings (maybe with enum, minLength,
maxLength, pattern), integers, numbers (with minimum/maximum), booleans and one level of objects
of those (edit_image's region), so a small builder covers them; hypothesis-jsonschema is
deliberately not used (it would also hide which mutation a failure came from).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

JsonObject = dict[str, Any]

# Texts the agent might send: any unicode (but no lone surrogates, which JSON text can't carry).
UNICODE = st.characters(codec="utf-8")
SOME_TEXT = st.text(UNICODE, max_size=40)
# Exotic but real: emoji, right-to-left, combining marks, zero-width joiners, NUL.
ODD_TEXT = st.sampled_from(
    ["   ", "\t\n", "🦊🔥", "مرحبا بالعالم", "e\u0301\u0301\u0301", "a\u200db", "nul\x00byte", "\ufeffbom"]
)
HUGE = 200_000


@dataclass(frozen=True, repr=False)
class Case:
    """One call to make. ``invalid`` is True when the arguments break the tool's schema."""

    tool: str
    arguments: JsonObject
    invalid: bool
    why: str

    def __repr__(self) -> str:
        # Short on purpose: a 200 kB argument would make every failure report unreadable.
        shown = {(k[:40] + "…" if len(k) > 40 else k): (repr(v)[:80] + "…" if len(repr(v)) > 80 else v)
                 for k, v in self.arguments.items()}  # fmt: skip
        return f"Case({self.tool!r}, {shown!r}, invalid={self.invalid}, why={self.why!r})"


def valid_value(prop: JsonObject, *, extra_strings: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    kind = prop.get("type")
    if "enum" in prop:
        return st.sampled_from(list(prop["enum"]))
    if kind == "object":
        # A nested object of scalars (edit_image's region): its required keys and some of the others.
        return valid_arguments(prop, fixed={}, extra_strings={})
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        low, high = prop.get("minimum"), prop.get("maximum")
        ints = st.integers(min_value=math.ceil(low) if low is not None else None,
                           max_value=math.floor(high) if high is not None else None)  # fmt: skip
        if kind == "integer":
            return ints
        return ints | st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    assert kind == "string", prop
    if "pattern" in prop:
        return st.from_regex(prop["pattern"], fullmatch=True).filter(lambda s: len(s) < 200)
    text = st.text(UNICODE, min_size=prop.get("minLength", 0), max_size=min(prop.get("maxLength", 60), 60))
    strings = text | ODD_TEXT.filter(lambda s: len(s) >= prop.get("minLength", 0))
    if "maxLength" not in prop:
        strings = strings | st.just("h" * HUGE)
    return strings | extra_strings if extra_strings is not None else strings


def invalid_value(prop: JsonObject) -> st.SearchStrategy[tuple[Any, str]]:
    """A value that breaks ``prop`` in a way no lenient coercion can rescue, with a label."""
    kind = prop.get("type")
    containers = st.sampled_from([None, [], [1, 2], {}, {"a": 1}]).map(lambda v: (v, f"wrong type {type(v).__name__}"))
    # An "x" prefix keeps a string from parsing as a number or boolean ("2" → 2 is accepted on purpose).
    non_numeric = SOME_TEXT.map(lambda s: ("x" + s, "non-numeric string"))
    options: list[st.SearchStrategy[tuple[Any, str]]] = [containers]
    if kind in ("integer", "number"):
        options += [non_numeric, st.booleans().map(lambda b: (b, "boolean for a number"))]
        if "minimum" in prop:
            low = prop["minimum"]
            options.append(
                st.floats(max_value=low, exclude_max=True, allow_nan=False).map(lambda v: (v, "below minimum"))
            )
        if "maximum" in prop:
            high = prop["maximum"]
            options.append(st.floats(min_value=high, exclude_min=True).map(lambda v: (v, "above maximum")))
            options.append(st.just((10**400, "enormous integer")))
        if kind == "integer":
            low, high = prop.get("minimum", -100), prop.get("maximum", 100)
            options.append(st.floats(min_value=low, max_value=high).filter(lambda v: not float(v).is_integer())
                           .map(lambda v: (v, "fraction for an integer")))  # fmt: skip
    elif kind == "boolean":
        options += [non_numeric, st.integers().map(lambda v: (v, "number for a boolean"))]
    else:
        options.append(
            st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans()).map(lambda v: (v, "non-string"))
        )
        if "enum" in prop:
            enum = set(prop["enum"])
            options.append(
                st.one_of(SOME_TEXT, ODD_TEXT, st.just("x" * HUGE))
                .filter(lambda s: s not in enum)
                .map(lambda s: (s, "not in enum"))
            )
        if prop.get("minLength", 0) > 0:
            options.append(st.just(("", "empty string")))
        if "maxLength" in prop:
            options.append(st.just(("k" * (prop["maxLength"] + 1), "too long")))
        if "pattern" in prop:
            pattern = prop["pattern"]
            options.append(st.one_of(SOME_TEXT, ODD_TEXT).filter(lambda s: re.search(pattern, s) is None)
                           .map(lambda s: (s, "pattern mismatch")))  # fmt: skip
    return st.one_of(options)


def valid_arguments(
    schema: JsonObject, *, fixed: JsonObject, extra_strings: dict[str, st.SearchStrategy[str]]
) -> st.SearchStrategy[JsonObject]:
    """Arguments valid per ``schema``: every required key and a random subset of the others."""
    properties: JsonObject = schema.get("properties", {})
    required = set(schema.get("required", []))

    @st.composite
    def build(draw: st.DrawFn) -> JsonObject:
        arguments: JsonObject = {}
        for key, prop in properties.items():
            if key in fixed:
                continue
            if key in required or draw(st.booleans()):
                arguments[key] = draw(valid_value(prop, extra_strings=extra_strings.get(key)))
        arguments.update({k: v for k, v in fixed.items() if k in properties})
        return arguments

    return build()


def cases(
    tool: str, schema: JsonObject, *, fixed: JsonObject, extra_strings: dict[str, st.SearchStrategy[str]]
) -> st.SearchStrategy[Case]:
    """Valid calls, and calls broken by exactly one mutation outside the schema."""
    properties: JsonObject = schema.get("properties", {})
    required = list(schema.get("required", []))
    base = valid_arguments(schema, fixed=fixed, extra_strings=extra_strings)

    @st.composite
    def mutated(draw: st.DrawFn) -> Case:
        arguments = dict(draw(base))
        kinds = ["unknown key", "huge unknown key"]
        if properties:
            kinds += ["bad value", "null"]
        if required:
            kinds.append("missing required")
        kind = draw(st.sampled_from(kinds))
        if kind == "bad value":
            key = draw(st.sampled_from(sorted(properties)))
            arguments[key], why = draw(invalid_value(properties[key]))
            return Case(tool, arguments, True, f"{key}: {why}")
        if kind == "null":
            key = draw(st.sampled_from(sorted(properties)))
            arguments[key] = None
            return Case(tool, arguments, True, f"{key}: null")
        if kind == "missing required":
            key = draw(st.sampled_from(required))
            arguments.pop(key, None)
            return Case(tool, arguments, True, f"{key}: missing")
        name = draw(st.text(UNICODE, min_size=1, max_size=20).filter(lambda s: s not in properties))
        if kind == "huge unknown key":
            name = "u" * HUGE
        arguments[name] = draw(st.one_of(st.none(), SOME_TEXT, st.integers()))
        return Case(tool, arguments, True, "unknown key")

    valid = base.map(lambda arguments: Case(tool, arguments, False, "valid"))
    return st.one_of(valid, mutated())
