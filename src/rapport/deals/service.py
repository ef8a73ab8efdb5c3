"""Deals, their pipelines and stages: the rules.

Pipelines are workspace configuration (admins write them); a workspace that has none gets the
default "Sales" pipeline the first time one is needed. Deals move through a pipeline's stages;
every move is kept as stage history, and won/lost stages drive the deal's status.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rapport.companies.repository import CompanyRepository
from rapport.contacts.repository import ContactRepository
from rapport.core import events
from rapport.core.auth import Principal
from rapport.core.clock import utcnow
from rapport.core.errors import Forbidden, PreconditionFailed, ValidationFailed
from rapport.core.listing import ListParams, Page
from rapport.deals.errors import (
    DealNotFound,
    InvalidStageOrder,
    PipelineHasNoStages,
    PipelineInUse,
    PipelineNotFound,
    StageInUse,
    StageNameTaken,
    StageNotFound,
    StageNotInPipeline,
    StatusConflictsWithStage,
    TooManyStages,
)
from rapport.deals.repository import (
    DEAL_LISTING,
    PIPELINE_LISTING,
    DealRepository,
    PipelineRepository,
    StageChangeRepository,
    StageRepository,
)
from rapport.deals.schemas import (
    MAX_STAGES,
    DealBulkUpdate,
    DealCreate,
    DealUpdate,
    PipelineCreate,
    PipelineUpdate,
    StageCreate,
    StageReorder,
    StageUpdate,
)
from rapport.records.service import Change, RecordService, SearchDoc

DEFAULT_PIPELINE = "Sales"
# name, probability, is_won, is_lost
DEFAULT_STAGES = (
    ("Lead", 10, False, False),
    ("Qualified", 25, False, False),
    ("Proposal", 50, False, False),
    ("Negotiation", 75, False, False),
    ("Won", 100, True, False),
    ("Lost", 0, False, True),
)
STAGE_FIELDS = (
    "id",
    "pipeline_id",
    "name",
    "position",
    "probability",
    "is_won",
    "is_lost",
    "created_at",
    "updated_at",
    "version",
)
PIPELINE_FIELDS = ("id", "name", "is_default", "position", "created_at", "updated_at")
DEAL_FIELDS = (
    "id",
    "name",
    "amount",
    "currency",
    "pipeline_id",
    "pipeline_name",
    "stage_id",
    "stage_name",
    "probability",
    "status",
    "contact_id",
    "company_id",
    "owner_id",
    "won_at",
    "lost_at",
    "lost_reason",
    "notes",
    "tags",
    "custom_fields",
    "created_at",
    "updated_at",
    "deleted_at",
    "version",
)
CHANGE_FIELDS = (
    "id",
    "deal_id",
    "from_stage_id",
    "from_stage_name",
    "to_stage_id",
    "to_stage_name",
    "changed_at",
    "changed_by",
)


def stage_read(row: Any) -> dict[str, Any]:
    return {f: row[f] for f in STAGE_FIELDS}


def pipeline_read(row: Any, stages: Sequence[Any]) -> dict[str, Any]:
    data = {f: row[f] for f in PIPELINE_FIELDS}
    data["stages"] = [stage_read(st) for st in stages]
    data["deleted_at"] = row["deleted_at"]
    data["version"] = row["version"]
    return data


def deal_read(row: Any) -> dict[str, Any]:
    data = {f: row[f] for f in DEAL_FIELDS}
    close = row["expected_close_date"]
    # As text: the event outbox stores JSON, and core's encoder knows datetimes, not dates.
    data["expected_close_date"] = close.isoformat() if close is not None else None
    return data


def change_read(row: Any) -> dict[str, Any]:
    return {f: row[f] for f in CHANGE_FIELDS}


def seeded_id(workspace_id: uuid.UUID, label: str) -> uuid.UUID:
    """A UUIDv7-shaped id that every request of a workspace derives alike, so concurrent
    first uses seed the default pipeline once (the second insert is a no-op)."""
    digest = hashlib.sha256(workspace_id.bytes + b"|rapport-seed|" + label.encode()).digest()
    raw = bytearray(workspace_id.bytes[:6] + digest[:10])
    raw[6] = 0x70 | (raw[6] & 0x0F)
    raw[8] = 0x80 | (raw[8] & 0x3F)
    return uuid.UUID(bytes=bytes(raw))


def invalid_reference(field_name: str, reason: str) -> ValidationFailed:
    return ValidationFailed(
        "The referenced record does not exist.",
        code="invalid_reference",
        details=[{"field": f"body.{field_name}", "reason": reason}],
    )


def _default_probability(is_won: bool) -> int:
    return 100 if is_won else 0


class PipelineService:
    """Pipelines and their ordered stages (admins write them; every role reads them)."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.workspace_id = principal.workspace_id
        self.repo = PipelineRepository(session, principal.workspace_id)
        self.stages = StageRepository(session, principal.workspace_id)
        self.deals = DealRepository(session, principal.workspace_id)

    async def _event(self, type_: str, data: dict[str, Any], resource_id: uuid.UUID) -> None:
        await events.record(
            self.session,
            workspace_id=self.workspace_id,
            type=type_,
            data=data,
            principal=self.principal,
            resource_id=resource_id,
        )

    async def _read(self, row: RowMapping) -> dict[str, Any]:
        return pipeline_read(row, await self.stages.for_pipeline(row["id"]))

    # -- the default pipeline -----------------------------------------------------------------
    async def default(self) -> RowMapping:
        """The workspace's default pipeline, seeded on first use."""
        row = await self.repo.default()
        if row is not None:
            return row
        first = await self.repo.first()
        if first is not None and first["is_default"]:
            return first  # revealed by a concurrent first use since the query above
        if first is not None:  # live pipelines, none marked default: the first one becomes it
            promoted = await self.repo.update(first["id"], {"is_default": True})
            if promoted is not None:
                await self._event("pipeline.updated", await self._read(promoted), promoted["id"])
                return promoted
        return await self._seed()

    async def _seed(self) -> RowMapping:
        """Insert "Sales" hidden, add its stages, then reveal it: concurrent first uses write the
        same ids (no-ops for all but one), and nobody sees the pipeline without its stages."""
        pipeline_id = seeded_id(self.workspace_id, "pipeline:default")
        await self.repo.insert_hidden(pipeline_id, DEFAULT_PIPELINE)
        if await self.stages.count(pipeline_id) == 0:
            await self.stages.insert_seeded(
                [
                    {
                        "id": seeded_id(self.workspace_id, f"stage:default:{name}"),
                        "pipeline_id": pipeline_id,
                        "name": name,
                        "position": position,
                        "probability": probability,
                        "is_won": is_won,
                        "is_lost": is_lost,
                    }
                    for position, (name, probability, is_won, is_lost) in enumerate(DEFAULT_STAGES)
                ]
            )
        revealed = await self.repo.reveal(pipeline_id)
        if revealed is not None:
            verb = "created" if revealed["version"] == 2 else "restored"
            await self._event(f"pipeline.{verb}", await self._read(revealed), pipeline_id)
        row = await self.repo.get(pipeline_id)
        assert row is not None
        return row

    # -- pipelines ----------------------------------------------------------------------------
    async def list(self, params: ListParams) -> Page:
        """A page of pipelines, each with its stages (one query for the whole page)."""
        if params.include_deleted and not self.principal.is_admin:
            raise Forbidden("Only admins can list deleted records.")
        await self.default()
        page = await self.repo.list(PIPELINE_LISTING, params)
        stages = await self.stages.for_pipelines([row["id"] for row in page.rows])
        page.rows = [pipeline_read(row, stages[row["id"]]) for row in page.rows]
        return page

    async def _get(self, pipeline_id: uuid.UUID) -> RowMapping:
        row = await self.repo.get(pipeline_id)
        if row is None:
            raise PipelineNotFound()
        return row

    async def get(self, pipeline_id: uuid.UUID) -> dict[str, Any]:
        return await self._read(await self._get(pipeline_id))

    async def _changed(
        self, pipeline_id: uuid.UUID, row: RowMapping | None, expected: int | None
    ) -> RowMapping:
        if row is not None:
            return row
        if expected is not None and await self.repo.exists(pipeline_id, include_deleted=False):
            raise PreconditionFailed()
        raise PipelineNotFound()

    async def create(self, body: PipelineCreate) -> dict[str, Any]:
        specs = list(body.stages or [])
        self._check_stage_names([st.name for st in specs])
        current_default = await self.repo.default()
        is_default = body.is_default or current_default is None
        position = body.position if body.position is not None else await self.repo.next_position()
        row = await self.repo.insert(
            {"name": body.name, "is_default": is_default, "position": position}
        )
        if is_default and current_default is not None:
            await self.repo.clear_default(row["id"])
        order = sorted(
            range(len(specs)),
            key=lambda i: (specs[i].position if specs[i].position is not None else i, i),
        )
        for position, index in enumerate(order):
            await self.stages.insert(self._stage_values(row["id"], specs[index], position))
        data = await self._read(row)
        await self._event("pipeline.created", data, row["id"])
        return data

    @staticmethod
    def _check_stage_names(names: list[str]) -> None:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name.lower() in seen:
                raise StageNameTaken(
                    details=[{"field": f"body.stages.{index}.name", "reason": "used twice"}]
                )
            seen.add(name.lower())

    @staticmethod
    def _stage_values(pipeline_id: uuid.UUID, spec: StageCreate, position: int) -> dict[str, Any]:
        probability = spec.probability
        if probability is None:
            probability = _default_probability(spec.is_won)
        return {
            "pipeline_id": pipeline_id,
            "name": spec.name,
            "position": position,
            "probability": probability,
            "is_won": spec.is_won,
            "is_lost": spec.is_lost,
        }

    async def update(
        self, pipeline_id: uuid.UUID, body: PipelineUpdate, expected: int | None
    ) -> dict[str, Any]:
        current = await self._get(pipeline_id)
        changes = {
            name: getattr(body, name)
            for name in body.model_fields_set
            if getattr(body, name) is not None
        }
        if changes.get("is_default") is False:
            if current["is_default"]:
                raise ValidationFailed(
                    "A workspace always has a default pipeline: make another one the default.",
                    details=[{"field": "body.is_default", "reason": "make another the default"}],
                )
            changes.pop("is_default")
        elif changes.get("is_default") and current["is_default"]:
            changes.pop("is_default")
        if not changes:
            if expected is not None and current["version"] != expected:
                raise PreconditionFailed()
            return await self._read(current)
        row = await self._changed(
            pipeline_id,
            await self.repo.update(pipeline_id, changes, expected_version=expected),
            expected,
        )
        if changes.get("is_default"):
            await self.repo.clear_default(pipeline_id)
        data = await self._read(row)
        await self._event("pipeline.updated", data, pipeline_id)
        return data

    async def delete(self, pipeline_id: uuid.UUID, expected: int | None) -> None:
        current = await self._get(pipeline_id)
        if await self.deals.any_in_pipeline(pipeline_id):
            raise PipelineInUse()
        row = await self._changed(
            pipeline_id,
            await self.repo.update(
                pipeline_id,
                {"deleted_at": utcnow(), "is_default": False},
                expected_version=expected,
            ),
            expected,
        )
        await self._event("pipeline.deleted", await self._read(row), pipeline_id)
        if current["is_default"]:
            successor = await self.repo.first()
            if successor is not None:
                promoted = await self.repo.update(successor["id"], {"is_default": True})
                assert promoted is not None
                await self._event("pipeline.updated", await self._read(promoted), promoted["id"])

    async def restore(self, pipeline_id: uuid.UUID) -> dict[str, Any]:
        row = await self.repo.get(pipeline_id, include_deleted=True)
        if row is None:
            raise PipelineNotFound()
        if row["deleted_at"] is None:
            return await self._read(row)
        is_default = await self.repo.default() is None
        restored = await self.repo.update(
            pipeline_id, {"deleted_at": None, "is_default": is_default}, include_deleted=True
        )
        assert restored is not None
        data = await self._read(restored)
        await self._event("pipeline.restored", data, pipeline_id)
        return data

    # -- stages -------------------------------------------------------------------------------
    async def list_stages(self, pipeline_id: uuid.UUID) -> list[dict[str, Any]]:
        await self._get(pipeline_id)
        return [stage_read(st) for st in await self.stages.for_pipeline(pipeline_id)]

    async def _stage(self, pipeline_id: uuid.UUID, stage_id: uuid.UUID) -> RowMapping:
        await self._get(pipeline_id)
        row = await self.stages.in_pipeline(pipeline_id, stage_id)
        if row is None:
            raise StageNotFound()
        return row

    async def get_stage(self, pipeline_id: uuid.UUID, stage_id: uuid.UUID) -> dict[str, Any]:
        return stage_read(await self._stage(pipeline_id, stage_id))

    async def _renumber(self, ordered: Sequence[uuid.UUID]) -> None:
        """Positions are 0..n-1 in pipeline order; only rows whose position moves are written."""
        for position, stage_id in enumerate(ordered):
            await self.stages.set_position(stage_id, position)

    async def create_stage(self, pipeline_id: uuid.UUID, body: StageCreate) -> dict[str, Any]:
        await self._get(pipeline_id)
        existing = await self.stages.for_pipeline(pipeline_id)
        if len(existing) >= MAX_STAGES:
            raise TooManyStages(f"A pipeline has at most {MAX_STAGES} stages.")
        if await self.stages.name_taken(pipeline_id, body.name):
            raise StageNameTaken(details=[{"field": "body.name", "reason": "already used"}])
        position = len(existing) if body.position is None else min(body.position, len(existing))
        row = await self.stages.insert(self._stage_values(pipeline_id, body, position))
        ordered = [st["id"] for st in existing]
        ordered.insert(position, row["id"])
        await self._renumber(ordered)
        data = stage_read(row)
        await self._event("stage.created", data, row["id"])
        return data

    async def update_stage(
        self,
        pipeline_id: uuid.UUID,
        stage_id: uuid.UUID,
        body: StageUpdate,
        expected: int | None,
    ) -> dict[str, Any]:
        current = await self._stage(pipeline_id, stage_id)
        changes = {
            name: getattr(body, name)
            for name in body.model_fields_set
            if getattr(body, name) is not None
        }
        for flag in ("is_won", "is_lost", "name", "probability"):
            if flag in changes and changes[flag] == current[flag]:
                changes.pop(flag)
        if "name" in changes and await self.stages.name_taken(
            pipeline_id, changes["name"], exclude=stage_id
        ):
            raise StageNameTaken(details=[{"field": "body.name", "reason": "already used"}])
        is_won = changes.get("is_won", current["is_won"])
        is_lost = changes.get("is_lost", current["is_lost"])
        if is_won and is_lost:
            raise ValidationFailed(
                "A stage cannot be both won and lost.",
                details=[{"field": "body.is_won", "reason": "cannot be both won and lost"}],
            )
        if ("is_won" in changes or "is_lost" in changes) and await self.deals.any_in_stage(
            stage_id
        ):
            raise StageInUse("Deals are in this stage: its won/lost flags cannot change.")
        ordered: list[uuid.UUID] | None = None
        if "position" in changes:
            others = [st["id"] for st in await self.stages.for_pipeline(pipeline_id)]
            others.remove(stage_id)
            position = min(changes["position"], len(others))
            others.insert(position, stage_id)
            ordered = others
            if position == current["position"]:
                changes.pop("position")
            else:
                changes["position"] = position
        if not changes:
            if expected is not None and current["version"] != expected:
                raise PreconditionFailed()
            return stage_read(current)
        row = await self.stages.update(stage_id, changes, expected_version=expected)
        if row is None:
            raise PreconditionFailed()
        if ordered is not None:
            await self._renumber(ordered)
        data = stage_read(row)
        await self._event("stage.updated", data, stage_id)
        return data

    async def delete_stage(
        self, pipeline_id: uuid.UUID, stage_id: uuid.UUID, expected: int | None
    ) -> None:
        current = await self._stage(pipeline_id, stage_id)
        if expected is not None and current["version"] != expected:
            raise PreconditionFailed()
        if await self.deals.any_in_stage(stage_id):
            raise StageInUse()
        await self.stages.erase(stage_id)
        await self._renumber([st["id"] for st in await self.stages.for_pipeline(pipeline_id)])
        await self._event("stage.deleted", stage_read(current), stage_id)

    async def reorder_stages(
        self, pipeline_id: uuid.UUID, body: StageReorder
    ) -> list[dict[str, Any]]:
        await self._get(pipeline_id)
        existing = {st["id"] for st in await self.stages.for_pipeline(pipeline_id)}
        wanted = body.stage_ids
        problems: list[dict[str, Any]] = []
        seen: set[uuid.UUID] = set()
        for index, stage_id in enumerate(wanted):
            if stage_id in seen:
                problems.append({"field": f"body.stage_ids.{index}", "reason": "listed twice"})
            elif stage_id not in existing:
                problems.append(
                    {"field": f"body.stage_ids.{index}", "reason": "not a stage of this pipeline"}
                )
            seen.add(stage_id)
        missing = len(existing - seen)
        if missing:
            problems.append({"field": "body.stage_ids", "reason": f"{missing} stage(s) missing"})
        if problems:
            raise InvalidStageOrder(details=problems)
        await self._renumber(wanted)
        stages = [stage_read(st) for st in await self.stages.for_pipeline(pipeline_id)]
        await self._event(
            "pipeline.stages_reordered",
            {"id": pipeline_id, "stage_ids": [st["id"] for st in stages]},
            pipeline_id,
        )
        return stages


