"""Throughput of the foundation's hot paths, each alone, on synthetic but realistic input.

- AMI: bytes of Asterisk 22 channel events, fed to ``AmiProtocol`` in 64 KiB reads -> events/s.
- Call model: the AMI events of whole inbound calls (Newchannel, Newstate, agent leg, dial,
  bridge, hold, hangups) applied to ``CallModel`` -> events/s, with many calls live at once.
- FastAGI: reply lines parsed by ``AgiConnection`` -> replies/s.

Run: .venv/bin/python bench/bench_foundation.py   (results: bench/RESULTS.md)
"""

from __future__ import annotations

import platform

# bench/ is on sys.path when this file is run as a script; cti comes from the venv.
from _timing import median_seconds

from cti.agi import AgiConnection
from cti.ami import AmiProtocol
from cti.calls import CallModel

CALLS = 2_000


def _snapshot(uid: str, linked: str, name: str, state: int) -> dict[str, str]:
    return {
        "Channel": name,
        "ChannelState": str(state),
        "ChannelStateDesc": "Up" if state == 6 else "Ring",
        "CallerIDNum": "5551234",
        "CallerIDName": "Ann Caller",
        "ConnectedLineNum": "<unknown>",
        "ConnectedLineName": "<unknown>",
        "Language": "en",
        "AccountCode": "",
        "Context": "from-trunk",
        "Exten": "8000",
        "Priority": "1",
        "Uniqueid": uid,
        "Linkedid": linked,
    }


def call_events(n: int) -> list[tuple[str, dict[str, str]]]:
    """Events of ``n`` calls, interleaved in batches of 100 so many are live at once."""
    out: list[tuple[str, dict[str, str]]] = []
    for batch in range(0, n, 100):
        ids = range(batch, min(batch + 100, n))
        steps: list[list[tuple[str, dict[str, str]]]] = []
        for i in ids:
            c, a = f"17000.{2 * i}", f"17000.{2 * i + 1}"
            cn, an = f"PJSIP/trunk-{i:08x}", f"PJSIP/agent1001-{i:08x}"
            dial = {
                **_snapshot(c, c, cn, 6),
                **{f"Dest{k}": v for k, v in _snapshot(a, c, an, 5).items()},
            }
            steps.append(
                [
                    ("Newchannel", _snapshot(c, c, cn, 4)),
                    ("Newstate", _snapshot(c, c, cn, 6)),
                    ("Newchannel", _snapshot(a, c, an, 0)),
                    ("DialBegin", dial),
                    ("Newstate", _snapshot(a, c, an, 6)),
                    ("DialEnd", {**dial, "DialStatus": "ANSWER"}),
                    ("BridgeEnter", {**_snapshot(c, c, cn, 6), "BridgeUniqueid": f"b{i}"}),
                    ("BridgeEnter", {**_snapshot(a, c, an, 6), "BridgeUniqueid": f"b{i}"}),
                    ("Hold", _snapshot(c, c, cn, 6)),
                    ("Unhold", _snapshot(c, c, cn, 6)),
                    ("BridgeLeave", {**_snapshot(a, c, an, 6), "BridgeUniqueid": f"b{i}"}),
                    ("Hangup", {**_snapshot(a, c, an, 6), "Cause": "16"}),
                    ("BridgeLeave", {**_snapshot(c, c, cn, 6), "BridgeUniqueid": f"b{i}"}),
                    ("Hangup", {**_snapshot(c, c, cn, 6), "Cause": "16"}),
                ]
            )
        for step in range(len(steps[0])):
            out += [s[step] for s in steps]
    return out


def ami_bytes(events: list[tuple[str, dict[str, str]]]) -> bytes:
    blocks = [b"Asterisk Call Manager/11.0.0\r\n"]
    for name, fields in events:
        lines = [f"Event: {name}", "Privilege: call,all", *(f"{k}: {v}" for k, v in fields.items())]
        blocks.append(("\r\n".join(lines) + "\r\n\r\n").encode())
    return b"".join(blocks)


def bench_ami(data: bytes, count: int) -> float:
    def run() -> None:
        proto = AmiProtocol()
        got = 0
        for i in range(0, len(data), 65536):
            got += len(proto.receive_data(data[i : i + 65536]))
        assert got >= count, got

    return count / median_seconds(run, repeat=5)


def bench_model(events: list[tuple[str, dict[str, str]]]) -> float:
    def run() -> None:
        model = CallModel()
        for name, fields in events:
            model.apply(name, fields, 0.0)
        assert not model.channels

    return len(events) / median_seconds(run, repeat=5)


def bench_agi(replies: int) -> float:
    env = b"agi_network: yes\nagi_request: agi://127.0.0.1/ivr\nagi_channel: PJSIP/x-1\n\n"
    reply = b"200 result=53 endpos=12345\n"

    def run() -> None:
        conn = AgiConnection()
        conn.receive_data(env)
        conn.next_event()
        for _ in range(replies):
            conn.send_command("WAIT FOR DIGIT", "5000")
            conn.receive_data(reply)
            conn.next_event()

    return replies / median_seconds(run, repeat=5)


def main() -> None:
    events = call_events(CALLS)
    data = ami_bytes(events)
    print(f"python {platform.python_version()} on {platform.machine()}, {len(events)} events")
    megabytes = len(data) / 1e6
    print(f"AMI parse+classify: {bench_ami(data, len(events)):,.0f} events/s ({megabytes:.1f} MB)")
    print(f"call model apply:   {bench_model(events):,.0f} events/s")
    print(f"FastAGI round trip: {bench_agi(50_000):,.0f} command/reply pairs/s (core only)")


if __name__ == "__main__":
    main()
