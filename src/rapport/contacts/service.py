"""Contacts: the record, its links to companies, bulk writes with upsert, duplicates and merges.

Choices (see the report of the "Core CRM records" issue):
- Linking a contact to a company it is already linked to updates the link (200); a new link is 201.
- `is_primary` on a link and the contact's `primary_company_id` are kept in step: the link to the
  primary company is the one marked primary; unlinking the primary company clears it.
- Erase (admin) deletes the contact's links and detaches what points at it (activities, tasks and
  deals lose their contact_id, leads their converted_contact_id), then removes it for good.
- A contact merged into another cannot be restored (409 `contact_merged`).
- A contact's search document carries its primary company's name; the companies module calls
  `reindex_company_contacts` when a company is renamed or merged.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, get_args

import orjson
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.companies.errors import CompanyNotFound
from rapport.companies.repository import CompanyRepository
from rapport.companies.schemas import CompanyRead
from rapport.contacts.errors import (
    ContactEmailTaken,
    ContactMerged,
    ContactNeedsName,
    ContactNotFound,
    InvalidDuplicatesCursor,
    InvalidMerge,
    LinkNotFound,
)
from rapport.contacts.models import LIVE_EMAIL
from rapport.contacts.repository import (
    COMPANY_REFERENCES,
    CONTACT_DUPLICATE_KEYS,
    CONTACT_LISTING,
    CONTACT_REFERENCES,
    ContactCompanyRepository,
    ContactRepository,
)
from rapport.contacts.schemas import (
    ContactBulkUpdate,
    ContactCreate,
    ContactMerge,
    ContactMergeField,
    ContactUpdate,
    LinkBody,
)
from rapport.core import events
from rapport.core.auth import Principal
from rapport.core.bulk import run_batched
from rapport.core.clock import utcnow
from rapport.core.errors import AppError
from rapport.core.ids import new_id
from rapport.core.listing import ListParams, Page
from rapport.core.values import MAX_TAGS, phone_e164
from rapport.records.service import Change, Holders, RecordService, SearchDoc

FIELDS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone_e164",
    "job_title",
    "status",
    "address",
    "notes",
    "tags",
    "custom_fields",
    "owner_id",
    "primary_company_id",
    "merged_into_id",
    "last_activity_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "version",
)
COMPANY_FIELDS = tuple(CompanyRead.model_fields)
REINDEX_CHUNK = 500
# A contact keeps at least one of these (`ContactNeedsName`).
NAME_FIELDS = ("first_name", "last_name", "email")
# What a PATCH checks against the stored contact: the name rule, whether the primary company
# moved (its link's bookkeeping) and the custom fields (merged into the stored ones). A PATCH of
# anything else (a job title, a status, an owner, tags...) reads nothing before its UPDATE.
READS_CURRENT = frozenset({*NAME_FIELDS, "primary_company_id", "custom_fields"})


def _unread(contact_id: uuid.UUID) -> Mapping[str, Any]:
    """The `current` of a PATCH that reads nothing of the stored contact: its id alone."""
    return {"id": contact_id}


def full_name(row: Any) -> str:
    return " ".join(p.strip() for p in (row["first_name"], row["last_name"]) if p and p.strip())


def contact_read(row: Any) -> dict[str, Any]:
    data = {f: row[f] for f in FIELDS}
    data["full_name"] = full_name(row)
    data["company_name"] = row.get("company_name")
    return data


def link_read(row: Any) -> dict[str, Any]:
    return {
        "contact_id": row["contact_id"],
        "company_id": row["company_id"],
        "role": row["role"],
        "is_primary": row["is_primary"],
        "linked_at": row["created_at"],
    }


def link_deleted(contact_id: uuid.UUID, company_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": f"{contact_id}:{company_id}",
        "contact_id": contact_id,
        "company_id": company_id,
        "deleted": True,
    }


def linked_company_read(row: Any) -> dict[str, Any]:
    return {
        "company_id": row["id"],
        "role": row["role"],
        "is_primary": row["is_primary"],
        "linked_at": row["linked_at"],
        "company": {f: row[f] for f in COMPANY_FIELDS},
    }


def linked_contact_read(row: Any) -> dict[str, Any]:
    return {
        "contact_id": row["id"],
        "role": row["role"],
        "is_primary": row["is_primary"],
        "linked_at": row["linked_at"],
        "contact": contact_read(row),
    }


# -- merge helpers shared with companies ---------------------------------------------------------
def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | dict | list) and not value)


async def merge_rows(
    repo: Any, body: Any, not_found: type[Exception]
) -> tuple[RowMapping, list[RowMapping]]:
    """The live winner and losers of a merge; refuses self-merges, repeats and unknown ids."""
    if body.winner_id in body.loser_ids:
        raise InvalidMerge(
            "A record cannot be merged into itself.",
            details=[{"field": "body.loser_ids", "reason": "contains winner_id"}],
        )
    if len(set(body.loser_ids)) != len(body.loser_ids):
        raise InvalidMerge(
            "Each record can be merged once.",
            details=[{"field": "body.loser_ids", "reason": "repeats an id"}],
        )
    ids = [body.winner_id, *body.loser_ids]
    for name, source in body.fields.items():
        if source not in ids:
            raise InvalidMerge(
                "A field's value must come from one of the merged records.",
                details=[{"field": f"body.fields.{name}", "reason": "not one of the merged ids"}],
            )
    rows = await repo.live_by_ids(ids)
    missing = [i for i in ids if i not in rows]
    if missing:
        raise not_found(  # type: ignore[call-arg]
            details=[{"field": "body", "reason": f"no live record {i}"} for i in missing]
        )
    return rows[body.winner_id], [rows[i] for i in body.loser_ids]


def merged_values(
    winner: RowMapping,
    losers: Sequence[RowMapping],
    names: Iterable[str],
    chosen: dict[Any, uuid.UUID],
) -> dict[str, Any]:
    """Per field: the chosen record's value; else the winner's; else the first loser's that has
    one. `custom_fields` are merged key by key in the same order of precedence; tags are unioned."""
    by_id = {row["id"]: row for row in (winner, *losers)}
    values: dict[str, Any] = {}
    for name in names:
        if name in chosen:
            values[name] = by_id[chosen[name]][name]
            continue
        value = winner[name]
        if _empty(value):
            value = next((r[name] for r in losers if not _empty(r[name])), value)
        values[name] = value
    custom: dict[str, Any] = {}
    order = [*reversed(losers), winner]
    if "custom_fields" in chosen:
        order.append(by_id[chosen["custom_fields"]])
    for row in order:
        custom.update(row["custom_fields"] or {})
    values["custom_fields"] = custom
    tags: dict[str, None] = {}
    for row in (winner, *losers):
        for tag in row["tags"] or []:
            tags.setdefault(tag, None)
    values["tags"] = list(tags)[:MAX_TAGS]
    if "phone" in values:
        try:
            values["phone_e164"] = phone_e164(values["phone"])
        except ValueError:
            values["phone_e164"] = None
    return values


# -- duplicates shared with companies ------------------------------------------------------------
def _encode_cursor(reason: str, key: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([reason, key])).decode().rstrip("=")


def _decode_cursor(cursor: str, reasons: Sequence[str]) -> tuple[str, str]:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        reason, key = raw
        if reason not in reasons or not isinstance(key, str):
            raise ValueError
        return reason, key
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidDuplicatesCursor(
            details=[{"field": "query.cursor", "reason": "not a cursor issued for this list"}]
        ) from exc


async def find_duplicates(
    repo: Any,
    keys: dict[str, tuple[Any, list[Any]]],
    reason: str | None,
    limit: int,
    cursor: str | None,
    read: Callable[[Any], dict[str, Any]],
    members: str,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of duplicate groups (reason by reason, key by key) and the next page's cursor."""
    reasons = list(keys) if reason is None else [reason]
    start, after = reasons[0], None
    if cursor:
        start, after = _decode_cursor(cursor, reasons)
    found: list[tuple[str, str, int]] = []
    for name in reasons[reasons.index(start) :]:
        key, where = keys[name]
        wanted = limit + 1 - len(found)
        rows = await repo.duplicate_keys(key, where, after if name == start else None, wanted)
        found.extend((name, k, n) for k, n in rows)
        if len(found) > limit:
            break
    has_more = len(found) > limit
    page = found[:limit]
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for name in reasons:
        wanted_keys = [k for r, k, _ in page if r == name]
        if not wanted_keys:
            continue
        key, where = keys[name]
        for row in await repo.duplicate_members(key, where, wanted_keys):
            grouped[(name, row["dup_key"])].append(read(row))
    groups = [
        {
            "reason": name,
            "key": k.rsplit("|", 1)[0] if name == "name" and members == "contacts" else k,
            "count": n,
            members: grouped[(name, k)],
        }
        for name, k, n in page
    ]
    next_cursor = _encode_cursor(page[-1][0], page[-1][1]) if has_more and page else None
    return groups, next_cursor


