"""Indexes for the deal close-date sort and the task due-date and priority sorts

These keyset sorts order by expressions (a coalesce with a far constant, a CASE ranking the
priorities); without an index holding the same expression, a list sorted by them reads and sorts
the whole workspace. The listings render these constants inline, so the statements match.

The due-date constant is the text UTCDateTime stores on each backend: naive UTC text with
microseconds on SQLite (so it compares with stored values and cursors as text), a timestamptz
with an explicit offset on PostgreSQL (so it does not depend on the session's time zone). The
close-date constant is 9999-12-30, not date.max, which asyncpg sends as 'infinity'.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAR_FUTURE = {
    "sqlite": "'9999-12-31 00:00:00.000000'",
    "postgresql": "'9999-12-31 00:00:00+00:00'",
}
PRIORITY_RANK = (
    "CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2"
    " WHEN 'low' THEN 3 ELSE 4 END"
)


def _indexes() -> list[tuple[str, str, str]]:
    far_future = FAR_FUTURE[op.get_bind().dialect.name]
    return [
        ("ix_deal_sort_close", "deal", "coalesce(expected_close_date, '9999-12-30')"),
        ("ix_task_sort_due", "task", f"coalesce(due_at, {far_future})"),
        ("ix_task_sort_priority", "task", f"({PRIORITY_RANK})"),
    ]


def upgrade() -> None:
    for name, table, expression in _indexes():
        op.create_index(name, table, ["workspace_id", sa.text(expression), "id"])


def downgrade() -> None:
    for name, table, _ in reversed(_indexes()):
        op.drop_index(name, table_name=table)
