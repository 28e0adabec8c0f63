"""The CRM store's tables (SQLAlchemy 2, typed declarative mapping).

The same schema runs on SQLite (embedded default) and PostgreSQL (larger centers); Alembic
migrations (``crm_bridge/migrations``) create and evolve it, the models here are what the code
reads and writes.

- ``customers`` and ``customer_phones``: one row per customer; phone numbers in their own table
  (a customer has several; lookups by caller number hit an index on the normalised number).
  ``name_key`` is the name folded for search (lower case, accents kept).
- ``cases``: a customer's tickets, open or closed.
- ``interactions``: one row per contact, keyed by ``key`` (the call's Linkedid for calls, the
  callback's id for callbacks): every phase's timestamp, the IVR path and variables (sensitive
  values already masked by the IVR), queue, wait, agent, talk/hold/wrap-up, outcome,
  disposition and notes. It is a *projection* of the timeline below, rebuilt by applying events
  in order; it never holds anything the timeline does not.
- ``interaction_events``: the append-only timeline. ``event_key`` is unique: it names the fact
  (e.g. ``acd:answered:<call id>``), so the same fact seen twice (an AMI reconnect replaying,
  a retry after a failed commit) is stored once and applied once.

Times are seconds since the epoch (``Float``, double precision on PostgreSQL): exact to the
microsecond, time-zone free, and intervals for reports are arithmetic.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Case",
    "Customer",
    "CustomerPhone",
    "Interaction",
    "InteractionEvent",
    "LoginSession",
    "User",
]

# Constraint names fixed by convention: Alembic can then alter them by name on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)  # the center's own id: C1001
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    account: Mapped[str | None] = mapped_column(String(64), unique=True)
    segment: Mapped[str | None] = mapped_column(String(64))
    tier: Mapped[str | None] = mapped_column(String(32))  # VIP tier: gold, platinum ...
    language: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class CustomerPhone(Base):
    __tablename__ = "customer_phones"
    __table_args__ = (
        Index("uq_customer_phones_customer_number", "customer_id", "number", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(32), index=True)  # normalised (ivr.services)
    kind: Mapped[str] = mapped_column(String(16), default="phone")  # mobile, home, work ...


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    opened_at: Mapped[float] = mapped_column(Float)
    closed_at: Mapped[float | None] = mapped_column(Float)
    notes: Mapped[str | None] = mapped_column(Text)


class Interaction(Base):
    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_queue_started", "queue", "started_at"),
        Index("ix_interactions_customer_started", "customer_id", "started_at"),
        # Insight (a customer's history by their reference) and the abandoned-call worklist
        # (was this number called back?).
        Index("ix_interactions_customer_ref_started", "customer_ref", "started_at"),
        Index("ix_interactions_ani_started", "ani", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="voice")
    direction: Mapped[str] = mapped_column(String(16), default="inbound")  # | outbound | callback
    ani: Mapped[str | None] = mapped_column(String(64))
    dnis: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    customer_ref: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[float] = mapped_column(Float, index=True)
    ivr_started_at: Mapped[float | None] = mapped_column(Float)
    ivr_ended_at: Mapped[float | None] = mapped_column(Float)
    queued_at: Mapped[float | None] = mapped_column(Float)
    offered_at: Mapped[float | None] = mapped_column(Float)
    answered_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    wrap_ended_at: Mapped[float | None] = mapped_column(Float)
    ivr_flow: Mapped[str | None] = mapped_column(String(64))
    ivr_outcome: Mapped[str | None] = mapped_column(String(32))
    ivr_path: Mapped[list[Any]] = mapped_column(default=list)
    ivr_variables: Mapped[dict[str, Any]] = mapped_column(default=dict)  # masked by the IVR
    queue: Mapped[str | None] = mapped_column(String(64))
    skills: Mapped[dict[str, Any]] = mapped_column(default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    agent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    agents: Mapped[list[Any]] = mapped_column(default=list)  # every agent, in order
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    hold_seconds: Mapped[float | None] = mapped_column(Float)
    wrap_seconds: Mapped[float | None] = mapped_column(Float)
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    #: answered | abandoned | overflowed | voicemail | callback | ivr | transferred | failed
    outcome: Mapped[str | None] = mapped_column(String(32), index=True)
    disposition: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    recording_ref: Mapped[str | None] = mapped_column(String(256))
    updated_at: Mapped[float] = mapped_column(Float)


class InteractionEvent(Base):
    __tablename__ = "interaction_events"
    __table_args__ = (
        Index("ix_interaction_events_interaction_at", "interaction_key", "at"),
        # Every report reads one kind of fact over a time range.
        Index("ix_interaction_events_kind_at", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(160), unique=True)
    interaction_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    written_at: Mapped[float] = mapped_column(Float)


class User(Base):
    """A console account (agent_console.accounts): agents, supervisors, admins."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    #: "scrypt$<n>$<r>$<p>$<salt>$<hash>" (agent_console.passwords)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # agent | supervisor | admin
    agent_id: Mapped[str | None] = mapped_column(String(64))  # the ACD agent an agent works as
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class LoginSession(Base):
    """A logged-in browser. Only the SHA-256 of the cookie's token is stored: a copy of the
    database does not let anyone in."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
