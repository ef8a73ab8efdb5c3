"""Who may see an event on the stream, and what a connection asked to see.

An event is prepared once (`Outgoing`: its routing facts and the exact text sent), then each
connection of its workspace decides with two cheap checks: may this principal see it (role,
recipient), and did the connection subscribe to its type.

Visibility, beyond "same workspace only":
- `notification.*` is personal: only user sessions of the user named by `data["user_id"]` (an API
  key acts for integrations, it has no inbox). An event naming no user reaches nobody.
- Events about admin-only resources (users and memberships, invitations, API keys, webhooks,
  integrations, the audit trail) reach admins only, whatever the subscription says.
- Technicians see only what is assigned to them (`assignee_id` / `technician_id` in the data),
  mirroring what their role may read over HTTP.
- Everyone else in the workspace (admins, members, viewers) sees every other event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rapport.core.auth import Principal, Role
from rapport.core.envelope import dumps
from rapport.core.outbox import DomainEvent, matches

PERSONAL = ("notification.*",)
ADMIN_ONLY = (
    "user.*",
    "membership.*",
    "invitation.*",
    "api_key.*",
    "webhook.*",
    "webhook_*",
    "integration.*",
    "audit*",
)
ASSIGNEE_FIELDS = ("assignee_id", "technician_id")

EVERYONE = "workspace"
ADMINS = "admins"
ONE_USER = "user"

# Subscription patterns: event types with `*` wildcards (not `?` or `[...]`, which fnmatch reads).
TYPE_PATTERN = re.compile(r"^[a-z0-9_.*]{1,100}$")
MAX_PATTERNS = 50


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event as the hub routes it. Plain strings only: it crosses Redis as JSON."""

    workspace_id: str
    type: str
    audience: str  # EVERYONE, ADMINS or ONE_USER
    user_id: str | None  # the recipient when audience is ONE_USER
    assignees: tuple[str, ...]
    text: str  # the message the client receives, encoded once for every connection

    @classmethod
    def from_event(cls, event: DomainEvent) -> Outgoing:
        data = event.data if isinstance(event.data, dict) else {}
        audience, user_id = EVERYONE, None
        if matches(PERSONAL, event.type):
            audience = ONE_USER
            user_id = _id(data.get("user_id"))
        elif matches(ADMIN_ONLY, event.type):
            audience = ADMINS
        assignees = tuple(a for a in (_id(data.get(f)) for f in ASSIGNEE_FIELDS) if a)
        message = {
            "id": str(event.id),
            "type": event.type,
            "timestamp": event.timestamp,
            "data": event.data,
            "actor": {
                "type": event.actor_type,
                "id": str(event.actor_id) if event.actor_id else None,
            },
        }
        return cls(
            workspace_id=str(event.workspace_id),
            type=event.type,
            audience=audience,
            user_id=user_id,
            assignees=assignees,
            text=dumps(message).decode(),
        )

    @property
    def kind(self) -> tuple[str, str, str | None, tuple[str, ...]]:
        """Everything a connection's decision depends on."""
        return self.type, self.audience, self.user_id, self.assignees

    def to_wire(self) -> dict[str, Any]:
        return {
            "w": self.workspace_id,
            "t": self.type,
            "a": self.audience,
            "u": self.user_id,
            "s": list(self.assignees),
            "m": self.text,
        }

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Outgoing:
        return cls(
            workspace_id=str(raw["w"]),
            type=str(raw["t"]),
            audience=str(raw["a"]),
            user_id=str(raw["u"]) if raw.get("u") else None,
            assignees=tuple(str(a) for a in raw.get("s") or ()),
            text=str(raw["m"]),
        )


def _id(value: Any) -> str | None:
    return str(value) if value else None


def may_see(principal: Principal, item: Outgoing) -> bool:
    """The role rules above; the workspace is already matched by the hub's index."""
    if item.audience == ONE_USER:
        return principal.credential == "user" and item.user_id == str(principal.user_id)
    if item.audience == ADMINS:
        return principal.role is Role.admin
    if principal.role is Role.technician:
        return str(principal.user_id) in item.assignees
    return True


class Subscription:
    """Event types a connection wants: everything by default.

    The first `subscribe` narrows the default to the types it names; later ones add to them.
    `unsubscribe` removes a pattern the connection subscribed to, or else excludes it (so
    "everything but `contact.*`" is `unsubscribe ["contact.*"]`). Patterns use `*` wildcards.
    """

    def __init__(self) -> None:
        self.include: set[str] = {"*"}
        self.exclude: set[str] = set()
        self.default = True
        self._wanted: dict[str, bool] = {}  # per event type: types are few, checks are many

    def subscribe(self, types: list[str]) -> None:
        include = set(types) if self.default else self.include | set(types)
        self._apply(include, self.exclude - set(types))

    def unsubscribe(self, types: list[str]) -> None:
        include, exclude = set(self.include), set(self.exclude)
        for pattern in types:
            if pattern in include:
                include.discard(pattern)
            else:
                exclude.add(pattern)
        self._apply(include, exclude)

    def _apply(self, include: set[str], exclude: set[str]) -> None:
        """All or nothing: a refused change leaves the subscription as it was."""
        if len(include) + len(exclude) > MAX_PATTERNS:
            raise ValueError(f"A connection holds at most {MAX_PATTERNS} type patterns.")
        self.include, self.exclude, self.default = include, exclude, False
        self._wanted.clear()

    def wants(self, event_type: str) -> bool:
        hit = self._wanted.get(event_type)
        if hit is None:
            hit = matches(tuple(self.include), event_type) and not matches(
                tuple(self.exclude), event_type
            )
            if len(self._wanted) < 1000:
                self._wanted[event_type] = hit
        return hit

    def describe(self) -> dict[str, list[str]]:
        return {"types": sorted(self.include), "excluded": sorted(self.exclude)}
