"""Audit log

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, columns): keyset pages newest first, one index per filter of /audit-log and history.
INDEXES = (
    ("ix_audit_entry_occurred", ["workspace_id", "occurred_at", "id"]),
    ("ix_audit_entry_resource", ["workspace_id", "resource_id", "occurred_at", "id"]),
    (
        "ix_audit_entry_resource_typed",
        ["workspace_id", "resource_id", "resource_type", "occurred_at", "id"],
    ),
    ("ix_audit_entry_resource_type", ["workspace_id", "resource_type", "occurred_at", "id"]),
    ("ix_audit_entry_actor", ["workspace_id", "actor_id", "occurred_at", "id"]),
    ("ix_audit_entry_credential", ["workspace_id", "credential_id", "occurred_at", "id"]),
    ("ix_audit_entry_action", ["workspace_id", "action", "occurred_at", "id"]),
    ("ix_audit_entry_event_type", ["workspace_id", "event_type", "occurred_at", "id"]),
)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("resource_type", sa.String(length=100), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("actor_type", sa.String(length=20), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("credential_id", sa.Uuid(), nullable=True),
        sa.Column("changes", _json(), nullable=False),
        sa.Column("details", _json(), nullable=True),
        sa.Column("snapshot", _json(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_audit_entry_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_audit_entry")),
    )
    op.create_index(
        "ix_audit_entry_event", "audit_entry", ["workspace_id", "event_id", "position"], unique=True
    )
    for name, columns in INDEXES:
        op.create_index(name, "audit_entry", columns)


def downgrade() -> None:
    for name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name="audit_entry")
    op.drop_index("ix_audit_entry_event", table_name="audit_entry")
    op.drop_table("audit_entry")
