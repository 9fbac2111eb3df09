"""Named numbers for the client: timeouts, retry budget and the poll schedule.

Policy functions in ``_retry`` and ``_polling`` read these, so a change of policy is a change here.
"""

from __future__ import annotations

__all__ = [
    "API_PREFIX",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "FIRST_POLL_DELAY",
    "INITIAL_RETRY_DELAY",
    "JITTER_FRACTION",
    "LAST_LOOK_SECONDS",
    "LONG_WAIT_DIVISOR",
    "LONG_WAIT_SECONDS",
    "MAX_CLIENT_REQUEST_ID",
    "MAX_DOWNLOAD_REDIRECTS",
    "MAX_LONG_POLL_INTERVAL",
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
# wait_for_generation's final look, made at its deadline, may take this long (one attempt, and a
# retry only if it fits): the one wait that ends past the deadline, and by at most this much.
LAST_LOOK_SECONDS = 2.0
# The Files API caps client_request_id at 128 characters (rivya-api.md §3.6); the generations page
# gives no cap (§3.2, open question 9), so the same one is assumed there.
MAX_CLIENT_REQUEST_ID = 128
# Redirects a result download follows, each hop checked by the caller's route like the first
# (a CDN may redirect once or twice); a loop is named as one as soon as a URL comes round again.
MAX_DOWNLOAD_REDIRECTS = 5

# Poll schedule: rivya-api §3.4 says to wait 2-3 s after the create before the first status
# request, then poll every 5-10 s, more slowly over time, with no tight loops. That pace is the
# contract (the rate limits behind it are not documented, §5), so the schedule never polls sooner
# to shave completion lag: the first look comes FIRST_POLL_DELAY after the create, then the
# interval is POLL_GROWTH_FRACTION of the task's age, kept within [MIN_POLL_INTERVAL,
# MAX_POLL_INTERVAL]; past LONG_WAIT_SECONDS it grows on (1/LONG_WAIT_DIVISOR of the age) up to
# MAX_LONG_POLL_INTERVAL, for tasks that run for many minutes.
FIRST_POLL_DELAY = 2.5
MIN_POLL_INTERVAL = 5.0
POLL_GROWTH_FRACTION = 0.15
MAX_POLL_INTERVAL = 10.0
LONG_WAIT_SECONDS = 300.0
LONG_WAIT_DIVISOR = 30.0
MAX_LONG_POLL_INTERVAL = 30.0
