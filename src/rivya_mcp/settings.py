"""Runtime configuration, read from the environment once in ``main()`` (never at import)."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

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


# --- Reading the environment: one pure rule per kind of value ------------------------------------
#
# Each rule takes an EnvValue (the variable's name and its text, None when unset) and returns the
# value, or raises SettingError: one line naming the variable, what it accepts and, unless it is a
# secret, what it was given. The CLI prints that line and exits 2 (cli.main).

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_SHOWN_CHARACTERS = 60


@dataclass(frozen=True)
class EnvValue:
    """One environment variable as read: its name and its text (None when it is not set)."""

    name: str
    text: str | None

    @property
    def given(self) -> str | None:
        """The text without surrounding whitespace; None when unset or blank (the default applies)."""
        if self.text is None or not self.text.strip():
            return None
        return self.text.strip()


class SettingError(ValueError):
    """A variable's value is not one it accepts; the message is one line, never a secret's value."""

    def __init__(self, value: EnvValue, accepts: str, *, secret: bool = False) -> None:
        self.variable = value.name
        self.accepts = accepts
        if secret:
            shown = "the value set is not (and is not shown: it is a secret)"
        else:
            text = value.text or ""
            shown = f"not {text[:_SHOWN_CHARACTERS]!r}" + ("…" if len(text) > _SHOWN_CHARACTERS else "")
        super().__init__(f"{value.name} must be {accepts}; {shown}")


class _Environment:
    """``env.get(name)`` gives the EnvValue, name and all (scripts/gen_docs.py finds the names so)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> EnvValue:
        return EnvValue(name, self._environ.get(name))


def parse_number(
    value: EnvValue, default: float, *, minimum: float = 0.0, above_minimum: bool = False, unit: str = "seconds"
) -> float:
    """A finite decimal number, at least ``minimum`` (or above it)."""
    if value.given is None:
        return default
    bound = f"above {minimum:g}" if above_minimum else f"{minimum:g} or more"
    accepts = f"a number of {unit}, {bound} (e.g. {default:g})"
    try:
        number = float(value.given)
    except ValueError:
        raise SettingError(value, accepts) from None
    if not math.isfinite(number) or number < minimum or (above_minimum and number == minimum):
        raise SettingError(value, accepts)
    return number


def parse_credits(value: EnvValue) -> float | None:
    """A number of credits, 0 or more; None when unset (no limit)."""
    if value.given is None:
        return None
    return parse_number(value, 0.0, unit="credits")


def parse_count(value: EnvValue, default: int) -> int:
    """A whole number, 0 or more."""
    if value.given is None:
        return default
    if not (value.given.isascii() and value.given.isdigit()):
        raise SettingError(value, f"a whole number, 0 or more (e.g. {default})")
    return int(value.given)


def parse_flag(value: EnvValue, default: bool) -> bool:
    """true/false, 1/0, yes/no or on/off, in any case."""
    if value.given is None:
        return default
    word = value.given.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise SettingError(value, "true or false (or 1/0, yes/no, on/off)")


def parse_choice(value: EnvValue, default: str, choices: Sequence[str]) -> str:
    """One of ``choices``, in any case; returned as spelled in ``choices``."""
    if value.given is None:
        return default
    for choice in choices:
        if value.given.lower() == choice.lower():
            return choice
    raise SettingError(value, "one of " + ", ".join(choices))


def parse_url(value: EnvValue, default: str | None, *, example: str, exact: bool = False) -> str | None:
    """An http(s) URL with a host and no credentials, query or fragment; without a trailing slash,
    unless ``exact`` (an OAuth issuer is compared character for character, slash and all)."""
    if value.given is None:
        return default
    accepts = f"an http:// or https:// URL with a host and no user:password@, query or fragment (e.g. {example})"
    parts = urlsplit(value.given)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise SettingError(value, accepts) from None
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in value.given)
    ):
        raise SettingError(value, accepts)
    return value.given if exact else value.given.rstrip("/")


def parse_database_url(value: EnvValue) -> Secret | None:
    """A ``postgresql://`` (or ``postgres://``) URL; a secret: it may carry a password."""
    if value.given is None:
        return None
    if urlsplit(value.given).scheme.lower() not in ("postgresql", "postgres"):
        raise SettingError(value, "a postgresql:// URL (e.g. postgresql://user@db.example:5432/rivya)", secret=True)
    return Secret(value.given)


