from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

COLOR = r"^#[0-9a-fA-F]{6}$"


class TagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100, examples=["vip"])
    color: str | None = Field(None, pattern=COLOR, examples=["#ff8800"])
    description: str | None = Field(None, max_length=1000, examples=["High-value customers"])


class TagUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=100)
    color: str | None = Field(None, pattern=COLOR)
    description: str | None = Field(None, max_length=1000)


class TagRead(BaseModel):
    id: uuid.UUID
    name: str
    color: str | None
    description: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    version: int
