"""The relay and the scheduler claim through partial indexes of what is still pending

The claim of undispatched events and of due jobs read full indexes (`event (dispatched_at, id)`,
`job (status, run_at)`) that grow with every dispatched event and finished job: with stale
statistics the planner scanned the whole event table on every poll (26 ms at 55k events). The
partial indexes hold only pending rows, in the order the claims read them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_EVENT = sa.text("dispatched_at IS NULL")
DUE_JOB = sa.text("status IN ('pending', 'running')")


def upgrade() -> None:
    op.drop_index("ix_event_pending", table_name="event")
    op.create_index(
        "ix_event_pending",
        "event",
        ["id"],
        postgresql_where=PENDING_EVENT,
        sqlite_where=PENDING_EVENT,
    )
    op.drop_index("ix_job_due", table_name="job")
    op.create_index(
        "ix_job_due", "job", ["run_at", "id"], postgresql_where=DUE_JOB, sqlite_where=DUE_JOB
    )


def downgrade() -> None:
    op.drop_index("ix_job_due", table_name="job")
    op.create_index("ix_job_due", "job", ["status", "run_at"])
    op.drop_index("ix_event_pending", table_name="event")
    op.create_index("ix_event_pending", "event", ["dispatched_at", "id"])
