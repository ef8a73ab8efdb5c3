"""The audit log: who changed which field from what to what, when, and through which credential.

Writing. Every service records an event for each state change, carrying the resource as the API
returns it, the actor and the credential (`core.events`). The audit subscriber turns each relayed
batch into entries (`build_entries`, pure) with two statements: one query for the previous state
of every record the batch touches, one INSERT of all entries (on PostgreSQL, first a wait for any
other relay still holding an earlier event of those records, so entries follow event order). An
event whose payload is a record's state (its `id` is the event's record and it has a `version`)
becomes that record's new snapshot, and its `changes` are the field-level diff against the
previous snapshot; events of the same record within a batch diff against each other, in order.
A creation stores no `changes`: they are every value its snapshot sets, made when the entry is
read (`changes_of`), so a bulk create's thousand entries do not hold each value twice.
Other events (links, erasures, role changes, settings) are kept with their payload in `details`
and no diff (a record's entry carries its last state forward, so a record's newest entry always
holds the base of its next diff). A merge is also written into each loser's history
(`merged_into_id` → the winner). Secrets (fields named like secret, token, password, hash, key)
are redacted before anything is stored.

What a diff cannot know: a change some other write makes to a record without an event of that
record (a merge moving a deal to the winning contact, an erase detaching references) shows up in
the record's next entry, under the actor of that entry. Counters other records move all the time
(`activity_count`, `last_activity_at`) are therefore left out of diffs.

Reading. `/audit-log` (admins) lists the workspace's entries with filters; `/{records}/{id}/history`
(any reader) lists one record's. A history exists for a record that exists in the workspace, live
or soft-deleted (a deleted or merged record's history is where one sees who deleted or merged
it); an erased record no longer exists, so its history is a 404 like any unknown id, and its
entries stay readable by admins through `/audit-log?resource_id=...`. A history selects entries by
record id alone (ids are UUIDv7, unique across resources), which is what its index answers in
order.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.activities.errors import ActivityNotFound
from rapport.activities.repository import ActivityRepository
from rapport.audit.models import split_type
from rapport.audit.repository import (
    AUDIT_LISTING,
    HISTORY_LISTING,
    AuditRepository,
    AuditWriter,
    RecordKey,
    record_first,
)
from rapport.companies.errors import CompanyNotFound
from rapport.companies.repository import CompanyRepository
from rapport.contacts.errors import ContactNotFound
from rapport.contacts.repository import ContactRepository
from rapport.core.auth import Principal
from rapport.core.errors import NotFound
from rapport.core.ids import new_id
from rapport.core.listing import ListParams, Page
from rapport.core.outbox import DomainEvent
from rapport.core.repository import TenantRepository
from rapport.deals.errors import DealNotFound
from rapport.deals.repository import DealRepository
from rapport.leads.errors import LeadNotFound
from rapport.leads.repository import LeadRepository
from rapport.tasks.errors import TaskNotFound
from rapport.tasks.repository import TaskRepository

REDACTED = "[redacted]"
# Field names that hold secrets, at any depth: password hashes, tokens, API key secrets and hashes,
# webhook signing secrets, provider credentials.
SECRET_NAME = re.compile(
    r"secret|token|passw|passphrase|hash|private_key|signing_key|credentials$|^(api_)?key$",
    re.IGNORECASE,
)
# Top-level fields that are no one's edit: bookkeeping (`updated_at`, `version`), what never
# changes (`id`, `created_at`), and counters other records move without an event of this record
# (a lead's activity count, a contact's last activity), which would otherwise be pinned on the next
# person who edits the record.
NOT_CHANGES = frozenset(
    {"id", "created_at", "updated_at", "version", "activity_count", "last_activity_at"}
)
# What some events carry besides the record's state: kept in `details`, out of the snapshot.
EXTRAS: dict[str, frozenset[str]] = {
    "contact.merged": frozenset({"winner_id", "loser_ids", "moved"}),
    "company.merged": frozenset({"winner_id", "loser_ids", "moved"}),
    "lead.converted": frozenset(
        {"contact_id", "contact_created", "company_id", "company_created", "deal_id"}
    ),
    "lead.status_changed": frozenset({"from_status", "to_status", "activity_id"}),
    "deal.stage_changed": frozenset({"from_stage_id", "to_stage_id", "changed_at"}),
}
CREATED = "created"
MERGED = "merged"
ERASED = "erased"


# -- building entries (pure) -----------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def is_secret(name: str) -> bool:
    """Cached: the same few field names come back in every event."""
    return SECRET_NAME.search(name) is not None


@functools.lru_cache(maxsize=1024)
def _secret_names(names: tuple[Any, ...]) -> frozenset[Any]:
    """Which of an object's field names hold secrets: objects of a kind share their names."""
    return frozenset(name for name in names if is_secret(str(name)))


