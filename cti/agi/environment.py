"""The FastAGI environment block: what Asterisk tells us about the call before any command.

Asterisk writes (res_agi.c, ``launch_netscript`` then ``setup_env``)::

    agi_network: yes
    agi_network_script: ivr?lang=en          <- only when the URL has a path
    agi_request: agi://127.0.0.1:4573/ivr?lang=en
    agi_channel: PJSIP/anonymous-00000000
    ...                                      <- one "agi_key: value" line each
    agi_arg_1: sales                         <- the AGI() application's extra arguments
    <blank line>

Values are written with ``%s`` and no escaping: they may contain anything but a newline, and
need not be UTF-8 (a caller name from a SIP header, for instance). We keep the raw bytes and
decode with replacement for the typed accessors, so one bad byte never costs us the call.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import unquote

from cti.agi._lines import LineReader, TruncatedLine
from cti.errors import RemoteProtocolError

__all__ = ["AgiEnvironment", "EnvironmentLimits", "read_environment"]


@dataclass(frozen=True)
class EnvironmentLimits:
    max_line: int = 8192
    max_lines: int = 512
    max_bytes: int = 65536


@dataclass(frozen=True)
class AgiEnvironment:
    """The environment block of one FastAGI session, in the order Asterisk sent it.

    String accessors return ``""`` for a missing key. Asterisk itself writes the literal
    ``unknown`` for an unavailable caller ID, caller name, DNID or RDNIS (``S_COR(...,
    "unknown")`` in ``setup_env``); those are passed through unchanged.
    """

    items: tuple[tuple[str, bytes], ...]

    # -- raw access ---------------------------------------------------------------------------

    @property
    def raw(self) -> Mapping[str, str]:
        """Every key (``agi_`` prefix kept) to its value decoded as UTF-8 with replacement."""
        return MappingProxyType({key: _decode(value) for key, value in self.items})

    @property
    def raw_bytes(self) -> Mapping[str, bytes]:
        """Every key to its value exactly as received."""
        return MappingProxyType(dict(self.items))

    def get(self, key: str, default: str = "") -> str:
        """The value of ``agi_<key>`` (or of ``key`` if it already has the prefix)."""
        full = key if key.startswith("agi_") else f"agi_{key}"
        for name, value in reversed(self.items):
            if name == full:
                return _decode(value)
        return default

    def _int(self, key: str) -> int | None:
        try:
            return int(self.get(key))
        except ValueError:
            return None

    # -- typed accessors ----------------------------------------------------------------------

    @property
    def network(self) -> bool:
        return self.get("network") == "yes"

    @property
    def network_script(self) -> str:
        return self.get("network_script")

    @property
    def request(self) -> str:
        return self.get("request")

    @property
    def channel(self) -> str:
        return self.get("channel")

    @property
    def language(self) -> str:
        return self.get("language")

    @property
    def type(self) -> str:
        return self.get("type")

    @property
    def uniqueid(self) -> str:
        return self.get("uniqueid")

    @property
    def version(self) -> str:
        return self.get("version")

    @property
    def callerid(self) -> str:
        return self.get("callerid")

    @property
    def calleridname(self) -> str:
        return self.get("calleridname")

    @property
    def callingpres(self) -> int | None:
        return self._int("callingpres")

    @property
    def callingani2(self) -> int | None:
        return self._int("callingani2")

    @property
    def callington(self) -> int | None:
        return self._int("callington")

    @property
    def callingtns(self) -> int | None:
        return self._int("callingtns")

    @property
    def dnid(self) -> str:
        return self.get("dnid")

    @property
    def rdnis(self) -> str:
        return self.get("rdnis")

    @property
    def context(self) -> str:
        return self.get("context")

    @property
    def extension(self) -> str:
        return self.get("extension")

    @property
    def priority(self) -> int | None:
        return self._int("priority")

    @property
    def enhanced(self) -> bool:
        """True for EAGI (audio on a side channel). It says nothing about hang-ups."""
        return self.get("enhanced") == "1.0"

    @property
    def accountcode(self) -> str:
        return self.get("accountcode")

    @property
    def threadid(self) -> int | None:
        return self._int("threadid")

    @property
    def args(self) -> tuple[str, ...]:
        """``agi_arg_1`` .. ``agi_arg_N`` in numeric order (not string order: 10 after 9)."""
        numbered: list[tuple[int, str]] = []
        for key, value in self.items:
            suffix = key.removeprefix("agi_arg_")
            if suffix != key and suffix.isdigit():
                numbered.append((int(suffix), _decode(value)))
        return tuple(value for _, value in sorted(numbered))

    # -- the script part of the URL, which the server routes on -------------------------------

    @property
    def script(self) -> str:
        """Everything after ``host[:port]/`` in the AGI URL: ``ivr/sales?lang=en``.

        Asterisk sends it as ``agi_network_script`` when the URL has a path; otherwise we cut
        it out of ``agi_request`` (which is the URL exactly as the dialplan wrote it).
        """
        if self.network_script:
            return self.network_script
        _, sep, rest = self.request.partition("://")
        if not sep:
            return ""
        _, slash, script = rest.partition("/")
        return script if slash else ""

    @property
    def path(self) -> str:
        """The script without the query and without leading or trailing slashes."""
        return self.script.partition("?")[0].strip("/")

    @property
    def route(self) -> str:
        """The first component of the path: ``ivr`` for ``agi://h:p/ivr/sales?x=1``."""
        return self.path.partition("/")[0]

    @property
    def query_items(self) -> tuple[tuple[str, str], ...]:
        """The query as ``(name, value)`` pairs, in order, duplicates kept.

        Only percent-escapes are decoded. A ``+`` stays a ``+``: dialplans write
        ``?caller=${CALLERID(num)}`` without URL-encoding, and ``+15551234`` must not turn into
        `` 15551234`` as ``urllib.parse.parse_qsl`` would make it.
        """
        query = self.script.partition("?")[2]
        pairs: list[tuple[str, str]] = []
        for part in query.split("&"):
            if not part:
                continue
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
        return tuple(pairs)

    @property
    def query(self) -> Mapping[str, str]:
        """The query as a mapping; for a repeated name the last value wins."""
        return MappingProxyType(dict(self.query_items))


