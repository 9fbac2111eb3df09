"""The tool bodies. Each is thin: validate → client call(s) → shape the result."""

from __future__ import annotations

import dataclasses
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlparse

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from rivya_mcp._disk import OutputFolderUnusable
from rivya_mcp.client import (
    APIStatusError,
    AsyncRivyaClient,
    DownloadError,
    Generation,
    InvalidRequestError,
    NotFoundError,
    RivyaError,
    RivyaFile,
)
from rivya_mcp.journal import MAX_REFERENCE_CHARS, UNCONFIRMED, IdempotencyKeyReused, JournalEntry
from rivya_mcp.manifest import PROMPT_KEY, REFERENCE_ITEMS_KEY, Manifest, Mode, UploadPolicy, to_wire_params
from rivya_mcp.references import LoadedReference, could_be_id, load_reference, sniff_image_type, verify_reference
from rivya_mcp.server import _results as results
from rivya_mcp.server._catalog import Limits, LiveCatalog
from rivya_mcp.server._errors import ToolInputError, failure_for_exception, failure_for_task_error
from rivya_mcp.server._ledger import Ledger, saved_file
from rivya_mcp.server._pace import from_journal, is_settled, is_undocumented, result_url
from rivya_mcp.server._preview import (
    FileKey,
    Preview,
    cached_file_preview,
    file_key,
    make_preview,
    remember_file_preview,
)
from rivya_mcp.server._progress import ProgressReporter, describe_status
from rivya_mcp.server._runtime import Runtime
from rivya_mcp.server._safety import safety_refusal_hint
from rivya_mcp.server._schemas import (
    IDEMPOTENCY_KEY,
    MAX_WAIT_SECONDS,
    REFERENCE,
    WAIT_SECONDS,
    CreditsOutput,
    FileOut,
    JsonObject,
    TaskErrorOut,
    TaskListOutput,
    TaskOutput,
    TaskSummary,
    UploadOutput,
)
from rivya_mcp.server._spool import Spool
from rivya_mcp.server._storage import IMAGE_TYPES, image_filename, save_atomically
from rivya_mcp.server._validation import check, check_generation

log = logging.getLogger(__name__)

# Result images are a few MB; the cap only stops a misbehaving URL from filling the disk.
MAX_RESULT_BYTES = 64 * 1024 * 1024
# Progress reaches the agent at least this often while a call waits between status requests.
PROGRESS_TICK_SECONDS = 1.0
# A succeeded task without any result URL (rivya-api §3.3: `urls` "when available") is looked at
# again, at the same pace, this many times in one call before the call reports it as paid and
# fetchable with get_task.
URLLESS_LOOKS = 3
# A finished task may be in the middle of being saved by the recovery or another call: wait this
# long for that (one download) even when the caller asked not to wait for the task itself.
SAVE_LOCK_GRACE_SECONDS = 10.0
UNOWNED_NOTE = " (recorded before rivya-mcp noted the API key and base URL of each task: never resumed)"


# The one seam for a caller that follows the task itself (the MCP Tasks extension,
# ``_tasks_ext``): while set, generate_image/edit_image hand the created (or re-found) task to it as
# soon as the create is answered and return without waiting. The body knows nothing of protocol
# tasks; everything before the create (validation, uploads, the journal's intent) is unchanged.
HAND_OVER: ContextVar[Callable[[Generation], None] | None] = ContextVar("rivya_mcp_hand_over", default=None)


@dataclass
class CallState:
    """What a call has done so far, so a late failure can still name the paid task."""

    # A paid task a failure may name: created (or returned for its key) in this call, or one the
    # journal records. Never an id merely taken from the arguments (see _call_failures).
    task_id: str | None = None
    created: bool = False  # task_id came from this call's create or idempotent replay
    asked_for: str | None = None  # the task id a reading call (get_task) was asked about, known or not
    # The Idempotency-Key of a create whose outcome is not known yet: a failure names it, so the
    # agent can repeat the call without paying twice.
    idempotency_key: str | None = None


