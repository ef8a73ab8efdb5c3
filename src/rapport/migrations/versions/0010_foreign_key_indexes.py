"""An index behind every foreign key (deleting a referenced row no longer reads whole tables)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ("ix_lead_converted_contact", "lead", ["workspace_id", "converted_contact_id"]),
    ("ix_lead_converted_company", "lead", ["workspace_id", "converted_company_id"]),
    ("ix_lead_converted_deal", "lead", ["workspace_id", "converted_deal_id"]),
    ("ix_auth_session_user", "auth_session", ["workspace_id", "user_id"]),
    ("ix_refresh_token_session", "refresh_token", ["workspace_id", "session_id"]),
    ("ix_api_key_creator", "api_key", ["workspace_id", "created_by"]),
    ("ix_invitation_inviter", "invitation", ["workspace_id", "invited_by"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
