"""Live reload of ``acd.yaml`` and ``console.yaml`` (SIGHUP, ``POST /admin/config/reload``).

    file ──► (worker thread) read + check, exactly as ``ctiserver check-config`` does
         ──► refused: the running configuration stays; the answer names file:line and why
         ──► accepted: applied on the event loop in one step (acd.reconfigure for the ACD)

Parsing and checking run off the event loop (``asyncio.to_thread``): a big file or a slow disk
must not stall calls. Reloads are serialised: two admins clicking at once get two whole
reloads, one after the other, never two halves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from acd.config import check_acd_config
from acd.reconfigure import Reconfigurable, apply_reconfigure, plan_for
from agent_console.config import ConsoleConfig, load_console_config
from cti.errors import CtiError

__all__ = ["FILES", "ConfigReloader"]

_log = logging.getLogger("app.config_reload")

#: the files that reload live, in the order they are reloaded
FILES = ("acd", "console")


class ConfigReloader:
    """Reloads the files the server runs with; each answer is ``{"ok": bool, ...}``."""

    def __init__(
        self,
        *,
        acd: Reconfigurable | None,
        acd_file: Path | None,
        console_file: Callable[[], Path | None],
        set_console: Callable[[ConsoleConfig], None],
    ) -> None:
        self._acd = acd
        self._acd_file = acd_file
        self._console_file = console_file
        self._set_console = set_console
        self._lock = asyncio.Lock()

    async def reload(self, files: Sequence[str] = FILES) -> dict[str, dict[str, object]]:
        """Reload ``files`` (names from ``FILES``); one answer per file."""
        async with self._lock:
            answers: dict[str, dict[str, object]] = {}
            for name in files:
                answers[name] = await (
                    self._reload_acd() if name == "acd" else self._reload_console()
                )
                level = logging.INFO if answers[name]["ok"] else logging.WARNING
                _log.log(level, "reload %s: %s", name, _summary(answers[name]))
            return answers

    async def _reload_acd(self) -> dict[str, object]:
        if self._acd is None or self._acd_file is None:
            return {"ok": True, "applied": False, "note": "the ACD is off"}
        path = self._acd_file
        config, problems = await asyncio.to_thread(check_acd_config, path)
        errors = [p for p in problems if not p.startswith("warning:")]
        warnings = [p for p in problems if p.startswith("warning:")]
        if config is None or errors:
            return _refused(path, errors)
        plan = plan_for(self._acd, config)
        if not plan.ok:
            return {**plan.view(), "file": str(path)}
        apply_reconfigure(self._acd, plan)
        return {**plan.view(), "file": str(path), "warnings": warnings}

    async def _reload_console(self) -> dict[str, object]:
        path = self._console_file()
        try:
            config = await asyncio.to_thread(load_console_config, path)
        except CtiError as exc:
            return _refused(path, [str(exc)])
        self._set_console(config)
        return {"ok": True, "applied": True, "file": str(path) if path else None}


def _refused(path: Path | None, errors: Sequence[str]) -> dict[str, object]:
    return {
        "ok": False,
        "applied": False,
        "file": str(path) if path else None,
        "error": "\n".join(errors),
        "note": "the running configuration is kept",
    }


def _summary(answer: Mapping[str, object]) -> str:
    if answer["ok"]:
        return "applied" if answer.get("applied") else str(answer.get("note", "unchanged"))
    return f"refused, running configuration kept: {answer.get('error')}"
