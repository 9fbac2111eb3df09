"""The API key's echoes, as a table: what is blanked and what is left alone (issue 23 item 8).

The oracle does not share the code under test: ``tests._leaks.decoded_key_parts`` decodes every
base64 or hex run it finds, at every alignment, and looks for the key's characters in what comes out.
"""

from __future__ import annotations

import base64

import pytest

from rivya_mcp.client import KeyEchoes
from tests._leaks import decoded_key_parts

KEY = "rvya_sk_3fa9c2d1e07b4c5a9d8e6f1a2b3c4d5e"
SECRET = KEY.removeprefix("rvya_sk_")


def b64(data: bytes, *, urlsafe: bool = False, pad: bool = True) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return text if pad else text.rstrip("=")


ECHOES = {
    "verbatim": f"invalid key {KEY}",
    "base64": b64(KEY.encode()),
    "base64 of a header": b64(f"Authorization: Bearer {KEY}".encode()),
    "base64, offset 1": b64(b"k" + KEY.encode()),
    "base64, offset 2": b64(b"ke" + KEY.encode()),
    "URL-safe base64 unpadded": b64(b"\xfb\xff" + KEY.encode(), urlsafe=True, pad=False),
    "hex": KEY.encode().hex(),
    "hex, upper case": f"0x{KEY.encode().hex().upper()}",
    "hex of the secret part": SECRET.encode().hex(),
    "first characters as a request id": f"req_{KEY[:16]}",
    "first characters without the marker": f"req_{SECRET[:12]}",
    "marker and 4 characters": f"key {KEY[:12]}… is not valid",
}


@pytest.mark.parametrize("text", list(ECHOES.values()), ids=list(ECHOES))
def test_every_echo_is_blanked(text: str) -> None:
    assert decoded_key_parts(text, KEY) or KEY[:12] in text or SECRET[:8] in text  # the case is a real echo
    scrubbed = KeyEchoes(KEY).scrub_text(text)
    assert "[redacted]" in scrubbed
    assert decoded_key_parts(scrubbed, KEY) == [] and KEY[:12] not in scrubbed and SECRET[:8] not in scrubbed, scrubbed


LEFT_ALONE = {
    "plain text": "The request was refused: insufficient credits.",
    "a task id": "task_3731d955e5c6b4f65cd9b526",
    "the marker alone": "keys look like rvya_sk_…",
    "the marker and 3 characters": f"{KEY[:11]}",
    "7 characters without the marker": f"req_{SECRET[:7]}",
    "another key": "rvya_sk_ffffffffffffffffffffffffffffffff",
    "a result URL": "https://cdn.rivya.ai/outputs/task_1/primary.jpg?sig=a1b2c3d4e5f6a7b8",
}


@pytest.mark.parametrize("text", list(LEFT_ALONE.values()), ids=list(LEFT_ALONE))
def test_what_is_not_an_echo_is_left_alone(text: str) -> None:
    assert KeyEchoes(KEY).scrub_text(text) == text


def test_parsed_json_is_scrubbed_throughout_and_the_repr_hides_the_key() -> None:
    body = {"error": {"code": f"bad_{b64(KEY.encode())}", "requestId": f"req_{KEY[:14]}"}, KEY: [SECRET]}
    scrubbed = KeyEchoes(KEY).scrub(body)
    assert (
        KEY not in repr(scrubbed) and SECRET[:8] not in repr(scrubbed) and decoded_key_parts(repr(scrubbed), KEY) == []
    )
    assert scrubbed["error"]["requestId"] == "req_[redacted]"
    assert KEY not in repr(KeyEchoes(KEY))


def test_a_short_key_blanks_only_itself_and_its_own_encodings() -> None:
    short = "rvya_sk_demo"
    echoes = KeyEchoes(short)
    assert echoes.scrub_text(f"bad key {short}") == "bad key [redacted]"
    assert "[redacted]" in echoes.scrub_text(b64(short.encode()))
    assert echoes.scrub_text("a demo of the sandbox") == "a demo of the sandbox"
