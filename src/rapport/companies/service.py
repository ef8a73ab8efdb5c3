"""Companies: the rules of the record every other record module copies."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, get_args

from sqlalchemy.engine import RowMapping

from rapport.companies.errors import CompanyDomainTaken, CompanyNotFound
from rapport.companies.repository import COMPANY_LISTING, CompanyRepository
from rapport.companies.schemas import CompanyBulkUpdate, CompanyCreate, CompanyUpdate
from rapport.contacts.repository import (
    COMPANY_DUPLICATE_KEYS,
    COMPANY_REFERENCES,
    CompanyMergeRepository,
    ContactCompanyRepository,
    ContactRepository,
)
from rapport.contacts.schemas import CompanyMerge, CompanyMergeField
from rapport.contacts.service import (
    find_duplicates,
    merge_rows,
    merged_values,
    move_company_references,
    reindex_company_contacts,
)
from rapport.core.clock import utcnow
from rapport.core.values import phone_e164
from rapport.records.service import Change, Holders, RecordService, SearchDoc

FIELDS = (
    "id",
    "name",
    "domain",
    "industry",
    "size",
    "phone",
    "phone_e164",
    "address",
    "notes",
    "tags",
    "custom_fields",
    "owner_id",
    "created_at",
    "updated_at",
    "deleted_at",
    "version",
)


def company_read(row: RowMapping) -> dict[str, Any]:
    return {f: row[f] for f in FIELDS}


class CompanyService(RecordService):
    resource = "company"
    repository_class = CompanyRepository
    listing = COMPANY_LISTING
    not_found = CompanyNotFound
    searchable = True
    member_fields = ("owner_id",)
    repo: CompanyRepository

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._domains: Holders | None = None  # a bulk write's domain holders

    def read(self, row: RowMapping) -> dict[str, Any]:
        return company_read(row)

    def search_document(self, row: RowMapping) -> SearchDoc:
        return SearchDoc(
            title=row["name"],
            subtitle=row["domain"] or row["industry"],
            parts=[row["domain"], row["industry"]],
            phones=[row["phone"], row["phone_e164"]],
        )

    async def _check_domain(self, domain: str | None, exclude: uuid.UUID | None = None) -> None:
        if not domain:
            return
        if self._domains is not None and self._domains.knows(domain):
            taken = self._domains.holder(domain, exclude) is not None
        else:
            taken = await self.repo.domain_taken(domain, exclude)
        if taken:
            raise CompanyDomainTaken()

    async def prepare_create(self, body: CompanyCreate, **_options: Any) -> dict[str, Any]:
        await self._check_domain(body.domain)
        await self.check_member(body.owner_id, "owner_id")
        values = body.model_dump(exclude={"address", "custom_fields"})
        values["address"] = body.address.model_dump(exclude_none=True) if body.address else {}
        values["phone_e164"] = phone_e164(body.phone)
        values["custom_fields"] = await self.custom_fields.validate(body.custom_fields)
        return values

    def claim_created(self, values: dict[str, Any]) -> None:
        if self._domains is not None and values["domain"]:
            self._domains.move(values["id"], None, values["domain"])

    async def create(self, body: CompanyCreate) -> RowMapping:
        row = await self.repo.insert(await self.prepare_create(body))
        await self.after_created([row])
        return row

    async def update(
        self, company_id: uuid.UUID, body: CompanyUpdate, expected: int | None
    ) -> RowMapping:
        current = await self.get(company_id)
        return await self.apply_update(await self.prepare_update(body, current), expected)

    async def prepare_update(
        self, body: CompanyUpdate, current: RowMapping, sent: set[str] | None = None
    ) -> Change:
        sent = body.model_fields_set - {"id"} if sent is None else sent
        company_id = current["id"]
        changes: dict[str, Any] = {}
        for name in sent:
            value = getattr(body, name)
            if name == "name" and value is None:
                continue  # required: null leaves it as is
            changes[name] = value
        if "domain" in changes:
            await self._check_domain(changes["domain"], exclude=company_id)
        if "owner_id" in changes:
            await self.check_member(changes["owner_id"], "owner_id")
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
        renamed = changes.get("name", current["name"]) != current["name"]
        return Change(current, changes, {"renamed": renamed})

    def claim_updated(self, change: Change) -> None:
        if self._domains is not None and "domain" in change.changes:
            self._domains.move(change.id, change.current["domain"], change.changes["domain"])

    async def after_updated(self, pairs: Sequence[tuple[Change, RowMapping]]) -> None:
        await super().after_updated(pairs)
        renamed = list(dict.fromkeys(c.id for c, _ in pairs if c.notes["renamed"]))
        if renamed:
            # Contacts' search documents carry their primary company's name.
            await reindex_company_contacts(self.session, self.principal, renamed)

    async def before_restore(self, row: RowMapping) -> None:
        await self._check_domain(row["domain"], exclude=row["id"])

    async def before_erase(self, row: RowMapping) -> None:
        """Links go; contacts' primary company, deals, activities, tasks and converted leads that
        point at the company are detached (as for a contact's erase)."""
        ids = [row["id"]]
        await ContactCompanyRepository(self.session, self.workspace_id).delete_links_of(
            "company_id", ids
        )
        await ContactRepository(self.session, self.workspace_id).move_primary_company(ids, None)
        for repo_class, column in COMPANY_REFERENCES.values():
            await repo_class(self.session, self.workspace_id).move(column, ids, None)
        await CompanyMergeRepository(self.session, self.workspace_id).repoint_merged(ids, None)

    # -- bulk ----------------------------------------------------------------------------------
    def end_batch(self) -> None:
        super().end_batch()
        self._domains = None

    async def _preload_domains(self, bodies: Sequence[Any]) -> None:
        domains = {b.domain for b in bodies if b.domain}
        held = await self.repo.domain_holders(sorted(domains))
        self._domains = Holders(domains, held)

    async def preload_creates(self, bodies: Sequence[Any], **options: Any) -> None:
        await self._preload_domains(bodies)
        await super().preload_creates(bodies, **options)

    async def preload_updates(self, bodies: Sequence[Any]) -> None:
        await super().preload_updates(bodies)
        await self._preload_domains(bodies)

    async def bulk_create(self, items: list[dict[str, Any]], atomic: bool) -> dict[str, Any]:
        return await self.bulk_create_items(items, CompanyCreate, atomic)

    async def bulk_update(self, items: list[dict[str, Any]], atomic: bool) -> dict[str, Any]:
        return await self.bulk_update_items(items, CompanyBulkUpdate, atomic)

    # -- duplicates and merge ------------------------------------------------------------------
    async def duplicates(
        self, reason: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Groups of live companies with the same domain or the same name (case-insensitive)."""
        repo = CompanyMergeRepository(self.session, self.workspace_id)
        return await find_duplicates(
            repo, COMPANY_DUPLICATE_KEYS, reason, limit, cursor, company_read, "companies"
        )

    async def merge(self, body: CompanyMerge) -> dict[str, Any]:
        """One transaction: the winner takes the chosen values, the losers' contact links,
        contacts' primary company, deals, activities, tasks and converted leads; the losers are
        soft-deleted with merged_into_id = winner."""
        repo = CompanyMergeRepository(self.session, self.workspace_id)
        winner, losers = await merge_rows(repo, body, CompanyNotFound)
        winner_id, loser_ids = winner["id"], [row["id"] for row in losers]
        names = [n for n in get_args(CompanyMergeField) if n != "custom_fields"]
        changes = merged_values(winner, losers, names, body.fields)
        now = utcnow()
        for loser in losers:
            gone = await self.repo.update(
                loser["id"], {"deleted_at": now, "merged_into_id": winner_id}
            )
            assert gone is not None
            await self.reindex(gone)
        moved = await move_company_references(self.session, self.workspace_id, loser_ids, winner_id)
        await repo.repoint_merged(loser_ids, winner_id)
        await self._check_domain(changes["domain"], exclude=winner_id)
        row = await self.repo.update(winner_id, changes)
        assert row is not None
        await self.after_write("merged", row, winner_id=winner_id, loser_ids=loser_ids, moved=moved)
        await reindex_company_contacts(self.session, self.principal, [winner_id])
        return {"winner": company_read(row), "loser_ids": loser_ids, "moved": moved}
