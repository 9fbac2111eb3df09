"""Named numbers for the client: timeouts, retry budget and the poll schedule.

Policy functions in ``_retry`` and ``_polling`` read these, so a change of policy is a change here.
"""

from __future__ import annotations

__all__ = [
    "API_PREFIX",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "FAST_PHASE_SECONDS",
    "FAST_POLL_INTERVAL",
    "FIRST_POLL_DELAY",
    "INITIAL_RETRY_DELAY",
    "JITTER_FRACTION",
    "MAX_POLL_INTERVAL",
    "MAX_RETRY_AFTER",
    "MAX_RETRY_DELAY",
    "MIN_POLL_INTERVAL",
    "POLL_GROWTH_FRACTION",
]

DEFAULT_BASE_URL = "https://rivya.ai"
API_PREFIX = "/api/v1"

# Seconds for each HTTP attempt (connect, read, write, pool), not for the whole retry loop.
DEFAULT_TIMEOUT = 30.0
# Retries after the first attempt, so a request is tried at most DEFAULT_MAX_RETRIES + 1 times.
DEFAULT_MAX_RETRIES = 4

# Exponential backoff: 0.5, 1, 2, 4, 8, 8, ... seconds before jitter (Stainless' numbers).
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
# Jitter shortens a delay by up to this fraction, so clients that failed together spread out
# without ever waiting longer than the nominal backoff.
JITTER_FRACTION = 0.25
# A server-sent Retry-After is obeyed up to this many seconds; a longer one means "not soon", and
# waiting it out would overrun an MCP tool call (hosts cut those off at about 60 s), so the
# client gives up and lets the caller decide.
MAX_RETRY_AFTER = 30.0

# Poll schedule (rivya-api §3.4 says: first look after 2-3 s, then back off towards 5-10 s).
# The benchmark target is a lag of at most 2 s between a task finishing and the client noticing
# for jobs of up to 20 s, so the first 20 s are polled every 1.5 s; after that the interval grows
# with the elapsed time (a fixed fraction of the wait is the most anyone loses), within bounds.
FIRST_POLL_DELAY = 2.0
FAST_PHASE_SECONDS = 20.0
FAST_POLL_INTERVAL = 1.5
POLL_GROWTH_FRACTION = 0.15
MIN_POLL_INTERVAL = 1.0
MAX_POLL_INTERVAL = 10.0
