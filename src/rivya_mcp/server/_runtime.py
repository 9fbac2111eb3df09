"""The API client and task journal a server uses: given, or made on first use and closed last."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from rivya_mcp.client import AsyncRivyaClient, MissingAPIKeyError
from rivya_mcp.journal import TaskJournal
from rivya_mcp.server._errors import MISSING_KEY_HELP
from rivya_mcp.server._ledger import Ledger
from rivya_mcp.settings import Settings

log = logging.getLogger(__name__)

JOURNAL_FILENAME = "journal.sqlite3"


class Runtime:
    """Owns what it creates; never closes what it was given.

    Nothing is created at construction (building a server has no side effects): the client on
    the first call that needs the API, the journal on the first call that needs it. Sessions
    (stdio, each SSE connection, each in-memory client) enter :meth:`session`; the last one out
    closes what this runtime created.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: AsyncRivyaClient | None = None,
        journal: TaskJournal | None = None,
        local_paths: bool = True,
    ) -> None:
        self.settings = settings
        self.local_paths = local_paths
        self._client = client
        self._journal = journal
        self._owns_client = False
        self._owned_journal: TaskJournal | None = None
        self._sessions = 0

    def client(self) -> AsyncRivyaClient:
        if self._client is None:
            if self.settings.api_key is None:
                # Refused before any request: the message says how to fix it.
                raise MissingAPIKeyError(MISSING_KEY_HELP)
            self._client = AsyncRivyaClient(
                api_key=self.settings.api_key,
                base_url=self.settings.base_url,
                timeout=self.settings.request_timeout,
                max_retries=self.settings.max_retries,
                poll_scale=self.settings.poll_scale,
            )
            self._owns_client = True
        return self._client

    def ledger(self) -> Ledger:
        if self._journal is None:
            try:
                path = Path(self.settings.data_dir).expanduser().resolve() / JOURNAL_FILENAME
                path.parent.mkdir(parents=True, exist_ok=True)
                from rivya_mcp.journal import TaskJournal

                self._journal = self._owned_journal = TaskJournal(path)
            except Exception:
                log.exception("journal unavailable; tasks are not recorded durably")
                return Ledger(None)
        return Ledger(self._journal)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Runtime]:
        self._sessions += 1
        try:
            yield self
        finally:
            self._sessions -= 1
            if self._sessions == 0:
                await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            client, self._client, self._owns_client = self._client, None, False
            await client.aclose()
        if self._owned_journal is not None:
            self._owned_journal.close()
            self._owned_journal = self._journal = None
