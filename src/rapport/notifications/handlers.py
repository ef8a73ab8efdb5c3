"""What turns domain events into notifications: a durable outbox subscriber and the due-reminder
job. Both run inside a transaction of their own machinery and write through `service.deliver`
(one insert per batch; recipients must be active members of the event's workspace).

Rules:
- **Assigned to you** (`task.assigned`, `contact|lead|deal.assigned`): on `<resource>.created` or
  `.updated`, the record's holder (a task's `assignee_id`, otherwise `owner_id`) is compared with
  the holder this subscriber last saw for that record (table `notification_holder`; events carry
  only the new state). When it changed to someone, that someone is notified unless they are the
  event's actor (nobody is notified of their own doing, whatever credential they used). A record
  whose holder was never seen (written before notifications existed) counts as held by nobody.
- **Lead converted** (`lead.converted`): the lead's owner, unless they converted it themselves.
- **Webhook endpoint disabled** (`webhook_endpoint.disabled`, data `id`, `url`, `reason`): every
  active admin of the workspace, except the actor if an admin disabled it by hand.
- **Task due** (`task.due`): when a task is created or updated with a future `due_at`, an
  assignee and an open status, a job `notifications.task_due` is queued for `due_at` minus
  `REMINDER_LEAD` (deduplicated per task and due time). When it runs it notifies the task's
  assignee at that moment, if the task is still live, open and due at that same time.
- A record erased for good takes its notifications and its holder row with it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from rapport.core import jobs, outbox
from rapport.core.listing import PARSERS
from rapport.core.outbox import DomainEvent, RelayContext
from rapport.notifications import repository
from rapport.notifications.service import Draft, deliver
from rapport.tasks.repository import CLOSED, TaskRepository

# The field that names each assignable record's holder, and how the record is called.
HOLDER_FIELDS = {
    "task": "assignee_id",
    "contact": "owner_id",
    "lead": "owner_id",
    "deal": "owner_id",
}
LABELS = {"task": "Task", "contact": "Contact", "lead": "Lead", "deal": "Deal"}
REMINDER_LEAD = timedelta(minutes=15)
TASK_DUE = "notifications.task_due"
HOLDER_VERBS = ("created", "updated", "erased")

PATTERNS = (
    *(f"{resource}.{verb}" for resource in HOLDER_FIELDS for verb in ("created", "updated")),
    *(f"{resource}.erased" for resource in HOLDER_FIELDS),
    "task.restored",
    "lead.converted",
    "webhook_endpoint.disabled",
)

Key = tuple[uuid.UUID, uuid.UUID]


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return PARSERS[datetime](value)
    except ValueError:
        return None


def display_name(resource: str, data: dict[str, Any]) -> str:
    """How a record is called in a notification: a task's title, a deal's name, a person's name
    (or email), a company's name."""
    if resource == "task":
        name = data.get("title")
    elif resource in ("contact", "lead"):
        name = data.get("full_name") or " ".join(
            p for p in (data.get("first_name"), data.get("last_name")) if p
        )
        name = name or data.get("email") or data.get("company_name")
    else:
        name = data.get("name")
    return str(name) if name else f"{LABELS.get(resource, resource)} {data.get('id', '')}".strip()


def _actor(event: DomainEvent) -> dict[str, Any]:
    return {"type": event.actor_type, "id": event.actor_id}


# -- the subscriber ------------------------------------------------------------------------------


@outbox.subscriber("notifications", *PATTERNS)
async def notify(ctx: RelayContext, batch: list[DomainEvent]) -> None:
    """One batch of events → its notifications (one insert), holder rows, reminder jobs."""
    drafts: list[Draft] = []
    drafts += await _assignments(ctx, batch)
    drafts += _conversions(batch)
    drafts += await _disabled_endpoints(ctx, batch)
    await _schedule_reminders(ctx, batch)
    erased = await _erase(ctx, batch)
    drafts = [d for d in drafts if (d.workspace_id, d.resource_id) not in erased]
    await deliver(ctx.session, drafts, ctx.now())