def _decode(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def read_environment(
    reader: LineReader, limits: EnvironmentLimits
) -> Generator[None, None, AgiEnvironment]:
    """Parser step: pull ``key: value`` lines up to the blank line that ends the block.

    A stream that ends before the blank line is an error (reported once; the caller never
    waits on it again), as is a line that is not ``key: value`` or a block over the limits.
    """
    items: list[tuple[str, bytes]] = []
    total = 0
    while True:
        try:
            line = yield from reader.read_line(limits.max_line)
        except TruncatedLine as exc:
            raise RemoteProtocolError(
                f"connection closed inside the environment block after {len(items)} lines"
            ) from exc
        if line is None:
            if not items:
                raise RemoteProtocolError("connection closed before the environment block")
            raise RemoteProtocolError(
                f"connection closed inside the environment block after {len(items)} lines"
            )
        if not line:
            return AgiEnvironment(items=tuple(items))
        total += len(line) + 1
        if len(items) >= limits.max_lines or total > limits.max_bytes:
            raise RemoteProtocolError(
                f"environment block over {limits.max_lines} lines or {limits.max_bytes} bytes"
            )
        key, sep, value = line.partition(b":")
        if not sep or not key or b" " in key:
            raise RemoteProtocolError(f"malformed environment line: {_decode(line[:80])!r}")
        try:
            name = key.decode("ascii")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(f"non-ASCII environment key: {key[:40]!r}") from exc
        # Asterisk writes "key: value"; an empty value is "key: " (setup_env, agi_accountcode).
        items.append((name, value.removeprefix(b" ")))
