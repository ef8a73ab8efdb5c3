from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rapport.core.auth import Role
from rapport.core.clock import utcnow
from rapport.core.values import normalise_email

USERNAME = re.compile(r"^[a-zA-Z0-9_.\-]{3,64}$")


def normalise_username(value: str) -> str:
    if not USERNAME.match(value):
        raise ValueError("3 to 64 letters, digits, '_', '.' or '-'")
    return value.lower()


Email = Annotated[
    str, Field(max_length=320, examples=["ada@example.com"]), AfterValidator(normalise_email)
]
Username = Annotated[
    str, Field(max_length=64, examples=["ada"]), AfterValidator(normalise_username)
]
Password = Annotated[str, Field(min_length=8, max_length=256, examples=["correct horse battery"])]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegisterRequest(Input):
    email: Email
    password: Password
    full_name: str = Field(min_length=1, max_length=200, examples=["Ada Lovelace"])
    username: Username | None = None
    workspace_name: str | None = Field(None, min_length=1, max_length=200, examples=["Acme Ltd"])
    invitation_token: str | None = Field(None, max_length=200)


class LoginRequest(Input):
    username_or_email: str = Field(min_length=1, max_length=320, examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=256, examples=["correct horse battery"])
    workspace_id: uuid.UUID | None = Field(
        None, description="Workspace to sign in to (default: the latest joined)."
    )


class RefreshRequest(Input):
    refresh_token: str = Field(min_length=1, max_length=200)


class UserRead(BaseModel):
    id: uuid.UUID
    email: str
    username: str | None
    full_name: str
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime
    version: int
    last_login_at: datetime | None = None


class WorkspaceRef(BaseModel):
    id: uuid.UUID
    name: str


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: UserRead
    workspace: WorkspaceRef


class OAuth2Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str


class Me(BaseModel):
    user: UserRead
    workspace: WorkspaceRef
    credential: str = Field(description="user or api_key")


class UserUpdate(Input):
    role: Role | None = None
    is_active: bool | None = None


class InvitationCreate(Input):
    email: Email
    role: Role = Role.member


class InvitationRead(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    invited_by: uuid.UUID
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class InvitationCreated(InvitationRead):
    token: str = Field(
        description="Shown once: pass it to POST /auth/register as invitation_token."
    )


def future_instant(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2027-01-01T00:00:00Z")
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range") from exc
    if in_utc <= utcnow():
        raise ValueError("must be in the future")
    if in_utc.year >= 9999:
        raise ValueError("is too far in the future")
    return value


class ApiKeyCreate(Input):
    name: str = Field(min_length=1, max_length=200, examples=["Zapier sync"])
    role: Role = Role.member
    expires_at: Annotated[datetime | None, AfterValidator(future_instant)] = Field(
        None,
        description="When the key stops working (omit for no expiry).",
        examples=["2027-01-01T00:00:00Z"],
    )


class ApiKeyRead(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    role: Role
    created_by: uuid.UUID
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="Shown once. Send it as `Authorization: Bearer <key>`.")
