"""An output folder that cannot be written: the agent is told what and where, and the paid image is kept.

A real stdio server in a subprocess, a real sandbox on loopback and a real file-system error: the
output folder lies under a regular file, which stops root too (CI runs as root, where a
chmod'ed folder stays writable). Once the folder can be made, ``get_task`` saves the kept copy
without downloading it again: the sandbox counts the downloads.
"""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import ImageContent
from PIL import Image

from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.tasks import Spool
from tests.faults._process import process_transport, spawn_server
from tests.faults.conftest import Account, data_of, fault_hits, set_faults, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# A rule that only counts: every download of a result (or file) URL passes through it.
COUNT_DOWNLOADS = {"path": "/_sandbox/media/", "method": "GET", "delay_ms": 0}


def _downloads(sandbox: RunningSandbox) -> int:
    [hits] = fault_hits(sandbox)
    return hits


async def test_an_unwritable_output_folder_is_reported_and_saved_later_without_a_second_download(
    account: Account, tmp_path: Path
) -> None:
    blocker = tmp_path / "pictures"
    blocker.write_text("a file where the output folder's parent should be\n")
    out = blocker / "rivya"
    settings = account.settings(output_dir=out)
    set_faults(account.sandbox, [COUNT_DOWNLOADS])
    kept = Spool(settings.data_dir).path_for

    with (tmp_path / "server.log").open("w+") as errlog:
        async with spawn_server(settings, errlog) as process, Client(process_transport(process)) as client:
            first = await client.call_tool("generate_image", {"prompt": "A heron at dawn", "wait_seconds": 20})
            assert first.is_error
            data = first.structured_content
            assert data is not None
            task_id = data["task_id"]
            text = text_of(first)
            assert text.startswith("Error (output_folder_unwritable): ")
            assert f"could not be saved in the output folder {out}: part of the path is a file, not a folder" in text
            assert "Retrying may help" not in text and "internal" not in text
            assert f"The downloaded image is kept at {kept(task_id)}" in text
            assert f'call get_task with task_id="{task_id}"' in text
            # What was paid for is still shown: the preview, the source URL, the status.
            assert any(isinstance(c, ImageContent) for c in first.content)
            assert data["status"] == "succeeded" and data["saved_path"] is None
            assert data["source_url"] and data["source_url"] in text
            assert _downloads(account.sandbox) == 1
            spooled = kept(task_id)
            assert stat.S_IMODE(spooled.stat().st_mode) == 0o600
            image = spooled.read_bytes()
            assert image[:3] == b"\xff\xd8\xff"

            again = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 0})
            assert again.is_error and "output_folder_unwritable" in text_of(again)
            assert _downloads(account.sandbox) == 1  # the kept copy, not a new download

            blocker.unlink()  # the user fixes the folder
            fixed = data_of(await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 0}))
    saved = Path(fixed["saved_path"])
    assert saved.parent == out
    # The kept download, as saved: the same image data with its provenance packet added in front.
    with Image.open(saved) as on_disk, Image.open(io.BytesIO(image)) as kept_copy:
        assert on_disk.tobytes() == kept_copy.tobytes() and task_id.encode() in on_disk.info["xmp"]
    assert saved.read_bytes().endswith(image[image.index(b"\xff\xda") :])  # the scan data, untouched
    assert _downloads(account.sandbox) == 1
    assert not spooled.exists()
    account.assert_one_charge_per_task(1)
