"""Notifications (one user's inbox within a workspace) and the last known holder of each
assignable record, which lets the subscriber tell a reassignment from any other update."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.clock import utcnow
from rapport.core.models import Base, JSONType, TenantMixin


class Notification(TenantMixin, Base):
    __tablename__ = "notification"
    __table_args__ = (
        # The recipient is a member of the notification's workspace, enforced by the database;
        # removing the membership removes its inbox.
        ForeignKeyConstraint(
            ["workspace_id", "user_id"],
            ["membership.workspace_id", "membership.user_id"],
            ondelete="CASCADE",
        ),
        # Every list starts from (workspace, user): newest first, unread first-class (status
        # filter and unread count), by type; the resource index serves erasure.
        Index("ix_notification_user_created", "workspace_id", "user_id", "created_at", "id"),
        Index(
            "ix_notification_user_unread", "workspace_id", "user_id", "read_at", "created_at", "id"
        ),
        Index("ix_notification_user_type", "workspace_id", "user_id", "type", "created_at", "id"),
        Index("ix_notification_resource", "workspace_id", "resource_id"),
    )

    user_id: Mapped[uuid.UUID]
    type: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(String(2000))
    resource_type: Mapped[str | None] = mapped_column(String(50))
    resource_id: Mapped[uuid.UUID | None]
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    read_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationHolder(Base):
    """Who holds an assignable record (a task's assignee, a contact's, lead's or deal's owner) as
    the notifications subscriber last saw it. Events carry only the new state of a record; this
    row is the old one, so "assigned to you" is sent when the holder changes, not on every edit.
    Only records with a holder have a row."""

    __tablename__ = "notification_holder"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    resource_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID]
