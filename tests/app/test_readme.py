"""The README's configuration reference must name every setting: docs that silently fall
behind the code are how admins end up guessing."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from app.settings import Settings

README = Path(__file__).parents[2] / "README.md"


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _keys(annotation, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_setting_is_in_the_configuration_reference() -> None:
    text = README.read_text(encoding="utf-8")
    reference = text[text.index("## Configuration reference") :]
    missing = [key for key in _keys(Settings) if f"`{key}`" not in reference]
    assert not missing, f"README configuration reference lacks: {missing}"


def test_readme_gives_exactly_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    setup = text[text.index("## Set up") : text.index("## Everyday commands")]
    blocks = [line for line in setup.splitlines() if line.startswith("./dev ")]
    assert [b.split()[1] for b in blocks] == ["run", "test"]


def test_curl_examples_of_protected_routes_carry_a_session() -> None:
    # With the store on, /acd/, /api/ and /reports/ answer 401 without a session cookie, and
    # a POST also needs the CSRF token: an example without them only shows an error.
    text = README.read_text(encoding="utf-8")
    commands = [line for line in text.splitlines() if line.lstrip().startswith("curl ")]
    protected = [c for c in commands if any(p in c for p in ("/acd/", "/reports/", "/admin/"))]
    assert protected, "the README shows how to call the ACD's API"
    for command in protected:
        assert "-b " in command, command
        if "-X POST" in command:
            assert "X-CSRF-Token" in command, command
