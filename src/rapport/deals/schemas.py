from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rapport.core.values import Currency, LongText, MinorUnits, Tags, Text

MAX_STAGES = 50
STATUSES = ("open", "won", "lost")
Status = Literal["open", "won", "lost"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- stages ------------------------------------------------------------------------------------
class StageCreate(StrictModel):
    name: Text = Field(min_length=1, max_length=200, examples=["Qualified"])
    position: int | None = Field(
        None, ge=0, le=1000, description="0-based place in the pipeline; default: last."
    )
    probability: int | None = Field(
        None, ge=0, le=100, description="Percent; default 100 for a won stage, else 0."
    )
    is_won: bool = False
    is_lost: bool = False

    @model_validator(mode="after")
    def _not_both(self) -> StageCreate:
        if self.is_won and self.is_lost:
            raise ValueError("a stage cannot be both won and lost")
        return self


class StageUpdate(StrictModel):
    name: Text | None = Field(None, min_length=1, max_length=200)
    position: int | None = Field(None, ge=0, le=1000)
    probability: int | None = Field(None, ge=0, le=100)
    is_won: bool | None = None
    is_lost: bool | None = None


class StageReorder(StrictModel):
    stage_ids: list[uuid.UUID] = Field(
        max_length=MAX_STAGES, description="Every stage of the pipeline, in the new order."
    )


class StageRead(BaseModel):
    id: uuid.UUID
    pipeline_id: uuid.UUID
    name: str
    position: int
    probability: int
    is_won: bool
    is_lost: bool
    created_at: datetime
    updated_at: datetime
    version: int


# -- pipelines ---------------------------------------------------------------------------------
class PipelineCreate(StrictModel):
    name: Text = Field(min_length=1, max_length=200, examples=["Enterprise"])
    is_default: bool = Field(False, description="Make it the workspace's default pipeline.")
    position: int | None = Field(None, ge=0, le=10000, description="Default: after the others.")
    stages: list[StageCreate] | None = Field(
        None, max_length=MAX_STAGES, description="Stages to create with it, in order."
    )


class PipelineUpdate(StrictModel):
    name: Text | None = Field(None, min_length=1, max_length=200)
    is_default: bool | None = Field(
        None, description="true makes it the default (the previous default stops being one)."
    )
    position: int | None = Field(None, ge=0, le=10000)


class PipelineRead(BaseModel):
    id: uuid.UUID
    name: str
    is_default: bool
    position: int
    stages: list[StageRead]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int


# -- deals -------------------------------------------------------------------------------------
class DealCreate(StrictModel):
    name: Text = Field(min_length=1, max_length=200, examples=["Acme renewal"])
    amount: MinorUnits | None = None
    currency: Currency | None = Field(None, description="Required when amount is set.")
    pipeline_id: uuid.UUID | None = Field(None, description="Default: the default pipeline.")
    stage_id: uuid.UUID | None = Field(
        None, description="Default: the pipeline's first stage. Must belong to the pipeline."
    )
    status: Status | None = Field(
        None,
        description="Default: from the stage. won/lost moves the deal to the pipeline's "
        "won/lost stage when it has one.",
    )
    expected_close_date: date | None = Field(None, examples=["2026-06-30"])
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    tags: Tags = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    notes: LongText | None = Field(None, max_length=10000)
    lost_reason: Text | None = Field(None, max_length=500)


class DealUpdate(StrictModel):
    name: Text | None = Field(None, min_length=1, max_length=200)
    amount: MinorUnits | None = None
    currency: Currency | None = None
    pipeline_id: uuid.UUID | None = Field(
        None, description="Moving to another pipeline without stage_id: its first stage."
    )
    stage_id: uuid.UUID | None = None
    status: Status | None = None
    expected_close_date: date | None = None
    contact_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    tags: Tags | None = None
    custom_fields: dict[str, Any] | None = None
    notes: LongText | None = Field(None, max_length=10000)
    lost_reason: Text | None = Field(None, max_length=500)


class DealBulkUpdate(DealUpdate):
    id: uuid.UUID


class DealRead(BaseModel):
    id: uuid.UUID
    name: str
    amount: int | None
    currency: str | None
    pipeline_id: uuid.UUID
    pipeline_name: str
    stage_id: uuid.UUID
    stage_name: str
    probability: int
    status: Status
    expected_close_date: date | None
    contact_id: uuid.UUID | None
    company_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    won_at: datetime | None
    lost_at: datetime | None
    lost_reason: str | None
    notes: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int


class DealStageChangeRead(BaseModel):
    id: uuid.UUID
    deal_id: uuid.UUID
    from_stage_id: uuid.UUID | None
    from_stage_name: str | None = Field(description="null when that stage was deleted since.")
    to_stage_id: uuid.UUID
    to_stage_name: str | None
    changed_at: datetime
    changed_by: uuid.UUID | None
