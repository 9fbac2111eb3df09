"""The `rivya-mcp` command: serve (stdio, SSE, Streamable HTTP), sandbox, doctor, demo, usage.

Heavy modules (the MCP server, the sandbox, Pillow) are imported inside the subcommand that needs
them, so that a host spawning the stdio server pays only for what it uses.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from rivya_mcp import __version__
from rivya_mcp.settings import Secret, SettingError, Settings

if TYPE_CHECKING:
    from rivya_mcp.sandbox import RunningSandbox

Transport = Literal["stdio", "sse", "http"]
WEBHOOK_ROUTE = "/webhooks/rivya"  # server._webhooks.WEBHOOK_PATH, named here without importing the server
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# httpx2 logs every request at INFO with its full URL, and a result URL's query string is a
# signature (a credential of its own). Our client logs its requests at DEBUG without query
# strings, so the HTTP stack's own loggers only speak up for warnings.
QUIET_LOGGERS = ("httpx2", "httpcore2")


class _RedactSecrets(logging.Filter):
    """Defence in depth: no log record may carry the API key or the auth token, whoever logs it.

    ``scrub`` also blanks the API key's other spellings (``client.KeyEchoes``: base64, hex, its
    first characters), which the client already takes out of every answer before logging it.
    """

    def __init__(self, secrets_to_hide: Sequence[str], scrub: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self._secrets = [s for s in secrets_to_hide if s]
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets and self._scrub is None:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self._secrets:
            redacted = redacted.replace(secret, "**********")
        if self._scrub is not None:
            redacted = self._scrub(redacted)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class _OneLine(logging.Filter):
    """One record, one line: control characters in a message are escaped (``client.printable``).

    Messages carry what the upstream sent (a task id, a status, a URL); a line break in one would
    forge a log line of its own, an escape sequence restyle the operator's terminal. Applied to the
    whole message, so it holds whoever logs and whatever they forgot to escape. A traceback's own
    lines (``exc_info``) are the formatter's and stay as they are.
    """

    def __init__(self) -> None:
        super().__init__()
        from rivya_mcp.client import printable

        self._printable = printable

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = self._printable(message, limit=None)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


def configure_logging(settings: Settings) -> None:
    """Log to stderr only: in stdio mode stdout is the protocol stream."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        from rivya_mcp.jsonlog import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    hidden = [
        s.reveal()
        for s in (
            settings.api_key,
            settings.auth_token,
            settings.database_url,
            settings.secret_key,
            settings.oauth_client_secret,
        )
        if s is not None
    ]
    if settings.database_url is not None:
        # The database password alone too, should a driver message quote it without the URL.
        from urllib.parse import urlsplit

        password = urlsplit(settings.database_url.reveal()).password
        if password:
            hidden.append(password)
    echoes = None
    if settings.api_key is not None:
        from rivya_mcp.client import KeyEchoes

        echoes = KeyEchoes(settings.api_key.reveal()).scrub_text
    handler.addFilter(_RedactSecrets(hidden, echoes))
    handler.addFilter(_OneLine())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level if settings.log_level in logging.getLevelNamesMapping() else "INFO")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


