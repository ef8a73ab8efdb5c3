"""PostgreSQL keeps finer statistics of search_document.content, so a search plans by its term

A search's `content LIKE '%term%'` is estimated from the column's statistics. With the default
sample (100 values, 30,000 rows), a term met by 60,000 of 2.4 million documents but absent from
the sample was estimated at 240 rows: the planner read every match through the trigram index and
sorted them (827 ms at 1,000,000 contacts) instead of walking the newest contacts until 20
matched (3–20 ms, as it did for a term the sample held). A target of 1000 samples 300,000 rows,
and the table is analysed here so existing installations plan well at once. SQLite plans its
FTS5 search without such statistics.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 11:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TARGET = 1000


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE search_document ALTER COLUMN content SET STATISTICS {TARGET}")
    op.execute("ANALYZE search_document")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE search_document ALTER COLUMN content SET STATISTICS -1")
