"""The SIPp scenarios and their helper, without placing a call."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support.sipp import (
    DTMF_DIR,
    SCENARIO_DIR,
    dtmf_block,
    dtmf_pcap,
    free_media_port,
    render_scenario,
)

from cti.errors import ConfigError

SAMPLE_VALUES = {
    "caller_dtmf.xml": {"answer_wait_ms": "1000", "hold_ms": "2000", "dtmf": ""},
    "caller_hangup.xml": {"ring_timeout_ms": "3000", "talk_ms": "1000"},
    "phone_uas.xml": {"ring_ms": "500", "talk_ms": "1500"},
}


def rtp_headers(pcap: Path) -> list[tuple[int, int, int, bytes]]:
    """(payload type, sequence, timestamp, payload) of every packet of an Ethernet pcap."""
    data = pcap.read_bytes()
    offset, packets = 24, []
    while offset < len(data):
        captured = struct.unpack_from("<IIII", data, offset)[2]
        ip = offset + 16 + 14
        rtp = ip + (data[ip] & 0x0F) * 4 + 8
        seq, timestamp = struct.unpack_from(">HI", data, rtp + 2)
        end = offset + 16 + captured
        packets.append((data[rtp + 1] & 0x7F, seq, timestamp, data[rtp + 12 : end]))
        offset = end
    return packets


def check_scenario(text: str) -> ET.Element:
    """Well-formed XML whose jumps (next=, ontimeout=) all land on a label."""
    scenario = ET.fromstring(text)
    labels = {label.get("id") for label in scenario.iter("label")}
    for element in scenario.iter():
        for attribute in ("next", "ontimeout"):
            target = element.get(attribute)
            assert target is None or target in labels, f"{element.tag} {attribute}={target}"
    return scenario


@pytest.mark.parametrize("name", sorted(SAMPLE_VALUES))
def test_scenarios_render_to_valid_sipp_xml(name: str) -> None:
    scenario = check_scenario(render_scenario(name, SAMPLE_VALUES[name]))
    assert scenario.tag == "scenario"


def test_scenario_placeholders_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"caller_hangup\.xml"):
        render_scenario("caller_hangup.xml", {"ring_timeout_ms": "1"})  # talk_ms missing


def test_callers_offer_the_payload_type_of_the_dtmf_recordings() -> None:
    recorded = {pt for pt, *_ in rtp_headers(DTMF_DIR / "dtmf_2833_5.pcap")}
    assert recorded == {101}
    for name in ("caller_dtmf.xml", "caller_hangup.xml", "phone_uas.xml"):
        text = (SCENARIO_DIR / name).read_text()
        assert "m=audio [media_port] RTP/AVP 0 101" in text, name
        assert "a=rtpmap:101 telephone-event/8000" in text, name


def test_dtmf_copies_are_renumbered_upwards(tmp_path: Path) -> None:
    original = rtp_headers(DTMF_DIR / "dtmf_2833_5.pcap")
    first = rtp_headers(dtmf_pcap("5", 0, tmp_path))
    second = rtp_headers(dtmf_pcap("5", 1, tmp_path))
    # Same events (payload: key 5, durations, end bit), new numbering.
    assert [p[3] for p in first] == [p[3] for p in original]
    assert [p[3] for p in second] == [p[3] for p in original]
    # Relative spacing kept; the second key strictly after the first in both counters.
    assert [p[1] - first[0][1] for p in first] == [p[1] - original[0][1] for p in original]
    assert second[0][1] > first[-1][1]
    assert second[0][2] > first[-1][2]


def testdtmf_block_presses_each_key_after_its_pause(tmp_path: Path) -> None:
    block = dtmf_block("4#", 500, None, tmp_path)
    scenario = check_scenario(
        render_scenario(
            "caller_dtmf.xml", {"answer_wait_ms": "1000", "hold_ms": "2000", "dtmf": block}
        )
    )
    plays = [e.get("play_pcap_audio") for e in scenario.iter("exec")]
    assert plays == [str(tmp_path / "dtmf_00_4.pcap"), str(tmp_path / "dtmf_01_pound.pcap")]
    waits = [e.get("timeout") for e in scenario.iter("recv") if e.get("request") == "BYE"]
    # answer wait, no extra wait before the first key, 500 before the second, the tail, hold
    assert waits == ["1000", "500", "300", "2000"]


def testdtmf_block_rejects_unknown_keys_and_mismatched_pauses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no RFC 2833 recording"):
        dtmf_block("5A", 500, None, tmp_path)
    with pytest.raises(ValueError, match="2 pauses for 1 digits"):
        dtmf_block("5", 500, [100, 200], tmp_path)


def test_media_ports_come_in_free_blocks_of_four() -> None:
    base = free_media_port()
    assert base % 2 == 0
    assert 30000 <= base < 40000