# -- what the companies module calls -------------------------------------------------------------
async def reindex_company_contacts(
    session: AsyncSession, principal: Principal, company_ids: Sequence[uuid.UUID]
) -> None:
    """Refresh the search documents of the contacts whose primary company is one of these (their
    documents carry the company's name): after a company is renamed or merged."""
    service = ContactService(session, principal)
    after: uuid.UUID | None = None
    while True:
        rows = await service.repo.with_primary_companies(company_ids, after, REINDEX_CHUNK)
        await service.reindex_many(rows)
        if len(rows) < REINDEX_CHUNK:
            return
        after = rows[-1]["id"]


async def move_company_references(
    session: AsyncSession, workspace_id: uuid.UUID, from_ids: list[uuid.UUID], to_id: uuid.UUID
) -> dict[str, int]:
    """A company merge: links (one per contact), primary companies, activities, tasks, deals and
    converted leads of the `from_ids` companies now point at `to_id`."""
    link_repo = ContactCompanyRepository(session, workspace_id)
    rows = await link_repo.links_of("company_id", [to_id, *from_ids])
    kept = {r["contact_id"]: r for r in rows if r["company_id"] == to_id}
    order = {company_id: i for i, company_id in enumerate(from_ids)}
    new: dict[uuid.UUID, dict[str, Any]] = {}
    promote: set[uuid.UUID] = set()
    for row in sorted(
        (r for r in rows if r["company_id"] != to_id), key=lambda r: order[r["company_id"]]
    ):
        contact_id = row["contact_id"]
        if contact_id in kept:
            if row["is_primary"] and not kept[contact_id]["is_primary"]:
                promote.add(contact_id)
            continue
        if contact_id in new:
            new[contact_id]["is_primary"] = new[contact_id]["is_primary"] or row["is_primary"]
            new[contact_id]["role"] = new[contact_id]["role"] or row["role"]
            continue
        new[contact_id] = {
            "contact_id": contact_id,
            "company_id": to_id,
            "role": row["role"],
            "is_primary": row["is_primary"],
            "created_at": row["created_at"],
        }
    await link_repo.delete_links_of("company_id", from_ids)
    await link_repo.insert_links(list(new.values()))
    for contact_id in promote:
        await link_repo.update_link(contact_id, to_id, {"is_primary": True})
    moved = {
        "links": len(new),
        "contacts": await ContactRepository(session, workspace_id).move_primary_company(
            from_ids, to_id
        ),
    }
    for name, (repo_class, column) in COMPANY_REFERENCES.items():
        moved[name] = await repo_class(session, workspace_id).move(column, from_ids, to_id)
    return moved


