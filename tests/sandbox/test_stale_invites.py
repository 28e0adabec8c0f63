"""The pure half of ending stale INVITEs (sandbox/stale_invites.py): reading PJSIP's history
as Asterisk 22 prints it, and the final response pjsip will match to its transaction."""

from __future__ import annotations

from sandbox.stale_invites import final_response, invite_entries, invite_headers

LISTING = """\
No.   Timestamp  (Dir) Address                  SIP Message                        
===== ========== ============================== ===================================
00000 1796409261 * <== 127.0.0.1:56939          INVITE sip:5550155@127.0.0.1:25060 SIP/2.0
00004 1796409266 * ==> 127.0.0.1:25082          INVITE sip:agent1002@127.0.0.1:25082 SIP/2.0
00005 1796409266 * ==> 127.0.0.1:25081          INVITE sip:agent1001@127.0.0.1:25081 SIP/2.0
00009 1796409280 * ==> 127.0.0.1:25081          INVITE sip:agent1001@127.0.0.1:25081 SIP/2.0
00010 1796409281 * ==> 127.0.0.1:5555           INVITE sip:other@127.0.0.1:5555 SIP/2.0
"""  # noqa: W291  # the trailing blanks are Asterisk's

DETAIL = """\
<--- History Entry 5 Sent to 127.0.0.1:25081 at 1796409427 --->
INVITE sip:agent1001@127.0.0.1:25081 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:25060;rport;branch=z9hG4bKPj8b431d44
From: "Test Caller" <sip:5551234@127.0.0.1>;tag=170a9da6
To: <sip:agent1001@127.0.0.1>
Contact: <sip:asterisk@127.0.0.1:25060>
Call-ID: 1bc52396-8356
CSeq: 12612 INVITE
Max-Forwards: 70
Content-Type: application/sdp
Content-Length:   253

v=0
o=- 519387005 519387005 IN IP4 127.0.0.1
"""


def test_only_invites_sent_to_the_phones_and_recent_enough_are_listed() -> None:
    phones = {"127.0.0.1:25081", "127.0.0.1:25082"}
    entries = invite_entries(LISTING, phones, since=0)
    assert [(e.number, e.address) for e in entries] == [
        (4, "127.0.0.1:25082"),
        (5, "127.0.0.1:25081"),
        (9, "127.0.0.1:25081"),
    ]  # not the caller's INVITE to us (<==), not another address
    assert [e.number for e in invite_entries(LISTING, phones, since=1796409270)] == [9]
    assert invite_entries("No history", phones, since=0) == []


def test_the_invite_headers_are_read_from_an_entry() -> None:
    assert invite_headers(DETAIL) == {
        "Via": "SIP/2.0/UDP 127.0.0.1:25060;rport;branch=z9hG4bKPj8b431d44",
        "From": '"Test Caller" <sip:5551234@127.0.0.1>;tag=170a9da6',
        "To": "<sip:agent1001@127.0.0.1>",
        "Call-ID": "1bc52396-8356",
        "CSeq": "12612 INVITE",
    }
    assert invite_headers("Unable to find history entry 7") is None
    assert invite_headers(DETAIL.replace("Call-ID", "X-Other")) is None


def test_the_final_response_names_the_transaction_and_tags_the_to() -> None:
    headers = invite_headers(DETAIL)
    assert headers is not None
    text = final_response(headers).decode()
    lines = text.split("\r\n")
    assert lines[0] == "SIP/2.0 480 Temporarily Unavailable"
    # The top Via (its branch names the transaction) and CSeq exactly as sent.
    assert "Via: SIP/2.0/UDP 127.0.0.1:25060;rport;branch=z9hG4bKPj8b431d44" in lines
    assert "CSeq: 12612 INVITE" in lines
    assert "Call-ID: 1bc52396-8356" in lines
    assert "To: <sip:agent1001@127.0.0.1>;tag=sandbox-stale-invite" in lines
    assert text.endswith("Content-Length: 0\r\n\r\n")
    tagged = final_response({**headers, "To": "<sip:a@b>;tag=x"}).decode()
    assert "To: <sip:a@b>;tag=x\r\n" in tagged