async def _assignments(ctx: RelayContext, batch: list[DomainEvent]) -> list[Draft]:
    relevant: list[tuple[DomainEvent, str, uuid.UUID]] = []
    for event in batch:
        resource, _, verb = event.type.partition(".")
        record_id = event.resource_id or _uuid(event.data.get("id"))
        if resource in HOLDER_FIELDS and record_id is not None and verb in HOLDER_VERBS:
            relevant.append((event, resource, record_id))
    if not relevant:
        return []
    # A record the relay's own batch creates has no holder yet (its creation is its first event,
    # and none of the batch's events was handled before): only the others are looked up, so a
    # bulk create's batch reads nothing.
    keys = [
        (e.workspace_id, record_id)
        for e, _, record_id in relevant
        if not (ctx.fresh and e.type.endswith(".created"))
    ]
    seen: dict[Key, uuid.UUID | None] = dict(await repository.load_holders(ctx.session, keys))
    changed: dict[Key, uuid.UUID | None] = {}
    drafts = []
    for event, resource, record_id in relevant:  # in event order: each sees the ones before
        key = (event.workspace_id, record_id)
        if event.type.endswith(".erased"):
            seen[key] = changed[key] = None
            continue
        field = HOLDER_FIELDS[resource]
        if field not in event.data:
            continue
        holder = _uuid(event.data[field])
        previous = seen.get(key)
        if holder == previous:
            continue
        seen[key] = changed[key] = holder
        if holder is None or holder == event.actor_id:
            continue
        name = display_name(resource, event.data)
        drafts.append(
            Draft(
                workspace_id=event.workspace_id,
                user_id=holder,
                type=f"{resource}.assigned",
                title=f"{LABELS[resource]} assigned to you: {name}",
                body=_assignment_body(resource, event.data),
                resource_type=resource,
                resource_id=record_id,
                data={
                    "event_id": event.id,
                    "event_type": event.type,
                    "actor": _actor(event),
                    "name": name,
                    "previous_" + field: previous,
                },
            )
        )
    await repository.save_holders(ctx.session, changed)
    return drafts


def _assignment_body(resource: str, data: dict[str, Any]) -> str | None:
    if resource == "task":
        parts = [f"Due {data['due_at']}" if data.get("due_at") else None]
        parts.append(f"priority {data['priority']}" if data.get("priority") else None)
        text = ", ".join(p for p in parts if p)
        return text or None
    if resource == "deal" and data.get("amount") is not None:
        return f"{data['amount']} {data.get('currency') or ''}".strip() + " (minor units)"
    return data.get("email") or None


def _conversions(batch: list[DomainEvent]) -> list[Draft]:
    drafts = []
    for event in batch:
        if event.type != "lead.converted":
            continue
        owner = _uuid(event.data.get("owner_id"))
        if owner is None or owner == event.actor_id:
            continue
        name = display_name("lead", event.data)
        drafts.append(
            Draft(
                workspace_id=event.workspace_id,
                user_id=owner,
                type="lead.converted",
                title=f"Lead converted: {name}",
                body=f"{name} was converted into a contact"
                + (" and a deal." if event.data.get("deal_id") else "."),
                resource_type="lead",
                resource_id=event.resource_id or _uuid(event.data.get("id")),
                data={
                    "event_id": event.id,
                    "actor": _actor(event),
                    "name": name,
                    "contact_id": event.data.get("contact_id"),
                    "company_id": event.data.get("company_id"),
                    "deal_id": event.data.get("deal_id"),
                },
            )
        )
    return drafts