class ContactService(RecordService):
    resource = "contact"
    repository_class = ContactRepository
    listing = CONTACT_LISTING
    not_found = ContactNotFound
    searchable = True
    member_fields = ("owner_id",)
    record_fields = {"primary_company_id": CompanyRepository}
    repo: ContactRepository

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        super().__init__(session, principal)
        self.links = ContactCompanyRepository(session, principal.workspace_id)
        self._emails: Holders | None = None  # a bulk write's email holders

    def read(self, row: RowMapping) -> dict[str, Any]:
        return contact_read(row)

    def search_document(self, row: RowMapping) -> SearchDoc:
        name = full_name(row)
        company = row.get("company_name")
        return SearchDoc(
            title=name or row["email"] or "",
            subtitle=company or row["job_title"] or (row["email"] if name else None),
            parts=[row["first_name"], row["last_name"], row["email"], row["job_title"], company],
            phones=[row["phone"], row["phone_e164"]],
        )

    # -- rules -----------------------------------------------------------------------------------
    async def _check_email(
        self, email: str | None, exclude: uuid.UUID | None = None, field: str = "body.email"
    ) -> None:
        if not email:
            return
        if self._emails is not None and self._emails.knows(email):
            existing = self._emails.holder(email, exclude)
        else:
            existing = await self.repo.email_owner(email, exclude)
        if existing is not None:
            raise ContactEmailTaken(
                details=[
                    {
                        "field": field,
                        "reason": f"already used by contact {existing}",
                        "existing_id": str(existing),
                    }
                ]
            )

    async def _check_company(self, company_id: uuid.UUID | None) -> None:
        await self.check_record(CompanyRepository, company_id, "primary_company_id")

    async def _live_company(self, company_id: uuid.UUID) -> None:
        repo = CompanyRepository(self.session, self.workspace_id)
        if not await repo.exists(company_id, include_deleted=False):
            raise CompanyNotFound()

    # -- writes ----------------------------------------------------------------------------------
    async def prepare_create(
        self, body: ContactCreate, *, email_checked: bool = True, **_options: Any
    ) -> dict[str, Any]:
        """`email_checked=False`: the caller lets the INSERT find a live holder of the email."""
        if email_checked:
            await self._check_email(body.email)
        await self.check_member(body.owner_id, "owner_id")
        await self._check_company(body.primary_company_id)
        values = body.model_dump(exclude={"address", "custom_fields"})
        values["address"] = body.address.model_dump(exclude_none=True) if body.address else {}
        values["phone_e164"] = phone_e164(body.phone)
        values["custom_fields"] = await self.custom_fields.validate(body.custom_fields)
        return values

    def claim_created(self, values: dict[str, Any]) -> None:
        if self._emails is not None and values["email"]:
            self._emails.move(values["id"], None, values["email"])

    async def create(self, body: ContactCreate) -> RowMapping:
        values = await self.prepare_create(body, email_checked=False)
        row = await self.repo.insert_unless_held(values, LIVE_EMAIL)
        if row is None:  # a live contact holds the email: name it
            await self._check_email(values["email"])
            raise ContactEmailTaken()  # released since: the client may simply try again
        await self.after_created([row])
        return row

    async def update(
        self, contact_id: uuid.UUID, body: ContactUpdate, expected: int | None
    ) -> RowMapping:
        sent = body.model_fields_set - {"id"}
        if sent and not sent & READS_CURRENT:
            # Nothing sent is checked against the stored contact: its UPDATE answers for its
            # existence and version (404 or 412 when it touches nothing), so no read before it.
            return await self._apply(_unread(contact_id), body, sent, expected)
        return await self._apply(await self.get(contact_id), body, sent, expected)

    async def _apply(
        self,
        current: Mapping[str, Any],
        body: ContactUpdate | ContactCreate,
        sent: set[str],
        expected: int | None,
    ) -> RowMapping:
        return await self.apply_update(await self.prepare_update(body, current, sent), expected)

    async def prepare_update(
        self,
        body: ContactUpdate | ContactCreate,
        current: Mapping[str, Any],
        sent: set[str] | None = None,
    ) -> Change:
        sent = body.model_fields_set - {"id"} if sent is None else sent
        changes: dict[str, Any] = {}
        for name in sent:
            value = getattr(body, name)
            if name == "status" and value is None:
                continue  # required: null leaves it as is
            changes[name] = value
        contact_id = current["id"]
        if "email" in changes:
            await self._check_email(changes["email"], exclude=contact_id)
        if "owner_id" in changes:
            await self.check_member(changes["owner_id"], "owner_id")
        company_moved = (
            "primary_company_id" in changes
            and changes["primary_company_id"] != current["primary_company_id"]
        )
        if company_moved:
            await self._check_company(changes["primary_company_id"])
        if "phone" in changes:
            changes["phone_e164"] = phone_e164(changes["phone"])
        if "address" in changes:
            changes["address"] = body.address.model_dump(exclude_none=True) if body.address else {}
        if "tags" in changes and changes["tags"] is None:
            changes["tags"] = []
        if "custom_fields" in changes:
            changes["custom_fields"] = await self.custom_fields.validate(
                body.custom_fields or {}, current["custom_fields"]
            )
        merged = {**current, **changes}
        # The stored contact has a name: only a change of one can take it away.
        if changes.keys() & NAME_FIELDS and not any(merged[n] for n in NAME_FIELDS):
            raise ContactNeedsName(
                details=[{"field": "body", "reason": "first_name, last_name and email are empty"}]
            )
        return Change(current, changes, {"company_moved": company_moved})

    def claim_updated(self, change: Change) -> None:
        if self._emails is not None and "email" in change.changes:
            self._emails.move(change.id, change.current["email"], change.changes["email"])

    async def after_updated(self, pairs: Sequence[tuple[Change, RowMapping]]) -> None:
        await super().after_updated(pairs)
        moved = [
            (row["id"], row["primary_company_id"]) for c, row in pairs if c.notes["company_moved"]
        ]
        if moved:
            await self.links.sync_primary_many(moved)

    async def update_rows(
        self, items: Sequence[tuple[uuid.UUID, dict[str, Any]]]
    ) -> list[RowMapping | None]:
        return await self.repo.update_each(items)

    async def before_restore(self, row: RowMapping) -> None:
        if row["merged_into_id"] is not None:
            raise ContactMerged(
                details=[{"field": "id", "reason": f"merged into {row['merged_into_id']}"}]
            )
        await self._check_email(row["email"], exclude=row["id"], field="email")

    async def before_erase(self, row: RowMapping) -> None:
        """Links go; activities, tasks, deals and leads that point at the contact are detached."""
        ids = [row["id"]]
        await self.links.delete_links_of("contact_id", ids)
        for repo_class, column in CONTACT_REFERENCES.values():
            await repo_class(self.session, self.workspace_id).move(column, ids, None)
        await self.repo.repoint_merged(ids, None)

    # -- bulk ------------------------------------------------------------------------------------
    def end_batch(self) -> None:
        super().end_batch()
        self._emails = None

    async def _preload_emails(self, bodies: Sequence[Any]) -> list[RowMapping]:
        """The live contacts holding the batch's emails, in one query."""
        emails = {b.email for b in bodies if b.email}
        rows = await self.repo.live_by_emails(sorted(emails))
        self._emails = Holders(emails, [(row["email"], row["id"]) for row in rows])
        return rows

    async def preload_creates(self, bodies: Sequence[Any], **options: Any) -> None:
        rows = await self._preload_emails(bodies)
        # With upsert=email, these are the contacts the items update.
        self._current.update({uuid.UUID(str(row["id"])): row for row in rows})
        await super().preload_creates(bodies, **options)

    async def preload_updates(self, bodies: Sequence[Any]) -> None:
        await super().preload_updates(bodies)
        await self._preload_emails(bodies)

    async def bulk_create(
        self, items: list[dict[str, Any]], atomic: bool, upsert: str | None = None
    ) -> dict[str, Any]:
        def created(row: RowMapping) -> dict[str, Any]:
            return {**contact_read(row), "outcome": "created"}

        if upsert != "email":
            return await self.bulk_create_items(
                items, ContactCreate, atomic, mark={"outcome": "created"}
            )

        async def prepare(body: ContactCreate, _index: int) -> tuple[str, Any]:
            """An email a live contact (or an earlier item) holds updates that contact."""
            holder = self._emails.holder(body.email) if self._emails and body.email else None
            if holder is not None:
                change = await self.prepare_bulk_update(body, holder, body.model_fields_set)
                return "updated", change
            values = await self.prepare_create(body)
            values["id"] = new_id()
            self.claim_created(values)
            self._current[values["id"]] = {**values, "company_name": None}
            return "created", values

        async def write(plans: list[tuple[str, Any]]) -> list[dict[str, Any] | AppError]:
            """The new contacts in one batched INSERT, then the updates in item order (an item
            may update a contact an earlier item created)."""
            rows = iter(await self.insert_rows([v for kind, v in plans if kind == "created"]))
            created_rows = {}
            for kind, plan in plans:
                if kind == "created":
                    created_rows[plan["id"]] = next(rows)
            await self.after_created(list(created_rows.values()))
            updates = iter(await self.write_updates([c for kind, c in plans if kind == "updated"]))
            out: list[dict[str, Any] | AppError] = []
            for kind, plan in plans:
                if kind == "created":
                    out.append(created(created_rows[plan["id"]]))
                    continue
                row = next(updates)
                out.append(
                    row
                    if isinstance(row, AppError)
                    else {**contact_read(row), "outcome": "updated"}
                )
            return out

        async def one(body: ContactCreate, _index: int) -> dict[str, Any]:
            self.end_batch()
            if body.email:
                existing = await self.repo.email_owner(body.email)
                if existing is not None:
                    current = await self.get(existing)
                    row = await self._apply(current, body, body.model_fields_set, None)
                    return {**contact_read(row), "outcome": "updated"}
            return created(await self.create(body))

        try:
            return await run_batched(
                self.session,
                items,
                ContactCreate,
                atomic=atomic,
                preload=self.preload_creates,
                prepare=prepare,
                write=write,
                fallback=one,
            )
        finally:
            self.end_batch()

    async def bulk_update(self, items: list[dict[str, Any]], atomic: bool) -> dict[str, Any]:
        return await self.bulk_update_items(items, ContactBulkUpdate, atomic)

    # -- links -----------------------------------------------------------------------------------
    async def _link_parties(
        self, contact_id: uuid.UUID, company_id: uuid.UUID, company_first: bool
    ) -> RowMapping:
        """The live contact; 404 for a missing contact or company (the path's owner first)."""
        if company_first:
            await self._live_company(company_id)
            return await self.get(contact_id)
        contact = await self.get(contact_id)
        await self._live_company(company_id)
        return contact

    async def link_company(
        self,
        contact_id: uuid.UUID,
        company_id: uuid.UUID,
        body: LinkBody | None,
        *,
        company_first: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Link (201) or update the link's role / primary flag (200); returns (link, created)."""
        contact = await self._link_parties(contact_id, company_id, company_first)
        body = body or LinkBody()
        primary = contact["primary_company_id"]
        if body.is_primary is True:
            primary = company_id
        elif body.is_primary is False and primary == company_id:
            primary = None
        existing = await self.links.get_link(contact_id, company_id)
        if existing is None:
            link = await self.links.insert_link(
                contact_id, company_id, body.role, primary == company_id
            )
        else:
            values: dict[str, Any] = {"is_primary": primary == company_id}
            if "role" in body.model_fields_set:
                values["role"] = body.role
            link = await self.links.update_link(contact_id, company_id, values)
        if primary != contact["primary_company_id"]:
            await self.updated(contact_id, {"primary_company_id": primary}, None)
            await self.links.sync_primary(contact_id, primary)
        await events.record(
            self.session,
            workspace_id=self.workspace_id,
            type="contact.linked",
            data={**link_read(link), "created": existing is None},
            principal=self.principal,
            resource_id=contact_id,
        )
        return link_read(link), existing is None

    async def unlink_company(
        self, contact_id: uuid.UUID, company_id: uuid.UUID, *, company_first: bool = False
    ) -> None:
        contact = await self._link_parties(contact_id, company_id, company_first)
        if not await self.links.delete_link(contact_id, company_id):
            raise LinkNotFound()
        if contact["primary_company_id"] == company_id:
            await self.updated(contact_id, {"primary_company_id": None}, None)
        await events.record(
            self.session,
            workspace_id=self.workspace_id,
            type="contact.unlinked",
            data={"contact_id": contact_id, "company_id": company_id},
            principal=self.principal,
            resource_id=contact_id,
        )

    async def companies_of(self, contact_id: uuid.UUID, params: ListParams) -> Page:
        await self.get(contact_id)
        return await self.links.companies_of(contact_id, params)

    async def contacts_of(self, company_id: uuid.UUID, params: ListParams) -> Page:
        await self._live_company(company_id)
        return await self.links.contacts_of(company_id, params)

    # -- duplicates and merge --------------------------------------------------------------------
    async def duplicates(
        self, reason: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        return await find_duplicates(
            self.repo, CONTACT_DUPLICATE_KEYS, reason, limit, cursor, contact_read, "contacts"
        )

    async def merge(self, body: ContactMerge) -> dict[str, Any]:
        """One transaction: the winner takes the chosen values and everything that pointed at the
        losers; the losers are soft-deleted with merged_into_id = winner."""
        winner, losers = await merge_rows(self.repo, body, ContactNotFound)
        winner_id, loser_ids = winner["id"], [row["id"] for row in losers]
        names = [n for n in get_args(ContactMergeField) if n != "custom_fields"]
        changes = merged_values(winner, losers, names, body.fields)
        if not (changes["first_name"] or changes["last_name"] or changes["email"]):
            raise ContactNeedsName(
                details=[{"field": "body.fields", "reason": "the merged contact has no name"}]
            )
        activity = [r["last_activity_at"] for r in (winner, *losers) if r["last_activity_at"]]
        changes["last_activity_at"] = max(activity) if activity else None
        now = utcnow()
        for loser in losers:
            gone = await self.repo.update(
                loser["id"], {"deleted_at": now, "merged_into_id": winner_id}
            )
            assert gone is not None
            await self.reindex(gone)
        moved = {"links": await self._move_links(winner_id, loser_ids), "contacts": 0}
        for name, (repo_class, column) in CONTACT_REFERENCES.items():
            moved[name] = await repo_class(self.session, self.workspace_id).move(
                column, loser_ids, winner_id
            )
        await self.repo.repoint_merged(loser_ids, winner_id)
        row = await self.repo.update(winner_id, changes)
        assert row is not None
        await self.links.sync_primary(winner_id, row["primary_company_id"])
        await self.after_write("merged", row, winner_id=winner_id, loser_ids=loser_ids, moved=moved)
        return {"winner": contact_read(row), "loser_ids": loser_ids, "moved": moved}

    async def _move_links(self, winner_id: uuid.UUID, loser_ids: list[uuid.UUID]) -> int:
        """The losers' links become the winner's; a company the winner is already linked to keeps
        the winner's link (no duplicate key)."""
        rows = await self.links.links_of("contact_id", [winner_id, *loser_ids])
        have = {r["company_id"] for r in rows if r["contact_id"] == winner_id}
        order = {contact_id: i for i, contact_id in enumerate(loser_ids)}
        new = []
        for row in sorted(
            (r for r in rows if r["contact_id"] != winner_id), key=lambda r: order[r["contact_id"]]
        ):
            if row["company_id"] in have:
                continue
            have.add(row["company_id"])
            new.append(
                {
                    "contact_id": winner_id,
                    "company_id": row["company_id"],
                    "role": row["role"],
                    "is_primary": False,
                    "created_at": row["created_at"],
                }
            )
        await self.links.delete_links_of("contact_id", loser_ids)
        await self.links.insert_links(new)
        return len(new)
