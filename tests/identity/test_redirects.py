"""Redirect URI policy, as tables: what a client may register, and what matches it."""

from __future__ import annotations

import pytest

from rivya_mcp.identity import (
    is_loopback_redirect,
    redirect_matches,
    redirect_shown_as,
    redirect_uri_problem,
)


@pytest.mark.parametrize(
    "uri",
    [
        "https://claude.ai/api/mcp/auth_callback",
        "https://chatgpt.com/connector_platform_oauth_redirect",
        "http://127.0.0.1:33418/callback",
        "http://localhost:6274/oauth/callback",
        "http://[::1]:8080/cb",
        "cursor://anysphere.cursor-retrieval/oauth/callback",
        "com.example.app:/oauth2redirect",
    ],
)
def test_allowed_redirects(uri: str) -> None:
    assert redirect_uri_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("http://example.com/cb", "plain http off loopback"),
        ("http://10.0.0.5/cb", "plain http off loopback"),
        ("https://example.com/cb#frag", "fragment"),
        ("https://user:pw@example.com/cb", "user info"),
        ("javascript:alert(1)", "javascript: scheme"),
        ("data:text/html,hi", "data: scheme"),
        ("file:///etc/passwd", "file: scheme"),
        ("/relative/cb", "not absolute"),
        ("https:///nohost", "no host"),
    ],
)
def test_refused_redirects(uri: str, why: str) -> None:
    problem = redirect_uri_problem(uri)
    assert problem is not None and why in problem


@pytest.mark.parametrize(
    ("registered", "requested", "matches"),
    [
        ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback", True),
        ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback/", False),
        ("https://claude.ai/cb", "https://claude.ai:8443/cb", False),
        ("https://claude.ai/cb", "https://evil.claude.ai/cb", False),
        ("http://127.0.0.1:3000/callback", "http://127.0.0.1:51234/callback", True),
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/callback", True),
        ("http://localhost:3000/callback", "http://localhost:4000/callback", True),
        # Claude Code's published client metadata lists its loopback callback without a port.
        ("http://localhost/callback", "http://localhost:3118/callback", True),
        ("http://127.0.0.1:3000/callback", "http://127.0.0.1:3000/other", False),
        ("http://127.0.0.1:3000/callback", "http://localhost:3000/callback", False),
        ("http://127.0.0.1:3000/callback", "http://127.0.0.1:3000/callback?x=1", False),
        ("https://127.0.0.1:3000/cb", "http://127.0.0.1:3000/cb", False),
    ],
)
def test_matching(registered: str, requested: str, matches: bool) -> None:
    assert redirect_matches(registered, requested) is matches


def test_what_the_consent_page_names() -> None:
    assert redirect_shown_as("https://claude.ai/api/mcp/auth_callback") == "claude.ai"
    assert redirect_shown_as("http://127.0.0.1:5173/cb") == "127.0.0.1:5173"
    assert redirect_shown_as("cursor://x/cb") == "the app that opens cursor: links"
    assert is_loopback_redirect("http://localhost:1/cb") and not is_loopback_redirect("https://claude.ai/cb")