class DealService(RecordService):
    resource = "deal"
    repository_class = DealRepository
    listing = DEAL_LISTING
    not_found = DealNotFound
    searchable = True
    member_fields = ("owner_id",)
    record_fields = {"contact_id": ContactRepository, "company_id": CompanyRepository}
    repo: DealRepository

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        super().__init__(session, principal)
        self.pipelines = PipelineService(session, principal)
        self.stages = StageRepository(session, principal.workspace_id)
        self.history = StageChangeRepository(session, principal.workspace_id)
        self._default: RowMapping | None = None
        self._live_pipelines: set[uuid.UUID] = set()
        self._stages: dict[uuid.UUID, Sequence[RowMapping]] = {}

    def read(self, row: RowMapping) -> dict[str, Any]:
        return deal_read(row)

    def search_document(self, row: RowMapping) -> SearchDoc:
        contact, company = row.get("contact_name"), row.get("company_name")
        return SearchDoc(title=row["name"], subtitle=company or contact, parts=[contact, company])

    async def reindex(self, row: RowMapping) -> None:
        names = await self.repo.party_names(row["contact_id"], row["company_id"])
        await super().reindex({**row, **names})  # type: ignore[arg-type]

    async def reindex_many(self, rows: Sequence[RowMapping], *, fresh: bool = False) -> None:
        names = await self.repo.party_names_many(rows)
        named = [{**row, **n} for row, n in zip(rows, names, strict=True)]
        await super().reindex_many(named, fresh=fresh)

    # -- where a deal sits ----------------------------------------------------------------------
    async def _default_pipeline(self) -> RowMapping:
        if self._default is None:
            self._default = await self.pipelines.default()
            self._live_pipelines.add(self._default["id"])
        return self._default

    async def _check_pipeline(self, pipeline_id: uuid.UUID) -> None:
        if pipeline_id in self._live_pipelines:
            return
        if not await self.record_exists(PipelineRepository, pipeline_id):
            raise invalid_reference("pipeline_id", "no such pipeline in this workspace")
        self._live_pipelines.add(pipeline_id)

    async def _stages_of(self, pipeline_id: uuid.UUID) -> Sequence[RowMapping]:
        if pipeline_id not in self._stages:
            self._stages[pipeline_id] = await self.stages.for_pipeline(pipeline_id)
        return self._stages[pipeline_id]

    async def _place(
        self,
        pipeline_id: uuid.UUID,
        stage_id: uuid.UUID | None,
        status: str | None,
        current: RowMapping | None,
    ) -> tuple[RowMapping, str]:
        """The stage and status a deal ends up with. Won and lost stages set the status;
        status won/lost without a stage moves the deal to the pipeline's won/lost stage."""
        stages = await self._stages_of(pipeline_id)
        stage: RowMapping | None
        if stage_id is not None:
            stage = next((st for st in stages if st["id"] == stage_id), None)
            if stage is None:
                if await self.record_exists(StageRepository, stage_id):
                    raise StageNotInPipeline(
                        details=[
                            {"field": "body.stage_id", "reason": "belongs to another pipeline"}
                        ]
                    )
                raise invalid_reference("stage_id", "no such stage in this workspace")
        elif current is not None and current["pipeline_id"] == pipeline_id:
            stage = next((st for st in stages if st["id"] == current["stage_id"]), None)
            assert stage is not None
        else:
            if not stages:
                raise PipelineHasNoStages(
                    details=[{"field": "body.pipeline_id", "reason": "the pipeline has no stages"}]
                )
            stage = stages[0]
        implied = "won" if stage["is_won"] else "lost" if stage["is_lost"] else None
        if status is None:
            if current is not None and stage["id"] == current["stage_id"]:
                return stage, current["status"]
            return stage, implied or "open"
        terminal = None
        if status in ("won", "lost"):
            flag = "is_won" if status == "won" else "is_lost"
            terminal = next((st for st in stages if st[flag]), None)
        if stage_id is not None:
            if (implied is not None and status != implied) or (
                implied is None and terminal is not None
            ):
                raise StatusConflictsWithStage(
                    details=[{"field": "body.status", "reason": "does not match the stage"}]
                )
            return stage, status
        if terminal is not None:
            return terminal, status
        if implied is not None and status != implied:
            raise StatusConflictsWithStage(
                "The deal is in a won or lost stage: name an open stage (stage_id) to reopen it.",
                details=[{"field": "body.stage_id", "reason": "required to leave this stage"}],
            )
        return stage, status

    @staticmethod
    def _status_values(old: str | None, new: str) -> dict[str, Any]:
        if old == new:
            return {}
        now = utcnow()
        if new == "won":
            return {"status": "won", "won_at": now, "lost_at": None}
        if new == "lost":
            return {"status": "lost", "lost_at": now, "won_at": None}
        return {"status": "open", "won_at": None, "lost_at": None}

    @staticmethod
    def _check_money(amount: int | None, currency: str | None) -> None:
        if amount is not None and currency is None:
            raise ValidationFailed(
                "A currency is required when an amount is set.",
                details=[{"field": "body.currency", "reason": "required when amount is set"}],
            )

    async def _moved(self, moves: Sequence[tuple[RowMapping, uuid.UUID | None]]) -> None:
        """Record stage moves `(deal row, from stage)` in the history and as
        `deal.stage_changed` events (one batched statement each)."""
        if not moves:
            return
        changes = await self.repo.add_stage_changes(
            [(row["id"], from_stage_id, row["stage_id"]) for row, from_stage_id in moves],
            self.principal.user_id,
        )
        await events.record_many(
            self.session,
            workspace_id=self.workspace_id,
            type="deal.stage_changed",
            items=[
                (
                    row["id"],
                    {
                        **self.read(row),
                        "from_stage_id": from_stage_id,
                        "to_stage_id": row["stage_id"],
                        "changed_at": change["changed_at"],
                    },
                )
                for (row, from_stage_id), change in zip(moves, changes, strict=True)
            ],
            principal=self.principal,
        )

    async def _status_events(self, rows: Sequence[RowMapping]) -> None:
        """`deal.won` / `deal.lost` for deals that just reached that status."""
        for status in ("won", "lost"):
            await events.record_many(
                self.session,
                workspace_id=self.workspace_id,
                type=f"deal.{status}",
                items=[(row["id"], self.read(row)) for row in rows if row["status"] == status],
                principal=self.principal,
            )

    # -- writes -------------------------------------------------------------------------------
    async def prepare_create(self, body: DealCreate, **_options: Any) -> dict[str, Any]:
        self._check_money(body.amount, body.currency)
        await self.check_record(ContactRepository, body.contact_id, "contact_id")
        await self.check_record(CompanyRepository, body.company_id, "company_id")
        await self.check_member(body.owner_id, "owner_id")
        if body.pipeline_id is not None:
            await self._check_pipeline(body.pipeline_id)
            pipeline_id = body.pipeline_id
        else:
            pipeline_id = (await self._default_pipeline())["id"]
        stage, status = await self._place(pipeline_id, body.stage_id, body.status, None)
        values = body.model_dump(exclude={"custom_fields", "status", "pipeline_id", "stage_id"})
        values.update(
            pipeline_id=pipeline_id,
            stage_id=stage["id"],
            custom_fields=await self.custom_fields.validate(body.custom_fields),
        )
        values.update(self._status_values(None, status))
        return values

    async def create(self, body: DealCreate) -> RowMapping:
        row = await self.repo.insert(await self.prepare_create(body))
        await self.after_created([row])
        return row

    async def after_created(
        self, rows: Sequence[RowMapping], reads: Sequence[dict[str, Any]] | None = None
    ) -> None:
        await self.after_write_many("created", rows, reads=reads)
        await self._moved([(row, None) for row in rows])
        await self._status_events([row for row in rows if row["status"] != "open"])

    async def update(
        self, deal_id: uuid.UUID, body: DealUpdate, expected: int | None
    ) -> RowMapping:
        current = await self.repo.get(deal_id, lock=True)
        if current is None:
            raise DealNotFound()
        return await self.apply_update(await self.prepare_update(body, current), expected)

    async def prepare_update(
        self, body: DealUpdate, current: RowMapping, sent: set[str] | None = None
    ) -> Change:
        sent = body.model_fields_set - {"id"} if sent is None else sent
        required = ("name", "pipeline_id", "stage_id", "status")
        changes: dict[str, Any] = {}
        for name in sent:
            value = getattr(body, name)
            if name in required and value is None:
                continue  # required: null leaves it as is
            changes[name] = value
        pipeline_id = changes.pop("pipeline_id", current["pipeline_id"])
        stage_id = changes.pop("stage_id", None)
        status = changes.pop("status", None)
        if pipeline_id != current["pipeline_id"]:
            await self._check_pipeline(pipeline_id)
            changes["pipeline_id"] = pipeline_id
        if "pipeline_id" in changes or stage_id is not None or status is not None:
            stage, new_status = await self._place(pipeline_id, stage_id, status, current)
            if stage["id"] != current["stage_id"]:
                changes["stage_id"] = stage["id"]
            changes.update(self._status_values(current["status"], new_status))
        self._check_money(
            changes.get("amount", current["amount"]), changes.get("currency", current["currency"])
        )
        if changes.get("contact_id") is not None:
            await self.check_record(ContactRepository, changes["contact_id"], "contact_id")
        if changes.get("company_id") is not None:
            await self.check_record(CompanyRepository, changes["company_id"], "company_id")
        if "owner_id" in changes:
            await self.check_member(changes["owner_id"], "owner_id")
        if "tags" in changes and changes["tags"] is None:
            changes["tags"] = []
        if "custom_fields" in changes:
            changes["custom_fields"] = await self.custom_fields.validate(
                body.custom_fields or {}, current["custom_fields"]
            )
        return Change(current, changes)

    async def after_updated(self, pairs: Sequence[tuple[Change, RowMapping]]) -> None:
        await super().after_updated(pairs)
        await self._moved(
            [(row, c.current["stage_id"]) for c, row in pairs if "stage_id" in c.changes]
        )
        await self._status_events(
            [row for c, row in pairs if c.changes.get("status") in ("won", "lost")]
        )

    async def insert_rows(self, values: Sequence[dict[str, Any]]) -> list[RowMapping]:
        return await self.repo.insert_returning(values)

    async def update_rows(
        self, items: Sequence[tuple[uuid.UUID, dict[str, Any]]]
    ) -> list[RowMapping | None]:
        return await self.repo.update_each(items)

    async def load_current(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RowMapping]:
        return await self.repo.live_by_ids(ids, lock=True)

    async def before_erase(self, row: RowMapping) -> None:
        """Stage history goes with the deal; activities, tasks and leads forget it."""
        await self.repo.detach(row["id"])

    # -- reads --------------------------------------------------------------------------------
    async def stage_history(self, deal_id: uuid.UUID, params: ListParams) -> Page:
        await self.get(deal_id)
        page = await self.history.list_for(deal_id, params)
        page.rows = [change_read(row) for row in page.rows]
        return page

    # -- bulk ---------------------------------------------------------------------------------
    async def _preload_places(
        self, pipeline_ids: set[uuid.UUID], stage_ids: set[uuid.UUID]
    ) -> None:
        """Which pipelines and stages exist, and the stages of the live pipelines: three
        queries for a whole batch (`_check_pipeline` and `_place` then ask no more)."""
        await self.preload_records(PipelineRepository, pipeline_ids)
        live = {i for i in pipeline_ids if self._records[PipelineRepository].get(i)}
        if self._default is not None:
            live.add(self._default["id"])
        missing = [i for i in live if i not in self._stages]
        if missing:
            self._stages.update(await self.stages.for_pipelines(missing))
        await self.preload_records(StageRepository, stage_ids)

    async def preload_creates(self, bodies: Sequence[Any], **options: Any) -> None:
        await self._preload_places(
            {b.pipeline_id for b in bodies if b.pipeline_id},
            {b.stage_id for b in bodies if b.stage_id},
        )
        await super().preload_creates(bodies, **options)

    async def preload_updates(self, bodies: Sequence[Any]) -> None:
        await super().preload_updates(bodies)
        await self._preload_places(
            {b.pipeline_id for b in bodies if b.pipeline_id}
            | {row["pipeline_id"] for row in self._current.values()},
            {b.stage_id for b in bodies if b.stage_id},
        )

    async def bulk_create(self, items: list[dict[str, Any]], atomic: bool) -> dict[str, Any]:
        if any(isinstance(i, dict) and i.get("pipeline_id") is None for i in items):
            # Seeded before the batch (and outside its savepoint), so a failed item cannot take
            # it along.
            await self._default_pipeline()
        return await self.bulk_create_items(items, DealCreate, atomic)

    async def bulk_update(self, items: list[dict[str, Any]], atomic: bool) -> dict[str, Any]:
        return await self.bulk_update_items(items, DealBulkUpdate, atomic)
