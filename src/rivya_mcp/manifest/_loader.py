"""Find, validate and parse the model manifests shipped with the package.

jsonschema is imported only when a meta-schema check runs: importing it costs a stdio server about
30 ms at every spawn (docs/benchmarks.md, cold start). So :func:`load_manifests` parses the
shipped files without it, and the meta-schema check of those files runs once per process, the
first time a manifest is used to validate arguments or build a request
(:func:`ensure_meta_valid`), always before anything reaches the API. :func:`parse_manifest`
validates eagerly, as before.
"""

from __future__ import annotations

import functools
import json
import threading
from importlib import resources
from pathlib import Path
from typing import Any

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


def check_manifest(data: dict[str, Any], meta_schema: dict[str, Any]) -> None:
    """Raise ManifestError unless ``data`` passes the meta-schema and names each parameter once."""
    import jsonschema  # deferred: see the module docstring

    validator = jsonschema.Draft202012Validator(meta_schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
        raise ManifestError(f"manifest {data.get('id', '?')!r} is invalid at {where}: {errors[0].message}")
    _check_unique_keys(data)


def _check_unique_keys(data: dict[str, Any]) -> None:
    keys = [p["key"] for p in data["params"]]
    if len(keys) != len(set(keys)):
        raise ManifestError(f"manifest {data['id']!r} repeats a parameter key")


def parse_manifest(data: dict[str, Any], meta_schema: dict[str, Any]) -> Manifest:
    """Validate one manifest document against the meta-schema and build a Manifest."""
    check_manifest(data, meta_schema)
    return _build(data)


def _build(data: dict[str, Any]) -> Manifest:
    """A Manifest from a document assumed valid; a missing or mistyped field is a ManifestError."""
    try:
        return _build_unchecked(data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ManifestError(f"manifest {data.get('id', '?')!r} is malformed: {exc!r}") from None


def _build_unchecked(data: dict[str, Any]) -> Manifest:
    _check_unique_keys(data)
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
    """All model manifests, keyed by model id. Cached: manifests are read once per process.

    The meta-schema check is deferred to :func:`ensure_meta_valid` (see the module docstring).
    """
    directory = manifests_dir()
    found: dict[str, Manifest] = {}
    for path in sorted(directory.glob("*.json")):
        if path.name == SCHEMA_FILENAME:
            continue
        manifest = _build(json.loads(path.read_text(encoding="utf-8")))
        if path.stem != manifest.id:
            raise ManifestError(f"{path.name}: file name must be the model id {manifest.id!r}")
        found[manifest.id] = manifest
    if not found:
        raise ManifestError(f"no model manifests in {directory}")
    return found


_meta_checked = False
_meta_lock = threading.Lock()


def ensure_meta_valid(manifest: Manifest) -> None:
    """Check the shipped manifests against the meta-schema, once per process, if ``manifest`` is one.

    Manifests from :func:`parse_manifest` were checked when they were built; anything else is
    left alone.
    """
    global _meta_checked
    if _meta_checked:
        return
    loaded = load_manifests()
    if loaded.get(manifest.id) is not manifest:
        return
    with _meta_lock:
        if _meta_checked:
            return
        meta = _meta_schema(manifests_dir())
        for shipped in loaded.values():
            check_manifest(shipped.raw, meta)
        _meta_checked = True


def get_manifest(model_id: str) -> Manifest:
    """The manifest of one model; KeyError names the known ids."""
    manifests = load_manifests()
    try:
        return manifests[model_id]
    except KeyError:
        raise KeyError(f"unknown model {model_id!r}; known: {', '.join(sorted(manifests))}") from None
