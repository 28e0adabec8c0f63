"""TtsRenderer and AsteriskPrompts: real espeak-ng and sox (Debian packages, see ./dev), the
cache rules, failures of the tools, and the sandbox Asterisk playing a rendered phrase."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.pbx import PbxHandle
from support.sipp import start_caller

from cti.agi import AgiServer, AgiServerConfig, AgiSession, SessionOutcome, SessionSummary
from cti.errors import ConfigError, CtiError
from ivr.model import Prompt
from ivr.prompts import AsteriskPrompts
from ivr.tts import TtsRenderer, normalise_text, tts_key

ESPEAK = shutil.which("espeak-ng") or "espeak-ng"


def script(path: Path, body: str) -> str:
    """An executable shell script standing in for a tool (to count or slow its runs)."""
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def counting_espeak(tmp_path: Path) -> tuple[str, Path]:
    """espeak-ng behind a wrapper that logs each rendering run (not --version)."""
    log = tmp_path / "espeak-runs.log"
    body = f'[ "$1" = --version ] || echo run >> {log}\nexec {ESPEAK} "$@"'
    return script(tmp_path / "espeak-counting", body), log


def runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def leftovers(cache: Path) -> list[str]:
    """Temporary files (their names start with a dot) still in the cache."""
    return sorted(p.name for p in cache.glob(".*"))


def wav_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.wav"))


def process_gone(pid: int) -> bool:
    """Killed and reaped (a zombie would still have a /proc entry)."""
    return not Path(f"/proc/{pid}").exists()


# -- keys -----------------------------------------------------------------------------------


def test_the_key_changes_with_every_input_but_not_with_spacing() -> None:
    base = tts_key("Hello there", "en", 160, "espeak 1.51")
    assert len(base) == 32
    assert tts_key("  Hello \n there ", "en", 160, "espeak 1.51") == base
    others = {
        tts_key("Hello there!", "en", 160, "espeak 1.51"),
        tts_key("Hello there", "de", 160, "espeak 1.51"),
        tts_key("Hello there", "en", 170, "espeak 1.51"),
        tts_key("Hello there", "en", 160, "espeak 1.52"),
    }
    assert base not in others
    assert len(others) == 4
    assert normalise_text(" a\t b\n") == "a b"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"voice": "en; rm -rf"}, "ivr.tts.voice"),
        ({"rate": 20}, "ivr.tts.rate"),
        ({"timeout": 0}, "ivr.tts.timeout"),
        ({"asterisk_dir": "relative/tts"}, "ivr.tts.asterisk_dir"),
    ],
)
def test_bad_settings_are_config_errors(
    tmp_path: Path, kwargs: dict[str, object], key: str
) -> None:
    settings: dict[str, object] = {"cache_dir": tmp_path, "asterisk_dir": "/srv/tts", **kwargs}
    with pytest.raises(ConfigError) as error:
        TtsRenderer(**settings)  # type: ignore[arg-type]  # values vary by case on purpose
    assert error.value.key == key


# -- rendering with the real tools ----------------------------------------------------------


async def test_renders_8khz_mono_16bit_wav_named_for_asterisk(tmp_path: Path) -> None:
    tts = TtsRenderer(tmp_path / "cache", "/srv/ctiserver/demo/tts")
    name = await tts.render("Your balance is twelve dollars.")
    key = name.rsplit("/", 1)[1]
    assert name == f"/srv/ctiserver/demo/tts/{key}"  # no extension: Asterisk picks the format
    path = tmp_path / "cache" / f"{key}.wav"
    with wave.open(str(path)) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        seconds = audio.getnframes() / audio.getframerate()
    assert 0.8 < seconds < 5, seconds
    assert path.stat().st_mode & 0o777 == 0o644
    assert leftovers(tmp_path / "cache") == []
    assert key == tts_key("Your balance is twelve dollars.", "en", 160, await tts.engine())
    assert "1." in await tts.engine()  # espeak-ng's version is part of the key


async def test_a_cached_phrase_is_not_rendered_again(tmp_path: Path) -> None:
    espeak, log = counting_espeak(tmp_path)
    tts = TtsRenderer(tmp_path / "cache", "/tts", espeak=espeak)
    first = await tts.render("Please hold.")
    mtime = (tmp_path / "cache" / f"{first.rsplit('/', 1)[1]}.wav").stat().st_mtime_ns
    second = await tts.render("Please   hold.")  # the same phrase once spaces are folded
    again = TtsRenderer(tmp_path / "cache", "/tts", espeak=espeak)  # e.g. after a restart
    third = await again.render("Please hold.")
    assert first == second == third
    assert runs(log) == 1
    assert (tmp_path / "cache" / f"{first.rsplit('/', 1)[1]}.wav").stat().st_mtime_ns == mtime
    other = await tts.render("Please hold the line.")
    assert other != first
    assert runs(log) == 2


async def test_concurrent_requests_for_one_phrase_render_it_once(tmp_path: Path) -> None:
    espeak, log = counting_espeak(tmp_path)
    tts = TtsRenderer(tmp_path / "cache", "/tts", espeak=espeak)
    names = await asyncio.gather(*(tts.render("All agents are busy.") for _ in range(8)))
    assert len(set(names)) == 1
    assert runs(log) == 1
    assert tts.renders == 1
    assert tts._locks == {}  # no lock left behind once nobody waits
    # Different phrases at once: each rendered once, none waiting for the others' lock.
    more = await asyncio.gather(*(tts.render(f"Option {n}.") for n in range(4)))
    assert len(set(more)) == 4
    assert runs(log) == 5


async def test_missing_tools_are_clear_errors(tmp_path: Path) -> None:
    no_espeak = TtsRenderer(tmp_path, "/tts", espeak=str(tmp_path / "nope" / "espeak-ng"))
    with pytest.raises(CtiError, match=r"not found: install the Debian package espeak-ng"):
        await no_espeak.render("hello")
    no_sox = TtsRenderer(tmp_path, "/tts", sox=str(tmp_path / "nope" / "sox"))
    with pytest.raises(CtiError, match=r"not found: install the Debian package sox"):
        await no_sox.render("hello")


async def test_a_failing_voice_is_an_error_and_leaves_no_files(tmp_path: Path) -> None:
    tts = TtsRenderer(tmp_path / "cache", "/tts", voice="xx-nope")
    with pytest.raises(CtiError, match=r"espeak-ng failed \(exit 1\).*voice does not exist"):
        await tts.render("hello")
    assert list((tmp_path / "cache").iterdir()) == []


async def test_a_hung_tool_is_killed_at_the_deadline(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    slow = script(
        tmp_path / "slow-espeak",
        f'[ "$1" = --version ] && exec {ESPEAK} --version\necho $$ > {pid_file}\nexec sleep 30',
    )
    tts = TtsRenderer(tmp_path / "cache", "/tts", espeak=slow, timeout=0.5)
    with pytest.raises(CtiError, match=r"espeak-ng did not finish within 0.5 s"):
        await tts.render("hello")
    pid = int(pid_file.read_text())
    assert process_gone(pid)  # killed and reaped, not orphaned
    assert leftovers(tmp_path / "cache") == []
    assert tts._locks == {}


async def test_a_cancelled_render_kills_its_subprocess(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    slow = script(
        tmp_path / "slow-espeak",
        f'[ "$1" = --version ] && exec {ESPEAK} --version\necho $$ > {pid_file}\nexec sleep 30',
    )
    tts = TtsRenderer(tmp_path / "cache", "/tts", espeak=slow)
    task = asyncio.create_task(tts.render("hello"))
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.02)
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert process_gone(pid)
    assert leftovers(tmp_path / "cache") == []


async def test_empty_and_oversized_texts_are_refused(tmp_path: Path) -> None:
    tts = TtsRenderer(tmp_path, "/tts", max_chars=50)
    with pytest.raises(CtiError, match="nothing to say"):
        await tts.render(" \n ")
    with pytest.raises(CtiError, match="at most 50"):
        await tts.render("x" * 51)


async def test_prune_keeps_the_newest_phrases(tmp_path: Path) -> None:
    tts = TtsRenderer(tmp_path, "/tts")
    names = [await tts.render(f"Phrase number {n}.") for n in range(3)]
    for age, name in enumerate(reversed(names)):
        path = tmp_path / f"{name.rsplit('/', 1)[1]}.wav"
        os.utime(path, (1_000_000 - age, 1_000_000 - age))  # names[2] newest
    assert tts.prune(keep=1) == 2
    assert wav_names(tmp_path) == [f"{names[2].rsplit('/', 1)[1]}.wav"]


# -- AsteriskPrompts ------------------------------------------------------------------------


async def test_prompts_pass_sounds_through_and_render_tts(tmp_path: Path) -> None:
    tts = TtsRenderer(tmp_path, "/srv/tts")
    prompts = AsteriskPrompts(tts)
    assert await prompts.resolve(Prompt(sound="hello-world"), None) == "hello-world"
    filled = await prompts.resolve(Prompt(tts="Balance ${customer.balance}"), "Balance 12")
    assert filled == "/srv/tts/" + tts_key("Balance 12", "en", 160, await tts.engine())
    plain = await prompts.resolve(Prompt(tts="Welcome."), None)
    assert plain.startswith("/srv/tts/")
    assert len(wav_names(tmp_path)) == 2


async def test_tts_prompts_without_a_renderer_are_an_error() -> None:
    prompts = AsteriskPrompts(None)
    assert await prompts.resolve(Prompt(sound="beep"), None) == "beep"
    with pytest.raises(CtiError, match="text to speech is not configured"):
        await prompts.resolve(Prompt(tts="Welcome."), None)


# -- the sandbox Asterisk plays it ----------------------------------------------------------


@pytest.fixture
def line(pbx: PbxHandle) -> Iterator[PbxHandle]:
    pbx.hangup_all()
    yield pbx
    pbx.hangup_all()


@pytest.mark.pbx
async def test_the_sandbox_asterisk_plays_a_rendered_phrase(
    line: PbxHandle, tmp_path: Path
) -> None:
    layout = line.sandbox.layout
    tts = TtsRenderer(layout.tts_dir, str(layout.tts_inner))
    prompts = AsteriskPrompts(tts)
    name = await prompts.resolve(Prompt(tts="Welcome to the sandbox."), None)
    assert name.startswith("/srv/ctiserver/test/tts/")
    seen: dict[str, object] = {}
    summaries: list[SessionSummary] = []
    ended = asyncio.Event()

    def on_end(summary: SessionSummary) -> None:
        summaries.append(summary)
        ended.set()

    async def ivr(session: AgiSession) -> None:
        await session.answer()
        reply = await session.command("STREAM FILE", name, "", "0")
        seen["result"], seen["endpos"] = reply.result, reply.endpos
        await session.hangup()

    log_start = line.log_position()
    config = AgiServerConfig(host=line.agi_host, port=line.agi_port, command_timeout=20)
    async with AgiServer(config, on_session_end=on_end) as server:
        server.route("ivr", ivr)
        caller = start_caller(line.sip_port, "8000", hold_ms=20000, log_dir=tmp_path)
        try:
            await asyncio.wait_for(ended.wait(), 30)
            await asyncio.to_thread(caller.wait, 20)
        finally:
            caller.stop()

    assert summaries[0].outcome is SessionOutcome.COMPLETED, summaries[0].error
    # 0: played to the end (-1 would be a missing or unreadable file); endpos is the sample
    # where it stopped, so the whole phrase (~1.5 s at 8 kHz) went out.
    assert seen["result"] == "0"
    assert isinstance(seen["endpos"], int)
    assert seen["endpos"] > 8000
    # res_agi logs the format it opened the file with (format_wav's is "slin").
    assert f"Playing '{name}.slin'" in line.log_since(log_start)
