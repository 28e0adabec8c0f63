"""Indexes for reports, insight and the abandoned-call worklist

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_interactions_customer_ref_started", "interactions", ["customer_ref", "started_at"]
    )
    op.create_index("ix_interactions_ani_started", "interactions", ["ani", "started_at"])
    op.create_index("ix_interaction_events_kind_at", "interaction_events", ["kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_interaction_events_kind_at", table_name="interaction_events")
    op.drop_index("ix_interactions_ani_started", table_name="interactions")
    op.drop_index("ix_interactions_customer_ref_started", table_name="interactions")
