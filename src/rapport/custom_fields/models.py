from __future__ import annotations

from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.models import Base, JSONType, RecordMixin

RESOURCES = ("contact", "company", "lead", "deal", "activity", "task")
FIELD_TYPES = ("text", "number", "date", "boolean", "select", "multi_select", "url", "email")


class CustomFieldDefinition(RecordMixin, Base):
    """An admin-defined field of one resource; values live in the record's custom_fields."""

    __tablename__ = "custom_field_definition"
    __table_args__ = (UniqueConstraint("workspace_id", "resource", "name"),)

    resource: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(64))  # the key in custom_fields and in cf.<name>
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    options: Mapped[list[str]] = mapped_column(JSONType, default=list)  # select / multi_select
    required: Mapped[bool] = mapped_column(default=False)
    description: Mapped[str | None] = mapped_column(String(1000))
    position: Mapped[int] = mapped_column(default=0)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
