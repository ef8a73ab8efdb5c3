"""Plain async factories for tests: accounts in fresh workspaces, members with roles, tags."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery"


@dataclass
class Account:
    token: str
    refresh_token: str
    user: dict[str, Any]
    workspace: dict[str, Any]
    email: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def workspace_id(self) -> str:
        return self.workspace["id"]


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def _account(body: dict[str, Any], email: str) -> Account:
    data = body["data"]
    return Account(
        token=data["access_token"],
        refresh_token=data["refresh_token"],
        user=data["user"],
        workspace=data["workspace"],
        email=email,
    )


async def register(client: httpx.AsyncClient, **overrides: Any) -> Account:
    """A new user who is the admin of a new workspace."""
    email = overrides.pop("email", None) or unique_email()
    payload = {"email": email, "password": PASSWORD, "full_name": "Test Admin", **overrides}
    response = await client.post("/api/v1/auth/register", json=payload)
    assert response.status_code == 201, response.text
    return _account(response.json(), email)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Account:
    response = await client.post(
        "/api/v1/auth/login", json={"username_or_email": email, "password": password}
    )
    assert response.status_code == 200, response.text
    return _account(response.json(), email)


async def add_member(client: httpx.AsyncClient, admin: Account, role: str = "member") -> Account:
    """Invite someone into the admin's workspace with `role` and register them."""
    email = unique_email(role)
    invited = await client.post(
        "/api/v1/users/invitations", json={"email": email, "role": role}, headers=admin.headers
    )
    assert invited.status_code == 201, invited.text
    return await register(
        client, email=email, invitation_token=invited.json()["data"]["token"], full_name=f"A {role}"
    )


async def create_api_key(
    client: httpx.AsyncClient, admin: Account, role: str = "member"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/api-keys", json={"name": f"key {role}", "role": role}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def create_tag(
    client: httpx.AsyncClient, account: Account, **overrides: Any
) -> dict[str, Any]:
    payload = {"name": f"tag-{uuid.uuid4().hex[:8]}", **overrides}
    response = await client.post("/api/v1/tags", json=payload, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]
