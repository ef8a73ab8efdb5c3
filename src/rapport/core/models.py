"""Declarative base, column types and the mixins every table is made of.

Tenant tables have the primary key (workspace_id, id): every lookup is scoped by workspace anyway,
composite foreign keys between tenant tables reference it, and a distributed PostgreSQL (Citus) can
shard by workspace_id without a schema rewrite.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, ForeignKeyConstraint, Integer, MetaData, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from rapport.core.clock import utcnow
from rapport.core.ids import new_id

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is UTC and dialect.name != "sqlite":  # as the clock makes them
            return value
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# JSON kept as the text it was written as (PostgreSQL's `json`, not `jsonb`): for payloads that
# are written once, read whole and never queried inside (events, audit entries). PostgreSQL only
# checks such text on the way in and hands it back as it is, where `jsonb` parses it into its
# binary form and prints it again for every read (migration 0013 has the figures).
JSONText = JSON()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime,
        uuid.UUID: Uuid,
        dict[str, Any]: JSONType,
        list[str]: JSONType,
    }


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class VersionMixin:
    version: Mapped[int] = mapped_column(Integer, default=1)


class SoftDeleteMixin:
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class TenantMixin:
    """workspace_id first in the primary key: the tenant is the leading column of every lookup."""

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class RecordMixin(TenantMixin, TimestampMixin, VersionMixin):
    """A workspace record with the contract's bookkeeping columns."""


class UserFacingMixin:
    """What API.md gives every user-facing record: tags and validated custom fields."""

    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


def member_fk(column: str) -> ForeignKeyConstraint:
    """(workspace_id, <column>) → a membership of the same workspace (owners, authors...)."""
    return ForeignKeyConstraint(
        ["workspace_id", column], ["membership.workspace_id", "membership.user_id"]
    )


def record_fk(column: str, table: str) -> ForeignKeyConstraint:
    """(workspace_id, <column>) → a record of the same workspace: no reference can cross tenants."""
    return ForeignKeyConstraint(["workspace_id", column], [f"{table}.workspace_id", f"{table}.id"])
