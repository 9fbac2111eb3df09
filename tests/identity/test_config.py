"""Identity settings: read from the environment, and refused clearly when they can't work."""

from __future__ import annotations

import pytest

from rivya_mcp.identity import (
    IdentityConfigError,
    MemoryIdentityStore,
    SecretKeyError,
    build_identity,
    identity_mode,
    resource_url,
)
from rivya_mcp.settings import Secret, Settings

SECRET = "k" * 43


def test_the_environment_names_of_design_md() -> None:
    settings = Settings.from_env(
        {
            "RIVYA_OAUTH_ISSUER": " https://idp.example.com/ ",
            "RIVYA_OAUTH_SCOPES": "images, rivya:read  images",
            "RIVYA_OAUTH_AUDIENCE": "api://rivya",
            "RIVYA_OAUTH_CLIENT_ID": "rs",
            "RIVYA_OAUTH_CLIENT_SECRET": "rs-secret",
            "RIVYA_LOGIN": "1",
            "RIVYA_SECRET_KEY": SECRET,
        }
    )
    assert settings.oauth_issuer == "https://idp.example.com/"
    assert settings.oauth_scopes == ("images", "rivya:read")
    assert settings.oauth_audience == "api://rivya"
    assert settings.oauth_client_id == "rs" and settings.oauth_client_secret == Secret("rs-secret")
    assert settings.rivya_login is True and settings.secret_key == Secret(SECRET)
    assert SECRET not in repr(settings) and "rs-secret" not in repr(settings)


def test_no_identity_by_default() -> None:
    settings = Settings.from_env({})
    assert identity_mode(settings) is None and build_identity(settings) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"oauth_issuer": "https://idp.example.com"}, "--oauth-issuer needs --public-url"),
        ({"rivya_login": True}, "--rivya-login needs --public-url"),
        ({"rivya_login": True, "public_url": "http://mcp.example.com"}, "must use https"),
        ({"rivya_login": True, "public_url": "ftp://mcp.example.com"}, "must be an https URL"),
        ({"rivya_login": True, "public_url": "https://example.com/rivya"}, "must be the origin only"),
        ({"rivya_login": True, "public_url": "https://example.com?x=1"}, "must be the origin only"),
        (
            {"rivya_login": True, "oauth_issuer": "https://idp.example.com", "public_url": "https://m.example.com"},
            "choose one",
        ),
        (
            {"rivya_login": True, "public_url": "https://m.example.com", "auth_token": Secret("t" * 30)},
            "Unset the auth token",
        ),
        (
            {"oauth_issuer": "https://idp.example.com", "public_url": "https://m.example.com", "oauth_client_id": "rs"},
            "both RIVYA_OAUTH_CLIENT_ID and RIVYA_OAUTH_CLIENT_SECRET",
        ),
    ],
)
def test_refused_with_what_to_change(changes: dict[str, object], message: str) -> None:
    with pytest.raises(IdentityConfigError, match=message):
        identity_mode(Settings().with_changes(**changes))


@pytest.mark.parametrize(
    ("public_url", "resource"),
    [
        ("https://mcp.example.com", "https://mcp.example.com/mcp"),
        ("https://mcp.example.com/", "https://mcp.example.com/mcp"),
        ("https://mcp.example.com:8443", "https://mcp.example.com:8443/mcp"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/mcp"),
    ],
)
def test_the_resource_is_the_mcp_endpoint(public_url: str, resource: str) -> None:
    settings = Settings(oauth_issuer="https://idp.example.com", public_url=public_url)
    assert identity_mode(settings) == "issuer" and resource_url(settings) == resource


def test_rivya_login_without_the_secret_is_refused() -> None:
    settings = Settings(rivya_login=True, public_url="https://mcp.example.com")
    with pytest.raises(SecretKeyError, match="RIVYA_SECRET_KEY is not set"):
        build_identity(settings, store=MemoryIdentityStore())
    built = build_identity(settings.with_changes(secret_key=Secret(SECRET)), store=MemoryIdentityStore())
    assert built is not None and built.mode == "rivya-login" and built.resource == "https://mcp.example.com/mcp"
    assert built.resource_metadata_url == "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
