"""Console accounts and login sessions, in the CRM store's database.

- Roles: ``agent`` (works as one ACD agent, ``agent_id``, and sees only their own console),
  ``supervisor`` (the monitor, any agent's state, listen/whisper/barge), ``admin`` (everything,
  and users). ``ROLE_RANK`` orders them: a check for "supervisor" lets an admin through.
- A login creates a session: a random 256-bit token goes to the browser (cookie), only its
  SHA-256 is stored; a per-session CSRF token is returned to the page, which sends it back in
  a header on every state-changing request. Sessions expire after ``ttl`` seconds of age
  (default 12 h: one shift) and are deleted at logout; a disabled user's sessions stop working
  at once (checked on every lookup).
- Wrong passwords cost the same time as right ones, and the message never says which of the
  name and the password was wrong.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from agent_console.passwords import LOG2_N, hash_password, needs_rehash, verify_password
from crm_bridge.schema import LoginSession, User
from cti.errors import CtiError

__all__ = [
    "ROLES",
    "ROLE_RANK",
    "AccountError",
    "AccountStore",
    "Role",
    "SessionInfo",
    "UnknownUser",
    "UserExists",
    "UserInfo",
    "check_password",
]

Role = Literal["agent", "supervisor", "admin"]
ROLES: tuple[Role, ...] = ("agent", "supervisor", "admin")
ROLE_RANK = {"agent": 1, "supervisor": 2, "admin": 3}
_USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_MIN_PASSWORD = 8
# A hash to verify against when the user does not exist, so that a wrong name takes as long
# as a wrong password (no user enumeration by timing).
_DUMMY: dict[int, str] = {}


def check_password(password: str) -> None:
    """Refuse a password too short to keep (``AccountError``)."""
    if len(password) < _MIN_PASSWORD:
        raise AccountError(f"a password needs at least {_MIN_PASSWORD} characters")


class AccountError(CtiError):
    """A user request refused (bad name, weak password, ...); the subclasses say more."""


class UnknownUser(AccountError):
    """No user by that name."""


class UserExists(AccountError):
    """A user by that name exists already."""


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    display_name: str
    role: Role
    agent_id: str | None
    disabled: bool

    def at_least(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


@dataclass(frozen=True)
class SessionInfo:
    user: UserInfo
    csrf_token: str
    expires_at: float


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(user: User) -> UserInfo:
    role: Role = "agent"
    for known in ROLES:
        if user.role == known:
            role = known
    return UserInfo(
        user.id, user.username, user.display_name, role, user.agent_id, bool(user.disabled)
    )


class AccountStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], float] = time.time,
        ttl: float = 12 * 3600,
        log2_n: int = LOG2_N,
    ) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._clock = clock
        self.ttl = ttl
        self._log2_n = log2_n

    async def _hash(self, password: str) -> str:
        # scrypt takes a tenth of a second or more: off the event loop, so calls go on.
        return await asyncio.to_thread(hash_password, password, log2_n=self._log2_n)

    # -- users ---------------------------------------------------------------------------------

    async def add_user(
        self,
        username: str,
        password: str,
        role: str,
        *,
        agent_id: str | None = None,
        display_name: str | None = None,
    ) -> UserInfo:
        if not _USERNAME.fullmatch(username):
            raise AccountError(f"user name {username!r}: 1-64 of a-z 0-9 _ . - (lower case)")
        if role not in ROLES:
            raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
        if role == "agent" and not agent_id:
            raise AccountError("an agent account needs the ACD agent it works as (--agent)")
        if len(password) < _MIN_PASSWORD:
            raise AccountError(f"a password needs at least {_MIN_PASSWORD} characters")
        now = self._clock()
        user = User(
            username=username,
            display_name=display_name or username,
            password_hash=await self._hash(password),
            role=role,
            agent_id=agent_id,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._sessions() as db, db.begin():
                db.add(user)
        except IntegrityError as exc:
            raise UserExists(f"user {username!r} exists already") from exc
        return _info(user)

    async def get(self, username: str) -> UserInfo | None:
        async with self._sessions() as db:
            user = await db.scalar(select(User).where(User.username == username))
        return None if user is None else _info(user)

    async def users(self) -> list[UserInfo]:
        async with self._sessions() as db:
            found = await db.scalars(select(User).order_by(User.username))
            return [_info(user) for user in found]

    async def set_password(self, username: str, password: str) -> None:
        check_password(password)
        digest = await self._hash(password)
        await self._change(username, password_hash=digest)

    async def set_disabled(self, username: str, disabled: bool) -> None:
        await self._change(username, disabled=disabled)

    async def update(
        self,
        username: str,
        *,
        role: str | None = None,
        display_name: str | None = None,
        agent_id: str | None = None,
    ) -> UserInfo:
        """Change a user's role, name or agent (their sessions end: rights changed)."""
        current = await self.get(username)
        if current is None:
            raise UnknownUser(f"no user {username!r}")
        values: dict[str, object] = {}
        if role is not None:
            if role not in ROLES:
                raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
            values["role"] = role
        if display_name is not None:
            if not display_name.strip() or len(display_name) > 200:
                raise AccountError("a display name is 1-200 characters")
            values["display_name"] = display_name.strip()
        if agent_id is not None:
            values["agent_id"] = agent_id or None
        final_role = values.get("role", current.role)
        final_agent = (
            values.get("agent_id", current.agent_id) if agent_id is not None else (current.agent_id)
        )
        if final_role == "agent" and not final_agent:
            raise AccountError("an agent account needs the ACD agent it works as")
        if values:
            await self._change(username, **values)
        found = await self.get(username)
        assert found is not None
        return found

    async def _change(self, username: str, **values: object) -> None:
        """Change a user and end their sessions (a new password, a disabled account)."""
        async with self._sessions() as db, db.begin():
            user = await db.scalar(select(User).where(User.username == username))
            if user is None:
                raise UnknownUser(f"no user {username!r}")
            for name, value in values.items():
                setattr(user, name, value)
            user.updated_at = self._clock()
            await db.execute(delete(LoginSession).where(LoginSession.user_id == user.id))

    # -- sessions ------------------------------------------------------------------------------

    async def login(self, username: str, password: str) -> tuple[str, SessionInfo] | None:
        """(cookie token, session) for the right name and password of an enabled user;
        None otherwise, after the same work either way."""
        async with self._sessions() as db:
            user = await db.scalar(select(User).where(User.username == username))
        stored = user.password_hash if user is not None else await self._dummy()
        ok = await asyncio.to_thread(verify_password, password, stored)
        if user is None or not ok or user.disabled:
            return None
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()
        rehash = await self._hash(password) if needs_rehash(stored, log2_n=self._log2_n) else None
        async with self._sessions() as db, db.begin():
            await db.execute(delete(LoginSession).where(LoginSession.expires_at < now))
            db.add(
                LoginSession(
                    token_hash=_token_hash(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=now + self.ttl,
                )
            )
            if rehash is not None:
                # Stronger parameters than when this hash was made: upgrade it now that the
                # password is known.
                await db.execute(
                    update(User).where(User.id == user.id).values(password_hash=rehash)
                )
        return token, SessionInfo(_info(user), csrf, now + self.ttl)

    async def _dummy(self) -> str:
        if self._log2_n not in _DUMMY:
            _DUMMY[self._log2_n] = await self._hash(secrets.token_urlsafe(16))
        return _DUMMY[self._log2_n]

    async def session(self, token: str) -> SessionInfo | None:
        """The live session of a cookie token (None: unknown, expired, or user disabled)."""
        if not token or len(token) > 200:
            return None
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(LoginSession, User)
                    .join(User, User.id == LoginSession.user_id)
                    .where(LoginSession.token_hash == _token_hash(token))
                )
            ).first()
        if row is None:
            return None
        session, user = row
        if session.expires_at <= self._clock() or user.disabled:
            return None
        return SessionInfo(_info(user), session.csrf_token, session.expires_at)

    async def logout(self, token: str) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(
                delete(LoginSession).where(LoginSession.token_hash == _token_hash(token))
            )
