"""Hosted-mode settings and JSON logs: read from the environment, secrets never shown."""

from __future__ import annotations

import json
import logging

import pytest

from rivya_mcp.jsonlog import JsonFormatter
from rivya_mcp.settings import Settings

URL = "postgresql://rivya:pa55word@db.internal:5432/rivya"


def test_database_settings_from_the_environment() -> None:
    settings = Settings.from_env({"RIVYA_DATABASE_URL": URL, "RIVYA_LEASE_SECONDS": "4", "RIVYA_LOG_FORMAT": "JSON"})
    assert settings.database_url is not None and settings.database_url.reveal() == URL
    assert "pa55word" not in repr(settings)
    assert (settings.lease_seconds, settings.log_format) == (4.0, "json")
    embedded = Settings.from_env({})
    assert (embedded.database_url, embedded.lease_seconds, embedded.log_format) == (None, 15.0, "text")


@pytest.mark.parametrize(
    ("message", "task_id"),
    [
        ("task task_abc123 created (generate, queued)", "task_abc123"),
        ("recovery: task task_X-9_z finished; image saved to /o/x.jpg", "task_X-9_z"),
        ("serving MCP over http", None),
    ],
)
def test_json_log_lines_carry_the_task_id(message: str, task_id: str | None) -> None:
    record = logging.LogRecord("rivya_mcp.server", logging.INFO, __file__, 1, message, None, None)
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "rivya_mcp.server", message)
    assert line.get("task_id") == task_id


def test_the_cli_hides_the_database_password(capsys: pytest.CaptureFixture[str]) -> None:
    from rivya_mcp.cli import configure_logging

    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    configure_logging(Settings.from_env({"RIVYA_DATABASE_URL": URL, "RIVYA_LOG_FORMAT": "json"}))
    try:
        logging.getLogger("rivya_mcp.test").warning("could not connect to %s (password pa55word)", URL)
        err = capsys.readouterr().err
        assert "pa55word" not in err and json.loads(err.strip().splitlines()[-1])["level"] == "WARNING"
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
