"""The audit log: one append-only entry per record an event touched, with its field-level changes.

Entries are written by the audit subscriber of the outbox relay (`handlers.py`), in the relay's
transaction, so each committed event is audited exactly once. An event touches one record (its
`position` 0 entry); a merge also touches each loser (positions 1..n), so the unique key is
(workspace_id, event_id, position) and a replay of the same event writes nothing twice.

`snapshot` is the record's state after the event (secrets redacted), kept as the base of the
next entry's diff (a creation's `changes` are not stored: they are every value its snapshot sets,
made when read); `details` holds what the event carried besides the record's state (a merge's
winner and losers, a conversion's results) or, for events that are not a record's state (a link,
an erase, a role change), the redacted payload itself.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.models import Base, JSONText, TenantMixin

# Entries are written once and read whole: their JSON is kept as text (see `JSONText`). SQL NULL
# (not JSON null) for "no snapshot": the previous-snapshot lookup skips NULL rows.
NullableJSON = JSON(none_as_null=True)


def split_type(event_type: str) -> tuple[str, str]:
    """`contact.merged` → ("contact", "merged"): the resource is the prefix, the action the verb.
    An entry's resource_type and action are its event type's, split so."""
    resource, dot, action = event_type.partition(".")
    return resource, action if dot else event_type


class AuditEntry(TenantMixin, Base):
    __tablename__ = "audit_entry"
    __table_args__ = (
        # Replays of an event (a crash before the relay's commit, a redelivery) write nothing new.
        Index("ix_audit_entry_event", "workspace_id", "event_id", "position", unique=True),
        # Keyset pages newest first: one index per filter, each ending in the sort keys.
        Index("ix_audit_entry_occurred", "workspace_id", "occurred_at", "id"),
        # A record's history, the resource_id filter (with resource_type too: the listing keeps
        # the type off ix_audit_entry_resource_type then, see `repository.py`) and the writer's
        # previous-state lookup. By id alone: ids are UUIDv7, unique across resources.
        Index("ix_audit_entry_resource", "workspace_id", "resource_id", "occurred_at", "id"),
        Index("ix_audit_entry_resource_type", "workspace_id", "resource_type", "occurred_at", "id"),
        Index("ix_audit_entry_actor", "workspace_id", "actor_id", "occurred_at", "id"),
        Index("ix_audit_entry_credential", "workspace_id", "credential_id", "occurred_at", "id"),
        # Also the event_type filter's: an event type is its resource type and action (both
        # columns are filtered, so either index serves it, in order).
        Index("ix_audit_entry_action", "workspace_id", "action", "occurred_at", "id"),
    )

    event_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(Integer, default=0)
    event_type: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(100))
    actor_type: Mapped[str | None] = mapped_column(String(20))
    actor_id: Mapped[uuid.UUID | None]
    credential_id: Mapped[uuid.UUID | None]
    changes: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    details: Mapped[dict[str, Any] | None] = mapped_column(NullableJSON)
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(NullableJSON)
    occurred_at: Mapped[datetime]
