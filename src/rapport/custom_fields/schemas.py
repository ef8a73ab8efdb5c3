from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rapport.core.values import LongText, Text

Resource = Literal["contact", "company", "lead", "deal", "activity", "task"]
FieldType = Literal["text", "number", "date", "boolean", "select", "multi_select", "url", "email"]
NAME = r"^[a-z][a-z0-9_]{0,63}$"


class CustomFieldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    resource: Resource
    name: str = Field(
        pattern=NAME,
        description="Key in custom_fields and in cf.<name> filters.",
        examples=["renewal_date"],
    )
    label: Text = Field(min_length=1, max_length=200, examples=["Renewal date"])
    type: FieldType
    options: list[Text] = Field(
        default_factory=list,
        max_length=500,
        description="Choices of select and multi_select fields.",
    )
    required: bool = False
    description: LongText | None = Field(None, max_length=1000)
    position: int = Field(0, ge=0, le=10000)

    @model_validator(mode="after")
    def _options_fit_type(self) -> CustomFieldCreate:
        if self.type in ("select", "multi_select"):
            if not self.options:
                raise ValueError("select and multi_select fields need options")
            if len(set(self.options)) != len(self.options):
                raise ValueError("options must be distinct")
        elif self.options:
            raise ValueError("only select and multi_select fields take options")
        return self


class CustomFieldUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    label: Text | None = Field(None, min_length=1, max_length=200)
    options: list[Text] | None = Field(None, max_length=500)
    required: bool | None = None
    description: LongText | None = Field(None, max_length=1000)
    position: int | None = Field(None, ge=0, le=10000)


class CustomFieldRead(BaseModel):
    id: uuid.UUID
    resource: Resource
    name: str
    label: str
    type: FieldType
    options: list[str]
    required: bool
    description: str | None
    position: int
    created_at: datetime
    updated_at: datetime
    version: int


CustomFieldValues = dict[str, Any]
