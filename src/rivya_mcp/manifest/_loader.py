"""Find, validate and parse the model manifests shipped with the package."""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from rivya_mcp.manifest._model import Manifest, ModeSpec, Narrowing, Param, UploadPolicy

SCHEMA_FILENAME = "manifest.schema.json"


class ManifestError(ValueError):
    """A manifest file is missing or does not pass the meta-schema."""


def manifests_dir() -> Path:
    """Where the manifests live: inside the wheel, or in the source checkout."""
    packaged = resources.files("rivya_mcp") / "_manifests"
    if packaged.is_dir():
        return Path(str(packaged))
    # Editable installs and source checkouts: <repo>/manifests/models.
    checkout = Path(__file__).resolve().parents[3] / "manifests" / "models"
    if checkout.is_dir():
        return checkout
    raise ManifestError("model manifests not found: the package is incomplete (reinstall rivya-mcp)")


def _meta_schema(directory: Path) -> dict[str, Any]:
    return json.loads((directory / SCHEMA_FILENAME).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def parse_manifest(data: dict[str, Any], meta_schema: dict[str, Any]) -> Manifest:
    """Validate one manifest document against the meta-schema and build a Manifest."""
    validator = jsonschema.Draft202012Validator(meta_schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
        raise ManifestError(f"manifest {data.get('id', '?')!r} is invalid at {where}: {errors[0].message}")
    keys = [p["key"] for p in data["params"]]
    if len(keys) != len(set(keys)):
        raise ManifestError(f"manifest {data['id']!r} repeats a parameter key")
    upload = data["upload"]
    return Manifest(
        id=data["id"],
        display_name=data["display_name"],
        category=data["category"],
        inputs=tuple(data["inputs"]),
        base_credits=data["base_credits"],
        billing_type=data["billing_type"],
        max_prompt_length=data["max_prompt_length"],
        prompt_required=data["prompt"]["required"],
        prompt_description=data["prompt"]["description"],
        upload=UploadPolicy(
            max_files=upload["max_files"],
            kinds=tuple(upload["kinds"]),
            max_bytes=upload["max_bytes"],
            mime_types=tuple(upload["mime_types"]),
            note=upload.get("note", ""),
        ),
        modes={
            name: ModeSpec(min_references=spec["references"]["min"], max_references=spec["references"]["max"])
            for name, spec in data["modes"].items()
        },
        params=tuple(_parse_param(p) for p in data["params"]),
        raw=data,
    )


def _parse_param(p: dict[str, Any]) -> Param:
    return Param(
        key=p["key"],
        type=p["type"],
        required=p["required"],
        default=p["default"],
        description=p["description"],
        options=tuple(p["options"]) if "options" in p else None,
        min=p.get("min"),
        max=p.get("max"),
        step=p.get("step"),
        max_length=p.get("max_length"),
        narrow={
            mode: Narrowing(
                min=n.get("min"),
                max=n.get("max"),
                options=tuple(n["options"]) if "options" in n else None,
                why=n["why"],
            )
            for mode, n in p.get("narrow", {}).items()
        },
    )


@functools.cache
def load_manifests() -> dict[str, Manifest]:
    """All model manifests, keyed by model id. Cached: manifests are read once per process."""
    directory = manifests_dir()
    meta = _meta_schema(directory)
    found: dict[str, Manifest] = {}
    for path in sorted(directory.glob("*.json")):
        if path.name == SCHEMA_FILENAME:
            continue
        manifest = parse_manifest(json.loads(path.read_text(encoding="utf-8")), meta)
        if path.stem != manifest.id:
            raise ManifestError(f"{path.name}: file name must be the model id {manifest.id!r}")
        found[manifest.id] = manifest
    if not found:
        raise ManifestError(f"no model manifests in {directory}")
    return found


def get_manifest(model_id: str) -> Manifest:
    """The manifest of one model; KeyError names the known ids."""
    manifests = load_manifests()
    try:
        return manifests[model_id]
    except KeyError:
        raise KeyError(f"unknown model {model_id!r}; known: {', '.join(sorted(manifests))}") from None
