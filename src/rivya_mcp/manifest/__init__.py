"""Model manifests: the single source of truth for model parameters, and what derives from them."""

from rivya_mcp.manifest._derive import (
    PROMPT_KEY,
    REFERENCE_ITEMS_KEY,
    ArgumentError,
    check_wire_params,
    input_schema,
    param_property,
    prompt_property,
    to_wire_params,
    validate_arguments,
)
from rivya_mcp.manifest._loader import (
    SCHEMA_FILENAME,
    ManifestError,
    get_manifest,
    load_manifests,
    manifests_dir,
    parse_manifest,
)
from rivya_mcp.manifest._model import Manifest, Mode, ModeSpec, Narrowing, Param, UploadPolicy

DEFAULT_MODEL = "flux-kontext-max"

__all__ = [
    "DEFAULT_MODEL",
    "PROMPT_KEY",
    "REFERENCE_ITEMS_KEY",
    "SCHEMA_FILENAME",
    "ArgumentError",
    "Manifest",
    "ManifestError",
    "Mode",
    "ModeSpec",
    "Narrowing",
    "Param",
    "UploadPolicy",
    "check_wire_params",
    "get_manifest",
    "input_schema",
    "load_manifests",
    "manifests_dir",
    "param_property",
    "parse_manifest",
    "prompt_property",
    "to_wire_params",
    "validate_arguments",
]
