"""``AsteriskPrompts``: the engine's ``PromptResolver`` for Asterisk.

A ``sound`` prompt is already a name Asterisk plays (``hello-world``, ``digits/5``, or an
absolute path without extension) and is passed through untouched: whether the file exists is
for Asterisk to say (STREAM FILE answers -1, and the engine takes its error path). A ``tts``
prompt is rendered and cached by ``ivr.tts.TtsRenderer``.
"""

from __future__ import annotations

from cti.errors import CtiError
from ivr.model import Prompt
from ivr.ports import PromptResolver
from ivr.tts import TtsRenderer

__all__ = ["AsteriskPrompts"]


class AsteriskPrompts(PromptResolver):
    def __init__(self, tts: TtsRenderer | None) -> None:
        self.tts = tts

    async def resolve(self, prompt: Prompt, text: str | None) -> str:
        """The playable name; ``text`` is the TTS text with its templates filled in (the
        prompt's own text is used when it is None)."""
        if prompt.sound is not None:
            return prompt.sound
        if self.tts is None:
            raise CtiError("a TTS prompt, but text to speech is not configured (ivr.tts)")
        # Prompt.__post_init__ guarantees tts is set when sound is not.
        return await self.tts.render(text if text is not None else prompt.tts or "")
