"""Runtime configuration, read from the environment once in ``main()`` (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

DEFAULT_BASE_URL = "https://rivya.ai"
APP_NAME = "rivya-mcp"


class Secret:
    """A string that never shows itself in a repr, str or log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value; call only where it is sent (the Authorization header)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def default_output_dir() -> Path:
    """An absolute per-user pictures folder: never the current directory."""
    return Path(platformdirs.user_pictures_dir()).expanduser().resolve() / APP_NAME


def default_data_dir() -> Path:
    """Where the task journal lives."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)).expanduser().resolve()


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _words(value: str | None) -> tuple[str, ...]:
    """Scopes as written in an environment variable: separated by spaces or commas."""
    return tuple(dict.fromkeys(word for word in (value or "").replace(",", " ").split() if word))


def _secret(value: str | None) -> Secret | None:
    text = (value or "").strip()
    return Secret(text) if text else None


class SettingError(ValueError):
    """An environment variable holds a value the server will not guess the meaning of."""


def read_dirs_setting(value: str | None, *, name: str = "RIVYA_READ_DIRS") -> tuple[Path, ...]:
    """The folders of ``RIVYA_READ_DIRS`` (separated by ``os.pathsep``), each absolute or ``~/…``.

    A relative entry is refused, not resolved against the working directory: the server's working
    directory is whatever its host started it in, so ``images`` would name a different folder from
    one host to the next (issue 23 item 11). Entries are taken as written, white space included
    (it may be part of a folder's name); empty entries are skipped.
    """
    folders = []
    for entry in (value or "").split(os.pathsep):
        if not entry.strip():
            continue
        path = Path(entry).expanduser()
        if not path.is_absolute():
            hint = " (it begins with white space, which is kept as part of the name)" if entry[:1].isspace() else ""
            raise SettingError(
                f"{name} entry {entry!r} is not an absolute path{hint}: the server would read it relative to "
                "whatever folder its host starts it in. Give the full path of each folder (or one starting "
                f"with ~/), separated by {os.pathsep!r}."
            )
        folders.append(path.resolve())
    return tuple(folders)


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know, with the documented defaults."""

    api_key: Secret | None = None
    base_url: str = DEFAULT_BASE_URL
    model: str = "flux-kontext-max"
    output_dir: Path = field(default_factory=default_output_dir)
    data_dir: Path = field(default_factory=default_data_dir)
    # A tool call waits this long before returning the task id (hosts cut calls off near 60 s).
    wait_seconds: float = 45.0
    # Some hosts drop image blocks when structuredContent is present; this switches it off.
    structured_output: bool = True
    request_timeout: float = 30.0
    max_retries: int = 4
    # Multiplies every poll delay; only the test suite and benchmarks change it.
    poll_scale: float = 1.0
    # Reference URLs on private/loopback addresses are refused unless this is set.
    allow_private_urls: bool = False
    # Over HTTP transports, local paths are read only under these directories.
    read_dirs: tuple[Path, ...] = ()
    # Bearer token required by the HTTP transports, when set.
    auth_token: Secret | None = None
    # Extra Host names (with optional port) the HTTP transports accept, as written in
    # RIVYA_ALLOWED_HOSTS (comma-separated) or --allowed-host; parsed and checked when serving.
    allowed_hosts: tuple[str, ...] = ()
    log_level: str = "INFO"
    sandbox: bool = False
    # The name the journal files this server's tasks under, when not ``base_url``: the embedded
    # sandbox's address changes with every start, so it is filed under a fixed name (cli.py).
    upstream_name: str | None = None
    # The server's public base URL (HTTP transports): webhook deliveries finish tasks when set.
    public_url: str | None = None
    # postgresql://… : the journal, the saved images and the task leases live in this database,
    # shared by every replica (a Secret: the URL may carry a password). None: local SQLite + folder.
    database_url: Secret | None = None
    # Seconds a replica's claim on a task lasts unless renewed (renewed every third of it while
    # held): how long a task followed by a replica that died waits before another takes it over.
    lease_seconds: float = 15.0
    # "json": one JSON object per log line (with the task id when there is one), for hosted replicas.
    log_format: str = "text"
    # Identity (HTTP, with public_url; see docs/identity.md). A resource server behind this OAuth
    # issuer (RIVYA_OAUTH_ISSUER): tokens it issued for {public_url}/mcp, with these scopes.
    oauth_issuer: str | None = None
    oauth_scopes: tuple[str, ...] = ()
    # The `aud` the issuer puts in its tokens when it cannot use the resource URL (some IdPs name an
    # API by their own identifier); None: {public_url}/mcp, as RFC 8707 and the MCP spec want.
    oauth_audience: str | None = None
    # This server's client at the issuer, for RFC 7662 introspection of opaque tokens.
    oauth_client_id: str | None = None
    oauth_client_secret: Secret | None = None
    # Our own authorization server: people sign in with their own Rivya key (RIVYA_LOGIN=1).
    rivya_login: bool = False
    # Key material for what identity stores encrypted (people's Rivya keys): RIVYA_SECRET_KEY.
    secret_key: Secret | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        key = env.get("RIVYA_API_KEY", "").strip()
        token = env.get("RIVYA_MCP_AUTH_TOKEN", "").strip()
        database_url = env.get("RIVYA_DATABASE_URL", "").strip()
        base = cls()
        return cls(
            api_key=Secret(key) if key else None,
            base_url=(env.get("RIVYA_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
            model=env.get("RIVYA_MODEL") or base.model,
            output_dir=Path(env["RIVYA_OUTPUT_DIR"]).expanduser().resolve()
            if env.get("RIVYA_OUTPUT_DIR")
            else base.output_dir,
            data_dir=Path(env["RIVYA_DATA_DIR"]).expanduser().resolve() if env.get("RIVYA_DATA_DIR") else base.data_dir,
            wait_seconds=float(env.get("RIVYA_WAIT_SECONDS") or base.wait_seconds),
            structured_output=_flag(env.get("RIVYA_STRUCTURED_OUTPUT"), base.structured_output),
            request_timeout=float(env.get("RIVYA_TIMEOUT") or base.request_timeout),
            max_retries=int(env.get("RIVYA_MAX_RETRIES") or base.max_retries),
            poll_scale=float(env.get("RIVYA_POLL_SCALE") or base.poll_scale),
            allow_private_urls=_flag(env.get("RIVYA_ALLOW_PRIVATE_URLS"), False),
            read_dirs=read_dirs_setting(env.get("RIVYA_READ_DIRS")),
            auth_token=Secret(token) if token else None,
            allowed_hosts=tuple(h.strip() for h in env.get("RIVYA_ALLOWED_HOSTS", "").split(",") if h.strip()),
            log_level=(env.get("RIVYA_LOG_LEVEL") or base.log_level).upper(),
            public_url=(env.get("RIVYA_PUBLIC_URL") or "").strip().rstrip("/") or None,
            database_url=Secret(database_url) if database_url else None,
            lease_seconds=float(env.get("RIVYA_LEASE_SECONDS") or base.lease_seconds),
            log_format=(env.get("RIVYA_LOG_FORMAT") or base.log_format).strip().lower(),
            oauth_issuer=(env.get("RIVYA_OAUTH_ISSUER") or "").strip() or None,
            oauth_scopes=_words(env.get("RIVYA_OAUTH_SCOPES")),
            oauth_audience=(env.get("RIVYA_OAUTH_AUDIENCE") or "").strip() or None,
            oauth_client_id=(env.get("RIVYA_OAUTH_CLIENT_ID") or "").strip() or None,
            oauth_client_secret=_secret(env.get("RIVYA_OAUTH_CLIENT_SECRET")),
            rivya_login=_flag(env.get("RIVYA_LOGIN"), False),
            secret_key=_secret(env.get("RIVYA_SECRET_KEY")),
        )

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
