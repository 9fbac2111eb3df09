"""The consent page: one self-contained HTML document, every value escaped, nothing loaded from elsewhere.

Everything a client controls (its name, its URLs) and everything a person typed (their name) goes
through ``html.escape`` before it reaches the page; the key field is always rendered empty. The
only style is inline, allowed by a per-response nonce in the Content-Security-Policy, which also
forbids scripts, frames, and form targets other than this server and the client's redirect.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit

__all__ = ["ConsentView", "page_headers", "render_consent", "render_message"]

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f5f5f4;color:#1c1917}
main{max-width:34rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:12px;
box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.35rem;margin:0 0 1rem}
.who{font-weight:600}
.note{color:#57534e;font-size:.9rem}
.warn{background:#fef3c7;border-radius:8px;padding:.6rem .8rem;font-size:.9rem}
.error{background:#fee2e2;border-radius:8px;padding:.6rem .8rem}
label{display:block;margin-top:1rem;font-weight:600}
input[type=password],input[type=text]{width:100%;box-sizing:border-box;padding:.55rem;font:inherit;
border:1px solid #a8a29e;border-radius:6px}
.actions{display:flex;gap:.75rem;margin-top:1.5rem}
button{font:inherit;padding:.55rem 1.2rem;border-radius:6px;border:1px solid #1c1917;cursor:pointer}
button[value=approve]{background:#1c1917;color:#fff}
button[value=deny]{background:#fff}
"""


@dataclass(frozen=True)
class ConsentView:
    """Everything the page shows, as plain text (escaped here, never before)."""

    request_id: str
    csrf: str
    client_name: str
    client_host: str | None  # CIMD: the host that vouches for the name; None for a self-registered client
    redirect_to: str  # where the browser goes after approval, as people read it
    loopback_redirect: bool
    server_host: str
    error: str | None = None


def page_headers(nonce: str, form_targets: tuple[str, ...] = ()) -> dict[str, str]:
    targets = " ".join(("'self'", *form_targets))
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; form-action {targets}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def form_target(redirect_uri: str) -> str | None:
    """The CSP source that lets the approved form's redirect reach the client (scheme and host only)."""
    parts = urlsplit(redirect_uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        netloc = parts.netloc.rpartition("@")[2]
        return f"{scheme}://{netloc}" if netloc and all(c not in netloc for c in " ;,'\"") else None
    return f"{scheme}:" if scheme.replace("+", "").replace("-", "").replace(".", "").isalnum() else None


def _document(title: str, body: str, nonce: str) -> str:
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<title>{escape(title)}</title><style nonce="{nonce}">{_STYLE}</style></head>'
        f"<body><main>{body}</main></body></html>\n"
    )


def render_consent(view: ConsentView, nonce: str | None = None) -> tuple[str, str]:
    """(html, nonce) of the page asking the person for their Rivya key."""
    nonce = nonce or secrets.token_urlsafe(16)
    name = escape(view.client_name)
    if view.client_host is not None:
        vouched = f"Identified by its metadata at <span class=who>{escape(view.client_host)}</span>."
    else:
        vouched = "This app registered itself with this server: the name above is its own claim."
    warning = ""
    if view.loopback_redirect:
        warning = (
            "<p class=warn>After you approve, this page hands the sign-in to an app on <b>your own computer</b>"
            f" ({escape(view.redirect_to)}). Approve only if you started this sign-in yourself, just now.</p>"
        )
    error = f"<p class=error role=alert>{escape(view.error)}</p>" if view.error else ""
    body = (
        f"<h1>Connect <span class=who>{name}</span> to rivya-mcp</h1>"
        f"{error}"
        f"<p><span class=who>{name}</span> asks to generate and edit images with <b>your own Rivya credits</b> "
        f"through the MCP server at {escape(view.server_host)}.</p>"
        f"<p class=note>{vouched} After you approve, you go back to {escape(view.redirect_to)}.</p>"
        f"{warning}"
        '<form method=post action="/consent" autocomplete=off>'
        f'<input type=hidden name=request value="{escape(view.request_id)}">'
        f'<input type=hidden name=csrf value="{escape(view.csrf)}">'
        "<label for=api_key>Your Rivya API key</label>"
        '<input id=api_key name=api_key type=password required autocomplete=off spellcheck=false value="">'
        "<p class=note>Rivya checks the key now. It is then kept encrypted on this server, used only for your "
        "own requests, and never shown again: not to you, not to the app.</p>"
        "<label for=display_name>Your name (optional)</label>"
        '<input id=display_name name=display_name type=text maxlength=80 value="">'
        "<p class=note>Shown to the people who run this server, beside your usage.</p>"
        "<div class=actions><button type=submit name=action value=approve>Approve</button>"
        "<button type=submit name=action value=deny formnovalidate>Cancel</button></div>"
        "</form>"
    )
    return _document(f"Connect {view.client_name} to rivya-mcp", body, nonce), nonce


def render_message(title: str, message: str, nonce: str | None = None) -> tuple[str, str]:
    """(html, nonce) of a page that only says something (an expired link, a refused form)."""
    nonce = nonce or secrets.token_urlsafe(16)
    return _document(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>", nonce), nonce
