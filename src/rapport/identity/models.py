"""Workspaces (the tenant), users (global identities), memberships with roles, sessions with
rotating refresh tokens, API keys and invitations.

Tables that belong to a workspace reference the membership with a composite foreign key
(workspace_id, user_id): a key, session or invitation can never point at another workspace's user.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.core.ids import new_id
from rapport.core.models import Base, JSONType, TenantMixin, TimestampMixin, VersionMixin


class Workspace(TimestampMixin, VersionMixin, Base):
    __tablename__ = "workspace"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class User(TimestampMixin, VersionMixin, Base):
    __tablename__ = "user_account"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored normalised, lower case
    username: Mapped[str | None] = mapped_column(String(64), unique=True)  # lower case
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    last_login_at: Mapped[datetime | None]


class Membership(TimestampMixin, VersionMixin, Base):
    __tablename__ = "membership"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(default=True)


def _member_fk(column: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["workspace_id", column],
        ["membership.workspace_id", "membership.user_id"],
        ondelete="CASCADE",
    )


class AuthSession(TenantMixin, Base):
    """One login: the family its rotating refresh tokens belong to. Revoking it ends them all."""

    __tablename__ = "auth_session"
    __table_args__ = (
        _member_fk("user_id"),
        Index("ix_auth_session_user", "workspace_id", "user_id"),
    )

    user_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(50))


class RefreshToken(TenantMixin, Base):
    __tablename__ = "refresh_token"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "session_id"],
            ["auth_session.workspace_id", "auth_session.id"],
            ondelete="CASCADE",
        ),
        Index("ix_refresh_token_session", "workspace_id", "session_id"),
    )

    session_id: Mapped[uuid.UUID]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ApiKey(TenantMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "api_key"
    __table_args__ = (
        _member_fk("created_by"),
        Index("ix_api_key_creator", "workspace_id", "created_by"),
    )

    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[uuid.UUID]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Invitation(TenantMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "invitation"
    __table_args__ = (
        _member_fk("invited_by"),
        Index("ix_invitation_inviter", "workspace_id", "invited_by"),
    )

    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[uuid.UUID]
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
