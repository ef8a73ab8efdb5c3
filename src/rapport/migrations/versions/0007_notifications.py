"""Per-user notifications, and the holders of assignable records the subscriber last saw

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("body", sa.String(length=2000), nullable=True),
        sa.Column("resource_type", sa.String(length=50), nullable=True),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "user_id"],
            ["membership.workspace_id", "membership.user_id"],
            name=op.f("fk_notification_workspace_id_user_id_membership"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_notification_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_notification")),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_user_created",
            ["workspace_id", "user_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_notification_user_unread",
            ["workspace_id", "user_id", "read_at", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_notification_user_type",
            ["workspace_id", "user_id", "type", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_notification_resource", ["workspace_id", "resource_id"], unique=False
        )

    op.create_table(
        "notification_holder",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_notification_holder_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "resource_id", name=op.f("pk_notification_holder")),
    )


def downgrade() -> None:
    op.drop_table("notification_holder")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_resource")
        batch_op.drop_index("ix_notification_user_type")
        batch_op.drop_index("ix_notification_user_unread")
        batch_op.drop_index("ix_notification_user_created")
    op.drop_table("notification")
