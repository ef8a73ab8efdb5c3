"""Events and audit entries keep their JSON as text; the audit log loses two indexes

Both tables are written for every change and read whole: their JSON is never queried inside.
As PostgreSQL's `json` (kept as the text written, checked on the way in) instead of `jsonb`
(parsed into a binary form on write, printed again on every read), they cost less to write and
to read. SQLite stores both alike: nothing changes there.

Two of the audit log's ten indexes are dropped, which every entry paid for on write.
`ix_audit_entry_event_type`: an event type is its resource type and action, so the filter also
filters both and reads their indexes. `ix_audit_entry_resource_typed`: a resource_id filter keeps
resource_type off its index, so it reads `ix_audit_entry_resource`.

Per 1000 contacts bulk-created and relayed (`bench.request_cpu bulk 20 --relay`, PostgreSQL's
statement log, 1,000,000 contacts loaded): the events' COPY 16.5 → 12.1 ms, the audit entries'
COPY 16.9 → 12.4 ms, the relay's claim (which reads the events) 3.7 → 1.7 ms.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RETYPED = {"event": ("data",), "audit_entry": ("changes", "details", "snapshot")}
DROPPED = (
    ("ix_audit_entry_event_type", ["workspace_id", "event_type", "occurred_at", "id"]),
    (
        "ix_audit_entry_resource_typed",
        ["workspace_id", "resource_id", "resource_type", "occurred_at", "id"],
    ),
)


def _retype(to: str) -> None:
    for table, columns in RETYPED.items():
        changes = ", ".join(f"ALTER COLUMN {c} TYPE {to} USING {c}::{to}" for c in columns)
        op.execute(f"ALTER TABLE {table} {changes}")  # one rewrite of each table


def upgrade() -> None:
    for name, _ in DROPPED:
        op.drop_index(name, table_name="audit_entry")
    if op.get_bind().dialect.name == "postgresql":
        _retype("json")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _retype("jsonb")
    for name, columns in DROPPED:
        op.create_index(name, "audit_entry", columns)
