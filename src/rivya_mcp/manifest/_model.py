"""The parsed, validated form of a model manifest (see manifests/README.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["generate", "edit"]
ParamType = Literal["select", "number", "text"]


@dataclass(frozen=True)
class Narrowing:
    """A per-mode restriction of a parameter (e.g. a smaller range when editing)."""

    min: float | None = None
    max: float | None = None
    options: tuple[str, ...] | None = None
    why: str = ""


@dataclass(frozen=True)
class Param:
    """One row of the model page's parameter table."""

    key: str
    type: ParamType
    required: bool
    default: str | float | int | None
    description: str
    options: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    max_length: int | None = None
    narrow: dict[str, Narrowing] = field(default_factory=dict)

    @property
    def is_boolean(self) -> bool:
        """A select whose options are exactly "true"/"false" is a boolean to agents."""
        return self.type == "select" and self.options is not None and sorted(self.options) == ["false", "true"]

    def for_mode(self, mode: Mode) -> Param:
        """This parameter with the mode's narrowing applied."""
        narrowing = self.narrow.get(mode)
        if narrowing is None:
            return self
        return Param(
            key=self.key,
            type=self.type,
            required=self.required,
            default=self.default,
            description=self.description,
            options=narrowing.options if narrowing.options is not None else self.options,
            min=narrowing.min if narrowing.min is not None else self.min,
            max=narrowing.max if narrowing.max is not None else self.max,
            step=self.step,
            max_length=self.max_length,
        )


@dataclass(frozen=True)
class UploadPolicy:
    """What reference files the model accepts."""

    max_files: int
    kinds: tuple[str, ...]
    max_bytes: int
    mime_types: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class ModeSpec:
    """How many references a mode takes."""

    min_references: int
    max_references: int


@dataclass(frozen=True)
class Manifest:
    """Everything the model page documents about one model."""

    id: str
    display_name: str
    category: str
    inputs: tuple[str, ...]
    base_credits: int
    billing_type: str
    max_prompt_length: int | None
    prompt_required: bool
    prompt_description: str
    upload: UploadPolicy
    modes: dict[str, ModeSpec]
    params: tuple[Param, ...]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def param(self, key: str) -> Param:
        for p in self.params:
            if p.key == key:
                return p
        raise KeyError(key)

    def params_for(self, mode: Mode) -> tuple[Param, ...]:
        """The ordered parameter table with the mode's narrowings applied."""
        return tuple(p.for_mode(mode) for p in self.params)
