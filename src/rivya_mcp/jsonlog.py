"""One JSON object per log line (``RIVYA_LOG_FORMAT=json``), for replicas whose logs a collector reads.

Each line carries ``time``, ``level``, ``logger``, ``message`` and, when the message names a task,
``task_id`` (so one task can be followed across replicas with one filter). The secret filter of
the CLI runs before this formatter, so a redacted message stays redacted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from datetime import UTC, datetime

# The task ids our own log lines name. Rivya documents ids as opaque strings; its examples and
# the sandbox use ``task_…`` (docs/reference: rivya-api.md), which is all this relies on: a line
# whose id looks different just has no task_id field.
TASK_ID = re.compile(r"\btask_[A-Za-z0-9_-]+")


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._replica = f"{socket.gethostname()}:{os.getpid()}"

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "replica": self._replica,
        }
        task = TASK_ID.search(message)
        if task:
            line["task_id"] = task.group(0)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
