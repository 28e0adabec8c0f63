"""The shape of ``config/users.yaml``: the demo's console users (``ctiserver run --demo``).

Used for the file's JSON Schema (``ctiserver config schema``) and by ``check-config``; the
demo creates the users that are missing (``app.demo.ensure_demo_users``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from agent_console.accounts import Role

__all__ = ["DemoUser", "UsersFile"]


class DemoUser(BaseModel):
    """One console user to create when missing (DEMO ONLY: the password is public)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1)]
    role: Role
    agent_id: str | None = Field(None, description="the ACD agent this user logs in as")
    display_name: str | None = None


class UsersFile(BaseModel):
    """The demo's console users."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: list[DemoUser]
