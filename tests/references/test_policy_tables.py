"""Pure policy, as tables: source classification, signature sniffing, the address classifier."""

from __future__ import annotations

import ipaddress

import pytest

from rivya_mcp.references import (
    ReferenceError,
    classify_source,
    could_be_id,
    forbidden_address_reason,
    sniff_image_type,
)

from .conftest import image_bytes


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("/home/me/cat.png", "path"),
        ("~/cat.png", "path"),
        ("  ~/cat.png \n", "path"),
        ("cat.png", "path"),  # classified, then refused by load_reference as relative
        ("http://example.com/a.png", "url"),
        ("HTTPS://example.com/a.png", "url"),
        ("data:image/png;base64,iVBORw0KGgo=", "data_uri"),
        ("DATA:,abc", "data_uri"),
        # Ids have no recognisable shape: to the loader they are (relative) paths; the server
        # resolves them first (could_be_id below).
        ("file_abc123", "path"),
        ("3f0c2a9e-8d1b-4c55-a1f2-0b7e6d5c4a39", "path"),
    ],
)
def test_classify_source(source: str, kind: str) -> None:
    assert classify_source(source) == kind


@pytest.mark.parametrize(
    ("source", "maybe_id"),
    [
        ("file_abc123", True),
        ("task_z_image_example", True),
        ("3f0c2a9e-8d1b-4c55-a1f2-0b7e6d5c4a39", True),  # a bare UUID, as the variant sandbox returns
        ("01HZX3K9Q8", True),
        ("  file_abc \n", True),
        ("cat.png", True),  # looked up; refused as a relative path when neither journal nor API knows it
        ("/home/me/cat.png", False),
        ("~/cat.png", False),
        ("./cat.png", False),
        ("images/cat.png", False),
        ("C:\\images\\cat.png", False),
        ("https://example.com/a.png", False),
        ("data:image/png;base64,iVBORw0KGgo=", False),
        ("two words", False),
        ("", False),
        ("x" * 257, False),
    ],
)
def test_could_be_id(source: str, maybe_id: bool) -> None:
    assert could_be_id(source) is maybe_id


@pytest.mark.parametrize(
    ("source", "hint"),
    [
        ("file:///etc/passwd", "pass the local path itself"),
        ("ftp://example.com/a.png", "ftp: references aren't supported"),
        ("javascript:alert(1)", "javascript: references aren't supported"),
        ("gopher://127.0.0.1:6379/_INFO", "gopher:"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_classify_refuses_other_schemes(source: str, hint: str) -> None:
    with pytest.raises(ReferenceError) as info:
        classify_source(source)
    assert hint in info.value.message


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (image_bytes("JPEG"), "image/jpeg"),
        (image_bytes("PNG"), "image/png"),
        (image_bytes("WEBP"), "image/webp"),
        (image_bytes("GIF"), None),
        (b"RIFF\0\0\0\0WAVEfmt ", None),
        (b"hello, world", None),
        (b"", None),
    ],
)
def test_sniff_image_type(head: bytes, mime: str | None) -> None:
    assert sniff_image_type(head[:16]) == mime


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "non-public"),
        ("::ffff:127.0.0.1", "loopback"),  # v4-mapped v6
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 wrapping 169.254.169.254
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("93.184.216.34", None),
        ("::ffff:8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("2a00:1450:4001:80b::200e", None),
    ],
)
def test_address_classifier(address: str, reason: str | None) -> None:
    assert forbidden_address_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["240.0.0.1", "255.255.255.255", "192.0.2.1", "2001:db8::1", "::7f00:1"])
def test_special_purpose_ranges_are_refused(address: str) -> None:
    assert forbidden_address_reason(ipaddress.ip_address(address)) is not None
