"""An edit's reference: a path, URL or data URI loaded, checked and uploaded; or a file or task id.

Everything here happens before any create, so a wrong or bad reference costs nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlparse

import anyio

from rivya_mcp.client import SUCCEEDED, AsyncRivyaClient, InvalidRequestError, NotFoundError, RivyaFile
from rivya_mcp.manifest import Manifest, UploadPolicy
from rivya_mcp.references import LoadedReference, could_be_id, load_reference, sniff_image_type, verify_reference
from rivya_mcp.server._errors import ToolInputError
from rivya_mcp.tasks import Ledger, LiveCatalog, TaskService, current_caller

# Only images are references for the image models this server drives (the manifests' upload kinds).
REFERENCE_KIND = "image"


def reference_item(file: RivyaFile, mime_type: str | None) -> dict[str, Any]:
    """``file`` as a ``referenceMediaItems`` entry with what we know ourselves: it is an image, of the
    type we sniffed from its bytes. rivya-api.md §3.2 requires ``kind`` in an item, and the Files
    API is not known to echo it (the variant's file object has no ``kind``), so it is never left to
    the upload's answer."""
    item = file.as_reference_item(kind=REFERENCE_KIND, mime_type=mime_type)
    item["kind"] = REFERENCE_KIND
    if mime_type is not None:
        item["mimeType"] = mime_type
    return item


class References:
    """Turns an agent's reference into a ``referenceMediaItems`` entry, uploading what needs it."""

    def __init__(self, service: TaskService, manifest: Manifest, catalog: LiveCatalog) -> None:
        self.service = service
        self.runtime = service.runtime
        self.settings = service.runtime.settings
        self.manifest = manifest
        self.catalog = catalog

    async def upload_policy(self) -> UploadPolicy:
        """The manifest's upload policy, its size limit the stricter of manifest and catalog."""
        limit = (await self.catalog.limits(self.runtime.client())).max_upload_bytes
        policy = self.manifest.upload
        return policy if limit >= policy.max_bytes else dataclasses.replace(policy, max_bytes=limit)

    async def load(self, source: str) -> LoadedReference:
        settings = self.settings
        api = urlparse(settings.base_url)
        default_port = 443 if api.scheme == "https" else 80
        # Trust the API's own host *and port* only: with the sandbox on 127.0.0.1, trusting the
        # bare host would open every other loopback service to reference fetches.
        api_host = f"{api.hostname}:{api.port or default_port}" if api.hostname else None
        return await load_reference(
            source,
            # The manifest's policy: local checks need no request; the catalog's stricter size, if
            # any, is applied when the bytes are about to be sent (upload).
            policy=self.manifest.upload,
            read_dirs=tuple(settings.read_dirs),
            # Over HTTP a caller may be remote: local files only from the directories named for it.
            allow_paths=self.runtime.local_paths or bool(settings.read_dirs),
            allow_private_urls=settings.allow_private_urls,
            trusted_hosts=(api_host,) if api_host else (),
            verify=False,  # the deep check runs while the upload is sent: see upload
        )

    async def upload(
        self, client: AsyncRivyaClient, loaded: LoadedReference, ledger: Ledger, *, deadline: float | None = None
    ) -> RivyaFile:
        """Upload the bytes that were checked (never the path again: the file could have changed).

        The cheap checks (size, signature, type, header dimensions, the bomb limit) passed before
        this; the deep one (truncation, corruption) runs while the body is sent, and the API never
        receives a complete upload of an image that fails it:

        - a local image is streamed from its open descriptor, each piece checked as it is read
          (``references.CheckedFile``); a bad piece stops the body mid-way;
        - one held in memory (a URL, a data URI, a file whose header runs past the first 256 KiB)
          is checked in a worker thread and the last 128 KiB of the body wait for its verdict
          (``client._gated``).

        tests/hostile holds the server to that. The uploaded file is recorded in the journal, so
        its id is recognised later whatever its shape. ``deadline`` bounds the upload's retries.
        """
        upload = partial(
            client.upload_file,
            kind=REFERENCE_KIND,
            filename=loaded.filename,
            mime_type=loaded.mime_type,
            model=self.settings.model,
            max_bytes=(await self.upload_policy()).max_bytes,
            deadline=deadline,
        )
        if loaded.stream is not None:
            with loaded.stream:
                streamed: RivyaFile = await upload(cast(IO[bytes], loaded.stream))  # an io.RawIOBase, read as a file
            await ledger.file_uploaded(streamed)
            return streamed
        verdict: list[Exception] = []
        checked = anyio.Event()

        async def check() -> None:
            try:
                await verify_reference(loaded)
            except Exception as exc:  # a ReferenceError, or a bug: either way the upload must not finish
                verdict.append(exc)
            finally:
                checked.set()

        async def confirm() -> None:
            await checked.wait()
            if verdict:
                raise verdict[0]

        failure: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(check)
            try:
                uploaded = await upload(loaded.data, confirm=confirm)
            except Exception as exc:
                failure = exc  # raised below, outside the group, so it isn't wrapped in an ExceptionGroup
        if failure is not None:
            raise failure
        await ledger.file_uploaded(uploaded)
        return uploaded

    async def item(
        self,
        source: str,
        client: AsyncRivyaClient,
        ledger: Ledger,
        *,
        ready: Callable[[], Awaitable[None]],
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """The reference as a ``referenceMediaItems`` entry; ``ready`` is awaited before any request,
        and ``deadline`` bounds every wait of them."""
        if could_be_id(source):
            # An id has no white space of its own; a path keeps it (it may be part of a name).
            ident = source.strip()
            await ready()
            item = await self._by_id(ident, client, ledger, deadline)
            if item is not None:
                return item
            raise ToolInputError(
                f"The reference {ident!r} is neither a file id nor a task id known to Rivya for this API key, "
                "and as a local path it is not absolute.",
                "Pass an absolute path (or one starting with ~/), an http(s) URL, a data URI, the id "
                "upload_reference returned, or the id of an earlier task.",
            )
        loaded = await self.load(source)
        await ready()
        return reference_item(await self.upload(client, loaded, ledger, deadline=deadline), loaded.mime_type)

    async def image_of(
        self, source: str, client: AsyncRivyaClient, ledger: Ledger, *, what: str = "reference"
    ) -> tuple[bytes, LoadedReference | None]:
        """The image's bytes, before anything is uploaded or paid (a region edit composites with them).

        A path, URL or data URI is loaded and checked (every byte, as for an upload); it comes back
        with its ``LoadedReference`` to upload later, so the bytes composited with are the bytes
        sent. An uploaded file id is downloaded from its Rivya URL; an earlier task's image is read
        from where it was saved (saving it first if need be).
        """
        source = source.strip()
        if could_be_id(source):
            data = await self._bytes_by_id(source, client, ledger)
            if data is None:
                raise ToolInputError(
                    f"The {what} {source!r} is neither a file id nor a task id known to Rivya for this API key, "
                    "and as a local path it is not absolute.",
                    "Pass an absolute path (or one starting with ~/), an http(s) URL, a data URI, the id "
                    "upload_reference returned, or the id of an earlier task.",
                )
            return data, None
        loaded = await self.load(source)
        if loaded.stream is not None:
            stream = loaded.stream
            with stream:
                # The checked stream verifies each piece as it is read, and the whole at its end.
                data = await anyio.to_thread.run_sync(lambda: stream.read() + stream.read())
            loaded = dataclasses.replace(loaded, data=data, stream=None, verified=True)
        else:
            await verify_reference(loaded)
            loaded = dataclasses.replace(loaded, verified=True)
        return loaded.data, loaded

    async def _bytes_by_id(self, source: str, client: AsyncRivyaClient, ledger: Ledger) -> bytes | None:
        """The bytes behind a file id or task id (see ``_by_id``), or None when it is neither."""
        if not await ledger.knows_file(source) and await ledger.get(source) is not None:
            return await self._task_bytes(source)
        try:
            file = await client.get_file(source)
        except (NotFoundError, InvalidRequestError):
            file = None
        if file is not None:
            return await client.download(file.url, max_bytes=(await self.upload_policy()).max_bytes)
        try:
            return await self._task_bytes(source)
        except (NotFoundError, InvalidRequestError):
            return None

    async def _task_bytes(self, source: str) -> bytes:
        generation = await self.service.latest(source)
        if generation.status != SUCCEEDED:
            raise ToolInputError(
                f"Task {source} is {generation.status}; only a finished (succeeded) task's image can be used.",
                f'Call get_task with task_id="{source}" until it succeeds, then call again.',
            )
        image = await self.service.save(generation)
        return image.data if image.data is not None else await anyio.Path(image.path).read_bytes()

    async def _by_id(
        self, source: str, client: AsyncRivyaClient, ledger: Ledger, deadline: float | None
    ) -> dict[str, Any] | None:
        """The reference item for a file id or task id, or None when ``source`` is neither.

        An id's shape is never relied on (rivya-api.md shows no file id; the task ids it shows are
        examples). The journal's record of uploads and tasks settles most cases without a request;
        otherwise the API is asked, files first (``GET /api/v1/files/{id}``), then tasks. All of
        this happens before any create, so a wrong id costs nothing.
        """
        if not await ledger.knows_file(source) and await ledger.get(source) is not None:
            return await self._task(source, client, ledger, deadline)
        if current_caller().confined and not await ledger.knows_file(source):
            # A person's ids are the ones recorded as theirs: nobody else's file is asked of the API.
            return None
        try:
            file = await client.get_file(source, deadline=deadline)
            # The type as the file object states it; else what the journal recorded at its upload.
            return reference_item(file, file.mime_type or await ledger.file_mime_type(source))
        except (NotFoundError, InvalidRequestError):
            # Assumption (the docs give no error for a malformed id): a 400 means "not a file id"
            # as much as a 404 does.
            if await ledger.knows_file(source):
                raise ToolInputError(
                    f"The uploaded file {source} is no longer available from Rivya.",
                    "Call upload_reference again with the original image, or pass the image itself.",
                ) from None
        try:
            return await self._task(source, client, ledger, deadline)
        except (NotFoundError, InvalidRequestError):
            return None

    async def _task(
        self, source: str, client: AsyncRivyaClient, ledger: Ledger, deadline: float | None
    ) -> dict[str, Any]:
        # The API accepts only reference URLs issued by its Files API: re-upload the result.
        # A task still running is not polled ahead of its turn: the journal's record answers.
        generation = await self.service.latest(source, deadline=deadline)
        if generation.status != SUCCEEDED:
            raise ToolInputError(
                f"Task {source} is {generation.status}; only a finished (succeeded) task can be a reference.",
                f'Call get_task with task_id="{source}" until it succeeds, then edit again.',
            )
        image = await self.service.save(generation, deadline=deadline)
        mime_type = sniff_image_type(image.data if image.data is not None else await _head(image.path))
        uploaded = await client.upload_file(
            image.path,
            kind=REFERENCE_KIND,
            mime_type=mime_type,
            model=self.settings.model,
            max_bytes=(await self.upload_policy()).max_bytes,
            deadline=deadline,
        )
        await ledger.file_uploaded(uploaded)
        return reference_item(uploaded, mime_type)


async def _head(path: Path) -> bytes:
    """The first bytes of a saved image: enough for its signature."""
    async with await anyio.open_file(path, "rb") as file:
        return await file.read(64)
