"""outbox lanes: jobs that must not overtake each other's slots share a lane

A webhook job's lane is its endpoint: the dispatcher holds at most one job of a lane in
flight, so an endpoint that hangs holds one slot, not all of them. The pending index serves
the claim's per-lane "oldest due job" and its walk over the lanes; the in-progress index its
"is this lane busy" check, without reading a lane's backlog.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox_jobs", sa.Column("lane", sa.Uuid(), nullable=True))
    # Webhook jobs queued before this revision: their lane is their message's endpoint.
    op.execute(
        """
        UPDATE outbox_jobs j SET lane = d.endpoint_id
          FROM webhook_deliveries d
         WHERE j.target = 'webhook' AND j.aggregate_id = d.id
           AND j.status IN ('pending', 'in_progress')
        """
    )
    op.create_index(
        "ix_outbox_jobs_pending_lane",
        "outbox_jobs",
        ["target", "lane", "available_at", "id"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_outbox_jobs_in_progress_lane",
        "outbox_jobs",
        ["target", "lane", "locked_until"],
        postgresql_where=sa.text("status = 'in_progress'"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_jobs_in_progress_lane", table_name="outbox_jobs")
    op.drop_index("ix_outbox_jobs_pending_lane", table_name="outbox_jobs")
    op.drop_column("outbox_jobs", "lane")
