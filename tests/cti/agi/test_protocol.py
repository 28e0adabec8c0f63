"""The sans-I/O FastAGI core, fed recorded Asterisk 22 transcripts.

A transcript is the environment block, then turns of (command we send, bytes Asterisk writes
back). Feeding respects causality (a turn's bytes are fed only after its command is sent), but
inside that the bytes are cut anywhere: whole, at every single byte position, one byte at a
time, and at random cut sets from hypothesis. Every way must give the same events.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.agi.commands import FAILURE_LINE
from cti.agi.environment import AgiEnvironment
from cti.agi.protocol import (
    _TRANSITIONS,
    AgiConnection,
    AgiEvent,
    AgiLimits,
    ConnectionClosed,
    HangupNotice,
    Input,
    State,
)
from cti.agi.replies import AgiReply
from cti.errors import LocalProtocolError, RemoteProtocolError

# As Asterisk 22 writes it for exten => 100,2,AGI(agi://127.0.0.1:4573/ivr?...,sales,,x y: z)
# (res_agi.c launch_netscript + setup_env). The caller name is Latin-1, not UTF-8, on purpose.
ENV = (
    b"agi_network: yes\n"
    b"agi_network_script: ivr?lang=en&caller=+15551234\n"
    b"agi_request: agi://127.0.0.1:4573/ivr?lang=en&caller=+15551234\n"
    b"agi_channel: PJSIP/anonymous-00000000\n"
    b"agi_language: en\n"
    b"agi_type: PJSIP\n"
    b"agi_uniqueid: 1732300000.0\n"
    b"agi_version: 22.10.1+dfsg+~cs6.17.60671434-1\n"
    b"agi_callerid: 5551234\n"
    b"agi_calleridname: M\xfcller\n"
    b"agi_callingpres: 0\n"
    b"agi_callingani2: 0\n"
    b"agi_callington: 0\n"
    b"agi_callingtns: 0\n"
    b"agi_dnid: 100\n"
    b"agi_rdnis: unknown\n"
    b"agi_context: from-pstn\n"
    b"agi_extension: 100\n"
    b"agi_priority: 2\n"
    b"agi_enhanced: 0.0\n"
    b"agi_accountcode: \n"
    b"agi_threadid: 140245023545024\n"
    b"agi_arg_1: sales\n"
    b"agi_arg_2: \n"
    b"agi_arg_3: x y: z\n"
    b"\n"
)

# Recorded from Asterisk 22.10.1 for ``STREAM FILE "x"`` (res_agi.c agi_handle_command; the
# usage text comes from the XML documentation, markup and all).
USAGE_520 = (
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b"Send the given file, allowing playback to be interrupted by the given digits, if any."
    b" Returns <literal>0</literal> if playback completes without a digit being pressed, or"
    b" the ASCII numerical value of the digit if one was pressed, or <literal>-1</literal> on"
    b" error or if the channel was disconnected. If musiconhold is playing before calling"
    b" stream file it will be automatically stopped and will not be restarted after"
    b" completion.\n"
    b"It sets the following channel variables upon completion:\n"
    b"<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text"
    b" string.\n"
    b"    <value>SUCCESS</value>\n"
    b"    <value>FAILED</value>\n"
    b"520 End of proper usage.\n"
)

# (command name, args) -> what Asterisk writes back, in order.
Turn = tuple[tuple[str, tuple[str, ...]], bytes]
TURNS: list[Turn] = [
    (("ANSWER", ()), b"200 result=0\n"),
    (("STREAM FILE", ("welcome", "0123456789*#", "0")), b"200 result=50 endpos=8000\n"),
    (("GET DATA", ("enter-account", "5000", "6")), b"200 result=12345 (timeout)\n"),
    (("GET DATA", ("enter-pin",)), b"200 result= (timeout)\n"),
    (("GET VARIABLE", ("CALLERID(name)",)), "200 result=1 (Müller (home))\n".encode()),
    (("GET VARIABLE", ("NOPE",)), b"200 result=0\n"),
    (("GET VARIABLE", ("MULTILINE",)), b"200 result=1 (line one\nline two)\n"),
    (
        ("GOSUB", ("sub-crm", "s", "1", "a,b")),
        b"100 result=0 Trying...\n200 result=0 Gosub complete\n",
    ),
    (
        ("SPEECH RECOGNIZE", ("yesno", "5000")),
        b'200 result=1 (speech) endpos=1234 results=1 score0=870 text0="yes please" grammar0=yn\n',
    ),
    (("FOO", ()), b"510 Invalid or unknown command\n"),
    (("STREAM FILE", ("x",)), USAGE_520),
    (("NOOP", ()), b"200 result=0\n"),
    # The caller hangs up while nothing runs: HANGUP sits before the next command's reply.
    (("EXEC", ("Playback", "beep")), b"HANGUP\n200 result=-1\n"),
    (
        ("SAY DIGITS", ("123", "")),
        b"511 Command Not Permitted on a dead channel or intercept routine\n",
    ),
    # The AGI ends: Asterisk writes HANGUP once more before closing (run_agi, the end).
    (("GET FULL VARIABLE", ("${CDR(billsec)}",)), b"200 result=1 (42)\nHANGUP\n"),
]


def drive(env: bytes, turns: Sequence[Turn], cuts: Iterable[int] = ()) -> list[object]:
    """Run a transcript through a fresh connection; return the events (and a final error).

    ``cuts`` are extra split positions in the concatenated incoming stream; turn boundaries
    are always cuts, since a turn's bytes can only arrive after its command was sent.
    """
    stream = env + b"".join(reply for _, reply in turns)
    bounds = [len(env)]
    for _, reply in turns:
        bounds.append(bounds[-1] + len(reply))
    positions = sorted({0, *bounds, *(c for c in cuts if 0 < c < len(stream))})
    conn = AgiConnection()
    events: list[object] = []
    next_turn = 0

    def drain() -> None:
        nonlocal next_turn
        while True:
            event = conn.next_event()
            if event is None or isinstance(event, ConnectionClosed):
                if event is not None:
                    events.append(event)
                return
            events.append(event)
            ready = isinstance(event, AgiEnvironment) or (
                isinstance(event, AgiReply) and not event.interim
            )
            if ready and next_turn < len(turns):
                name, args = turns[next_turn][0]
                conn.send_command(name, *args)
                next_turn += 1

    for start, end in itertools.pairwise(positions):
        conn.receive_data(stream[start:end])
        drain()
    conn.receive_eof()
    drain()
    return events


REFERENCE = drive(ENV, TURNS)


def test_reference_transcript_events() -> None:
    env = REFERENCE[0]
    assert isinstance(env, AgiEnvironment)
    assert env.route == "ivr"
    assert env.calleridname == "M\ufffdller"  # replacement, not a crash
    assert env.raw_bytes["agi_calleridname"] == b"M\xfcller"  # raw kept
    assert env.args == ("sales", "", "x y: z")

    replies = [e for e in REFERENCE if isinstance(e, AgiReply)]
    assert [(r.code, r.result, r.data) for r in replies] == [
        (200, "0", None),
        (200, "50", None),
        (200, "12345", "timeout"),
        (200, "", "timeout"),
        (200, "1", "Müller (home)"),
        (200, "0", None),
        (200, "1", "line one\nline two"),
        (100, "0", None),
        (200, "0", None),
        (200, "1", "speech"),
        (510, "", None),
        (520, "", None),
        (200, "0", None),
        (200, "-1", None),
        (511, "", None),
        (200, "1", "42"),
    ]
    assert replies[1].endpos == 8000
    assert replies[7].interim
    assert replies[7].text == "Trying..."
    assert replies[8].text == "Gosub complete"
    assert replies[9].endpos == 1234
    assert replies[9].field("text0") == "yes please"
    assert "Send the given file, allowing playback" in replies[11].text
    assert "    <value>FAILED</value>" in replies[11].text
    assert replies[11].text.endswith("End of proper usage.")
    assert replies[14].text == "Command Not Permitted on a dead channel or intercept routine"
    # Two HANGUP notices, each in its place; the stream ends with a clean close.
    kinds = [type(e).__name__ for e in REFERENCE]
    assert kinds.count("HangupNotice") == 2
    assert REFERENCE[-1] == ConnectionClosed(awaiting_reply=False)


def test_hangup_does_not_shift_replies() -> None:
    """The reply after an unprompted HANGUP belongs to the command that was sent."""
    index = REFERENCE.index(HangupNotice())
    assert REFERENCE[index + 1] == AgiReply(
        code=200, result="-1", raw="200 result=-1", data=None, text=""
    )
    after = REFERENCE[index + 2]
    assert isinstance(after, AgiReply)
    assert after.code == 511  # the SAY DIGITS reply, not shifted


def test_every_single_split_position_gives_the_same_events() -> None:
    stream_length = len(ENV) + sum(len(reply) for _, reply in TURNS)
    for position in range(1, stream_length):
        assert drive(ENV, TURNS, [position]) == REFERENCE, f"split at byte {position}"


def test_one_byte_at_a_time_gives_the_same_events() -> None:
    stream_length = len(ENV) + sum(len(reply) for _, reply in TURNS)
    assert drive(ENV, TURNS, range(stream_length)) == REFERENCE


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4000), max_size=40))
def test_random_splits_give_the_same_events(cuts: list[int]) -> None:
    assert drive(ENV, TURNS, cuts) == REFERENCE


# -- the state table ------------------------------------------------------------------------


def _in_state(state: State) -> AgiConnection:
    conn = AgiConnection()
    if state is State.AWAITING_ENV:
        return conn
    conn.receive_data(ENV)
    assert isinstance(conn.next_event(), AgiEnvironment)
    if state is State.AWAITING_REPLY:
        conn.send_command("NOOP")
    elif state is State.CLOSED:
        conn.close()
    assert conn.state is state
    return conn


_REMOTE_BYTES = {
    Input.ENV_RECEIVED: ENV,
    Input.INTERIM_REPLY: b"100 result=0 Trying...\n",
    Input.FINAL_REPLY: b"200 result=0\n",
    Input.HANGUP_RECEIVED: b"HANGUP\n",
    Input.PROTOCOL_ERROR: b"this is not FastAGI\n",
}


def _apply(conn: AgiConnection, event: Input) -> list[AgiEvent]:
    """Drive one input through the public API; return the events it produced."""
    if event in _REMOTE_BYTES:
        conn.receive_data(_REMOTE_BYTES[event])
    elif event is Input.EOF_RECEIVED:
        conn.receive_eof()
    elif event is Input.COMMAND_SENT:
        assert conn.send_command("NOOP") == b"NOOP\n"
    elif event is Input.FAILURE_SENT:
        assert conn.send_failure() == FAILURE_LINE
    elif event is Input.LOCAL_CLOSE:
        conn.close()
    out: list[AgiEvent] = []
    while (item := conn.next_event()) is not None:
        out.append(item)
        if isinstance(item, ConnectionClosed):
            break
    return out


@pytest.mark.parametrize(("edge", "target"), sorted(_TRANSITIONS.items(), key=str), ids=str)
def test_every_edge_of_the_state_table(edge: tuple[State, Input], target: State) -> None:
    state, event = edge
    conn = _in_state(state)
    if (state, event) in {
        (State.AWAITING_ENV, Input.EOF_RECEIVED),
        (State.AWAITING_ENV, Input.PROTOCOL_ERROR),
        (State.READY, Input.PROTOCOL_ERROR),
        (State.AWAITING_REPLY, Input.PROTOCOL_ERROR),
    }:
        with pytest.raises(RemoteProtocolError):
            _apply(conn, event)
    else:
        events = _apply(conn, event)
        expected_kind = {
            Input.ENV_RECEIVED: AgiEnvironment,
            Input.INTERIM_REPLY: AgiReply,
            Input.FINAL_REPLY: AgiReply,
            Input.HANGUP_RECEIVED: HangupNotice,
        }.get(event, ConnectionClosed)
        if state is State.AWAITING_ENV and event is Input.LOCAL_CLOSE:
            expected_kind = ConnectionClosed
        if event is Input.COMMAND_SENT:
            assert events == []
        else:
            assert isinstance(events[0], expected_kind)
    assert conn.state is target


_ALL_EDGES = [(s, i) for s in State for i in Input]


@pytest.mark.parametrize("edge", [e for e in _ALL_EDGES if e not in _TRANSITIONS], ids=str)
def test_every_missing_edge_is_refused(edge: tuple[State, Input]) -> None:
    state, event = edge
    conn = _in_state(state)
    local = event in (Input.COMMAND_SENT, Input.FAILURE_SENT, Input.LOCAL_CLOSE)
    if state is State.CLOSED and not local:
        # Nothing more is parsed once closed: late bytes (Asterisk's final HANGUP after our
        # FAILURE) are dropped, not mistaken for anything.
        if event is Input.EOF_RECEIVED:
            conn.receive_eof()
        else:
            conn.receive_data(_REMOTE_BYTES[event])
        assert conn.next_event() == ConnectionClosed()
        assert conn.state is State.CLOSED
        return
    with pytest.raises(LocalProtocolError if local else RemoteProtocolError):
        _apply(conn, event)
    assert conn.state is (state if local else State.CLOSED)


def test_command_while_awaiting_reply_is_refused_and_changes_nothing() -> None:
    conn = _in_state(State.AWAITING_REPLY)
    with pytest.raises(LocalProtocolError, match="command_sent not allowed"):
        conn.send_command("ANSWER")
    assert conn.pending_command == "NOOP"
    conn.receive_data(b"200 result=0\n")
    assert conn.next_event() == AgiReply(code=200, result="0", raw="200 result=0")
    assert conn.pending_command is None


def test_bad_argument_does_not_change_state() -> None:
    conn = _in_state(State.READY)
    with pytest.raises(LocalProtocolError):
        conn.send_command("VERBOSE", "two\nlines")
    assert conn.state is State.READY
    assert conn.commands_sent == 0


# -- FastAGI pitfalls (shared/notes/protocol-pitfalls.md) -----------------------------------


def test_pitfall1_eof_before_blank_line_is_reported_never_spun_on() -> None:
    conn = AgiConnection()
    conn.receive_data(ENV[:200])
    assert conn.next_event() is None  # needs more
    conn.receive_eof()
    for _ in range(3):  # reported every time, never "need more data" again
        with pytest.raises(RemoteProtocolError, match="inside the environment block"):
            conn.next_event()
    assert conn.state is State.CLOSED
    assert conn.eof_received


def test_pitfall1_connect_and_close_without_a_byte() -> None:
    conn = AgiConnection()
    conn.receive_eof()
    with pytest.raises(RemoteProtocolError, match="before the environment block"):
        conn.next_event()
    assert conn.bytes_received == 0


def test_pitfall1_eof_inside_the_last_env_line() -> None:
    conn = AgiConnection()
    conn.receive_data(ENV[:-2])  # the last line has no newline yet
    conn.receive_eof()
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


def test_pitfall1_no_spin_after_eof_in_command_phase() -> None:
    conn = _in_state(State.AWAITING_REPLY)
    conn.receive_data(b"200 resu")  # half a reply, then the peer goes away
    conn.receive_eof()
    for _ in range(3):
        assert conn.next_event() == ConnectionClosed(awaiting_reply=True)


def test_pitfall2_gosub_interim_reply_keeps_the_command_pending() -> None:
    conn = _in_state(State.READY)
    conn.send_command("GOSUB", "sub", "s", "1")
    conn.receive_data(b"100 result=0 Trying...\n")
    interim = conn.next_event()
    assert isinstance(interim, AgiReply)
    assert interim.interim
    states = [conn.state]
    conn.receive_data(b"200 result=0 Gosub complete (abnormal exit)\n")
    final = conn.next_event()
    assert isinstance(final, AgiReply)
    assert final.code == 200
    assert final.text == "Gosub complete (abnormal exit)"
    states.append(conn.state)
    assert states == [State.AWAITING_REPLY, State.READY]


def test_pitfall2_single_line_520() -> None:
    conn = _in_state(State.READY)
    conn.send_command("SPEECH CREATE")
    conn.receive_data(b"520 Invalid command syntax.  Proper usage not available.\n")
    reply = conn.next_event()
    assert isinstance(reply, AgiReply)
    assert (reply.code, reply.text) == (520, "Invalid command syntax.  Proper usage not available.")


def test_pitfall2_520_then_next_reply_is_paired_correctly() -> None:
    conn = _in_state(State.READY)
    conn.send_command("STREAM FILE", "x")
    conn.receive_data(USAGE_520)
    usage = conn.next_event()
    assert isinstance(usage, AgiReply)
    assert usage.code == 520
    assert usage.raw == USAGE_520.decode().rstrip("\n")
    conn.send_command("ANSWER")
    conn.receive_data(b"200 result=0\n")
    assert conn.next_event() == AgiReply(code=200, result="0", raw="200 result=0")


def test_pitfall3_hangup_while_command_runs_then_at_end() -> None:
    conn = _in_state(State.READY)
    conn.send_command("STREAM FILE", "welcome", "", "0")
    conn.receive_data(b"200 result=-1 endpos=1200\nHANGUP\n")
    reply = conn.next_event()
    assert isinstance(reply, AgiReply)
    assert reply.result == "-1"
    assert reply.endpos == 1200
    assert conn.next_event() == HangupNotice()
    assert conn.hangup_seen
    conn.send_command("GET VARIABLE", "DIALSTATUS")
    conn.receive_data(b"HANGUP\n200 result=1 (CANCEL)\n")
    assert conn.next_event() == HangupNotice()
    reply = conn.next_event()
    assert isinstance(reply, AgiReply)
    assert reply.data == "CANCEL"


def test_pitfall3_hangup_then_close_while_awaiting() -> None:
    conn = _in_state(State.READY)
    conn.send_command("WAIT FOR DIGIT", "5000")
    conn.receive_data(b"HANGUP\nHANGUP\n")  # AGIEXITONHANGUP=yes: hangup, end, close
    conn.receive_eof()
    assert conn.next_event() == HangupNotice()
    assert conn.next_event() == HangupNotice()
    assert conn.next_event() == ConnectionClosed(awaiting_reply=True)


def test_pitfall4_enhanced_is_eagi_not_a_hangup() -> None:
    conn = AgiConnection()
    conn.receive_data(ENV.replace(b"agi_enhanced: 0.0", b"agi_enhanced: 1.0"))
    env = conn.next_event()
    assert isinstance(env, AgiEnvironment)
    assert env.enhanced
    assert not conn.hangup_seen
    assert conn.state is State.READY


def test_unprompted_reply_is_a_protocol_error_after_earlier_events() -> None:
    conn = _in_state(State.READY)
    conn.receive_data(b"HANGUP\n200 result=0\n")
    assert conn.next_event() == HangupNotice()  # what came before the error is delivered
    with pytest.raises(RemoteProtocolError, match="no command outstanding"):
        conn.next_event()
    assert conn.state is State.CLOSED


def test_garbage_line_in_command_phase() -> None:
    conn = _in_state(State.AWAITING_REPLY)
    conn.receive_data(b"<html>\n")
    with pytest.raises(RemoteProtocolError, match="unexpected line"):
        conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send_command("NOOP")


def test_failure_line_ends_the_session() -> None:
    conn = _in_state(State.AWAITING_REPLY)
    assert conn.send_failure() == b"FAILURE\n"
    conn.receive_data(b"HANGUP\n")  # Asterisk's goodbye, after our FAILURE: ignored
    assert conn.next_event() == ConnectionClosed()
    assert conn.state is State.CLOSED


def test_receive_data_after_eof_is_our_mistake() -> None:
    conn = _in_state(State.READY)
    conn.receive_eof()
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"HANGUP\n")


# -- limits --------------------------------------------------------------------------------


def test_oversized_env_line_is_rejected_before_its_newline() -> None:
    conn = AgiConnection(AgiLimits(max_line=64))
    conn.receive_data(b"agi_network: yes\nagi_request: " + b"x" * 100)  # no newline yet
    with pytest.raises(RemoteProtocolError, match="longer than 64"):
        conn.next_event()


def test_too_many_env_lines() -> None:
    conn = AgiConnection(AgiLimits(max_env_lines=5))
    conn.receive_data(b"".join(b"agi_arg_%d: x\n" % n for n in range(10)))
    with pytest.raises(RemoteProtocolError, match="over 5 lines"):
        conn.next_event()


def test_too_many_env_bytes() -> None:
    conn = AgiConnection(AgiLimits(max_env_bytes=100))
    conn.receive_data(b"".join(b"agi_arg_%d: %s\n" % (n, b"y" * 30) for n in range(5)))
    with pytest.raises(RemoteProtocolError, match="100 bytes"):
        conn.next_event()


def test_oversized_reply_line() -> None:
    conn = AgiConnection(AgiLimits(max_line=64))
    conn.receive_data(
        ENV.replace(b"agi_version: 22.10.1+dfsg+~cs6.17.60671434-1", b"agi_version: 22")
    )
    assert isinstance(conn.next_event(), AgiEnvironment)
    conn.send_command("GET VARIABLE", "BIG")
    conn.receive_data(b"200 result=1 (" + b"z" * 100)
    with pytest.raises(RemoteProtocolError, match="longer than 64"):
        conn.next_event()


def test_endless_multiline_reply_is_bounded() -> None:
    conn = AgiConnection(AgiLimits(max_reply_bytes=200))
    conn.receive_data(ENV)
    conn.next_event()
    conn.send_command("FOO")
    conn.receive_data(b"520-Usage follows:\n" + b"more usage text\n" * 50)
    with pytest.raises(RemoteProtocolError, match="reply longer than 200"):
        conn.next_event()


def test_unclosed_data_runs_to_the_reply_limit_not_forever() -> None:
    conn = AgiConnection(AgiLimits(max_reply_bytes=100))
    conn.receive_data(ENV)
    conn.next_event()
    conn.send_command("GET VARIABLE", "X")
    conn.receive_data(b"200 result=1 (no close\n" + b"still going\n" * 20)
    with pytest.raises(RemoteProtocolError, match="reply longer than 100"):
        conn.next_event()


def test_crlf_is_tolerated() -> None:
    conn = AgiConnection()
    conn.receive_data(ENV.replace(b"\n", b"\r\n"))
    env = conn.next_event()
    assert isinstance(env, AgiEnvironment)
    assert env.channel == "PJSIP/anonymous-00000000"
    conn.send_command("NOOP")
    conn.receive_data(b"200 result=0\r\n")
    assert conn.next_event() == AgiReply(code=200, result="0", raw="200 result=0")