def redact(value: Any) -> Any:
    """The value with every secret-named field's value replaced, at any depth. What holds no
    secret is returned as it is, not copied (payloads are only read after this)."""
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        secret = _secret_names(tuple(value))
        for k, v in value.items():
            if k in secret:
                new = REDACTED
            elif v and isinstance(v, dict | list):  # an empty one holds nothing to redact
                new = redact(v)
            else:
                continue
            if new is not v:
                if out is None:
                    out = dict(value)
                out[k] = new
        return value if out is None else out
    if isinstance(value, list):
        items = [redact(v) if v and isinstance(v, dict | list) else v for v in value]
        return value if all(n is o for n, o in zip(items, value, strict=True)) else items
    return value


def _same(before: Any, after: Any) -> bool:
    # `True == 1` in Python: a custom field going from 1 to true is a change.
    return before == after and type(before) is type(after)


def diff(
    before: dict[str, Any] | None, after: dict[str, Any], prefix: str = ""
) -> dict[str, dict[str, Any]]:
    """`{field: {"from", "to"}}` for what differs. At the top level only the fields `after` has
    count (a payload never drops a field of its resource, so a missing one is not a change);
    objects (address, custom_fields) are compared field by field, by dotted path."""
    if before is None and not prefix:  # a creation: every value it sets
        return _created(after)
    old = before or {}
    names = list(after) if not prefix else [*after, *(k for k in old if k not in after)]
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        if not prefix and name in NOT_CHANGES:
            continue
        was, now = old.get(name), after.get(name)
        path = f"{prefix}{name}"
        if isinstance(now, dict) and (was is None or isinstance(was, dict)):
            out.update(diff(was or {}, now, f"{path}."))
        elif isinstance(was, dict) and now is None:
            out.update(diff(was, {}, f"{path}."))
        elif not _same(was, now):
            out[path] = {"from": was, "to": now}
    return out


