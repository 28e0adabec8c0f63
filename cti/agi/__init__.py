"""FastAGI for Asterisk 22 (res/res_agi.c): a sans-I/O protocol core, a per-call async session
and an asyncio server that routes calls by script path.

    protocol.py     AgiConnection: bytes in, events out (state table, parser generator)
    environment.py  AgiEnvironment: the agi_* block, typed
    replies.py      AgiReply: "200 result=N (data) endpos=..." parsed
    commands.py     format_command: quoting and Asterisk's line limits
    session.py      AgiSession: answer(), stream_file(), get_data() ... for handlers
    server.py       AgiServer: listener, routing, limits, clean shutdown, the CTI_HANDLED mark
"""

from __future__ import annotations

from cti.agi.commands import FAILURE_LINE, format_command, quote_argument
from cti.agi.environment import AgiEnvironment
from cti.agi.protocol import (
    AgiConnection,
    AgiEvent,
    AgiLimits,
    ConnectionClosed,
    HangupNotice,
    State,
)
from cti.agi.replies import AgiReply, parse_reply
from cti.agi.server import (
    HANDLED_VARIABLE,
    AgiServer,
    AgiServerConfig,
    AgiServerStats,
    Handler,
    SessionOutcome,
    SessionSummary,
)
from cti.agi.session import AgiSession, AgiTimeouts

__all__ = [
    "FAILURE_LINE",
    "HANDLED_VARIABLE",
    "AgiConnection",
    "AgiEnvironment",
    "AgiEvent",
    "AgiLimits",
    "AgiReply",
    "AgiServer",
    "AgiServerConfig",
    "AgiServerStats",
    "AgiSession",
    "AgiTimeouts",
    "ConnectionClosed",
    "Handler",
    "HangupNotice",
    "SessionOutcome",
    "SessionSummary",
    "State",
    "format_command",
    "parse_reply",
    "quote_argument",
]
