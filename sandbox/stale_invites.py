"""Ending INVITEs that outlive their call, so a call of one test never rings the next test's phone.

Why: an agent phone played by SIPp listens on a fixed port (its static contact). When Asterisk
rings a phone that is not running (a ring-all queue rings every member), the INVITE gets no
answer at all. If the call is then hung up, Asterisk cannot CANCEL it: RFC 3261 section 9.1
allows a CANCEL only after a provisional response, so pjsip keeps the INVITE transaction
("Delaying CANCEL since no provisional response is received yet") and retransmits the INVITE
(timer A: 0.5, 1, 2, 4, 8, 16 s) until timer B, 32 s after the first send. The channel is
gone ("0 active channels"), the INVITE is not. A phone that a later test starts on that port
within those 32 s receives the old INVITE as a new call: it rings, pjsip sends the delayed
CANCEL; if the phone's answer crosses that CANCEL (a loaded machine), pjsip ACKs and BYEs the
answer and the phone sees a second call and a BYE it did not expect. That was the fresh-clone
flake of ``test_without_cti_server_the_fallback_queue_rings_an_agent_phone``.

How: with PJSIP history on (``pjsip set history on``), the INVITEs Asterisk sent to the agent
phones in the last ``_ALIVE`` seconds are listed; each is given the final response the missing
phone would have given, ``480 Temporarily Unavailable``, sent to Asterisk's SIP port. pjsip
matches it to its transaction by the Via branch (RFC 3261 section 17.1.3), ACKs it and ends the
transaction at once. A response for a transaction that has already ended matches nothing and
is dropped, so answering every recent INVITE is safe. The parsing and the response are pure
functions; ``Sandbox.end_stale_invites`` does the CLI calls and the send.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "ALIVE_SECONDS",
    "InviteEntry",
    "final_response",
    "invite_entries",
    "invite_headers",
]

#: An INVITE transaction still waiting for its first response is retransmitted at least every
#: 16 s (timer A doubles from T1 = 0.5 s: the last gap before timer B is 16 s), so every live
#: one has a history entry younger than this.
ALIVE_SECONDS = 17.0

# "00005 1796409266 * ==> 127.0.0.1:25081          INVITE sip:agent1001@... SIP/2.0"
_ENTRY = re.compile(r"^(\d+)\s+(\d+)\s+\*?\s*==>\s+(\S+)\s+INVITE\s", re.MULTILINE)
_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


@dataclass(frozen=True)
class InviteEntry:
    number: int
    timestamp: int
    address: str  # host:port it was sent to


def invite_entries(listing: str, addresses: Iterable[str], since: float) -> list[InviteEntry]:
    """The INVITEs sent (``==>``) to one of ``addresses`` at ``since`` or later, from the
    output of ``pjsip show history``."""
    wanted = set(addresses)
    found = []
    for match in _ENTRY.finditer(listing):
        entry = InviteEntry(int(match.group(1)), int(match.group(2)), match.group(3))
        if entry.address in wanted and entry.timestamp >= int(since):
            found.append(entry)
    return found


def invite_headers(detail: str) -> dict[str, str] | None:
    """Via, From, To, Call-ID and CSeq of the INVITE in ``pjsip show history entry N``'s
    output (the first of each; the top Via is the one that names the transaction), or None if
    one is missing."""
    start = detail.find("INVITE ")
    if start < 0:
        return None
    headers: dict[str, str] = {}
    for line in detail[start:].splitlines()[1:]:
        line = line.rstrip("\r")
        if not line.strip():
            break  # the end of the headers
        name, sep, value = line.partition(":")
        name = name.strip()
        for wanted in _HEADERS:
            if sep and name.lower() == wanted.lower() and wanted not in headers:
                headers[wanted] = value.strip()
    return headers if all(h in headers for h in _HEADERS) else None


def final_response(headers: Mapping[str, str]) -> bytes:
    """``480 Temporarily Unavailable`` for the INVITE with these headers: what a phone that
    is not there would have answered. The To gets a tag, as a final response needs one."""
    to = headers["To"]
    if ";tag=" not in to:
        to += ";tag=sandbox-stale-invite"
    lines = [
        "SIP/2.0 480 Temporarily Unavailable",
        f"Via: {headers['Via']}",
        f"From: {headers['From']}",
        f"To: {to}",
        f"Call-ID: {headers['Call-ID']}",
        f"CSeq: {headers['CSeq']}",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()
