"""Leads: people who might buy, moving through the workspace's statuses until converted.

Statuses and their transitions live in the workspace's settings (`lead_statuses`,
`lead_transitions`); every status change is a note on the lead's timeline and a
`lead.status_changed` event. `activity_count` belongs to the activities module, which keeps it with
atomic UPDATEs; this module writes it only as 0 on create and, counting its own status notes like
any other activity, with the same atomic `activity_count + 1` in the UPDATE that changes the status.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping

from rapport.activities.repository import ActivityRepository, ContactRef
from rapport.companies.repository import CompanyRepository
from rapport.companies.schemas import CompanyCreate
from rapport.companies.service import CompanyService
from rapport.contacts.repository import ContactRepository
from rapport.contacts.schemas import ContactCreate, LinkBody
from rapport.contacts.service import ContactService
from rapport.core import events
from rapport.core.clock import utcnow
from rapport.core.errors import Conflict, Forbidden, ValidationFailed
from rapport.core.values import phone_e164
from rapport.deals.schemas import DealCreate
from rapport.deals.service import DealService
from rapport.leads.errors import (
    InvalidStatus,
    InvalidStatusTransition,
    LeadAlreadyConverted,
    LeadDuplicate,
    LeadNotFound,
)
from rapport.leads.repository import (
    LEAD_LISTING,
    LeadActivityRepository,
    LeadCompanyLookup,
    LeadRepository,
    LeadTaskRepository,
    WorkspaceSettingsRepository,
)
from rapport.leads.schemas import (
    LeadBulkUpdate,
    LeadConvert,
    LeadConvertDeal,
    LeadCreate,
    LeadStatusesUpdate,
    LeadUpdate,
)
from rapport.records.service import Change, RecordService, SearchDoc
from rapport.search import indexer

CONVERTED = "converted"
NEW = "new"
DEFAULT_STATUSES = ("new", "contacted", "qualified", "negotiation", "converted", "closed", "lost")
# Closed leads may only be reopened: back to one of these.
REOPEN_ONLY = {"lost": ("contacted", "new"), "closed": ("contacted", "new")}
SETTINGS_STATUSES = "lead_statuses"
SETTINGS_TRANSITIONS = "lead_transitions"
IDENTITY_FIELDS = ("first_name", "last_name", "email", "phone", "company_name")

FIELDS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone_e164",
    "company_name",
    "status",
    "source",
    "value",
    "currency",
    "budget_min",
    "budget_max",
    "notes",
    "tags",
    "custom_fields",
    "owner_id",
    "activity_count",
    "converted_at",
    "converted_contact_id",
    "converted_company_id",
    "converted_deal_id",
    "created_at",
    "updated_at",
    "deleted_at",
    "version",
)


def full_name(row: Any) -> str | None:
    name = " ".join(p for p in (row["first_name"], row["last_name"]) if p)
    return name or None


def lead_read(row: RowMapping) -> dict[str, Any]:
    data = {f: row[f] for f in FIELDS}
    data["full_name"] = full_name(row)
    return data


def default_targets(status: str, statuses: list[str]) -> list[str]:
    """The default rule: any other status except 'converted'; closed ones only reopen;
    'converted' is final."""
    if status == CONVERTED:
        return []
    if status in REOPEN_ONLY:
        return [s for s in REOPEN_ONLY[status] if s in statuses]
    return [s for s in statuses if s not in (status, CONVERTED)]


@dataclass
class StatusRules:
    statuses: list[str]
    transitions: dict[str, list[str]]

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> StatusRules:
        statuses = settings.get(SETTINGS_STATUSES)
        if not _is_name_list(statuses) or NEW not in statuses or CONVERTED not in statuses:
            statuses = list(DEFAULT_STATUSES)
        stored = settings.get(SETTINGS_TRANSITIONS)
        stored = stored if isinstance(stored, dict) else {}
        transitions: dict[str, list[str]] = {}
        for status in statuses:
            given = stored.get(status)
            if status == CONVERTED:
                targets: list[str] = []
            elif _is_name_list(given):
                targets = [s for s in given if s in statuses and s not in (status, CONVERTED)]
            else:
                targets = default_targets(status, statuses)
            transitions[status] = targets
        return cls(statuses=list(statuses), transitions=transitions)

    def check_known(self, status: str, field: str = "body.status") -> None:
        if status not in self.statuses:
            raise InvalidStatus(
                details=[{"field": field, "reason": f"must be one of: {', '.join(self.statuses)}"}]
            )

    def check_initial(self, status: str) -> None:
        self.check_known(status)
        if status == CONVERTED:
            raise InvalidStatusTransition(
                "A lead becomes 'converted' only through POST /leads/{id}/convert.",
                details=[{"field": "body.status", "reason": "use the convert endpoint"}],
            )

    def check_move(self, current: str, new: str) -> None:
        self.check_known(new)
        if current == CONVERTED:
            reason = "a converted lead keeps its status"
        elif new == CONVERTED:
            reason = "only POST /leads/{id}/convert converts a lead"
        elif current not in self.transitions:
            # A status since removed from the list: the lead may move to any listed one.
            return
        elif new not in self.transitions[current]:
            allowed = ", ".join(self.transitions[current]) or "none"
            reason = f"from '{current}' a lead may move to: {allowed}"
        else:
            return
        raise InvalidStatusTransition(
            f"A lead cannot move from '{current}' to '{new}'.",
            details=[{"field": "body.status", "reason": reason}],
        )

    def as_dict(self) -> dict[str, Any]:
        return {"statuses": self.statuses, "transitions": self.transitions}


def _is_name_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _invalid(field: str, reason: str, message: str = "The request is not valid.") -> Exception:
    return ValidationFailed(message, details=[{"field": f"body.{field}", "reason": reason}])


def check_lead_values(merged: dict[str, Any]) -> None:
    """Rules across fields, on the lead as it will be stored."""
    if not any(merged.get(f) for f in IDENTITY_FIELDS):
        raise _invalid(
            "first_name",
            "give at least one of first_name, last_name, email, phone, company_name",
            "A lead needs a name, an email, a phone or a company name.",
        )
    if merged.get("value") is not None and not merged.get("currency"):
        raise _invalid("currency", "is required with value", "A value needs a currency.")
    low, high = merged.get("budget_min"), merged.get("budget_max")
    if low is not None and high is not None and low > high:
        raise _invalid(
            "budget_min", "must not exceed budget_max", "budget_min is greater than budget_max."
        )


class EarliestLeads:
    """During a bulk create: the oldest live lead holding each email and each phone, loaded for
    the batch's values in one query, then extended by the batch's items in order (each newer than
    every stored lead), so each item finds what `duplicate_of` would have found."""

    def __init__(self, emails: set[str], phones: set[str], rows: Sequence[RowMapping]) -> None:
        self.emails, self.phones = emails, phones
        self._by_email: dict[str, tuple[tuple[int, int], uuid.UUID, str | None]] = {}
        self._by_phone: dict[str, tuple[tuple[int, int], uuid.UUID, str | None]] = {}
        for order, row in enumerate(rows):  # oldest first
            self._add((0, order), row["id"], row["email"], row["phone_e164"])
        self._added = 0

    def _add(self, key: tuple[int, int], lead_id: Any, email: Any, phone: Any) -> None:
        if email:
            self._by_email.setdefault(email, (key, lead_id, email))
        if phone:
            self._by_phone.setdefault(phone, (key, lead_id, email))

    def knows(self, email: str | None, phone: str | None) -> bool:
        return (not email or email in self.emails) and (not phone or phone in self.phones)

    def find(self, email: str | None, phone: str | None) -> tuple[uuid.UUID, str] | None:
        found = [
            hit
            for hit in (
                self._by_email.get(email) if email else None,
                self._by_phone.get(phone) if phone else None,
            )
            if hit is not None
        ]
        if not found:
            return None
        _key, lead_id, lead_email = min(found, key=lambda hit: hit[0])
        return lead_id, "email" if email and lead_email == email else "phone"

    def add(self, lead_id: uuid.UUID, email: str | None, phone: str | None) -> None:
        self._added += 1
        self._add((1, self._added), lead_id, email, phone)


class LeadService(RecordService):
    resource = "lead"
    repository_class = LeadRepository
    listing = LEAD_LISTING
    not_found = LeadNotFound
    searchable = True
    member_fields = ("owner_id",)
    repo: LeadRepository

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.activities = LeadActivityRepository(self.session, self.workspace_id)
        self.settings = WorkspaceSettingsRepository(self.session, self.workspace_id)
        self._rules: StatusRules | None = None
        self._earliest: EarliestLeads | None = None  # a bulk create's duplicate lookup

    def read(self, row: RowMapping) -> dict[str, Any]:
        return lead_read(row)

    def search_document(self, row: RowMapping) -> SearchDoc:
        name = full_name(row)
        title = name or row["company_name"] or row["email"] or row["phone"] or "Lead"
        subtitle = row["company_name"] if row["company_name"] != title else row["email"]
        return SearchDoc(
            title=title,
            subtitle=subtitle,
            parts=[row["first_name"], row["last_name"], row["email"], row["company_name"]],
            phones=[row["phone"], row["phone_e164"]],
        )

    # -- statuses ----------------------------------------------------------------------------
    async def status_rules(self) -> StatusRules:
        if self._rules is None:
            settings, _ = await self.settings.read()
            self._rules = StatusRules.from_settings(settings)
        return self._rules

    async def update_statuses(self, body: LeadStatusesUpdate) -> StatusRules:
        if not self.principal.is_admin:
            raise Forbidden("Only admins can change the lead statuses.")
        statuses = list(dict.fromkeys(body.statuses))
        if len(statuses) != len(body.statuses):
            raise _invalid("statuses", "are listed more than once")
        for required in (NEW, CONVERTED):
            if required not in statuses:
                raise _invalid("statuses", f"must include '{required}'")
        transitions: dict[str, list[str]] | None = None
        if body.transitions is not None:
            transitions = {}
            for source, targets in body.transitions.items():
                field = f"transitions.{source}"
                if source not in statuses:
                    raise _invalid(field, "is not one of the statuses")
                unknown = [s for s in targets if s not in statuses]
                if unknown:
                    raise _invalid(field, f"not among the statuses: {', '.join(unknown)}")
                if CONVERTED in targets:
                    raise _invalid(field, "only POST /leads/{id}/convert moves a lead to converted")
                if source == CONVERTED and targets:
                    raise _invalid(field, "a converted lead keeps its status")
                transitions[source] = [s for s in dict.fromkeys(targets) if s != source]
        for _attempt in range(5):
            settings, version = await self.settings.read()
            settings[SETTINGS_STATUSES] = statuses
            if transitions is None:
                settings.pop(SETTINGS_TRANSITIONS, None)
            else:
                settings[SETTINGS_TRANSITIONS] = transitions
            if await self.settings.write(settings, version):
                break
        else:
            raise Conflict("The workspace settings changed meanwhile; try again.")
        self._rules = StatusRules.from_settings(settings)
        await events.record(
            self.session,
            workspace_id=self.workspace_id,
            type="lead_statuses.updated",
            data=self._rules.as_dict(),
            principal=self.principal,
            resource_id=self.workspace_id,
        )
        return self._rules

    # -- writes ------------------------------------------------------------------------------
    async def _check_duplicate(self, email: str | None, phone: str | None) -> None:
        if self._earliest is not None and self._earliest.knows(email, phone):
            found = self._earliest.find(email, phone)
        else:
            found = await self.repo.duplicate_of(email, phone)
        if found is not None:
            existing, field = found
            raise LeadDuplicate(
                details=[
                    {
                        "field": f"body.{field}",
                        "reason": f"lead {existing} has the same {field}",
                        "existing_id": str(existing),
                    }
                ]
            )

    async def prepare_create(
        self, body: LeadCreate, *, allow_duplicate: bool = False, **_options: Any
    ) -> dict[str, Any]:
        values = body.model_dump(exclude={"custom_fields"})
        check_lead_values(values)
        rules = await self.status_rules()
        values["status"] = values["status"] or (NEW if NEW in rules.statuses else rules.statuses[0])
        rules.check_initial(values["status"])
        values["phone_e164"] = phone_e164(body.phone)
        await self.check_member(body.owner_id, "owner_id")
        if not allow_duplicate:
            await self._check_duplicate(values["email"], values["phone_e164"])
        values["custom_fields"] = await self.custom_fields.validate(body.custom_fields)
        values["activity_count"] = 0
        return values

    def claim_created(self, values: dict[str, Any]) -> None:
        if self._earliest is not None:
            self._earliest.add(values["id"], values["email"], values["phone_e164"])

    async def create(self, body: LeadCreate, *, allow_duplicate: bool = False) -> RowMapping:
        values = await self.prepare_create(body, allow_duplicate=allow_duplicate)
        row = await self.repo.insert(values)
        await self.after_created([row])
        return row

    async def update(
        self, lead_id: uuid.UUID, body: LeadUpdate, expected: int | None
    ) -> RowMapping:
        current: RowMapping | None
        if "status" in body.model_fields_set and body.status is not None:
            # Locked, so two concurrent moves cannot both pass the transition check.
            current = await self.repo.get_for_update(lead_id)
            if current is None:
                raise LeadNotFound()
        else:
            current = await self.get(lead_id)
        return await self.apply_update(await self.prepare_update(body, current), expected)

    async def prepare_update(
        self, body: LeadUpdate, current: RowMapping, sent: set[str] | None = None
    ) -> Change:
        sent = body.model_fields_set - {"id"} if sent is None else sent
        changes: dict[str, Any] = {name: getattr(body, name) for name in sent}
        if changes.get("status", "") is None:
            changes.pop("status")  # required: null leaves it as is
        if changes.get("status") == current["status"]:
            changes.pop("status")
        old_status = current["status"]
        if "status" in changes:
            (await self.status_rules()).check_move(old_status, changes["status"])
        check_lead_values({**current, **changes})
        if "owner_id" in changes:
            await self.check_member(changes["owner_id"], "owner_id")
        if "phone" in changes:
            changes["phone_e164"] = phone_e164(changes["phone"])
        if "tags" in changes and changes["tags"] is None:
            changes["tags"] = []
        if "custom_fields" in changes:
            changes["custom_fields"] = await self.custom_fields.validate(
                body.custom_fields or {}, current["custom_fields"]
            )
        new_status = changes.get("status")
        if new_status is not None:
            # The status note counts like any activity, in the same atomic UPDATE.
            changes["activity_count"] = self.repo.table.c.activity_count + 1
        moved = (old_status, new_status) if new_status is not None else None
        return Change(current, changes, {"status_moved": moved})

    async def after_updated(self, pairs: Sequence[tuple[Change, RowMapping]]) -> None:
        await super().after_updated(pairs)
        moves = [(row, *c.notes["status_moved"]) for c, row in pairs if c.notes["status_moved"]]
        if moves:
            await self._status_changed(moves)

    async def _status_changed(self, moves: Sequence[tuple[RowMapping, str, str]]) -> None:
        """Each move `(lead row, from, to)`: a note on the lead's timeline (searchable like any
        activity) and a `lead.status_changed` event; one batched statement each for all moves."""
        notes = await self.activities.add_notes(
            [(row["id"], f"Status changed from {old} to {new}") for row, old, new in moves],
            self.principal.user_id,
        )
        # The notes' documents have the activities module's shape.
        await indexer.index_many(
            self.session,
            workspace_id=self.workspace_id,
            resource="activity",
            documents_=[(n["id"], n["subject"], n["kind"], [], [], False) for n in notes],
        )
        await events.record_many(
            self.session,
            workspace_id=self.workspace_id,
            type="lead.status_changed",
            items=[
                (
                    row["id"],
                    {
                        **lead_read(row),
                        "from_status": old,
                        "to_status": new,
                        "activity_id": note["id"],
                    },
                )
                for (row, old, new), note in zip(moves, notes, strict=True)
            ],
            principal=self.principal,
        )

    async def before_erase(self, row: RowMapping) -> None:
        """The lead leaves every timeline and task list; those records stay."""
        await self.activities.detach_lead(row["id"])
        await LeadTaskRepository(self.session, self.workspace_id).detach_lead(row["id"])

    # -- bulk ----------------------------------------------------------------------------------
    def end_batch(self) -> None:
        super().end_batch()
        self._earliest = None

    async def preload_creates(self, bodies: Sequence[Any], **options: Any) -> None:
        await self.status_rules()
        if not options.get("allow_duplicate"):
            emails = {b.email for b in bodies if b.email}
            phones = {p for b in bodies if (p := phone_e164(b.phone))}
            rows = await self.repo.duplicates_among(sorted(emails), sorted(phones))
            self._earliest = EarliestLeads(emails, phones, rows)
        await super().preload_creates(bodies, **options)

    async def bulk_create(
        self, items: list[dict[str, Any]], atomic: bool, *, allow_duplicate: bool = False
    ) -> dict[str, Any]:
        return await self.bulk_create_items(
            items, LeadCreate, atomic, allow_duplicate=allow_duplicate
        )

    async def bulk_update(self, items: list[dict[str, Any]], atomic: bool) -> dict[str, Any]:
        return await self.bulk_update_items(items, LeadBulkUpdate, atomic)

    # -- conversion ------------------------------------------------------------------------------
    async def convert(self, lead_id: uuid.UUID, body: LeadConvert) -> dict[str, Any]:
        """One transaction: the contact, company and deal are created (or linked), the lead is
        marked converted and its activities join the contact. Any error raised on the way rolls
        the whole request back, so a failed conversion writes nothing."""
        lead = await self.repo.get_for_update(lead_id)
        if lead is None:
            raise LeadNotFound()
        if lead["converted_at"] is not None or lead["status"] == CONVERTED:
            raise LeadAlreadyConverted(
                details=[
                    {
                        "field": "id",
                        "reason": f"converted into contact {lead['converted_contact_id']}",
                    }
                ]
            )
        await self.status_rules()  # statuses are readable (and 'converted' is among them)
        company_id, company_name, company_created = await self._conversion_company(lead, body)
        contact_id, contact_created = await self._conversion_contact(lead, body)
        contacts = ContactService(self.session, self.principal)
        if company_id is not None:
            contact = await contacts.get(contact_id)
            primary = True if contact["primary_company_id"] is None else None
            await contacts.link_company(contact_id, company_id, LinkBody(is_primary=primary))
        deal_id = None
        if body.deal is not None:
            deal = await DealService(self.session, self.principal).create(
                self._conversion_deal(lead, body.deal, company_name, contact_id, company_id)
            )
            deal_id = deal["id"]
        row = await self.repo.mark_converted(
            lead_id,
            {
                "status": CONVERTED,
                "converted_at": utcnow(),
                "converted_contact_id": contact_id,
                "converted_company_id": company_id,
                "converted_deal_id": deal_id,
                "activity_count": self.repo.table.c.activity_count + 1,
            },
        )
        if row is None:  # locked above, so only a concurrent conversion on SQLite gets here
            raise LeadAlreadyConverted()
        await self._status_changed([(row, lead["status"], CONVERTED)])
        if await self.activities.move_to_contact(lead_id, contact_id):
            await ContactRef(self.session, self.workspace_id).set_last_activity(
                contact_id,
                ActivityRepository(self.session, self.workspace_id).latest_for_contact(contact_id),
            )
        result = {
            "contact_id": contact_id,
            "contact_created": contact_created,
            "company_id": company_id,
            "company_created": company_created,
            "deal_id": deal_id,
        }
        await self.after_write("converted", row, **result)
        return {"lead": lead_read(row), **result}

    async def _conversion_company(
        self, lead: RowMapping, body: LeadConvert
    ) -> tuple[uuid.UUID | None, str | None, bool]:
        """(company id, its name, created?): the one given, the live one with the lead's company
        name or email domain, or a new one from company_name; none when create_company=false."""
        lookup = LeadCompanyLookup(self.session, self.workspace_id)
        if body.company_id is not None:
            await self.check_record(CompanyRepository, body.company_id, "company_id")
            return body.company_id, await lookup.name_of(body.company_id), False
        if not body.create_company:
            return None, None, False
        found = await lookup.by_name(lead["company_name"]) if lead["company_name"] else None
        domain = email_domain(lead["email"])
        if found is None and domain is not None:
            found = await lookup.by_domain(domain)
        if found is not None:
            return found["id"], found["name"], False
        if not lead["company_name"]:
            return None, None, False
        company = await CompanyService(self.session, self.principal).create(
            CompanyCreate(name=lead["company_name"], owner_id=lead["owner_id"])
        )
        return company["id"], company["name"], True

    async def _conversion_contact(
        self, lead: RowMapping, body: LeadConvert
    ) -> tuple[uuid.UUID, bool]:
        """(contact id, created?): the one given, the live one with the lead's email, or new."""
        if body.contact_id is not None:
            await self.check_record(ContactRepository, body.contact_id, "contact_id")
            return body.contact_id, False
        if lead["email"]:
            existing = await ContactRepository(self.session, self.workspace_id).email_owner(
                lead["email"]
            )
            if existing is not None:
                return existing, False
        if not (lead["first_name"] or lead["last_name"] or lead["email"]):
            raise ValidationFailed(
                "A contact needs a first name, a last name or an email: add one to the lead, "
                "or name an existing contact.",
                code="lead_needs_name",
                details=[{"field": "body.contact_id", "reason": "the lead has no name or email"}],
            )
        contact = await ContactService(self.session, self.principal).create(
            ContactCreate(
                first_name=lead["first_name"],
                last_name=lead["last_name"],
                email=lead["email"],
                phone=lead["phone"],
                notes=lead["notes"],
                tags=list(lead["tags"] or []),
                owner_id=lead["owner_id"],
            )
        )
        return contact["id"], True

    @staticmethod
    def _conversion_deal(
        lead: RowMapping,
        spec: LeadConvertDeal,
        company_name: str | None,
        contact_id: uuid.UUID,
        company_id: uuid.UUID | None,
    ) -> DealCreate:
        base = company_name or full_name(lead) or lead["email"] or lead["phone"] or "Lead"
        amount = spec.amount if "amount" in spec.model_fields_set else lead["value"]
        return DealCreate(
            name=spec.name or f"{base[:195]} deal",
            amount=amount,
            currency=spec.currency or lead["currency"],
            pipeline_id=spec.pipeline_id,
            stage_id=spec.stage_id,
            contact_id=contact_id,
            company_id=company_id,
            owner_id=lead["owner_id"],
        )


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].lower() or None
