"""Reading the environment: every variable Settings.from_env reads, its good and bad values.

A bad value is a SettingError whose message is one line naming the variable and what it accepts
(cli.main prints it and exits 2; tests/test_cli_env.py runs that through the real CLI). A secret's
value never appears in it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rivya_mcp.settings import DEFAULT_BASE_URL, Secret, SettingError, Settings
from tests._scripts import load_script

# The names Settings.from_env reads, as scripts/gen_docs.py finds them (the README table's source).
ENV_VARS = load_script("gen_docs").settings_env_vars()
HOST_LIST = (
    "host names separated by commas, each with an optional port and no scheme or path "
    "(e.g. mcp.example.com,mcp.example.com:8443)"
)
URL = "an http:// or https:// URL with a host and no user:password@, query or fragment"
SECRET = "the value set is not (and is not shown: it is a secret)"
SECONDS = "a number of seconds, 0 or more"
READ_DIRS = f"absolute folder paths (or ~/…) separated by {os.pathsep!r}"
MODELS = "flux-kontext-max, flux-kontext-pro"

# (variable, value, the message it gets). Every variable Settings.from_env reads has at least one
# row (checked below against the names scripts/gen_docs.py finds in settings.py).
BAD_VALUES: list[tuple[str, str, str]] = [
    ("RIVYA_API_KEY", "rvya_sk_with space", f"a Rivya API key: visible ASCII characters without spaces; {SECRET}"),
    ("RIVYA_API_KEY", "rvya_sk_ünicode", f"a Rivya API key: visible ASCII characters without spaces; {SECRET}"),
    ("RIVYA_BASE_URL", "rivya.ai", f"{URL} (e.g. https://rivya.ai); not 'rivya.ai'"),
    ("RIVYA_BASE_URL", "ftp://rivya.ai", f"{URL} (e.g. https://rivya.ai); not 'ftp://rivya.ai'"),
    ("RIVYA_BASE_URL", "https://", f"{URL} (e.g. https://rivya.ai); not 'https://'"),
    ("RIVYA_BASE_URL", "https://rivya.ai:99999", f"{URL} (e.g. https://rivya.ai); not 'https://rivya.ai:99999'"),
    ("RIVYA_BASE_URL", "https://u:p@rivya.ai", f"{URL} (e.g. https://rivya.ai); not 'https://u:p@rivya.ai'"),
    ("RIVYA_BASE_URL", "https://rivya.ai/?x=1", f"{URL} (e.g. https://rivya.ai); not 'https://rivya.ai/?x=1'"),
    (
        "RIVYA_MODEL",
        "flux-pro",
        "one of the models with a manifest: flux-kontext-max, flux-kontext-pro; not 'flux-pro'",
    ),
    ("RIVYA_OUTPUT_DIR", "out\0put", "a folder path (embedded null byte); not 'out\\x00put'"),
    ("RIVYA_DATA_DIR", "da\0ta", "a folder path (embedded null byte); not 'da\\x00ta'"),
    ("RIVYA_WAIT_SECONDS", "abc", f"{SECONDS} (e.g. 45); not 'abc'"),
    ("RIVYA_WAIT_SECONDS", "-1", f"{SECONDS} (e.g. 45); not '-1'"),
    ("RIVYA_WAIT_SECONDS", "nan", f"{SECONDS} (e.g. 45); not 'nan'"),
    ("RIVYA_WAIT_SECONDS", "inf", f"{SECONDS} (e.g. 45); not 'inf'"),
    ("RIVYA_WAIT_SECONDS", "45s", f"{SECONDS} (e.g. 45); not '45s'"),
    ("RIVYA_STRUCTURED_OUTPUT", "ture", "true or false (or 1/0, yes/no, on/off); not 'ture'"),
    ("RIVYA_TIMEOUT", "0", "a number of seconds, above 0 (e.g. 30); not '0'"),
    ("RIVYA_TIMEOUT", "thirty", "a number of seconds, above 0 (e.g. 30); not 'thirty'"),
    ("RIVYA_MAX_RETRIES", "-1", "a whole number, 0 or more (e.g. 4); not '-1'"),
    ("RIVYA_MAX_RETRIES", "2.5", "a whole number, 0 or more (e.g. 4); not '2.5'"),
    ("RIVYA_POLL_SCALE", "0", "a number of times, above 0 (e.g. 1); not '0'"),
    ("RIVYA_ALLOW_PRIVATE_URLS", "sometimes", "true or false (or 1/0, yes/no, on/off); not 'sometimes'"),
    ("RIVYA_READ_DIRS", f"/srv{os.pathsep}/tmp\0x", f"{READ_DIRS} (embedded null byte)"),
    ("RIVYA_READ_DIRS", "images", READ_DIRS),
    ("RIVYA_MCP_AUTH_TOKEN", "two words", f"a bearer token: visible ASCII characters without spaces; {SECRET}"),
    ("RIVYA_ALLOWED_HOSTS", "https://mcp.example.com", f"{HOST_LIST}; not 'https://mcp.example.com'"),
    ("RIVYA_ALLOWED_HOSTS", "ok.example.com, bad host", f"{HOST_LIST}; not 'ok.example.com, bad host'"),
    ("RIVYA_ALLOWED_HOSTS", "mcp.example.com:0", f"{HOST_LIST}; not 'mcp.example.com:0'"),
    ("RIVYA_ALLOWED_HOSTS", "*", f"{HOST_LIST}; not '*'"),
    ("RIVYA_LOG_LEVEL", "verbose", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL; not 'verbose'"),
    ("RIVYA_PUBLIC_URL", "mcp.example.com", f"{URL} (e.g. https://mcp.example.com); not 'mcp.example.com'"),
    (
        "RIVYA_DATABASE_URL",
        "mysql://rivya:pa55word@db/rivya",
        f"a postgresql:// URL (e.g. postgresql://user@db.example:5432/rivya); {SECRET}",
    ),
    ("RIVYA_LEASE_SECONDS", "-5", "a number of seconds, above 0 (e.g. 15); not '-5'"),
    ("RIVYA_LOG_FORMAT", "xml", "one of text, json; not 'xml'"),
    ("RIVYA_OAUTH_ISSUER", "login.example.com", f"{URL} (e.g. https://login.example.com); not 'login.example.com'"),
    (
        "RIVYA_OAUTH_SCOPES",
        'mcp "all"',
        "scopes: printable ASCII words without quotes or backslashes, separated by spaces; not 'mcp \"all\"'",
    ),
    (
        "RIVYA_OAUTH_AUDIENCE",
        "two words",
        "an OAuth audience: visible ASCII characters without spaces; not 'two words'",
    ),
    (
        "RIVYA_OAUTH_CLIENT_ID",
        "two words",
        "an OAuth client id: visible ASCII characters without spaces; not 'two words'",
    ),
    (
        "RIVYA_OAUTH_CLIENT_SECRET",
        "two words",
        f"an OAuth client secret: visible ASCII characters without spaces; {SECRET}",
    ),
    ("RIVYA_LOGIN", "sometimes", "true or false (or 1/0, yes/no, on/off); not 'sometimes'"),
    ("RIVYA_SECRET_KEY", "two words", f"the secret key: visible ASCII characters without spaces; {SECRET}"),
    ("RIVYA_BUDGET_CREDITS_PER_DAY", "lots", "a number of credits, 0 or more (e.g. 0); not 'lots'"),
    ("RIVYA_CONFIRM_ABOVE_CREDITS", "-8", "a number of credits, 0 or more (e.g. 0); not '-8'"),
    ("RIVYA_PROVENANCE_PROMPT", "maybe", "true or false (or 1/0, yes/no, on/off); not 'maybe'"),
]


@pytest.mark.parametrize(("name", "value", "accepts"), BAD_VALUES)
def test_a_bad_value_is_one_line_naming_the_variable_and_what_it_accepts(name: str, value: str, accepts: str) -> None:
    with pytest.raises(SettingError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    if name == "RIVYA_READ_DIRS":  # the path's own words may follow; the whole value is shown last
        assert message.startswith(f"{name} must be {accepts}")
        assert message.endswith(f"; not {value!r}")
    else:
        assert message == f"{name} must be {accepts}"
    assert caught.value.variable == name
    assert "\n" not in message
    if SECRET in accepts:
        assert value not in message and "pa55word" not in message


def test_every_variable_read_has_a_bad_value_in_the_table() -> None:
    assert {name for name, _, _ in BAD_VALUES} == set(ENV_VARS)


def test_a_long_value_is_cut_short_in_the_message() -> None:
    with pytest.raises(SettingError, match=r"not 'xxxx+'…$") as caught:
        Settings.from_env({"RIVYA_LOG_FORMAT": "x" * 500})
    assert len(str(caught.value)) < 200


def test_a_folder_that_cannot_be_resolved_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(SettingError, match=r"^RIVYA_OUTPUT_DIR must be a folder path") as caught:
        Settings.from_env({"RIVYA_OUTPUT_DIR": str(tmp_path / "a" / "images")})
    assert "\n" not in str(caught.value)


# (variable, value, the Settings field, what it becomes): the values that are accepted, spelled
# the ways people write them.
GOOD_VALUES: list[tuple[str, str, str, object]] = [
    ("RIVYA_API_KEY", "  rvya_sk_abc123  ", "api_key", Secret("rvya_sk_abc123")),
    ("RIVYA_API_KEY", "", "api_key", None),
    ("RIVYA_BASE_URL", "http://127.0.0.1:8765/", "base_url", "http://127.0.0.1:8765"),
    ("RIVYA_BASE_URL", "HTTPS://Rivya.ai", "base_url", "HTTPS://Rivya.ai"),
    ("RIVYA_BASE_URL", "https://[::1]:8443/prefix", "base_url", "https://[::1]:8443/prefix"),
    ("RIVYA_BASE_URL", "   ", "base_url", DEFAULT_BASE_URL),
    ("RIVYA_MODEL", "flux-kontext-pro", "model", "flux-kontext-pro"),
    ("RIVYA_OUTPUT_DIR", "relative/out", "output_dir", Path("relative/out").resolve()),
    ("RIVYA_DATA_DIR", "~/rivya-data", "data_dir", Path("~/rivya-data").expanduser().resolve()),
    ("RIVYA_WAIT_SECONDS", " 0 ", "wait_seconds", 0.0),
    ("RIVYA_WAIT_SECONDS", "12.5", "wait_seconds", 12.5),
    ("RIVYA_STRUCTURED_OUTPUT", "FALSE", "structured_output", False),
    ("RIVYA_STRUCTURED_OUTPUT", "off", "structured_output", False),
    ("RIVYA_STRUCTURED_OUTPUT", "", "structured_output", True),
    ("RIVYA_TIMEOUT", "1e1", "request_timeout", 10.0),
    ("RIVYA_MAX_RETRIES", "0", "max_retries", 0),
    ("RIVYA_POLL_SCALE", "0.1", "poll_scale", 0.1),
    ("RIVYA_ALLOW_PRIVATE_URLS", "Yes", "allow_private_urls", True),
    ("RIVYA_ALLOW_PRIVATE_URLS", "1", "allow_private_urls", True),
    ("RIVYA_READ_DIRS", f"/srv/a{os.pathsep}{os.pathsep}/srv/b", "read_dirs", (Path("/srv/a"), Path("/srv/b"))),
    ("RIVYA_MCP_AUTH_TOKEN", "tok-EN_1.2~3+4/5=", "auth_token", Secret("tok-EN_1.2~3+4/5=")),
    (
        "RIVYA_ALLOWED_HOSTS",
        "mcp.example.com, [2001:db8::5]:8000,,",
        "allowed_hosts",
        ("mcp.example.com", "[2001:db8::5]:8000"),
    ),
    ("RIVYA_LOG_LEVEL", "debug", "log_level", "DEBUG"),
    ("RIVYA_PUBLIC_URL", "https://mcp.example.com/", "public_url", "https://mcp.example.com"),
    ("RIVYA_DATABASE_URL", "postgres://u@db/rivya", "database_url", Secret("postgres://u@db/rivya")),
    ("RIVYA_LEASE_SECONDS", "4", "lease_seconds", 4.0),
    ("RIVYA_LOG_FORMAT", "JSON", "log_format", "json"),
    (
        "RIVYA_OAUTH_ISSUER",
        "https://login.example.com/realms/team/",
        "oauth_issuer",
        "https://login.example.com/realms/team/",
    ),
    ("RIVYA_OAUTH_SCOPES", "mcp:tools, mcp:tools profile", "oauth_scopes", ("mcp:tools", "profile")),
    ("RIVYA_OAUTH_AUDIENCE", "api://rivya-mcp", "oauth_audience", "api://rivya-mcp"),
    ("RIVYA_OAUTH_CLIENT_ID", "rivya-mcp", "oauth_client_id", "rivya-mcp"),
    ("RIVYA_OAUTH_CLIENT_SECRET", "s3cr3t", "oauth_client_secret", Secret("s3cr3t")),
    ("RIVYA_LOGIN", "1", "rivya_login", True),
    ("RIVYA_SECRET_KEY", "k" * 40, "secret_key", Secret("k" * 40)),
    ("RIVYA_BUDGET_CREDITS_PER_DAY", "80", "budget_credits_per_day", 80.0),
    ("RIVYA_BUDGET_CREDITS_PER_DAY", "", "budget_credits_per_day", None),
    ("RIVYA_CONFIRM_ABOVE_CREDITS", "16.5", "confirm_above_credits", 16.5),
    ("RIVYA_PROVENANCE_PROMPT", "1", "provenance_prompt", True),
]


@pytest.mark.parametrize(("name", "value", "field", "expected"), GOOD_VALUES)
def test_a_good_value_is_read(name: str, value: str, field: str, expected: object) -> None:
    assert getattr(Settings.from_env({name: value}), field) == expected


def test_every_variable_read_has_a_good_value_in_the_table() -> None:
    assert {name for name, _, _, _ in GOOD_VALUES} == set(ENV_VARS)


READ_DIRS_SEP = os.pathsep


@pytest.mark.parametrize(
    ("value", "folders"),
    [
        ("", ()),
        (f"{READ_DIRS_SEP}{READ_DIRS_SEP}", ()),
        ("/srv/images", (Path("/srv/images"),)),
        (f"/srv/images{READ_DIRS_SEP}/srv/more", (Path("/srv/images"), Path("/srv/more"))),
        (f"/srv/images{READ_DIRS_SEP}", (Path("/srv/images"),)),
        ("/srv/trailing space ", (Path("/srv/trailing space "),)),  # a name may end with a space
    ],
)
def test_read_dirs_are_absolute_folders_as_written(value: str, folders: tuple[Path, ...]) -> None:
    assert Settings.from_env({"RIVYA_READ_DIRS": value}).read_dirs == tuple(f.resolve() for f in folders)


def test_read_dirs_expand_the_home_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.from_env({"RIVYA_READ_DIRS": "~/pictures"}).read_dirs == ((tmp_path / "pictures").resolve(),)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("images", "not 'images'"),
        (f"/srv/images{READ_DIRS_SEP}./refs", "not '/srv/images"),
        ("../elsewhere", "not '../elsewhere'"),
        (" /srv/images", "begins with white space"),
    ],
)
def test_a_relative_read_dir_is_refused_not_resolved_against_the_working_directory(value: str, said: str) -> None:
    """Issue 23 item 11: ``images`` became ``<cwd>/images``, whatever folder the host started in."""
    with pytest.raises(SettingError) as caught:
        Settings.from_env({"RIVYA_READ_DIRS": value})
    assert said in str(caught.value) and str(caught.value).startswith("RIVYA_READ_DIRS must be absolute folder paths")