def parse_secret(value: EnvValue, *, what: str) -> Secret | None:
    """A key or token sent in an HTTP header: visible ASCII characters, no spaces."""
    if value.given is None:
        return None
    if not all("!" <= c <= "~" for c in value.given):
        raise SettingError(value, f"{what}: visible ASCII characters without spaces", secret=True)
    return Secret(value.given)


def parse_model(value: EnvValue, default: str, known: Callable[[], Collection[str]]) -> str:
    """The id of a model that has a manifest (``known`` lists them; asked only when one is named)."""
    if value.given is None:
        return default
    models = known()
    if value.given not in models:
        raise SettingError(value, "one of the models with a manifest: " + ", ".join(sorted(models)))
    return value.given


def _resolve(value: EnvValue, text: str, accepts: str) -> Path:
    try:
        return Path(text).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte, no home for "~"
        raise SettingError(value, f"{accepts} ({exc})") from None


def parse_folder(value: EnvValue, default: Path) -> Path:
    """A folder path, ``~`` expanded, made absolute (whether it exists is checked where it is used)."""
    if value.given is None:
        return default
    return _resolve(value, value.given, "a folder path")


def parse_folders(value: EnvValue) -> tuple[Path, ...]:
    """Folder paths separated by the OS path separator, spaces around each ignored, blank ones too."""
    if value.given is None:
        return ()
    accepts = f"folder paths separated by {os.pathsep!r}"
    return tuple(_resolve(value, part.strip(), accepts) for part in value.given.split(os.pathsep) if part.strip())


def parse_read_dirs(value: EnvValue) -> tuple[Path, ...]:
    """``RIVYA_READ_DIRS``: absolute folder paths (or ``~/…``) separated by the OS path separator.

    A relative entry is refused, not resolved against the working directory: that is whatever
    folder the host starts the server in, so ``images`` would name another folder from one host to
    the next. Entries are taken as written, white space included (it may be part of a folder's
    name); empty ones are skipped.
    """
    if value.text is None:
        return ()
    accepts = f"absolute folder paths (or ~/…) separated by {os.pathsep!r}"
    folders = []
    for entry in value.text.split(os.pathsep):
        if not entry.strip():
            continue
        if not Path(entry).expanduser().is_absolute():
            hint = " (this one begins with white space, kept as part of the name)" if entry[:1].isspace() else ""
            raise SettingError(value, f"{accepts}{hint}")
        folders.append(_resolve(value, entry, accepts))
    return tuple(folders)


def parse_words(value: EnvValue) -> tuple[str, ...]:
    """OAuth scopes: words of RFC 6749's scope characters, separated by spaces or commas (each once)."""
    if value.given is None:
        return ()
    words = [word for word in value.given.replace(",", " ").split() if word]
    if any(not all("!" <= c <= "~" and c not in '"\\' for c in word) for word in words):
        raise SettingError(value, "scopes: printable ASCII words without quotes or backslashes, separated by spaces")
    return tuple(dict.fromkeys(words))


def parse_word(value: EnvValue, *, what: str) -> str | None:
    """An identifier such as an OAuth client id or audience: visible ASCII characters, no spaces."""
    if value.given is None:
        return None
    if not all("!" <= c <= "~" for c in value.given):
        raise SettingError(value, f"{what}: visible ASCII characters without spaces")
    return value.given


DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HostName:
    """A host as it appears in a Host header or an origin: lower-case name, optional port."""

    name: str  # lower-case; an IPv6 address keeps its brackets
    port: int | None = None

    def port_for(self, scheme: str) -> int | None:
        return self.port if self.port is not None else DEFAULT_PORTS.get(scheme)


def parse_host(value: str) -> HostName | None:
    """``name``, ``name:port``, ``[v6]`` or ``[v6]:port``; None for anything else."""
    value = value.strip().lower()
    if not value or any(c in value for c in "/?#@ \t\\"):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return None
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, colon, port_text_or_empty = value.partition(":")
        port_text = port_text_or_empty if colon else None
        if not name or ":" in port_text_or_empty:
            return None
    if port_text is None:
        return HostName(name)
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return HostName(name, int(port_text))


