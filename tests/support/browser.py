"""A real browser for the console tests: Debian's chromium driven by Playwright.

Playwright's own browser download cannot be reached from CI, so the browser is the Debian
package (``./dev test`` installs it) launched through its executable path. A missing browser
is a failure that says how to install it, never a skip.

``watch(page)`` collects what must never happen on our pages: uncaught script errors, console
errors, and Content-Security-Policy violations (chromium reports them as console errors), so a
test can assert the page ran clean.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright

__all__ = ["chromium", "watch"]

_ARGS = [
    "--headless=new",
    "--no-sandbox",  # root in CI containers: chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--mute-audio",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise AssertionError(
            "Debian's chromium is not installed: run ./dev test (or apt-get install chromium)"
        )
    return path


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


def watch(page: Page) -> list[str]:
    """Problems the page reports from now on (script errors, console errors, CSP reports)."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    def on_error(error: Error) -> None:
        problems.append(f"page error: {error.message}")

    page.on("console", on_console)
    page.on("pageerror", on_error)
    return problems
