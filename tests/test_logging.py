"""What the server logs on stderr: our records, redacted; never the HTTP stack's request lines."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx2
import pytest

from rivya_mcp.cli import QUIET_LOGGERS, configure_logging
from rivya_mcp.settings import Secret, Settings

# The client logs under its package name (rivya_mcp.client).
client_logger = logging.getLogger("rivya_mcp.client")

SIGNED_URL = "https://cdn.example/result.png?X-Signature=s3cr3tsignature&Expires=1"
# Built at run time so that no source file holds a key-shaped string.
FAKE_KEY = "rvya_sk_" + "logged_" * 3


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    root.handlers[:], root.level = saved
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _fetch(url: str) -> None:
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, content=b"png"))
    with httpx2.Client(transport=transport) as http:
        http.get(url)


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_httpx2_request_lines_never_reach_stderr(level: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_level=level))
    _fetch(SIGNED_URL)
    logging.getLogger("rivya_mcp.test").info("our own line")
    err = capsys.readouterr().err
    assert "our own line" in err  # the handler is live: the silence below is httpx2's level, not a dead stream
    assert "s3cr3tsignature" not in err
    assert "HTTP Request" not in err


def test_httpx2_warnings_still_show(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings())
    logging.getLogger("httpx2").warning("connection pool exhausted")
    assert "connection pool exhausted" in capsys.readouterr().err


def test_secrets_are_redacted_whoever_logs_them(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(api_key=Secret(FAKE_KEY), log_level="DEBUG"))
    client_logger.debug("sending with %s", FAKE_KEY)
    err = capsys.readouterr().err
    assert "sending with **********" in err
    assert FAKE_KEY not in err


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_one_record_is_one_line_whatever_the_upstream_sent(log_format: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A task id with a line break cannot forge a record; an escape sequence cannot restyle the terminal."""
    configure_logging(Settings(log_format=log_format))
    forged = "task_1\n2026-07-28 10:00:00,000 WARNING rivya_mcp: API key rotated"
    logging.getLogger("rivya_mcp.tasks").info("task %s created (%s)", forged, "\x1b[2J\x1b[31mqueued")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert "\x1b" not in lines[0]
    if log_format == "text":  # the JSON formatter escapes on its own; the text one relies on the filter
        assert "task_1\\n2026-07-28" in lines[0] and "\\x1b[2J" in lines[0]


def test_tracebacks_keep_their_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings())
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("rivya_mcp.test").exception("it broke")
    err = capsys.readouterr().err
    assert "it broke" in err and "Traceback (most recent call last):" in err and len(err.splitlines()) > 2


def test_other_spellings_of_the_key_are_redacted_whoever_logs_them(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 23 item 8: the filter knew the key only verbatim (a library logging an upstream's
    base64, hex or truncated echo of it got through)."""
    import base64

    configure_logging(Settings(api_key=Secret(FAKE_KEY), log_level="DEBUG"))
    logging.getLogger("some.library").warning(
        "upstream said %s / %s / req_%s", base64.b64encode(FAKE_KEY.encode()).decode(), FAKE_KEY.encode().hex(),
        FAKE_KEY[:14],
    )  # fmt: skip
    err = capsys.readouterr().err
    assert "upstream said" in err and err.count("[redacted]") == 3, err
    assert FAKE_KEY.encode().hex()[16:] not in err and FAKE_KEY[:14] not in err
