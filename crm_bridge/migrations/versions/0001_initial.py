"""customers, cases, interactions and their timeline

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 23:51:47.447064
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("segment", sa.String(length=64), nullable=True),
        sa.Column("tier", sa.String(length=32), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("custom", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("account", name=op.f("uq_customers_account")),
        sa.UniqueConstraint("ref", name=op.f("uq_customers_ref")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customers_name_key"), ["name_key"], unique=False)

    op.create_table(
        "interaction_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=160), nullable=False),
        sa.Column("interaction_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("written_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interaction_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_interaction_events_event_key")),
    )
    with op.batch_alter_table("interaction_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interaction_events_interaction_at", ["interaction_key", "at"], unique=False
        )

    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.Column("closed_at", sa.Float(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_cases_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "customer_phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_phones_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_phones")),
    )
    with op.batch_alter_table("customer_phones", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_phones_number"), ["number"], unique=False)
        batch_op.create_index(
            "uq_customer_phones_customer_number", ["customer_id", "number"], unique=True
        )

    op.create_table(
        "interactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("ani", sa.String(length=64), nullable=True),
        sa.Column("dnis", sa.String(length=64), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("customer_ref", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ivr_started_at", sa.Float(), nullable=True),
        sa.Column("ivr_ended_at", sa.Float(), nullable=True),
        sa.Column("queued_at", sa.Float(), nullable=True),
        sa.Column("offered_at", sa.Float(), nullable=True),
        sa.Column("answered_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("wrap_ended_at", sa.Float(), nullable=True),
        sa.Column("ivr_flow", sa.String(length=64), nullable=True),
        sa.Column("ivr_outcome", sa.String(length=32), nullable=True),
        sa.Column("ivr_path", sa.JSON(), nullable=False),
        sa.Column("ivr_variables", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("agents", sa.JSON(), nullable=False),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("hold_seconds", sa.Float(), nullable=True),
        sa.Column("wrap_seconds", sa.Float(), nullable=True),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("disposition", sa.String(length=64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("recording_ref", sa.String(length=256), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_interactions_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
        sa.UniqueConstraint("key", name=op.f("uq_interactions_key")),
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_interactions_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(
            "ix_interactions_customer_started", ["customer_id", "started_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_interactions_outcome"), ["outcome"], unique=False)
        batch_op.create_index(
            "ix_interactions_queue_started", ["queue", "started_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interactions_started_at"), ["started_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interactions_started_at"))
        batch_op.drop_index("ix_interactions_queue_started")
        batch_op.drop_index(batch_op.f("ix_interactions_outcome"))
        batch_op.drop_index("ix_interactions_customer_started")
        batch_op.drop_index(batch_op.f("ix_interactions_agent_id"))

    op.drop_table("interactions")
    with op.batch_alter_table("customer_phones", schema=None) as batch_op:
        batch_op.drop_index("uq_customer_phones_customer_number")
        batch_op.drop_index(batch_op.f("ix_customer_phones_number"))

    op.drop_table("customer_phones")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_customer_id"))

    op.drop_table("cases")
    with op.batch_alter_table("interaction_events", schema=None) as batch_op:
        batch_op.drop_index("ix_interaction_events_interaction_at")

    op.drop_table("interaction_events")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_name_key"))

    op.drop_table("customers")
