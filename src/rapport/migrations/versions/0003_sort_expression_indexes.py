"""Indexes for sorts on expressions and for the remaining list filters

Keyset lists sorted by coalesce()/lower() expressions stay index-driven at a million rows only
when an index holds the same expression; the listings inline these constants so they match.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 21:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXPRESSION_INDEXES = [
    ("ix_contact_sort_last_name", "contact", "coalesce(lower(last_name), '')"),
    ("ix_contact_sort_first_name", "contact", "coalesce(lower(first_name), '')"),
    ("ix_lead_sort_last_name", "lead", "coalesce(last_name, '')"),
    ("ix_lead_sort_value", "lead", "coalesce(value, 0)"),
    ("ix_deal_sort_amount", "deal", "coalesce(amount, 0)"),
]


FILTER_INDEXES = [
    ("ix_company_workspace_size", "company", "size"),
    ("ix_lead_workspace_source", "lead", "source"),
    ("ix_lead_workspace_budget_min", "lead", "budget_min"),
    ("ix_lead_workspace_budget_max", "lead", "budget_max"),
    ("ix_deal_workspace_currency", "deal", "currency"),
    ("ix_activity_workspace_direction", "activity", "direction"),
    ("ix_activity_workspace_author", "activity", "author_id"),
    ("ix_task_workspace_priority", "task", "priority"),
]


def upgrade() -> None:
    for name, table, expression in EXPRESSION_INDEXES:
        op.create_index(name, table, ["workspace_id", sa.text(expression), "id"])
    for name, table, column in FILTER_INDEXES:
        op.create_index(name, table, ["workspace_id", column])


def downgrade() -> None:
    for name, table, _ in reversed(FILTER_INDEXES):
        op.drop_index(name, table_name=table)
    for name, table, _ in reversed(EXPRESSION_INDEXES):
        op.drop_index(name, table_name=table)
