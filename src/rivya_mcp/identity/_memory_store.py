"""The identity store in a process's memory: for tests (a restart forgets every sign-in)."""

from __future__ import annotations

from dataclasses import replace

from rivya_mcp.identity._store import ClientRecord, CodeRecord, ConsentRecord, PersonRecord, TokenRecord

__all__ = ["MemoryIdentityStore"]


class MemoryIdentityStore:
    """Dicts; no method awaits in the middle, so each is atomic on the event loop."""

    def __init__(self) -> None:
        self.clients: dict[str, ClientRecord] = {}
        self.consents: dict[str, ConsentRecord] = {}
        self.codes: dict[str, CodeRecord] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self.people: dict[str, PersonRecord] = {}
        self.meta: dict[str, str] = {}

    async def put_client(self, record: ClientRecord) -> None:
        self.clients[record.client_id] = record

    async def get_client(self, client_id: str) -> ClientRecord | None:
        return self.clients.get(client_id)

    async def put_consent(self, record: ConsentRecord) -> None:
        self.consents[record.request_hash] = record

    async def get_consent(self, request_hash: str) -> ConsentRecord | None:
        return self.consents.get(request_hash)

    async def set_consent_csrf(self, request_hash: str, csrf_hash: str) -> None:
        if (record := self.consents.get(request_hash)) is not None:
            self.consents[request_hash] = replace(record, csrf_hash=csrf_hash)

    async def count_consent_attempt(self, request_hash: str) -> int:
        record = self.consents.get(request_hash)
        if record is None:
            return 0
        self.consents[request_hash] = replace(record, attempts=record.attempts + 1)
        return record.attempts + 1

    async def delete_consent(self, request_hash: str) -> bool:
        return self.consents.pop(request_hash, None) is not None

    async def put_code(self, record: CodeRecord) -> None:
        self.codes[record.code_hash] = record

    async def get_code(self, code_hash: str) -> CodeRecord | None:
        return self.codes.get(code_hash)

    async def use_code(self, code_hash: str) -> bool:
        record = self.codes.get(code_hash)
        if record is None or record.used:
            return False
        self.codes[code_hash] = replace(record, used=True)
        return True

    async def put_token(self, record: TokenRecord) -> None:
        self.tokens[record.token_hash] = record

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        return self.tokens.get(token_hash)

    async def rotate_token(self, token_hash: str) -> bool:
        record = self.tokens.get(token_hash)
        if record is None or record.state != "active":
            return False
        self.tokens[token_hash] = replace(record, state="rotated")
        return True

    async def revoke_family(self, family: str) -> int:
        changed = 0
        for digest, record in list(self.tokens.items()):
            if record.family == family and record.state != "revoked":
                self.tokens[digest] = replace(record, state="revoked")
                changed += 1
        return changed

    async def put_person(self, record: PersonRecord) -> None:
        known = self.people.get(record.person_id)
        self.people[record.person_id] = record if known is None else replace(record, created_at=known.created_at)

    async def get_person(self, person_id: str) -> PersonRecord | None:
        return self.people.get(person_id)

    async def get_meta(self, name: str) -> str | None:
        return self.meta.get(name)

    async def put_meta_if_absent(self, name: str, value: str) -> str:
        return self.meta.setdefault(name, value)

    async def purge(self, now: int) -> None:
        self.consents = {k: v for k, v in self.consents.items() if v.expires_at > now}
        self.codes = {k: v for k, v in self.codes.items() if v.expires_at > now}
        self.tokens = {k: v for k, v in self.tokens.items() if v.expires_at > now}

    async def aclose(self) -> None:
        return None