async def _disabled_endpoints(ctx: RelayContext, batch: list[DomainEvent]) -> list[Draft]:
    disabled = [e for e in batch if e.type == "webhook_endpoint.disabled"]
    if not disabled:
        return []
    admins = await repository.active_admins(ctx.session, (e.workspace_id for e in disabled))
    drafts = []
    for event in disabled:
        url = str(event.data.get("url") or "")
        reason = event.data.get("reason")
        for admin in admins.get(event.workspace_id, ()):
            if admin == event.actor_id:
                continue
            drafts.append(
                Draft(
                    workspace_id=event.workspace_id,
                    user_id=admin,
                    type="webhook_endpoint.disabled",
                    title="Webhook endpoint disabled",
                    body=f"{url} was disabled" + (f": {reason}" if reason else "."),
                    resource_type="webhook_endpoint",
                    resource_id=event.resource_id or _uuid(event.data.get("id")),
                    data={"event_id": event.id, "url": url, "reason": reason},
                )
            )
    return drafts


def reminder_key(workspace_id: uuid.UUID, task_id: uuid.UUID, due_at: datetime) -> str:
    return f"{workspace_id}:{task_id}:{due_at.isoformat()}"


async def _schedule_reminders(ctx: RelayContext, batch: list[DomainEvent]) -> None:
    now = ctx.now()
    wanted: dict[str, tuple[DomainEvent, uuid.UUID, datetime]] = {}
    for event in batch:
        if event.type not in ("task.created", "task.updated", "task.restored"):
            continue
        data = event.data
        task_id = event.resource_id or _uuid(data.get("id"))
        due_at = _when(data.get("due_at"))
        if (
            task_id is None
            or due_at is None
            or due_at <= now
            or data.get("status") in CLOSED
            or data.get("deleted_at")
            or _uuid(data.get("assignee_id")) is None
        ):
            continue
        wanted[reminder_key(event.workspace_id, task_id, due_at)] = (event, task_id, due_at)
    if not wanted:
        return
    existing = await repository.existing_job_keys(ctx.session, TASK_DUE, list(wanted))
    await repository.enqueue_jobs(
        ctx.session,
        TASK_DUE,
        [
            (
                event.workspace_id,
                {"task_id": str(task_id), "due_at": due_at.isoformat()},
                max(due_at - REMINDER_LEAD, now),
                key,
            )
            for key, (event, task_id, due_at) in wanted.items()
            if key not in existing
        ],
        now,
    )


async def _erase(ctx: RelayContext, batch: list[DomainEvent]) -> set[tuple[uuid.UUID, Any]]:
    """Records erased for good lose their notifications (those already sent, and any this batch
    would send about them)."""
    erased = [
        (e.workspace_id, e.resource_id)
        for e in batch
        if e.type.endswith(".erased") and e.resource_id is not None
    ]
    await repository.erase_for_resources(ctx.session, erased)
    return set(erased)


# -- the due reminder ----------------------------------------------------------------------------


@jobs.handler(TASK_DUE, schedule=(timedelta(minutes=1), timedelta(minutes=10)))
async def remind_due_task(ctx: jobs.JobContext) -> None:
    """Notify the assignee that a task is due soon, if it still is what the job was queued for:
    live, open, due at the same time. Runs at least once: a second run finds the notification
    already sent for this due time and does nothing."""
    workspace_id = ctx.workspace_id
    task_id = _uuid(ctx.payload.get("task_id"))
    due_at = _when(ctx.payload.get("due_at"))
    if workspace_id is None or task_id is None or due_at is None:
        return
    async with ctx.transaction() as session:
        task = await TaskRepository(session, workspace_id).get(task_id)
        if (
            task is None
            or task["status"] in CLOSED
            or task["due_at"] != due_at
            or task["assignee_id"] is None
        ):
            return
        stamp = due_at.isoformat().replace("+00:00", "Z")
        sent = await repository.already_sent(session, workspace_id, "task.due", task_id)
        if any(data.get("due_at") == stamp for data in sent):
            return
        await deliver(
            session,
            [
                Draft(
                    workspace_id=workspace_id,
                    user_id=task["assignee_id"],
                    type="task.due",
                    title=f"Task due soon: {task['title']}",
                    body=f"Due {stamp}",
                    resource_type="task",
                    resource_id=task_id,
                    data={"due_at": due_at, "name": task["title"]},
                )
            ],
            ctx.now(),
        )
