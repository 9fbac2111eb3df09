"""The Files API: caps, signature checks, the file object, and URL expiry."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from rivya_mcp.sandbox import ManualClock, SandboxState

from .conftest import AUTH, OTHER_AUTH, Api, assert_error, image_bytes, open_image

pytestmark = pytest.mark.anyio

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
async def test_images_are_accepted(api: Api, fmt: str, mime: str) -> None:
    data = image_bytes(fmt)
    response = await api.upload(
        data, name=f"ref.{fmt.lower()}", mime=mime, fields={"kind": "image", "model": "flux-kontext-max"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "object", "url", "kind", "name", "mimeType", "size", "created_at"}
    assert re.fullmatch(r"file_[0-9a-f]{24}", body["id"])
    assert body["object"] == "file" and body["kind"] == "image"
    assert body["mimeType"] == mime and body["size"] == len(data) and body["name"] == f"ref.{fmt.lower()}"
    assert (await api.client.get(f"/api/v1/files/{body['id']}", headers=AUTH)).json() == body
    served = await api.client.get(body["url"])
    assert served.status_code == 200 and served.content == data and served.headers["content-type"] == mime


async def test_declared_type_is_ignored_in_favour_of_the_signature(api: Api) -> None:
    body = (await api.upload(image_bytes("JPEG"), name="looks.png", mime="image/png")).json()
    assert body["mimeType"] == "image/jpeg"


async def test_text_named_png_is_refused(api: Api) -> None:
    error = assert_error(await api.upload(b"hello, not an image", name="x.png"), 400, "validation_failed")
    assert "file:" in error["message"]


async def test_a_gif_is_refused(api: Api) -> None:
    assert_error(await api.upload(b"GIF89a" + b"\0" * 64, name="x.gif", mime="image/gif"), 400, "validation_failed")


async def test_over_ten_megabytes_is_refused(api: Api, state: SandboxState) -> None:
    data = PNG_MAGIC + b"\0" * (10 * 1024 * 1024 + 512 * 1024 - len(PNG_MAGIC))
    error = assert_error(await api.upload(data), 400, "validation_failed")
    assert "10 MB" in error["message"]
    assert state.snapshot()["files"] == []


async def test_exactly_ten_megabytes_is_accepted(api: Api) -> None:
    data = PNG_MAGIC + b"\0" * (10 * 1024 * 1024 - len(PNG_MAGIC))
    assert (await api.upload(data)).json()["size"] == 10 * 1024 * 1024


async def test_a_streamed_body_is_cut_off_at_the_cap(api: Api) -> None:
    read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        head = b'--b\r\nContent-Disposition: form-data; name="kind"\r\n\r\nimage\r\n'
        head += b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n' + PNG_MAGIC
        yield head
        for _ in range(400):  # 25 MiB if read to the end
            read += 65536
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    response = await api.client.post(
        "/api/v1/files", content=body(), headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"}
    )
    assert_error(response, 400, "validation_failed")
    assert read <= 10 * 1024 * 1024 + 2 * 65536 + 64 * 1024


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({}, "kind"),
        ({"kind": "document"}, "kind"),
        ({"kind": "video"}, "kind"),
        ({"kind": "image", "model": "nope"}, "model"),
        ({"kind": "image", "client_request_id": "x" * 129}, "client_request_id"),
    ],
)
async def test_bad_fields_are_refused(api: Api, fields: dict[str, str], fragment: str) -> None:
    error = assert_error(await api.upload(image_bytes(), fields=fields), 400, "validation_failed")
    assert fragment in error["message"]


async def test_missing_file_part_and_wrong_content_type(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/files", data={"kind": "image"}, files={"other": ("a", b"x")}, headers=AUTH
    )
    assert_error(response, 400, "validation_failed")
    assert_error(await api.client.post("/api/v1/files", json={"kind": "image"}, headers=AUTH), 400, "validation_failed")


async def test_files_are_private_to_their_account(api: Api) -> None:
    file_id = (await api.upload(image_bytes())).json()["id"]
    assert_error(await api.client.get(f"/api/v1/files/{file_id}", headers=OTHER_AUTH), 404, "not_found")


async def test_result_and_file_urls_expire(api: Api, clock: ManualClock) -> None:
    uploaded = (await api.upload(image_bytes())).json()
    done = await api.finish((await api.create()).json()["id"])
    result_url = done["result"]["primary_url"]
    assert open_image((await api.client.get(result_url)).content).format == "JPEG"
    clock.advance(3600)
    for url in (uploaded["url"], result_url):
        assert_error(await api.client.get(url), 410, "url_expired")
    # An expired file URL can no longer be used as a reference.
    params = {"referenceMediaItems": [{"url": uploaded["url"], "kind": "image"}]}
    assert "expired" in assert_error(await api.create(params=params), 400, "validation_failed")["message"]
    assert_error(await api.client.get("/_sandbox/media/not-a-token"), 404, "not_found")


async def test_url_ttl_is_configurable_at_runtime(api: Api, clock: ManualClock) -> None:
    url = (await api.upload(image_bytes())).json()["url"]
    await api.client.post("/_sandbox/config", json={"url_ttl_seconds": 5})
    clock.advance(4.9)
    assert (await api.client.get(url)).status_code == 200
    clock.advance(0.1)
    assert_error(await api.client.get(url), 410, "url_expired")


async def test_urls_use_the_configured_public_base(api: Api) -> None:
    await api.client.post("/_sandbox/config", json={"public_base_url": "https://sandbox.example/"})
    assert (await api.upload(image_bytes())).json()["url"].startswith("https://sandbox.example/_sandbox/media/")
