"""Text to speech for prompts: espeak-ng, resampled by sox into audio Asterisk plays as is.

Asterisk's ``format_wav`` reads 8 kHz mono signed 16-bit WAV (formats/format_wav.c); espeak-ng
writes 22,050 Hz and has no option for another rate, so every phrase takes two steps:

    espeak-ng -v VOICE -s RATE -b 1 -w raw.wav --stdin   (text on stdin: never an argv option)
    sox raw.wav -r 8000 -c 1 -b 16 -e signed-integer out.wav

Cache: one file per phrase, ``<cache_dir>/<key>.wav``, where the key hashes the text (with
runs of white space folded), the voice, the rate, both tools' versions and the output format,
so a new espeak-ng or another voice never serves stale audio. Files appear atomically (written
under a temporary name in the same folder, then renamed), so Asterisk never opens half a file,
and concurrent requests for one phrase render it once (one asyncio lock per key).

What Asterisk is told to play is ``<asterisk_dir>/<key>`` with no extension (STREAM FILE picks
the format by extension itself). ``asterisk_dir`` is the same folder as Asterisk sees it: in
the sandbox Asterisk runs chrooted, so ``ROOT/srv/ctiserver/<instance>/tts`` on the host is
``/srv/ctiserver/<instance>/tts`` for Asterisk (``InstanceLayout.tts_dir`` / ``tts_inner``).

Every subprocess has a deadline and is killed (and waited for) when it passes or when the
caller is cancelled (a caller hanging up mid-render).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

from cti.errors import ConfigError, CtiError

__all__ = ["OUTPUT_FORMAT", "TtsRenderer", "normalise_text", "tts_key"]

#: Part of every cache key: change it when the output format or the commands change.
OUTPUT_FORMAT = "wav-8000-mono-s16-v1"

_VOICE_RE = re.compile(r"[A-Za-z0-9_+./-]{1,64}")
_SPACE_RE = re.compile(r"\s+")
#: What Asterisk's format_wav plays without transcoding: 8 kHz, mono, signed 16-bit.
_SOX_OUTPUT = ("-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer")
_INSTALL_HINT = {"espeak-ng": "espeak-ng", "sox": "sox"}


def normalise_text(text: str) -> str:
    """The text as it is spoken and hashed: runs of white space folded to one space."""
    return _SPACE_RE.sub(" ", text).strip()


def tts_key(text: str, voice: str, rate: int, engine: str) -> str:
    """The cache key of a phrase: 32 hex digits (128 bits of SHA-256)."""
    material = "\0".join((OUTPUT_FORMAT, engine, voice, str(rate), normalise_text(text)))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


class TtsRenderer:
    """Renders phrases to cached 8 kHz WAV files; ``await render(text)`` -> a playable name."""

    def __init__(
        self,
        cache_dir: Path,
        asterisk_dir: str,
        voice: str = "en",
        rate: int = 160,
        *,
        timeout: float = 20.0,
        max_chars: int = 2000,
        espeak: str = "espeak-ng",
        sox: str = "sox",
    ) -> None:
        if not _VOICE_RE.fullmatch(voice):
            raise ConfigError("an espeak-ng voice name, e.g. en or en-us", key="ivr.tts.voice")
        if not 80 <= rate <= 450:
            # espeak-ng's own limits for -s (words per minute).
            raise ConfigError("80-450 words per minute", key="ivr.tts.rate")
        if timeout <= 0:
            raise ConfigError("must be positive", key="ivr.tts.timeout")
        if not asterisk_dir.startswith("/"):
            raise ConfigError(
                "the cache folder as Asterisk sees it: an absolute path",
                key="ivr.tts.asterisk_dir",
            )
        self.cache_dir = cache_dir
        self.asterisk_dir = asterisk_dir.rstrip("/") or "/"
        self.voice = voice
        self.rate = rate
        self.timeout = timeout
        self.max_chars = max_chars
        self._espeak = espeak
        self._sox = sox
        self._engine: str | None = None
        self._engine_lock = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}
        #: phrases rendered by this renderer (cache hits not counted)
        self.renders = 0

    # -- public -------------------------------------------------------------------------------

    async def render(self, text: str) -> str:
        """The name Asterisk plays for ``text``, rendering it first unless cached.

        Raises ``CtiError`` when the text is empty or too long, when espeak-ng or sox is
        missing, fails or overruns its deadline, or when the cache folder cannot be written.
        """
        spoken = normalise_text(text)
        if not spoken:
            raise CtiError("TTS: nothing to say (the text is empty)")
        if len(spoken) > self.max_chars:
            raise CtiError(f"TTS: text of {len(spoken)} characters, at most {self.max_chars}")
        key = tts_key(spoken, self.voice, self.rate, await self.engine())
        target = self.cache_dir / f"{key}.wav"
        if not target.is_file():
            lock = self._locks.setdefault(key, asyncio.Lock())
            self._users[key] = self._users.get(key, 0) + 1
            try:
                async with lock:
                    # Whoever held the lock before us may have rendered it meanwhile.
                    if not target.is_file():
                        await self._render_to(spoken, target)
            finally:
                self._users[key] -= 1
                if not self._users[key]:
                    # No one else waits on this key: drop the lock so the table stays small.
                    del self._users[key], self._locks[key]
        return f"{self.asterisk_dir}/{key}"

    async def engine(self) -> str:
        """Both tools' version lines (part of every key); ``CtiError`` if one is missing."""
        async with self._engine_lock:
            if self._engine is None:
                espeak = await self._run([self._espeak, "--version"], what="espeak-ng")
                sox = await self._run([self._sox, "--version"], what="sox")
                # espeak-ng 1.51 prints "eSpeak NG text-to-speech: 1.51  Data at: <path>":
                # the data path is no part of the sound.
                first = espeak.decode("utf-8", "replace").strip().split("Data at:")[0]
                self._engine = f"{first.strip()} | {sox.decode('utf-8', 'replace').strip()}"
            return self._engine

    def prune(self, keep: int) -> int:
        """Delete all but the ``keep`` most recently written phrases; returns how many went.

        Templated texts ("Your balance is ${customer.balance}") make one file per value, so a
        long-running server calls this now and then. A file being played stays readable to
        Asterisk after the unlink (it holds it open).
        """
        if keep < 0:
            raise ValueError("keep must be >= 0")
        dated: list[tuple[float, Path]] = []
        for path in self.cache_dir.glob("*.wav"):
            with contextlib.suppress(FileNotFoundError):  # pruned by another process meanwhile
                dated.append((path.stat().st_mtime, path))
        dated.sort(reverse=True)
        removed = 0
        for _, path in dated[keep:]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return removed

    # -- the work -----------------------------------------------------------------------------

    async def _render_to(self, text: str, target: Path) -> None:
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CtiError(f"TTS: cannot create the cache folder {self.cache_dir}: {exc}") from exc
        # Temporary names in the same folder (same file system: the rename is atomic); the
        # leading dot keeps them out of the "*.wav" globs of prune(). sox picks the output
        # type from the extension, so it must end in .wav.
        token = secrets.token_hex(4)
        raw = self.cache_dir / f".{target.stem}.{token}.raw.wav"
        out = self.cache_dir / f".{target.stem}.{token}.tmp.wav"
        try:
            await self._run(
                [*self._espeak_args(), "-w", str(raw), "--stdin"],
                what="espeak-ng",
                stdin=text.encode("utf-8"),
            )
            await self._run(
                [self._sox, str(raw), *_SOX_OUTPUT, str(out)],
                what="sox",
            )
            out.chmod(0o644)
            os.replace(out, target)
        except OSError as exc:
            raise CtiError(f"TTS: cannot write {target}: {exc}") from exc
        finally:
            for leftover in (raw, out):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
        self.renders += 1

    def _espeak_args(self) -> list[str]:
        # -b 1: the text on stdin is UTF-8.
        return [self._espeak, "-v", self.voice, "-s", str(self.rate), "-b", "1"]

    async def _run(self, argv: Sequence[str], *, what: str, stdin: bytes | None = None) -> bytes:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError as exc:
            raise CtiError(
                f"TTS: {argv[0]!r} not found: install the Debian package "
                f"{_INSTALL_HINT[what]} (apt-get install {_INSTALL_HINT[what]})"
            ) from exc
        except OSError as exc:
            raise CtiError(f"TTS: cannot run {argv[0]!r}: {exc}") from exc
        try:
            async with asyncio.timeout(self.timeout):
                stdout, stderr = await process.communicate(stdin)
        except TimeoutError:
            raise CtiError(f"TTS: {what} did not finish within {self.timeout} s") from None
        finally:
            # Timed out or cancelled (the caller hung up): no orphan keeps running.
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.shield(process.wait())
        if process.returncode != 0:
            detail = stderr.decode("utf-8", "replace").strip()[-300:]
            raise CtiError(f"TTS: {what} failed (exit {process.returncode}): {detail}")
        return stdout
