"""Auth, the model list, the task lifecycle, rendered images, magic prompts and validation."""

from __future__ import annotations

import re
import struct
import zlib

import httpx2
import pytest

from rivya_mcp.manifest import get_manifest
from rivya_mcp.sandbox import ManualClock

from .conftest import AUTH, MODEL, OTHER_AUTH, Api, assert_error, image_bytes, open_image

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "api_key_missing"),
        ({"Authorization": ""}, "api_key_missing"),
        ({"Authorization": "Bearer "}, "api_key_missing"),
        ({"Authorization": "Bearer sk-not-rivya"}, "api_key_invalid"),
        ({"Authorization": "Basic cnZ5YV9za19hYmM="}, "api_key_invalid"),
        ({"Authorization": "Bearer rvya_sk_"}, "api_key_invalid"),
        ({"Authorization": "Bearer rvya_sk_has space"}, "api_key_invalid"),
        # A well-formed key under another scheme is not a Bearer token (rivya-api §2: Bearer only).
        ({"Authorization": "Basic rvya_sk_test_a1b2c3"}, "api_key_invalid"),
        ({"Authorization": "Token rvya_sk_test_a1b2c3"}, "api_key_invalid"),
        ({"Authorization": "rvya_sk_test_a1b2c3"}, "api_key_invalid"),
        ({"Authorization": "Bearerrvya_sk_test_a1b2c3"}, "api_key_invalid"),
    ],
)
async def test_auth_errors(client: httpx2.AsyncClient, headers: dict[str, str], code: str) -> None:
    for method, path in [("GET", "/api/v1/credits"), ("POST", "/api/v1/generations"), ("GET", "/api/v1/files/x")]:
        response = await client.request(method, path, headers=headers)
        error = assert_error(response, 401, code)
        assert "rvya_sk_has" not in error["message"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_the_bearer_scheme_is_case_insensitive(client: httpx2.AsyncClient, scheme: str) -> None:
    """RFC 9110 §11.1: the scheme is matched case-insensitively; the key itself is what it is."""
    response = await client.get("/api/v1/credits", headers={"Authorization": f"{scheme} rvya_sk_test_a1b2c3"})
    assert response.status_code == 200


async def test_models_list_is_public_and_documented_shape(client: httpx2.AsyncClient) -> None:
    response = await client.get("/api/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    entry = next(m for m in body["data"] if m["id"] == MODEL)
    documented_keys = {
        "id", "display_name", "category", "runtime", "base_credits", "billing_type", "supported_modes",
        "max_prompt_length", "reference_media", "params", "api_status", "api_input_status",
        "supported_api_inputs", "requires_files_api", "requires_upload_for_modes", "url_input_supported",
        "file_kinds", "chat_capabilities", "notices",
    }  # fmt: skip
    assert set(entry) == documented_keys
    manifest = get_manifest(MODEL)
    assert entry["base_credits"] == manifest.base_credits == 8
    assert entry["category"] == "image" and entry["runtime"] == "async_task" and entry["api_status"] == "available"
    assert entry["api_input_status"] == "partial_requires_files"
    assert [p["key"] for p in entry["params"]] == [p.key for p in manifest.params]
    assert entry["file_kinds"] == ["image"]
    # A malformed key does not matter on the public endpoint.
    assert (await client.get("/api/v1/models", headers={"Authorization": "Bearer nope"})).status_code == 200


async def test_lifecycle_follows_the_clock(api: Api, clock: ManualClock) -> None:
    created = await api.create(params={"aspectRatio": "1:1"})
    assert created.status_code == 201
    task = created.json()
    assert re.fullmatch(r"task_[0-9a-f]{24}", task["id"])
    assert task == {
        "id": task["id"],
        "status": "queued",
        "model": MODEL,
        "reserved_credits": 8,
        "final_credits": 0,
        "created_at": "2026-05-11T00:00:00.000Z",
        "updated_at": "2026-05-11T00:00:00.000Z",
        "result": None,
        "error": None,
    }
    assert (await api.get(task["id"]))["status"] == "queued"
    clock.advance(1.0)
    processing = await api.get(task["id"])
    assert processing["status"] == "processing"
    assert processing["updated_at"] == "2026-05-11T00:00:01.000Z"
    assert processing["final_credits"] == 0 and processing["result"] is None
    clock.advance(3.0)
    done = await api.get(task["id"])
    assert done["status"] == "succeeded"
    assert done["final_credits"] == 8
    assert done["updated_at"] == "2026-05-11T00:00:04.000Z"
    assert done["result"]["urls"] == [done["result"]["primary_url"]]
    assert done["result"]["primary_url"].startswith("http://sandbox.test/_sandbox/media/")
    assert done["error"] is None


async def test_tasks_are_private_to_their_account(api: Api) -> None:
    task_id = (await api.create()).json()["id"]
    other = await api.client.get(f"/api/v1/generations/{task_id}", headers=OTHER_AUTH)
    assert_error(other, 404, "not_found")
    assert_error(await api.client.get("/api/v1/generations/task_nope", headers=AUTH), 404, "not_found")


@pytest.mark.parametrize(
    ("ratio", "fmt", "mime"),
    [
        ("16:9", "jpeg", "image/jpeg"),
        ("9:16", "png", "image/png"),
        ("21:9", "jpeg", "image/jpeg"),
        ("1:1", "png", "image/png"),
    ],
)
async def test_result_is_a_real_image_of_the_requested_ratio_and_format(
    api: Api, ratio: str, fmt: str, mime: str
) -> None:
    task = (await api.create("a red fox in snow", params={"aspectRatio": ratio, "outputFormat": fmt})).json()
    done = await api.finish(task["id"])
    download = await api.client.get(done["result"]["primary_url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == mime
    image = open_image(download.content)
    assert image.format == fmt.upper()
    width, height = image.size
    ratio_w, ratio_h = (int(x) for x in ratio.split(":"))
    assert width / height == pytest.approx(ratio_w / ratio_h, rel=0.02)
    assert 0.9e6 <= width * height <= 1.15e6
    assert width % 32 == 0 and height % 32 == 0


async def test_images_are_deterministic_per_prompt(api: Api) -> None:
    async def image_for(prompt: str) -> bytes:
        task = (await api.create(prompt, params={"outputFormat": "png"})).json()
        done = await api.finish(task["id"])
        return (await api.client.get(done["result"]["primary_url"])).content

    first, again, other = await image_for("a cat"), await image_for("a cat"), await image_for("a dog")
    assert first == again
    assert first != other


async def test_default_ratio_is_the_manifest_default(api: Api) -> None:
    done = await api.finish((await api.create()).json()["id"])
    image = open_image((await api.client.get(done["result"]["primary_url"])).content)
    assert image.format == "JPEG"
    assert image.width / image.height == pytest.approx(16 / 9, rel=0.02)


async def test_edit_derives_from_its_reference(api: Api) -> None:
    uploaded = (await api.upload(image_bytes("PNG", (230, 10, 10), (400, 300)))).json()
    reference = {"url": uploaded["url"], "kind": "image", "name": uploaded["name"], "mimeType": uploaded["mimeType"]}
    created = await api.create("make it moody", params={"aspectRatio": "1:1", "referenceMediaItems": [reference]})
    assert created.status_code == 201, created.text
    done = await api.finish(created.json()["id"])
    image = open_image((await api.client.get(done["result"]["primary_url"])).content).convert("RGB")
    assert image.size == (1024, 1024)
    red, green, blue = image.resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
    assert red > 150 and red > 2.5 * green and red > 2.5 * blue
    state = await api.state()
    assert state["tasks"][0]["mode"] == "edit"
    assert state["tasks"][0]["references"] == [{"source": "file", "id": uploaded["id"]}]


async def test_edit_can_use_an_earlier_result_url(api: Api) -> None:
    first = await api.finish((await api.create("a blue sky", params={"aspectRatio": "1:1"})).json()["id"])
    reference = {"url": first["result"]["primary_url"], "kind": "image"}
    second = await api.create("add a kite", params={"aspectRatio": "4:3", "referenceMediaItems": [reference]})
    assert second.status_code == 201, second.text
    done = await api.finish(second.json()["id"])
    image = open_image((await api.client.get(done["result"]["primary_url"])).content)
    assert image.width / image.height == pytest.approx(4 / 3, rel=0.02)


async def test_magic_fail_releases_the_credits(api: Api) -> None:
    task = (await api.create("a bridge [sandbox:fail]")).json()
    assert task["status"] == "queued"
    done = await api.finish(task["id"])
    assert done["status"] == "failed"
    assert done["error"] == {"code": "generation_failed", "message": "The generation failed."}
    assert done["final_credits"] == 0 and done["result"] is None
    assert await api.credits() == 1000


async def test_magic_moderated(api: Api) -> None:
    done = await api.finish((await api.create("[sandbox:moderated] something")).json()["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "content_moderated"


async def test_magic_seconds_sets_the_total_duration(api: Api, clock: ManualClock) -> None:
    task = (await api.create("slow one [sandbox:seconds=20]")).json()
    clock.advance(19.5)
    assert (await api.get(task["id"]))["status"] == "processing"
    clock.advance(0.5)
    assert (await api.get(task["id"]))["status"] == "succeeded"
    instant = (await api.create("fast [sandbox:seconds=0]")).json()
    assert instant["status"] == "queued"  # the create answer always shows the task as created
    assert (await api.get(instant["id"]))["status"] == "succeeded"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": MODEL, "prompt": "x", "params": {"aspectRatio": "2:1"}}, "params.aspectRatio"),
        ({"model": MODEL, "prompt": "x", "params": {"outputFormat": "gif"}}, "params.outputFormat"),
        ({"model": MODEL, "prompt": "x", "params": {"safetyTolerance": 7}}, "params.safetyTolerance"),
        ({"model": MODEL, "prompt": "x", "params": {"safetyTolerance": "2"}}, "params.safetyTolerance"),
        ({"model": MODEL, "prompt": "x", "params": {"colour": "red"}}, "params.colour"),
        ({"model": MODEL}, "prompt"),
        ({"model": MODEL, "prompt": "   "}, "prompt"),
        ({"model": MODEL, "prompt": 5}, "prompt"),
        ({"prompt": "x"}, "model"),
        ({"model": "no-such-model", "prompt": "x"}, "model"),
        ({"model": MODEL, "prompt": "x", "files": [{"url": "https://x"}]}, "files"),
        ({"model": MODEL, "prompt": "x", "extra": 1}, "extra"),
        ({"model": MODEL, "prompt": "x", "params": []}, "params"),
        ({"model": MODEL, "prompt": "x", "client_request_id": "c" * 129}, "client_request_id"),
        (
            {
                "model": MODEL,
                "prompt": "x",
                "params": {"referenceMediaItems": [{"url": "https://cdn.example.com/a.png", "kind": "image"}]},
            },
            "referenceMediaItems[0].url",
        ),
        ({"model": MODEL, "prompt": "x", "params": {"referenceMediaItems": []}}, "at least 1"),
        ({"model": MODEL, "prompt": "x", "params": {"referenceMediaItems": "nope"}}, "referenceMediaItems"),
        ([1, 2], "body"),
    ],
)
async def test_validation_failures_name_the_problem(client: httpx2.AsyncClient, body: object, fragment: str) -> None:
    response = await client.post("/api/v1/generations", json=body, headers=AUTH)
    error = assert_error(response, 400, "validation_failed")
    assert fragment in error["message"]


async def test_edit_narrowing_applies(api: Api) -> None:
    uploaded = (await api.upload(image_bytes())).json()
    params = {"safetyTolerance": 5, "referenceMediaItems": [{"url": uploaded["url"], "kind": "image"}]}
    error = assert_error(await api.create(params=params), 400, "validation_failed")
    assert "params.safetyTolerance: must be at most 2" in error["message"]
    assert (await api.create(params={"safetyTolerance": 5})).status_code == 201


async def test_more_than_one_reference_is_refused(api: Api) -> None:
    urls = [(await api.upload(image_bytes())).json()["url"] for _ in range(2)]
    params = {"referenceMediaItems": [{"url": u, "kind": "image"} for u in urls]}
    error = assert_error(await api.create(params=params), 400, "validation_failed")
    assert "at most 1 reference" in error["message"]


async def test_reference_from_another_account_or_kind_is_refused(api: Api) -> None:
    url = (await api.upload(image_bytes(), headers=OTHER_AUTH)).json()["url"]
    error = assert_error(
        await api.create(params={"referenceMediaItems": [{"url": url, "kind": "image"}]}), 400, "validation_failed"
    )
    assert "not a file URL issued to this account" in error["message"]
    own = (await api.upload(image_bytes())).json()["url"]
    error = assert_error(
        await api.create(params={"referenceMediaItems": [{"url": own, "kind": "video"}]}), 400, "validation_failed"
    )
    assert "kind" in error["message"]


async def test_invalid_json_body(client: httpx2.AsyncClient) -> None:
    response = await client.post("/api/v1/generations", content=b"{not json", headers=AUTH)
    assert "JSON" in assert_error(response, 400, "validation_failed")["message"]


async def test_unknown_route_and_method_use_the_envelope(client: httpx2.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/nothing", headers=AUTH), 404, "not_found")
    assert_error(await client.delete("/api/v1/credits", headers=AUTH), 405, "method_not_allowed")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size but holds no pixels: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize("side", [7000, 20000])
async def test_an_oversized_or_broken_reference_falls_back_to_a_generated_image(api: Api, side: int) -> None:
    uploaded = (await api.upload(_png_header_only(side, side))).json()
    params = {"aspectRatio": "3:4", "referenceMediaItems": [{"url": uploaded["url"], "kind": "image"}]}
    done = await api.finish((await api.create("edit a bomb", params=params)).json()["id"])
    image = open_image((await api.client.get(done["result"]["primary_url"])).content)
    assert image.size == (864, 1152)