# Named in `serve --help`: every variable the server reads (tests/test_cli.py checks the list against
# what Settings.from_env and the embedded sandbox read). Descriptions: README.md, Configuration.
SERVE_ENVIRONMENT = (
    ("key and API", ("RIVYA_API_KEY", "RIVYA_BASE_URL", "RIVYA_MODEL", "RIVYA_TIMEOUT", "RIVYA_MAX_RETRIES")),
    ("folders", ("RIVYA_OUTPUT_DIR", "RIVYA_DATA_DIR", "RIVYA_READ_DIRS", "RIVYA_DATABASE_URL")),
    ("calls", ("RIVYA_WAIT_SECONDS", "RIVYA_STRUCTURED_OUTPUT", "RIVYA_ALLOW_PRIVATE_URLS", "RIVYA_POLL_SCALE")),
    ("spending", ("RIVYA_BUDGET_CREDITS_PER_DAY", "RIVYA_CONFIRM_ABOVE_CREDITS")),
    ("images", ("RIVYA_PROVENANCE_PROMPT",)),
    (
        "HTTP",
        ("RIVYA_MCP_AUTH_TOKEN", "RIVYA_ALLOWED_HOSTS", "RIVYA_PUBLIC_URL", "RIVYA_LEASE_SECONDS"),
    ),
    (
        "identity",
        (
            "RIVYA_OAUTH_ISSUER",
            "RIVYA_OAUTH_SCOPES",
            "RIVYA_OAUTH_AUDIENCE",
            "RIVYA_OAUTH_CLIENT_ID",
            "RIVYA_OAUTH_CLIENT_SECRET",
            "RIVYA_LOGIN",
            "RIVYA_SECRET_KEY",
        ),
    ),
    ("logs", ("RIVYA_LOG_LEVEL", "RIVYA_LOG_FORMAT")),
    (
        "--sandbox",
        ("RIVYA_SANDBOX_PROFILE", "RIVYA_SANDBOX_WEBHOOK_SIGNING", "RIVYA_SANDBOX_WEBHOOKS_ALLOW_LOOPBACK"),
    ),
)
SERVE_EPILOG = (
    "environment (set it in the host's config, not your shell; see README.md, Configuration):\n"
    + "\n".join(f"  {topic + ':':<13} {', '.join(names)}" for topic, names in SERVE_ENVIRONMENT)
    + "\n\nWithout RIVYA_API_KEY the server starts and lists its tools; add --sandbox to try it offline."
)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rivya-mcp",
        description="MCP server for Rivya image generation (flux-kontext-max), with an offline sandbox.",
        epilog="Without a command it runs `serve`, and takes serve's options: `rivya-mcp --sandbox` is "
        "`rivya-mcp serve --sandbox`.",
    )
    parser.add_argument("--version", action="version", version=f"rivya-mcp {__version__}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser(
        "serve",
        help="run the MCP server (default: stdio)",
        description="Run the MCP server. Hosts (Claude Desktop, Cursor, VS Code, ...) start it over stdio "
        "themselves; --transport http serves Streamable HTTP at /mcp for remote clients.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--transport",
        choices=["stdio", "sse", "http"],
        default="stdio",
        help="how clients reach the server: stdio (default; what a host spawns), http (Streamable HTTP at /mcp) "
        "or sse (the legacy HTTP+SSE transport at /sse)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.add_argument(
        "--sandbox",
        action="store_true",
        help="start the embedded Rivya sandbox in-process and use it (no API key, no credits spent)",
    )
    serve.add_argument(
        "--auth-token",
        default=None,
        help="bearer token HTTP clients must send (prefer the RIVYA_MCP_AUTH_TOKEN environment variable)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="a Host name remote clients or a reverse proxy use (repeatable; adds its http/https origins; "
        "also RIVYA_ALLOWED_HOSTS, comma-separated)",
    )
    serve.add_argument(
        "--public-url",
        default=None,
        help="the server's public base URL (HTTP transports): Rivya then finishes tasks by webhook "
        f"at <public-url>{WEBHOOK_ROUTE} (also RIVYA_PUBLIC_URL)",
    )
    serve.add_argument(
        "--oauth-issuer",
        default=None,
        metavar="URL",
        help="accept access tokens from this OAuth issuer for <public-url>/mcp, one identity per person "
        "(also RIVYA_OAUTH_ISSUER; scopes RIVYA_OAUTH_SCOPES; see docs/identity.md)",
    )
    serve.add_argument(
        "--rivya-login",
        action="store_true",
        help="be an OAuth authorization server where people sign in with their own Rivya key, kept encrypted "
        "with RIVYA_SECRET_KEY (also RIVYA_LOGIN=1; see docs/identity.md)",
    )
    serve.add_argument(
        "--allow-remote-without-token",
        action="store_true",
        help="allow binding a non-loopback address without a bearer token (not recommended)",
    )

    sandbox = sub.add_parser("sandbox", help="run the Rivya API sandbox on its own")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument("--balance", type=int, default=None, help="starting credits per API key")
    sandbox.add_argument(
        "--profile",
        choices=("default", "variant"),
        default=None,
        help="how the sandbox decides where the Rivya docs are silent (default: $RIVYA_SANDBOX_PROFILE "
        "or 'default'; see docs/sandbox.md)",
    )
    sandbox.add_argument(
        "--webhooks-allow-loopback",
        action="store_true",
        help="accept http://127.0.0.1 webhook URLs (sandbox only: the documented rules refuse them)",
    )
    sandbox.add_argument(
        "--webhook-signing",
        choices=("standard", "stripe", "unknown"),
        default=None,
        help="how deliveries are signed (default: $RIVYA_SANDBOX_WEBHOOK_SIGNING or the profile's: "
        "standard for default, stripe for variant; see docs/sandbox.md)",
    )

    webhooks = sub.add_parser("webhooks", help="manage this server's Rivya webhook endpoint")
    webhooks_sub = webhooks.add_subparsers(dest="webhooks_command", required=True)
    rotate = webhooks_sub.add_parser("rotate-secret", help="replace the endpoint's signing secret (kept 0600)")
    rotate.add_argument("--public-url", default=None, help="the server's public base URL (or RIVYA_PUBLIC_URL)")

    doctor = sub.add_parser("doctor", help="check the key, base URL, model, contract, folders and webhooks (free)")
    doctor.add_argument(
        "--public-url",
        default=None,
        help="also check webhooks: register a temporary endpoint under this URL, receive its test delivery and "
        "name the signature convention that verifies it (or RIVYA_PUBLIC_URL)",
    )
    doctor.add_argument(
        "--listen",
        default=None,
        metavar="HOST:PORT",
        help="where the temporary receiver listens (default: the public URL's own address if it is this machine, "
        "else 127.0.0.1:8000); the public URL must route there",
    )
    doctor.add_argument("--webhook-wait", type=float, default=None, help="seconds to wait for the test delivery")

    sub.add_parser("demo", help="generate, edit and finish a task end to end through a real MCP client")

    usage = sub.add_parser("usage", help="credits spent per person and UTC day, from the journal (for the operator)")
    usage.add_argument("--days", type=int, default=7, help="UTC days to show, today included (default 7)")
    return parser


SANDBOX_SUBFOLDER = "sandbox"
# Where the embedded sandbox keeps its own state, inside its data folder (sandbox._persist).
SANDBOX_STATE_SUBFOLDER = "embedded"
# The embedded sandbox's one account, the same at every start, so that the journal's rows and the
# sandbox's own records of them still match after a restart. Any rvya_sk_ key is an account in the
# sandbox; this one opens nothing anywhere else (it is in the source, and Rivya never issued it).
EMBEDDED_SANDBOX_KEY = "rvya_sk_" + "e1b3d6c0a7f24958"


# Replicas on one database, each with its own embedded sandbox: a task one replica created is
# unknown to the others' sandboxes (issue 23 item 15). Said at start; docs/hosting.md shows the fix.
SHARED_DATABASE_SANDBOX_WARNING = (
    "--sandbox with RIVYA_DATABASE_URL: this replica gets a sandbox of its own, which knows nothing of "
    "the tasks other replicas create in theirs, so get_task and tasks/get for those fail here. To try "
    "replicas without a key, run one sandbox for all of them (rivya-mcp sandbox --port 8765) and start "
    "each replica without --sandbox, with RIVYA_BASE_URL=http://<its host>:8765 and any RIVYA_API_KEY of "
    "the form rvya_sk_... (docs/hosting.md, Trying replicas without a key)."
)


def _start_embedded_sandbox(data_dir: Path, *, keep_state: bool = True) -> tuple[RunningSandbox, Secret]:
    """The sandbox ``serve --sandbox`` and ``demo`` run in-process, and the key to use it with.

    It keeps its tasks and files in ``<data dir>/sandbox/embedded`` across restarts, under one
    fixed account; if another server's embedded sandbox holds that folder right now, or
    ``keep_state`` is off (replicas on a shared database, where one fixed account would make every
    replica's tasks look like its own), it keeps nothing and gets a key of its own, so no two
    sandboxes ever see (or recover) each other's tasks.
    """
    from rivya_mcp.sandbox import SandboxConfig, profile_from_env, start_sandbox, webhook_signing_from_env

    # The embedded sandbox delivers webhooks to a server on loopback only when asked to.
    loopback_hooks = os.environ.get("RIVYA_SANDBOX_WEBHOOKS_ALLOW_LOOPBACK", "").strip().lower() in {"1", "true", "yes"}
    config = SandboxConfig(
        profile=profile_from_env(os.environ),
        webhooks_allow_loopback=loopback_hooks,
        webhook_signing=webhook_signing_from_env(os.environ),
    )
    state_dir = Path(data_dir) / SANDBOX_SUBFOLDER / SANDBOX_STATE_SUBFOLDER if keep_state else None
    sandbox = start_sandbox(config, state_dir=state_dir)
    if sandbox.keeps_state:
        return sandbox, Secret(EMBEDDED_SANDBOX_KEY)
    # No fixed part after rvya_sk_: the client blanks the key's first characters wherever an answer
    # repeats them (client.KeyEchoes), and a word there ("sandbox_") would be blanked everywhere.
    return sandbox, Secret("rvya_sk_" + secrets.token_hex(16))


def sandbox_settings(settings: Settings, *, sandbox: RunningSandbox, api_key: Secret) -> Settings:
    """Point at the embedded sandbox, with its journal and images apart from real use.

    Its journal in ``<data dir>/sandbox``: a real journal should hold only real tasks. Its images
    (placeholders rendered locally) in ``<output dir>/sandbox``, so they are never mistaken for paid
    ones in the user's pictures. The journal files its tasks under one fixed upstream name
    (``tasks.EMBEDDED_SANDBOX_UPSTREAM``), not its address: the port changes from one start to the
    next, and the tasks must not vanish with it (issue 23 item 13).
    """
    from rivya_mcp.tasks import EMBEDDED_SANDBOX_UPSTREAM

    return settings.with_changes(
        base_url=sandbox.base_url,
        api_key=api_key,
        sandbox=True,
        upstream_name=EMBEDDED_SANDBOX_UPSTREAM if sandbox.keeps_state else None,
        data_dir=Path(settings.data_dir) / SANDBOX_SUBFOLDER,
        output_dir=Path(settings.output_dir) / SANDBOX_SUBFOLDER,
    )


def _limit_malloc_arenas() -> None:
    """Cap glibc's per-thread malloc arenas: Pillow work in anyio's worker threads otherwise leaves
    each thread's arena holding tens of MB (server peak 395 MB at 100 concurrent calls, 151 MB capped)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX = -8
    except (OSError, AttributeError):
        pass


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    _limit_malloc_arenas()

    from rivya_mcp.transport import serve

    if args.auth_token:
        settings = settings.with_changes(auth_token=Secret(args.auth_token))
    if args.allowed_host:
        settings = settings.with_changes(allowed_hosts=(*settings.allowed_hosts, *args.allowed_host))
    if args.public_url:
        settings = settings.with_changes(public_url=args.public_url.strip().rstrip("/"))
    if args.oauth_issuer:
        settings = settings.with_changes(oauth_issuer=args.oauth_issuer.strip())
    if args.rivya_login:
        settings = settings.with_changes(rivya_login=True)
    configure_logging(settings)
    log = logging.getLogger("rivya_mcp")
    if (settings.oauth_issuer or settings.rivya_login) and args.transport == "stdio":
        log.error("--oauth-issuer and --rivya-login are for the HTTP transports (--transport http or sse)")
        return 2
    sandbox = None
    if args.sandbox:
        shared = settings.database_url is not None
        if shared:
            log.warning(SHARED_DATABASE_SANDBOX_WARNING)
        sandbox, key = _start_embedded_sandbox(settings.data_dir, keep_state=not shared)
        settings = sandbox_settings(settings, sandbox=sandbox, api_key=key)
        log.info("sandbox running at %s; no credits are spent", sandbox.base_url)
    if settings.api_key is not None and not _journal_usable(settings, log):
        if sandbox is not None:
            sandbox.stop()
        return 2
    try:
        anyio.run(
            lambda: serve(
                settings,
                transport=cast(Transport, args.transport),
                host=args.host,
                port=args.port,
                allow_remote_without_token=args.allow_remote_without_token,
            )
        )
    except KeyboardInterrupt:
        pass
    except ValueError as exc:  # refused configuration, e.g. a public bind without a token
        log.error("%s", exc)
        return 2
    finally:
        if sandbox is not None:
            sandbox.stop()
    return 0


def _journal_usable(settings: Settings, log: logging.Logger) -> bool:
    """Refuse to serve with a key when the task journal can't be kept (see docs/architecture.md).

    A server that can spend credits without its journal could lose a paid task in a crash or
    re-send one; without a key nothing can be paid for, so the server still starts and lists its
    tools (list_tasks then says what is wrong with the folder).
    """
    from rivya_mcp.journal import JournalError
    from rivya_mcp.tasks import DataFolderUnusable, open_journal

    try:
        open_journal(settings).close()
    except (DataFolderUnusable, JournalError) as exc:  # JournalError: the shared database (password-free)
        log.error("%s", exc)
        return False
    return True


def _sandbox(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from rivya_mcp.sandbox import SandboxConfig, profile_from_env, serve_sandbox, webhook_signing_from_env

    configure_logging(settings)
    try:
        profile = args.profile or profile_from_env(os.environ)
        signing = args.webhook_signing or webhook_signing_from_env(os.environ)
    except ValueError as exc:
        print(f"rivya-mcp sandbox: {exc}", file=sys.stderr)
        return 2
    config = SandboxConfig(
        profile=profile, webhooks_allow_loopback=args.webhooks_allow_loopback, webhook_signing=signing
    )
    if args.balance is not None:
        config = config.updated({"starting_balance": args.balance})
    print(f"Rivya sandbox ({profile} profile) on http://{args.host}:{args.port} (Ctrl+C to stop)", file=sys.stderr)
    try:
        anyio.run(lambda: serve_sandbox(config, host=args.host, port=args.port))
    except KeyboardInterrupt:
        pass
    return 0


def _webhooks(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from rivya_mcp.client import AsyncRivyaClient, RivyaError
    from rivya_mcp.journal import AsyncJournal, JournalError
    from rivya_mcp.tasks import SecretStore, open_journal, rotate_secret, webhook_url

    configure_logging(settings)
    public_url = (args.public_url or settings.public_url or "").strip().rstrip("/")
    if not public_url or settings.api_key is None:
        print(
            "rivya-mcp webhooks rotate-secret needs RIVYA_API_KEY and --public-url (or RIVYA_PUBLIC_URL).",
            file=sys.stderr,
        )
        return 2

    async def run() -> str:
        # The secret lives in the server's journal (file or shared database): open the same one.
        with open_journal(settings) as opened:
            journal = AsyncJournal(opened)

            async def the_journal() -> AsyncJournal:
                return journal

            async with AsyncRivyaClient(api_key=settings.api_key, base_url=settings.base_url) as client:
                store = SecretStore(the_journal)
                record = await rotate_secret(client, store, url=webhook_url(public_url), base_url=settings.base_url)
                return record.endpoint_id

    try:
        endpoint_id = anyio.run(run)
    except (RivyaError, OSError, JournalError) as exc:
        print(f"Could not rotate the webhook secret: {exc}", file=sys.stderr)
        return 1
    print(
        f"Rotated the signing secret of webhook endpoint {endpoint_id}; a running server picks it up "
        "with the next delivery.",
        file=sys.stderr,
    )
    return 0


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    import anyio

    from rivya_mcp.doctor import WEBHOOK_WAIT_SECONDS, render, run_doctor

    configure_logging(settings.with_changes(log_level="ERROR"))  # the table is the output
    public_url = (args.public_url or settings.public_url or "").strip().rstrip("/") or None
    wait = args.webhook_wait if args.webhook_wait is not None else WEBHOOK_WAIT_SECONDS
    report = anyio.run(lambda: run_doctor(settings, public_url=public_url, listen=args.listen, webhook_wait=wait))
    print(render(report), end="")
    return report.exit_code


def _usage(args: argparse.Namespace, settings: Settings) -> int:
    from rivya_mcp.usage import UsageError, usage_report

    configure_logging(settings.with_changes(log_level="ERROR"))  # the table is the output
    try:
        print(usage_report(settings, days=args.days), end="")
    except UsageError as exc:
        print(f"rivya-mcp usage: {exc}", file=sys.stderr)
        return exc.code
    return 0


def _demo(_args: argparse.Namespace, _settings: Settings) -> int:
    # The demo's server reads the same environment: a bad value is refused here, before it starts.
    from rivya_mcp._demo import run_demo

    return run_demo()


# Options of the top-level parser itself; any other leading option is one of serve's.
TOP_LEVEL_OPTIONS = frozenset({"-h", "--help", "--version"})


def with_default_command(argv: Sequence[str]) -> list[str]:
    """``rivya-mcp --sandbox`` is ``rivya-mcp serve --sandbox``: bare ``rivya-mcp`` is ``serve``, so
    serve's flags work without the word too (a host config's ``args: ["--sandbox"]``, issue 23)."""
    if argv and argv[0].startswith("-") and argv[0].split("=", 1)[0] not in TOP_LEVEL_OPTIONS:
        return ["serve", *argv]
    return list(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(with_default_command(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        args = _build_parser().parse_args(["serve"])
    try:
        settings = Settings.from_env()
    except SettingError as exc:
        # One line that names the variable and what it takes; no traceback for a typo.
        print(f"rivya-mcp: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "sandbox":
        return _sandbox(args, settings)
    if args.command == "webhooks":
        return _webhooks(args, settings)
    if args.command == "doctor":
        return _doctor(args, settings)
    if args.command == "usage":
        return _usage(args, settings)
    return _demo(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
