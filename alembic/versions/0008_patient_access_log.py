"""patient access log: who was shown a patient's record or history

Append-only, like the audit trail: a trigger refuses updates and deletes at the database
itself, so neither the service nor an operator's stray statement can rewrite who read what.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION patient_access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'patient_access_log is append-only';
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        "patient_access_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column(
            "accessed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("what", sa.String(length=20), nullable=False),
        sa.Column("via", sa.String(length=100), nullable=False),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_access_log_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_access_log")),
    )
    op.create_index("ix_patient_access_log_patient_id", "patient_access_log", ["patient_id", "id"])
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(
        "CREATE TRIGGER patient_access_log_append_only "
        "BEFORE UPDATE OR DELETE ON patient_access_log "
        "FOR EACH ROW EXECUTE FUNCTION patient_access_log_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS patient_access_log_append_only ON patient_access_log")
    op.execute("DROP FUNCTION IF EXISTS patient_access_log_append_only()")
    op.drop_index("ix_patient_access_log_patient_id", table_name="patient_access_log")
    op.drop_table("patient_access_log")
