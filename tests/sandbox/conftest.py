"""Sandbox test fixtures: an app on a manual clock and an httpx2 client wired to it in process."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from PIL import Image
from starlette.applications import Starlette

from rivya_mcp.sandbox import ManualClock, SandboxConfig, SandboxState, create_app

KEY = "rvya_sk_sandbox_test_7d1e"
OTHER_KEY = "rvya_sk_sandbox_other_2b9c"
AUTH = {"Authorization": f"Bearer {KEY}"}
OTHER_AUTH = {"Authorization": f"Bearer {OTHER_KEY}"}
MODEL = "flux-kontext-max"
BASE = "http://sandbox.test"


def image_bytes(
    fmt: str = "PNG", colour: tuple[int, int, int] = (255, 0, 0), size: tuple[int, int] = (64, 48)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig(queued_seconds=1.0, processing_seconds=3.0)


@pytest.fixture
def app(config: SandboxConfig, clock: ManualClock) -> Starlette:
    return create_app(config, clock=clock)


@pytest.fixture
def state(app: Starlette) -> SandboxState:
    sandbox: SandboxState = app.state.sandbox
    return sandbox


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as http:
        yield http


class Api:
    """Short helpers over the client, so tests read as API calls."""

    def __init__(self, client: httpx2.AsyncClient, clock: ManualClock) -> None:
        self.client = client
        self.clock = clock

    async def create(
        self, prompt: str | None = "a lighthouse at dawn", *, headers: dict[str, str] | None = None, **body: Any
    ) -> httpx2.Response:
        payload: dict[str, Any] = {"model": MODEL, **body}
        if prompt is not None:
            payload["prompt"] = prompt
        return await self.client.post("/api/v1/generations", json=payload, headers=headers or AUTH)

    async def get(self, task_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/generations/{task_id}", headers=headers or AUTH)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def finish(self, task_id: str) -> dict[str, Any]:
        self.clock.advance(3600)
        return await self.get(task_id)

    async def upload(
        self,
        data: bytes,
        *,
        name: str = "ref.png",
        mime: str = "image/png",
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx2.Response:
        return await self.client.post(
            "/api/v1/files",
            files={"file": (name, data, mime)},
            data=fields if fields is not None else {"kind": "image"},
            headers=headers or AUTH,
        )

    async def state(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.client.get("/_sandbox/state")).json()
        return body

    async def credits(self, headers: dict[str, str] | None = None) -> int:
        response = await self.client.get("/api/v1/credits", headers=headers or AUTH)
        assert response.status_code == 200, response.text
        value: int = response.json()["current_credits"]
        return value


@pytest.fixture
def api(client: httpx2.AsyncClient, clock: ManualClock) -> Api:
    return Api(client, clock)


def assert_error(response: httpx2.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    error: dict[str, str] = response.json()["error"]
    assert error["code"] == code
    assert error["requestId"].startswith("req_")
    assert error["message"]
    return error
