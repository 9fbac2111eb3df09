"""Who a task is for: one plain value, from the request down to every row and every API call.

The transport knows who is calling (``rivya_mcp.identity``); this layer must not import it, nor
MCP. So the caller arrives as a :class:`Caller`: the person's stable id (the journal's owner
column) and, when they spend their own Rivya key, that key. ``Runtime.acting_for(caller)`` makes
it current for a block (a request, a Tasks follow-up, one owner's share of the recovery, a
webhook's task), and within it the runtime's API client spends that caller's key and its journal
sees that caller's rows alone. Outside any block the caller is :data:`SERVER`: the server's one
person (stdio, the shared bearer token), spending the operator's key, exactly as before people
were told apart.

A person reaches only what is recorded as theirs: a task id, handle or file id that is not in
their rows is unknown to them, and the API is not asked about it (:attr:`Caller.confined`), so
nobody learns another's prompt or image by guessing an id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from rivya_mcp.client import AsyncRivyaClient, NotFoundError
from rivya_mcp.journal import AsyncJournal
from rivya_mcp.settings import Secret

__all__ = ["SERVER", "Caller", "Keyring", "UnknownTask", "current_caller"]


@dataclass(frozen=True)
class Caller:
    """``person``: the stable id recorded with every row this caller creates (None: the server's
    one person); ``api_key``: their own Rivya key (None: the operator's ``RIVYA_API_KEY``);
    ``name``: for people reading logs and usage tables, never for access decisions."""

    person: str | None = None
    api_key: Secret | None = field(default=None, repr=False, compare=False)
    name: str | None = field(default=None, compare=False)

    @property
    def confined(self) -> bool:
        """Reaches only the tasks, handles, files and images recorded as its own."""
        return self.person is not None


SERVER = Caller()


class UnknownTask(NotFoundError):
    """A person asked about a task that is not recorded as theirs. To them it does not exist, and
    the answer is the same whether it is someone else's or nobody's (the API is not asked)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task {task_id} is recorded for you on this server", status_code=404, code="not_found")
        self.task_id = task_id


# A person's own key by their id, for work no request carries (the recovery, the replicas' sweep,
# a webhook): None when they spend the operator's key. Raises when their stored key can't be read;
# the work is then left for later, never done with another key.
Keyring = Callable[[str], Awaitable[Secret | None]]


@dataclass
class _Acting:
    """The caller of the current block, the API client made for their own key (closed with it), and
    their view of the journal (made once per block, for the journal it was made from)."""

    caller: Caller
    client: AsyncRivyaClient | None = None
    journal: AsyncJournal | None = None
    journal_root: AsyncJournal | None = None


_ACTING: ContextVar[_Acting | None] = ContextVar("rivya_mcp_acting_for", default=None)


def current_caller() -> Caller:
    acting = _ACTING.get()
    return SERVER if acting is None else acting.caller