def _created(after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`diff(None, after)`, for the one case every bulk create meets a thousand times."""
    out: dict[str, dict[str, Any]] = {}
    for name, now in after.items():
        if now is None or name in NOT_CHANGES:
            continue
        if isinstance(now, dict):
            out.update(diff({}, now, f"{name}."))
        else:
            out[name] = {"from": None, "to": now}
    return out


def _uuid(value: Any) -> uuid.UUID | None:
    """One id type whatever the driver returned (asyncpg has its own UUID class) or the payload
    held (ids as text); None for no or no valid id."""
    if value is None or isinstance(value, uuid.UUID):  # the driver's own compares the same
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _is_state(data: dict[str, Any], resource_id: uuid.UUID | None) -> bool:
    """The payload is the record's state as the API returns it (not a link, an id, a delta)."""
    return resource_id is not None and _uuid(data.get("id")) == resource_id and "version" in data


@dataclass(frozen=True)
class Touch:
    """A record an event touches, in order: the event's own (position 0) or a merge's loser."""

    event: DomainEvent
    position: int
    key: RecordKey | None


def _losers(event: DomainEvent, action: str) -> list[uuid.UUID]:
    if action != MERGED:
        return []
    ids = event.data.get("loser_ids")
    if not isinstance(ids, list):
        return []
    return [i for i in (_uuid(v) for v in ids) if i is not None]


def touches(events: Sequence[DomainEvent]) -> list[Touch]:
    out = []
    for event in events:
        resource_type, action = split_type(event.type)
        workspace_id = _uuid(event.workspace_id)
        assert workspace_id is not None
        resource_id = _uuid(event.resource_id)
        own = RecordKey(workspace_id, resource_type, resource_id) if resource_id else None
        out.append(Touch(event, 0, own))
        for position, loser in enumerate(_losers(event, action), start=1):
            out.append(Touch(event, position, RecordKey(workspace_id, resource_type, loser)))
    return out


def bases_needed(
    events: Sequence[DomainEvent], touched: Sequence[Touch] | None = None
) -> list[RecordKey]:
    """The records the batch touches, whose previous state its diffs start from: not those the
    batch creates (nothing came before their creation, so there is neither a state to read nor
    an earlier event to wait for; a bulk create's batch needs no lookup at all). `touched`:
    the batch's `touches`, if the caller has them."""
    first: dict[RecordKey, Touch] = {}
    for touch in touched if touched is not None else touches(events):
        if touch.key is not None:
            first.setdefault(touch.key, touch)
    return [
        key
        for key, touch in first.items()
        if touch.position > 0 or split_type(touch.event.type)[1] != CREATED
    ]


def build_entries(
    events: Sequence[DomainEvent],
    bases: dict[RecordKey, dict[str, Any] | None],
    touched: Sequence[Touch] | None = None,
) -> list[dict[str, Any]]:
    """The audit entries of a batch of events (in the relay's order), diffed against `bases`
    (each record's previous snapshot) and, within the batch, against each other."""
    state = {k: v for k, v in bases.items() if v is not None}
    rows: list[dict[str, Any]] = []
    for touch in touched if touched is not None else touches(events):
        event, key = touch.event, touch.key
        resource_type, action = split_type(event.type)
        data = redact(event.data)
        snapshot: dict[str, Any] | None = None
        changes: dict[str, Any] = {}
        details: dict[str, Any] | None
        extras = EXTRAS.get(event.type, frozenset())
        if touch.position > 0:  # a merge's loser: it now points at the winner
            assert key is not None
            winner = data.get("winner_id", str(event.resource_id))
            previous = state.get(key)
            changes = diff(previous, {"merged_into_id": winner})
            if previous is not None:
                snapshot = state[key] = {**previous, "merged_into_id": winner}
            details = {k: data[k] for k in sorted(extras) if k in data} or None
        elif key is not None and _is_state(data, key.resource_id):
            # Payloads are only read from here on: without extras, the payload is the snapshot.
            snapshot = {k: v for k, v in data.items() if k not in extras} if extras else data
            previous = state.get(key)
            # A creation's changes are every value its snapshot sets: derived when read
            # (`changes_of`), not stored twice.
            if previous is not None or action != CREATED:
                changes = diff(previous, snapshot)
            state[key] = snapshot
            details = {k: data[k] for k in sorted(extras) if k in data} or None
        else:
            details = {k: v for k, v in data.items() if k != "id"} or None
            if key is not None and action == ERASED:
                state.pop(key, None)
            elif key is not None:
                # The record's state is unchanged by a link or the like: carried forward, so the
                # newest entry of a record always holds its latest known state.
                snapshot = state.get(key)
        rows.append(
            {
                "workspace_id": _uuid(event.workspace_id),
                "id": new_id(),
                "event_id": _uuid(event.id),
                "position": touch.position,
                "event_type": event.type,
                "resource_type": resource_type,
                "resource_id": key.resource_id if key is not None else None,
                "action": action,
                "actor_type": event.actor_type,
                "actor_id": _uuid(event.actor_id),
                "credential_id": _uuid(event.credential_id),
                "changes": changes,
                "details": details,
                "snapshot": snapshot,
                "occurred_at": event.occurred_at,
            }
        )
    return rows


async def record(
    session: AsyncSession, events: Sequence[DomainEvent], *, fresh: bool = False
) -> int:
    """Audit a relayed batch: one query for the previous states, one INSERT of the entries
    (after waiting, on PostgreSQL, for relays that hold earlier events of the same records).
    `fresh`: no entry of these events can exist yet (the relay's own batch)."""
    if not events:
        return 0
    writer = AuditWriter(session)
    touched = touches(events)
    keys = bases_needed(events, touched)
    ids = [uuid.UUID(str(e.id)) for e in events]
    await writer.wait_for_earlier_events(keys, max(ids), ids)
    # Entries after the batch's last event are not its base (only a redelivered event, audited
    # alone after later ones, can meet such entries).
    last = max(e.occurred_at for e in events)
    bases = await writer.latest_snapshots(keys, last)
    rows = build_entries(events, bases, touched)
    await writer.insert(rows, fresh=fresh)
    return len(rows)


# -- reading --------------------------------------------------------------------------------------
ENTRY_FIELDS = (
    "id",
    "event_id",
    "event_type",
    "resource_type",
    "resource_id",
    "action",
    "actor_type",
    "actor_id",
    "credential_id",
    "changes",
    "details",
    "occurred_at",
)


def changes_of(entry: RowMapping | dict[str, Any]) -> dict[str, Any]:
    """An entry's field-level changes. A creation's are not stored (its snapshot holds every
    value it set): they are `diff(None, snapshot)`, made here."""
    changes = entry["changes"]
    if changes or entry["action"] != CREATED or entry["position"] or not entry["snapshot"]:
        return changes or {}
    return _created(entry["snapshot"])


def entry_read(row: RowMapping) -> dict[str, Any]:
    entry = {f: row[f] for f in ENTRY_FIELDS}
    entry["changes"] = changes_of(row)
    return entry


@dataclass(frozen=True)
class Audited:
    """A record type with a history route: where it lives and how its absence is reported."""

    repository: type[TenantRepository]
    not_found: type[NotFound]


HISTORIES: dict[str, Audited] = {
    "contact": Audited(ContactRepository, ContactNotFound),
    "company": Audited(CompanyRepository, CompanyNotFound),
    "lead": Audited(LeadRepository, LeadNotFound),
    "deal": Audited(DealRepository, DealNotFound),
    "activity": Audited(ActivityRepository, ActivityNotFound),
    "task": Audited(TaskRepository, TaskNotFound),
}


class AuditService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.repo = AuditRepository(session, principal.workspace_id)

    async def log(self, params: ListParams) -> Page:
        """The workspace's audit log, newest first (the route admits admins only)."""
        return await self.repo.list(AUDIT_LISTING, record_first(params))

    async def history(self, resource_type: str, record_id: uuid.UUID, params: ListParams) -> Page:
        """One record's entries, newest first; 404 (the record's own code) unless the record
        exists in the caller's workspace, live or soft-deleted."""
        audited = HISTORIES[resource_type]
        repo = audited.repository(self.session, self.principal.workspace_id)
        if not await repo.exists(record_id, include_deleted=True):
            raise audited.not_found()
        # By id alone (ids are unique across resources): what the record index answers in order.
        record = self.repo.table.c.resource_id == record_id
        return await self.repo.list(HISTORY_LISTING, params, record)
