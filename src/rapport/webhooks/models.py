"""Webhook endpoints, their deliveries (one per event and endpoint) and each delivery's attempts.

All three are tenant tables; deliveries reference their endpoint and attempts their delivery with
composite foreign keys (workspace_id first), so nothing can point across workspaces, and deleting
an endpoint removes its delivery log with it (ON DELETE CASCADE).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.models import Base, JSONType, RecordMixin, TenantMixin, TimestampMixin

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
DELIVERY_STATUSES = (PENDING, SUCCEEDED, FAILED)
# What made an attempt: the retry schedule, an admin's redeliver, or the test endpoint.
SCHEDULED, REDELIVER, TEST = "scheduled", "redeliver", "test"


def _cascade_fk(column: str, table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["workspace_id", column],
        [f"{table}.workspace_id", f"{table}.id"],
        ondelete="CASCADE",
    )


class WebhookEndpoint(RecordMixin, Base):
    __tablename__ = "webhook_endpoint"
    __table_args__ = (
        Index("ix_webhook_endpoint_workspace_created", "workspace_id", "created_at", "id"),
    )

    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500))
    # Event type patterns: "*", "contact.*", "lead.converted".
    events: Mapped[list[str]] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[datetime | None]
    # Signing secrets ("whsec_..."): kept readable because every delivery is signed with them.
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None]
    # Start of the current run of failed attempts (None after any success): the disable rule.
    failing_since: Mapped[datetime | None]


class WebhookDelivery(TenantMixin, TimestampMixin, Base):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        _cascade_fk("endpoint_id", "webhook_endpoint"),
        # One delivery per event and endpoint, whatever retries the relay makes.
        Index("ix_webhook_delivery_event", "workspace_id", "endpoint_id", "event_id", unique=True),
        Index("ix_webhook_delivery_log", "workspace_id", "endpoint_id", "created_at", "id"),
    )

    endpoint_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]  # also the `webhook-id` header: receivers dedupe on it
    event_type: Mapped[str] = mapped_column(String(100))
    # The exact JSON body sent (the same bytes on every attempt; only the timestamp header moves).
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))


class WebhookAttempt(TenantMixin, Base):
    __tablename__ = "webhook_attempt"
    __table_args__ = (
        _cascade_fk("delivery_id", "webhook_delivery"),
        Index("ix_webhook_attempt_delivery", "workspace_id", "delivery_id", "attempt"),
    )

    delivery_id: Mapped[uuid.UUID]
    attempt: Mapped[int] = mapped_column(Integer)  # 1 for the first
    trigger: Mapped[str] = mapped_column(String(20))
    url: Mapped[str] = mapped_column(String(2048))
    request_headers: Mapped[dict[str, Any]] = mapped_column(JSONType)
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)  # at most 2 KB
    latency_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