def is_refusal(exc: APIStatusError) -> bool:
    """The API answered and refused the request (4xx): it did not create anything.

    408 is the exception: a request timeout says nothing about whether the work was done.
    """
    return 400 <= exc.status_code < 500 and exc.status_code != 408


class ToolBodies:
    """The six tools, sharing one runtime (client, journal) and one manifest."""

    def __init__(self, runtime: Runtime, manifest: Manifest, schemas: dict[str, JsonObject]) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.manifest = manifest
        self.schemas = schemas
        # The live catalog's second opinion on the manifest's limits (read when first needed).
        self.catalog = LiveCatalog(manifest)

    @property
    def structured(self) -> bool:
        return self.settings.structured_output

    def _wait(self, control: dict[str, Any]) -> float:
        requested = control.get(WAIT_SECONDS, self.settings.wait_seconds)
        return max(0.0, min(float(requested), MAX_WAIT_SECONDS))

    # --- generate / edit ---------------------------------------------------------------------

    async def generate_image(self, arguments: dict[str, Any], ctx: Context, state: CallState) -> CallToolResult:
        return await self._generate("generate", "generate_image", arguments, ctx, state)

    async def edit_image(self, arguments: dict[str, Any], ctx: Context, state: CallState) -> CallToolResult:
        return await self._generate("edit", "edit_image", arguments, ctx, state)

    async def _generate(
        self, mode: Mode, tool: str, arguments: dict[str, Any], ctx: Context, state: CallState
    ) -> CallToolResult:
        args, control = check_generation(self.manifest, mode, self.schemas[tool], arguments)
        wait = self._wait(control)
        client = self.runtime.client()
        prompt = str(args[PROMPT_KEY])
        self._check_prompt(prompt, tool, self.catalog.current)  # the limits known without a request

        async def live_prompt_check() -> None:
            # Before anything leaves for the API: the live catalog's limit, read once per process.
            self._check_prompt(prompt, tool, await self.catalog.limits(client))

        ledger = self.runtime.ledger()
        reporter = ProgressReporter(ctx, wait_seconds=wait)
        given_key: str | None = control.get(IDEMPOTENCY_KEY)
        # Always send a key, recorded before the request leaves: after a crash or a dropped
        # answer, re-sending with the same key returns the original task instead of a new charge.
        key = given_key or f"rivya-mcp-{uuid.uuid4().hex}"

        reference = str(control[REFERENCE]).strip() if mode == "edit" else None
        model_params = to_wire_params(self.manifest, mode, args)
        earlier = ledger.by_key(given_key) if given_key else None
        params: dict[str, Any]
        if earlier is not None:
            _check_same_request(
                earlier,
                key,
                mode=mode,
                model=self.settings.model,
                prompt=prompt,
                params=model_params,
                reference=reference,
            )
            if earlier.task_id:
                # The agent re-sent a call it already made (e.g. after a host timeout): same task, no charge.
                generation = await self.runtime.latest(earlier.task_id)
                state.task_id, state.created = generation.id, True
                await reporter.created(generation, reused=True)
                if (hand_over := HAND_OVER.get()) is not None:
                    hand_over(generation)
                    return self._shape(generation, 0.0, reused=True)
                return await self._follow(generation, wait, reporter, ledger, prompt=prompt, reused=True)
            # Recorded but never answered, or refused (e.g. before a top-up): re-send the exact body
            # under the same key, so that a create that did arrive is returned rather than repeated.
            params = dict(earlier.params)
        else:
            references = (
                [await self._reference_item(reference, client, ledger, ready=live_prompt_check)]
                if reference is not None
                else None
            )
            params = to_wire_params(self.manifest, mode, args, references=references)
        await live_prompt_check()
        # Replicas: no other replica's sweep re-sends this intent while its answer is on its way.
        async with self.runtime.creating(key):
            ledger.intent(
                idempotency_key=key,
                mode=mode,
                model=self.settings.model,
                prompt=prompt,
                params=params,
                reference=reference,
            )
            state.idempotency_key = key
            try:
                generation = await client.create_generation(
                    model=self.settings.model, prompt=prompt, params=params, idempotency_key=key
                )
            except APIStatusError as exc:
                if is_refusal(exc):
                    ledger.rejected(key, code=exc.code, message=exc.message)
                else:
                    ledger.ended(key, status=UNCONFIRMED, code=exc.code, message=exc.message)
                hint = safety_refusal_hint(mode, params, exc.code, exc.message)
                if hint is not None:
                    raise ToolInputError(
                        f"Error validation_failed from Rivya: {exc.message} {hint}",
                        "Call edit_image again with a lower safetyTolerance (0 or 1), or leave it out.",
                    ) from exc
                raise
            except RivyaError as exc:
                # Connection lost, timed out or a garbled answer, after the client's retries under this
                # key: the task may exist. The agent is told the key; only its retry re-sends this.
                told = failure_for_exception(exc)
                ledger.ended(key, status=UNCONFIRMED, code=told.code if told else None, message=str(exc))
                raise
            state.task_id, state.created = generation.id, True
            ledger.created(key, generation)
        if ledger.get(generation.id) is None:
            self.runtime.pacer.started(generation)  # no journal: the first look still waits
        log.info("task %s created (%s, %s)", generation.id, mode, generation.status)
        await reporter.created(generation, reused=False)
        if (hand_over := HAND_OVER.get()) is not None:
            hand_over(generation)
            return self._shape(generation, 0.0, reused=False)
        return await self._follow(generation, wait, reporter, ledger, prompt=prompt, reused=False)

    async def _follow(
        self,
        generation: Generation,
        wait: float,
        reporter: ProgressReporter,
        ledger: Ledger,
        *,
        prompt: str,
        reused: bool,
    ) -> CallToolResult:
        started = anyio.current_time()
        if (not is_settled(generation) and wait <= 0) or generation.status == "failed":
            ledger.updated(generation)
            return self._shape(generation, 0.0, reused=reused)
        busy = self.runtime.is_busy(generation.id)
        if busy:
            await reporter.note(f"{generation.id}: being finished in the background; waiting for it")
        async with self.runtime.following(generation.id, timeout=max(wait, SAVE_LOCK_GRACE_SECONDS)) as ours:
            if not ours:
                ledger.updated(generation)
                return self._shape(generation, anyio.current_time() - started, reused=reused)
            if busy:
                # Whoever held the task may have moved it on (and saved it): look again, at its pace.
                generation = await self.runtime.latest(generation.id)
            # A webhook delivery for this task ends the wait early with the task's new state.
            with self.runtime.interruptible(generation.id) as follower:
                generation = await self._wait_for(generation, started + wait, reporter, ledger)
            if follower.pushed is not None:
                generation = follower.pushed
                await reporter.note(f"{generation.id}: {generation.status} (webhook)")
            ledger.updated(generation)
            if generation.status == "succeeded" and result_url(generation) is not None:
                output = self._task_output(generation, reused=reused)
                return await self._deliver(generation, output, reporter, ledger, prompt=prompt)
        return self._shape(generation, anyio.current_time() - started, reused=reused)

    async def _wait_for(
        self, generation: Generation, deadline: float, reporter: ProgressReporter, ledger: Ledger
    ) -> Generation:
        """Poll the task at its pace (``_pace``) until it settles or no turn is left before ``deadline``.

        Between turns a progress tick goes out every ``PROGRESS_TICK_SECONDS`` without any request,
        so the agent sees life while the documented 5-10 s pace is kept. A turn that would come
        after the deadline is not waited for: the call answers at once with when the next look is.
        """
        task_id = generation.id
        started = anyio.current_time()
        urlless = 0
        while not is_settled(generation):
            due = self.runtime.poll_due_in(task_id)
            if anyio.current_time() + due > deadline:
                break
            if due > 0:
                await anyio.sleep(min(due, PROGRESS_TICK_SECONDS))
                # Another call or process may have taken the turn meanwhile: its news is in the journal.
                generation = _newer(generation, ledger.get(task_id))
                due = 0.0 if is_settled(generation) else self.runtime.poll_due_in(task_id)
                elapsed = anyio.current_time() - started
                await reporter.waiting(generation, elapsed=elapsed, next_look=due, polled=False)
                continue
            polled = await self.runtime.try_poll(task_id)
            if polled is None:  # another process polled first; its answer is in the journal
                generation = _newer(generation, ledger.get(task_id))
                continue
            generation = polled
            ledger.updated(generation)  # other calls and processes see the news without a request
            if generation.status == "succeeded" and result_url(generation) is None:
                urlless += 1
                log.warning("task %s succeeded without a result URL (look %d)", task_id, urlless)
                if urlless >= URLLESS_LOOKS:
                    break
            elapsed = anyio.current_time() - started
            next_look = 0.0 if is_settled(generation) else self.runtime.poll_due_in(task_id)
            await reporter.waiting(generation, elapsed=elapsed, next_look=next_look, polled=True)
        return generation

    def _shape(self, generation: Generation, waited: float, *, reused: bool) -> CallToolResult:
        """The result for a task that is not (yet) a delivered image: failed, or still running."""
        output = self._task_output(generation, reused=reused)
        if generation.status == "failed":
            error = generation.error
            failed = failure_for_task_error(
                error.code if error else None, error.message if error else None, generation.id
            )
            output.next_step = failed.next_step
            return results.failure(failed, structured=output, structured_output=self.structured)
        if generation.status == "succeeded":  # without any result URL: paid, not lost, fetched later
            output.done = False
            output.next_step = (
                f'Call get_task with task_id="{generation.id}" in a few seconds; it fetches the image '
                "once the API gives its URL. Do not create the image again."
            )
            credits = generation.final_credits or generation.reserved_credits
            paid = f"it is paid ({credits} credits)" if credits else "it is paid"
            text = (
                f"Task {generation.id} succeeded and {paid}, but the Rivya API has not given its result URL yet, "
                f"so the image could not be fetched. This is not an error: nothing is lost.\n"
                f"Next step: {output.next_step}"
            )
            return results.ok([results.text(text)], output, structured_output=self.structured)
        due = self.runtime.poll_due_in(generation.id)
        when = f"the next status check is allowed in {math.ceil(due)} s; " if due > 0 else ""
        note = ""
        if is_undocumented(generation.status):
            note = f"Its status {generation.status!r} is not one the Rivya docs list; it is treated as still running. "
        output.next_step = (
            f'{note}Call get_task with task_id="{generation.id}"; {when}it waits up to '
            f"{self.settings.wait_seconds:g} s (at the documented polling pace) and returns the image when done."
        )
        return results.pending_result(output, waited=round(waited, 1), structured_output=self.structured)

    def _task_output(self, generation: Generation, *, reused: bool) -> TaskOutput:
        error = generation.error
        return TaskOutput(
            task_id=generation.id,
            status=generation.status,
            done=generation.is_terminal,
            model=generation.model,
            reserved_credits=generation.reserved_credits,
            final_credits=generation.final_credits,
            source_url=generation.result.primary_url if generation.result else None,
            reused=reused,
            error=TaskErrorOut(code=error.code, message=error.message) if error else None,
        )

    async def ensure_saved(
        self, generation: Generation, ledger: Ledger, *, prompt: str, reporter: ProgressReporter | None
    ) -> tuple[Path, bytes | None, bool]:
        """The finished image on disk: the saved copy if there is one, else downloaded and saved.

        Returns the path, the bytes when they were just downloaded (None for a saved copy: read it
        if needed) and whether it was a saved copy. Call it holding the task's lock
        (``Runtime.following``), so one image is downloaded once.
        """
        entry = ledger.get(generation.id)
        path = saved_file(entry)
        if path is not None:
            return path, None, True
        shared = await self.runtime.shared_image(generation.id)
        if shared is not None:
            # Another replica saved it: its bytes, from the database, not a second download.
            path, data = shared
            ledger.updated(generation, saved_path=path)
            return path, data, True
        spool = Spool(self.settings.data_dir)
        # A copy kept after an earlier save failed: no second download (its URL may be gone by now).
        kept = await anyio.to_thread.run_sync(spool.load, generation.id)
        mime = sniff_image_type(kept) if kept is not None else None
        from_spool = kept is not None and mime is not None
        if kept is not None and mime is not None:
            data = kept
            if reporter is not None:
                await reporter.note(f"{generation.id}: saving the copy kept from an earlier download")
        else:
            result = generation.result
            url = (result.primary_url or (result.urls[0] if result.urls else None)) if result else None
            if not url:
                raise DownloadError(f"task {generation.id} succeeded but the API gave no result URL")
            if reporter is not None:
                await reporter.note(f"{generation.id}: downloading the image")
            data = await self.runtime.client().download(url, max_bytes=MAX_RESULT_BYTES)
            mime = sniff_image_type(data)
            if mime is None:
                raise DownloadError(f"the result of task {generation.id} is not a JPEG, PNG or WebP image")
        # The journal's prompt first: a call that only knows the task id (get_task after a restart,
        # an edit by task id) would otherwise name the file "…_image.jpg".
        name = image_filename(generation.id, (entry.prompt if entry else None) or prompt, IMAGE_TYPES[mime])
        folder = Path(self.settings.output_dir)
        try:
            path = await anyio.to_thread.run_sync(save_atomically, folder, name, data)
        except OSError as exc:
            # Read-only, full, not permitted: say so (not "internal error"), and keep the paid bytes.
            if from_spool:
                kept_at: Path | None = spool.path_for(generation.id)
            else:
                kept_at = await anyio.to_thread.run_sync(spool.keep, generation.id, data)
            log.warning("task %s: could not save its image in %s: %s", generation.id, folder, exc)
            raise OutputFolderUnusable(
                str(folder.expanduser().resolve()),
                exc,
                task_id=generation.id,
                kept_at=str(kept_at) if kept_at else None,
                data=data,
            ) from exc
        # Shared before the journal says "saved", so a replica that reads the journal finds the bytes.
        await self.runtime.share_image(path, generation.id, mime, data)
        ledger.updated(generation, saved_path=path)
        if kept is not None:  # saved now (or unreadable): the kept copy has done its job
            await anyio.to_thread.run_sync(spool.discard, generation.id)
        log.info("task %s saved to %s", generation.id, path)
        return path, data, False

    async def _deliver(
        self, generation: Generation, output: TaskOutput, reporter: ProgressReporter, ledger: Ledger, *, prompt: str
    ) -> CallToolResult:
        try:
            path, data, from_disk = await self.ensure_saved(generation, ledger, prompt=prompt, reporter=reporter)
        except OutputFolderUnusable as exc:
            # Still an error (the file the agent will hand on does not exist), but with what it paid
            # for: the preview and the source URL.
            preview = await anyio.to_thread.run_sync(make_preview, exc.data)
            output.mime_type = sniff_image_type(exc.data)
            output.width, output.height = preview.source_width, preview.source_height
            failed = failure_for_exception(exc)
            assert failed is not None
            output.next_step = failed.next_step
            return results.unsaved_result(failed, output, preview, structured_output=self.structured)
        preview, output.mime_type = await self._preview(path, data)
        output.saved_path = str(path)
        output.resource_uri = results.image_uri(path)
        output.width, output.height = preview.source_width, preview.source_height
        output.next_step = f'To change this image, call edit_image with reference="{generation.id}".'
        return results.image_result(
            output, path, preview, served_from_disk=from_disk, structured_output=self.structured
        )

    async def _preview(self, path: Path, data: bytes | None) -> tuple[Preview, str | None]:
        """The preview and MIME type of the saved file ``path`` (``data``: its bytes, if at hand).

        A file already previewed is answered from memory, without reading it again or leaving
        the event loop (one stat): that is every get_task on a finished task.
        """
        try:
            key: FileKey | None = file_key(path.stat(), str(path))
        except OSError:
            key = None
        cached = cached_file_preview(key) if key is not None else None
        if cached is not None:
            return cached
        if data is None:
            data = await anyio.Path(path).read_bytes()
        preview = await anyio.to_thread.run_sync(make_preview, data)
        mime = sniff_image_type(data)
        if key is not None:
            remember_file_preview(key, preview, mime)
        return preview, mime

    # --- references --------------------------------------------------------------------------

    def _check_prompt(self, prompt: str, tool: str, limits: Limits) -> None:
        limit = limits.max_prompt_length
        if len(prompt) > limit:
            raise ToolInputError(
                f"The prompt is {len(prompt)} characters; {self.settings.model} takes at most {limit}.",
                f"Shorten the prompt to {limit} characters or fewer and call {tool} again.",
            )

    async def _upload_policy(self) -> UploadPolicy:
        """The manifest's upload policy, its size limit the stricter of manifest and catalog."""
        limit = (await self.catalog.limits(self.runtime.client())).max_upload_bytes
        policy = self.manifest.upload
        return policy if limit >= policy.max_bytes else dataclasses.replace(policy, max_bytes=limit)

    async def _load(self, source: str) -> LoadedReference:
        settings = self.settings
        api = urlparse(settings.base_url)
        default_port = 443 if api.scheme == "https" else 80
        # Trust the API's own host *and port* only: with the sandbox on 127.0.0.1, trusting the
        # bare host would open every other loopback service to reference fetches.
        api_host = f"{api.hostname}:{api.port or default_port}" if api.hostname else None
        return await load_reference(
            source,
            # The manifest's policy: local checks need no request; the catalog's stricter size, if
            # any, is applied when the bytes are about to be sent (_upload_loaded).
            policy=self.manifest.upload,
            read_dirs=tuple(settings.read_dirs),
            # Over HTTP a caller may be remote: local files only from the directories named for it.
            allow_paths=self.runtime.local_paths or bool(settings.read_dirs),
            allow_private_urls=settings.allow_private_urls,
            trusted_hosts=(api_host,) if api_host else (),
            verify=False,  # the deep check runs while the upload is sent: see _upload_loaded
        )

    async def _upload_loaded(self, client: AsyncRivyaClient, loaded: LoadedReference, ledger: Ledger) -> RivyaFile:
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
        its id is recognised later whatever its shape.
        """
        upload = partial(
            client.upload_file,
            kind="image",
            filename=loaded.filename,
            mime_type=loaded.mime_type,
            model=self.settings.model,
            max_bytes=(await self._upload_policy()).max_bytes,
        )
        if loaded.stream is not None:
            with loaded.stream:
                streamed: RivyaFile = await upload(cast(IO[bytes], loaded.stream))  # an io.RawIOBase, read as a file
            ledger.file_uploaded(streamed)
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
        ledger.file_uploaded(uploaded)
        return uploaded

    async def _reference_item(
        self, source: str, client: AsyncRivyaClient, ledger: Ledger, *, ready: Callable[[], Awaitable[None]]
    ) -> dict[str, Any]:
        """The reference as a ``referenceMediaItems`` entry; ``ready`` is awaited before any request."""
        source = source.strip()
        if could_be_id(source):
            await ready()
            item = await self._reference_by_id(source, client, ledger)
            if item is not None:
                return item
            raise ToolInputError(
                f"The reference {source!r} is neither a file id nor a task id known to Rivya for this API key, "
                "and as a local path it is not absolute. No credits were spent.",
                "Pass an absolute path (or one starting with ~/), an http(s) URL, a data URI, the id "
                "upload_reference returned, or the id of an earlier task.",
            )
        loaded = await self._load(source)
        await ready()
        return dict((await self._upload_loaded(client, loaded, ledger)).as_reference_item())

    async def _reference_by_id(self, source: str, client: AsyncRivyaClient, ledger: Ledger) -> dict[str, Any] | None:
        """The reference item for a file id or task id, or None when ``source`` is neither.

        An id's shape is never relied on (rivya-api.md shows no file id; the task ids it shows are
        examples). The journal's record of uploads and tasks settles most cases without a request;
        otherwise the API is asked, files first (``GET /api/v1/files/{id}``), then tasks. All of
        this happens before any create, so a wrong id costs nothing.
        """
        if not ledger.knows_file(source) and ledger.get(source) is not None:
            return await self._task_reference(source, client, ledger)
        try:
            return dict((await client.get_file(source)).as_reference_item())
        except (NotFoundError, InvalidRequestError):
            # Assumption (the docs give no error for a malformed id): a 400 means "not a file id"
            # as much as a 404 does.
            if ledger.knows_file(source):
                raise ToolInputError(
                    f"The uploaded file {source} is no longer available from Rivya.",
                    "Call upload_reference again with the original image, or pass the image itself.",
                ) from None
        try:
            return await self._task_reference(source, client, ledger)
        except (NotFoundError, InvalidRequestError):
            return None

    async def _task_reference(self, source: str, client: AsyncRivyaClient, ledger: Ledger) -> dict[str, Any]:
        # The API accepts only reference URLs issued by its Files API: re-upload the result.
        # A task still running is not polled ahead of its turn: the journal's record answers.
        generation = await self.runtime.latest(source)
        if generation.status != "succeeded":
            raise ToolInputError(
                f"Task {source} is {generation.status}; only a finished (succeeded) task can be a reference.",
                f'Call get_task with task_id="{source}" until it succeeds, then edit again.',
            )
        async with self.runtime.following(source):
            path, _, _ = await self.ensure_saved(generation, ledger, prompt="", reporter=None)
        uploaded = await client.upload_file(
            path, kind="image", model=self.settings.model, max_bytes=(await self._upload_policy()).max_bytes
        )
        ledger.file_uploaded(uploaded)
        return dict(uploaded.as_reference_item())

    async def upload_reference(self, arguments: dict[str, Any], _ctx: Context, _state: CallState) -> CallToolResult:
        args = check(self.schemas["upload_reference"], arguments)
        client = self.runtime.client()
        loaded = await self._load(str(args["source"]).strip())
        uploaded = await self._upload_loaded(client, loaded, self.runtime.ledger())
        item = dict(uploaded.as_reference_item())
        output = UploadOutput(
            file=FileOut.model_validate(uploaded.model_dump(mode="json")),
            reference_item=item,
            next_step=f'Call edit_image with reference="{uploaded.id}" and a prompt describing the change.',
        )
        text = (
            f"Uploaded {uploaded.name or loaded.filename} ({uploaded.mime_type or loaded.mime_type}, "
            f"{uploaded.size or loaded.size} bytes, {loaded.width}×{loaded.height}) as {uploaded.id}. "
            "Uploading costs no credits.\n"
            + "".join(f"Note: {note}\n" for note in loaded.notes)
            + f"Next step: {output.next_step}"
        )
        return results.ok([results.text(text)], output, structured_output=self.structured)

    # --- readers -----------------------------------------------------------------------------

    async def get_task(self, arguments: dict[str, Any], ctx: Context, state: CallState) -> CallToolResult:
        args = check(self.schemas["get_task"], arguments)
        wait = self._wait(args)
        self.runtime.client()  # a missing key is refused before anything else
        ledger = self.runtime.ledger()
        task_id = str(args["task_id"])
        state.asked_for = task_id
        entry = ledger.get(task_id)
        if entry is not None:
            state.task_id = task_id  # the journal shows this server created it: a failure may say so
        reporter = ProgressReporter(ctx, wait_seconds=wait)
        # Before the task's next turn (rivya-api §3.4 pace, shared by every call and process) the
        # journal's record answers, without a request; the wait below then polls at its turns.
        generation = await self.runtime.latest(task_id)
        await reporter.note(f"{task_id}: {describe_status(generation.status)}")
        entry = ledger.get(task_id)
        return await self._follow(
            generation, wait, reporter, ledger, prompt=entry.prompt if entry and entry.prompt else "", reused=False
        )

    async def get_credits(self, arguments: dict[str, Any], _ctx: Context, _state: CallState) -> CallToolResult:
        check(self.schemas["get_credits"], arguments)
        client = self.runtime.client()
        credits = await client.get_credits()
        cost = (await self.catalog.limits(client)).base_credits
        text = (
            f"Balance: {credits.current_credits} credits. generate_image and edit_image cost {cost} credits "
            f"per image (about {credits.current_credits // cost if cost else 0} more images)."
        )
        output = CreditsOutput(current_credits=credits.current_credits)
        return results.ok([results.text(text)], output, structured_output=self.structured)

    def task_list(self, *, status: str | None, limit: int) -> TaskListOutput:
        return self._task_list(self.runtime.ledger().recent(status=status, limit=limit))

    def _task_list(self, entries: list[JournalEntry]) -> TaskListOutput:
        tasks = [
            TaskSummary(
                task_id=e.task_id,
                status=e.status,
                model=e.model,
                prompt=e.prompt,
                mode=e.mode,
                created_at=e.created_at.isoformat(),
                updated_at=e.updated_at.isoformat(),
                reserved_credits=_int(e.reserved_credits),
                final_credits=_int(e.final_credits),
                saved_path=str(path) if (path := saved_file(e)) else (e.saved_paths[-1] if e.saved_paths else None),
                idempotency_key=e.idempotency_key,
                error_code=e.error_code,
            )
            for e in entries
        ]
        return TaskListOutput(tasks=tasks, count=len(tasks))

    async def list_tasks(self, arguments: dict[str, Any], _ctx: Context, _state: CallState) -> CallToolResult:
        args = check(self.schemas["list_tasks"], arguments)
        ledger = self.runtime.ledger()
        entries = ledger.recent(status=args.get("status"), limit=int(args.get("limit", 20)))
        listing = self._task_list(entries)
        # Rows from before the journal recorded whose task each is: listed, never acted on.
        unowned = {e.idempotency_key for e in entries if not e.has_owner} if ledger.scoped else set()
        if not listing.tasks:
            text = "No tasks recorded yet" + (f" with status {args['status']}." if args.get("status") else ".")
        else:
            lines = [f"{listing.count} most recent task(s):"]
            for t in listing.tasks:
                where = f" → {t.saved_path}" if t.saved_path else ""
                lines.append(
                    f"- {t.task_id or '(not created)'} {t.status} {t.created_at or ''} {(t.prompt or '')[:60]!r}{where}"
                    + (UNOWNED_NOTE if t.idempotency_key in unowned else "")
                )
            text = "\n".join(lines)
        return results.ok([results.text(text)], listing, structured_output=self.structured)


def _newer(generation: Generation, entry: JournalEntry | None) -> Generation:
    """The journal's record when it moved past what this call last saw (another caller polled)."""
    if entry is None or entry.task_id != generation.id:
        return generation
    if entry.status != generation.status or (entry.result_urls and result_url(generation) is None):
        return from_journal(entry)
    return generation


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _check_same_request(
    earlier: JournalEntry,
    key: str,
    *,
    mode: str,
    model: str,
    prompt: str,
    params: dict[str, Any],
    reference: str | None,
) -> None:
    """An idempotency key names one request; the same key with different arguments is a mistake.

    The reference's upload URL differs per upload, so edits compare everything but that.
    """
    recorded = {k: v for k, v in earlier.params.items() if k != REFERENCE_ITEMS_KEY}
    # The journal shortens very long references (data URIs); those are compared by their params only.
    same_reference = reference is None or len(reference) > MAX_REFERENCE_CHARS or earlier.reference == reference
    if not same_reference or (earlier.mode, earlier.model, earlier.prompt, recorded) != (mode, model, prompt, params):
        raise IdempotencyKeyReused(
            f"idempotency_key {key!r} was already used for a different request "
            f"(task {earlier.task_id or 'not created'})"
        )
