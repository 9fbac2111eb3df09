"""Pick, paint, keep: what a person does with images beyond one plain call.

Variations (``count``: several tasks side by side, one contact sheet, a link each), region edits
(``mask`` or ``region``: checked before anything is paid, composited when saved by the tasks
layer), and the way back to earlier images (thumbnails of saved images, ``list_tasks`` as a
gallery). Part of ``server``: the tool bodies (``server._tools``) call in here.
"""

from rivya_mcp.server.studio._gallery import (
    LIST_PREVIEW_BUDGET,
    LIST_PREVIEW_SIDE,
    THUMBNAIL_BUDGET,
    THUMBNAIL_SIDE,
    THUMBNAIL_URI_PREFIX,
    gallery_blocks,
    register_thumbnails,
    thumbnail_of,
    thumbnail_uri,
)
from rivya_mcp.server.studio._regions import RegionEdit, prepare_region_edit, wants_region
from rivya_mcp.server.studio._variations import (
    Candidate,
    any_created,
    candidate_keys,
    first_error,
    run_candidates,
    variations_result,
)

__all__ = [
    "LIST_PREVIEW_BUDGET",
    "LIST_PREVIEW_SIDE",
    "THUMBNAIL_BUDGET",
    "THUMBNAIL_SIDE",
    "THUMBNAIL_URI_PREFIX",
    "Candidate",
    "RegionEdit",
    "any_created",
    "candidate_keys",
    "first_error",
    "gallery_blocks",
    "prepare_region_edit",
    "register_thumbnails",
    "run_candidates",
    "thumbnail_of",
    "thumbnail_uri",
    "variations_result",
    "wants_region",
]
