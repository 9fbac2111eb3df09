"""The XMP packet: IPTC 2025.1 property names, the right source type, the prompt only when given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rivya_mcp import __version__
from rivya_mcp.imaging import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    Provenance,
    digital_source_type,
    xmp_packet,
)
from tests.imaging._xmp_read import properties

WHEN = datetime(2026, 5, 11, 9, 30, 15, tzinfo=UTC)


def _provenance(**changes: object) -> Provenance:
    fields: dict[str, object] = {"task_id": "gen_123", "created_at": WHEN, "model_id": "flux-kontext-max"}
    fields.update(changes)
    return Provenance(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("edit", "region", "reference_generated", "expected"),
    [
        (False, False, False, TRAINED_ALGORITHMIC_MEDIA),  # a generation
        (True, False, True, TRAINED_ALGORITHMIC_MEDIA),  # an edit of an earlier result: model-made throughout
        (True, False, False, COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA),  # an edit of the person's own picture
        (True, True, False, COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA),  # a region edit of it
        (True, True, True, COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA),  # a region edit keeps part of the reference
    ],
)
def test_the_digital_source_type(edit: bool, region: bool, reference_generated: bool, expected: str) -> None:
    assert digital_source_type(edit=edit, region=region, reference_generated=reference_generated) == expected


def test_the_iptc_terms_are_the_newscodes_uris() -> None:
    base = "http://cv.iptc.org/newscodes/digitalsourcetype/"
    assert TRAINED_ALGORITHMIC_MEDIA == base + "trainedAlgorithmicMedia"
    assert COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA == base + "compositeWithTrainedAlgorithmicMedia"


def test_the_packet_says_what_made_the_image_and_when() -> None:
    found = properties(xmp_packet(_provenance(source_type=COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA)))
    assert found == {
        "Iptc4xmpExt:DigitalSourceType": COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
        "Iptc4xmpExt:AISystemUsed": "Rivya flux-kontext-max",
        "Iptc4xmpExt:AISystemVersionUsed": "flux-kontext-max",
        "photoshop:TransmissionReference": "gen_123",
        "photoshop:DateCreated": "2026-05-11T09:30:15Z",
        "xmp:CreateDate": "2026-05-11T09:30:15Z",
        "xmp:CreatorTool": f"rivya-mcp {__version__}",
    }


def test_the_namespaces_are_iptcs() -> None:
    packet = xmp_packet(_provenance())
    assert 'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"' in packet
    assert packet.startswith('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>')
    assert packet.endswith('<?xpacket end="w"?>')


def test_a_model_version_when_one_is_known() -> None:
    found = properties(xmp_packet(_provenance(model_version="2025-06")))
    assert found["Iptc4xmpExt:AISystemVersionUsed"] == "2025-06"


def test_no_prompt_unless_asked() -> None:
    packet = xmp_packet(_provenance())
    assert "AIPromptInformation" not in packet
    assert "AIPromptWriterName" not in xmp_packet(_provenance(prompt="a cat"))


@pytest.mark.parametrize(
    "prompt",
    [
        "a red fox in the snow",
        "",
        "Tom & Jerry <script>alert(\"x\")</script> 'quoted'",
        "]]> <![CDATA[ x ]]> <?xpacket end='w'?> </x:xmpmeta>",
        "line one\nline two\r\nline three\ttabbed",
        "한국어 프롬프트, émoji 🦊, RTL ‏שלום",
        "&amp; is already an entity; &#60; too",
    ],
)
def test_a_prompt_comes_back_exactly(prompt: str) -> None:
    found = properties(xmp_packet(_provenance(prompt=prompt)))
    assert found["Iptc4xmpExt:AIPromptInformation"] == prompt


def test_characters_xml_cannot_hold_are_dropped() -> None:
    found = properties(xmp_packet(_provenance(prompt="bell\x07 null\x00 esc\x1b ok\ufffe", task_id="t\x01id")))
    assert found["Iptc4xmpExt:AIPromptInformation"] == "bell null esc ok"
    assert found["photoshop:TransmissionReference"] == "tid"


def test_every_value_is_escaped() -> None:
    found = properties(xmp_packet(_provenance(task_id="</photoshop:TransmissionReference><evil/>", model_id="a&b")))
    assert found["photoshop:TransmissionReference"] == "</photoshop:TransmissionReference><evil/>"
    assert found["Iptc4xmpExt:AISystemUsed"] == "Rivya a&b"


def test_the_time_is_written_in_utc() -> None:
    seoul = timezone(timedelta(hours=9))
    found = properties(xmp_packet(_provenance(created_at=datetime(2026, 5, 11, 18, 30, 15, tzinfo=seoul))))
    assert found["xmp:CreateDate"] == "2026-05-11T09:30:15Z"


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        _provenance(created_at=datetime(2026, 5, 11, 9, 30))


def test_a_source_type_must_be_an_iptc_uri() -> None:
    with pytest.raises(ValueError, match="IPTC digital source type"):
        _provenance(source_type="trainedAlgorithmicMedia")


def test_a_long_prompt_is_cut_to_fit_a_size() -> None:
    prompt = "ab<&" * 30_000  # 120,000 characters, more when escaped
    packet = xmp_packet(_provenance(prompt=prompt), max_bytes=65_000)
    assert len(packet.encode()) <= 65_000
    kept = properties(packet)["Iptc4xmpExt:AIPromptInformation"]
    assert kept.endswith("…")
    assert prompt.startswith(kept[:-1])
    assert len(kept) > 10_000  # cut to fit, not dropped
    assert xmp_packet(_provenance(prompt=prompt)) == xmp_packet(_provenance(prompt=prompt), max_bytes=10**9)


def test_a_prompt_with_no_room_at_all_is_left_out() -> None:
    bare = xmp_packet(_provenance())
    packet = xmp_packet(_provenance(prompt="x" * 100), max_bytes=len(bare.encode()) + 10)
    assert packet == bare


def test_a_packet_that_cannot_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="doesn't fit"):
        xmp_packet(_provenance(prompt="x" * 100), max_bytes=200)