def parse_host_list(value: EnvValue) -> tuple[str, ...]:
    """Comma-separated host names as clients reach the server, each with an optional port."""
    if value.given is None:
        return ()
    entries = tuple(entry.strip() for entry in value.given.split(",") if entry.strip())
    for entry in entries:
        host = parse_host(entry)
        if host is None or host.name == "*":
            raise SettingError(
                value,
                "host names separated by commas, each with an optional port and no scheme or path "
                "(e.g. mcp.example.com,mcp.example.com:8443)",
            )
    return entries


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
    # Saved images carry IPTC provenance (docs/provenance.md); the prompt goes in only when set,
    # since anyone with a copy of the file can read it.
    provenance_prompt: bool = False
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
    # Credits each person may spend per UTC day (over stdio: the server); None: no limit.
    budget_credits_per_day: float | None = None
    # A create costing more than this asks the person to confirm first; None: never asks.
    confirm_above_credits: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment asks for; SettingError names a variable with a bad value."""
        env = _Environment(os.environ if environ is None else environ)
        base = cls()
        return cls(
            api_key=parse_secret(env.get("RIVYA_API_KEY"), what="a Rivya API key"),
            base_url=parse_url(env.get("RIVYA_BASE_URL"), None, example=DEFAULT_BASE_URL) or DEFAULT_BASE_URL,
            model=parse_model(env.get("RIVYA_MODEL"), base.model, _known_models),
            output_dir=parse_folder(env.get("RIVYA_OUTPUT_DIR"), base.output_dir),
            data_dir=parse_folder(env.get("RIVYA_DATA_DIR"), base.data_dir),
            wait_seconds=parse_number(env.get("RIVYA_WAIT_SECONDS"), base.wait_seconds),
            structured_output=parse_flag(env.get("RIVYA_STRUCTURED_OUTPUT"), base.structured_output),
            request_timeout=parse_number(env.get("RIVYA_TIMEOUT"), base.request_timeout, above_minimum=True),
            max_retries=parse_count(env.get("RIVYA_MAX_RETRIES"), base.max_retries),
            poll_scale=parse_number(env.get("RIVYA_POLL_SCALE"), base.poll_scale, above_minimum=True, unit="times"),
            allow_private_urls=parse_flag(env.get("RIVYA_ALLOW_PRIVATE_URLS"), base.allow_private_urls),
            read_dirs=parse_read_dirs(env.get("RIVYA_READ_DIRS")),
            auth_token=parse_secret(env.get("RIVYA_MCP_AUTH_TOKEN"), what="a bearer token"),
            allowed_hosts=parse_host_list(env.get("RIVYA_ALLOWED_HOSTS")),
            log_level=parse_choice(env.get("RIVYA_LOG_LEVEL"), base.log_level, LOG_LEVELS),
            public_url=parse_url(env.get("RIVYA_PUBLIC_URL"), None, example="https://mcp.example.com"),
            database_url=parse_database_url(env.get("RIVYA_DATABASE_URL")),
            lease_seconds=parse_number(env.get("RIVYA_LEASE_SECONDS"), base.lease_seconds, above_minimum=True),
            log_format=parse_choice(env.get("RIVYA_LOG_FORMAT"), base.log_format, LOG_FORMATS),
            oauth_issuer=parse_url(
                env.get("RIVYA_OAUTH_ISSUER"), None, example="https://login.example.com", exact=True
            ),
            oauth_scopes=parse_words(env.get("RIVYA_OAUTH_SCOPES")),
            oauth_audience=parse_word(env.get("RIVYA_OAUTH_AUDIENCE"), what="an OAuth audience"),
            oauth_client_id=parse_word(env.get("RIVYA_OAUTH_CLIENT_ID"), what="an OAuth client id"),
            oauth_client_secret=parse_secret(env.get("RIVYA_OAUTH_CLIENT_SECRET"), what="an OAuth client secret"),
            rivya_login=parse_flag(env.get("RIVYA_LOGIN"), base.rivya_login),
            secret_key=parse_secret(env.get("RIVYA_SECRET_KEY"), what="the secret key"),
            budget_credits_per_day=parse_credits(env.get("RIVYA_BUDGET_CREDITS_PER_DAY")),
            confirm_above_credits=parse_credits(env.get("RIVYA_CONFIRM_ABOVE_CREDITS")),
            provenance_prompt=parse_flag(env.get("RIVYA_PROVENANCE_PROMPT"), base.provenance_prompt),
        )

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _known_models() -> Collection[str]:
    from rivya_mcp.manifest import load_manifests  # the manifests, read once per process

    return load_manifests().keys()
