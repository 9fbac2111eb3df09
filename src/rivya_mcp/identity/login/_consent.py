"""``GET /consent`` shows the page, ``POST /consent`` answers it: the browser half of rivya-login.

CSRF: the page carries a random token twice, in a hidden field and in an HttpOnly, SameSite=Strict
cookie, and the parked request stores its hash. A POST is answered only when the field, the cookie
and the stored hash agree and a present ``Origin`` is this server's own: a page elsewhere can make
a browser post, but it can neither read the token nor set the cookie. (What it would gain is making
someone's client sign in with a key the attacker chose, which would send that person's prompts to
the attacker's Rivya account.)

Every answer is ``Cache-Control: no-store``; the key field is never filled back in, and after a
successful POST the browser is redirected (303), so a reload cannot resubmit the key.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rivya_mcp.identity.login._login import CONSENT_SECONDS, PendingConsent, RivyaLoginProvider
from rivya_mcp.identity.login._page import ConsentView, form_target, page_headers, render_consent, render_message
from rivya_mcp.identity.login._redirects import is_loopback_redirect, redirect_shown_as

__all__ = ["ConsentPage"]

logger = logging.getLogger("rivya_mcp.identity")

MAX_FORM_BYTES = 16 * 1024
_EXPIRED = "This sign-in link has expired or was already used. Start again from your app."
_FORGED = "This form is out of date or did not come from this page. Go back to your app and start again."


class ConsentPage:
    def __init__(self, provider: RivyaLoginProvider) -> None:
        self.provider = provider
        issuer = urlsplit(provider.options.issuer)
        self._secure = issuer.scheme == "https"
        self._origin = f"{issuer.scheme}://{issuer.netloc}".lower()
        self._server_host = issuer.netloc
        # __Host-: only over https, set by this host for every path, never by a sibling domain.
        self.cookie = "__Host-rivya_consent" if self._secure else "rivya_consent"

    async def show(self, request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        pending = await self.provider.pending(request_id) if request_id else None
        if pending is None:
            return _message(400, "Sign-in expired", _EXPIRED)
        csrf = secrets.token_urlsafe(32)
        await self.provider.bind_csrf(pending, csrf)
        response = self._page(pending, request_id, csrf, error=None, status=200)
        response.set_cookie(
            self.cookie, csrf, max_age=CONSENT_SECONDS, path="/", secure=self._secure, httponly=True, samesite="strict"
        )
        return response

    async def answer(self, request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():
            return _message(411, "Length required", "The form came without its length.")
        if int(declared) > MAX_FORM_BYTES:
            return _message(413, "Form too large", "The form was larger than this page ever sends.")
        origin = request.headers.get("origin")
        if origin is not None and origin.lower() != self._origin:
            logger.warning("refused a consent form posted from another origin")
            return _message(403, "Refused", _FORGED)
        async with request.form(max_files=0, max_fields=8, max_part_size=MAX_FORM_BYTES) as form:
            fields = {name: value for name, value in form.items() if isinstance(value, str)}
        request_id, csrf = fields.get("request", ""), fields.get("csrf", "")
        pending = await self.provider.pending(request_id) if request_id else None
        if pending is None:
            return _message(400, "Sign-in expired", _EXPIRED)
        cookie = request.cookies.get(self.cookie, "")
        if not csrf or not cookie or not secrets.compare_digest(cookie, csrf):
            return _message(403, "Refused", _FORGED)
        if not await self.provider.csrf_matches(pending, csrf):
            return _message(403, "Refused", _FORGED)
        if fields.get("action") == "deny":
            outcome = await self.provider.deny(pending)
        else:
            outcome = await self.provider.approve(pending, fields.get("api_key", ""), fields.get("display_name", ""))
        if outcome.redirect_to is not None:
            response: Response = RedirectResponse(outcome.redirect_to, status_code=303, headers=page_headers("-"))
            response.delete_cookie(self.cookie, path="/", secure=self._secure, httponly=True, samesite="strict")
            return response
        if outcome.retry:
            return self._page(pending, request_id, csrf, error=outcome.error, status=400)
        return _message(400, "Sign-in stopped", outcome.error or _EXPIRED)

    def _page(self, pending: PendingConsent, request_id: str, csrf: str, *, error: str | None, status: int) -> Response:
        redirect_uri = str(pending.params.redirect_uri)
        view = ConsentView(
            request_id=request_id,
            csrf=csrf,
            client_name=pending.client.client_name or "An MCP client",
            client_host=urlsplit(pending.client.client_id).netloc if pending.from_document else None,
            redirect_to=redirect_shown_as(redirect_uri),
            loopback_redirect=is_loopback_redirect(redirect_uri),
            server_host=self._server_host,
            error=error,
        )
        html, nonce = render_consent(view)
        target = form_target(redirect_uri)
        return HTMLResponse(html, status_code=status, headers=page_headers(nonce, (target,) if target else ()))


def _message(status: int, title: str, message: str) -> Response:
    html, nonce = render_message(title, message)
    return HTMLResponse(html, status_code=status, headers=page_headers(nonce))
