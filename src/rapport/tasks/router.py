from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from rapport.core.auth import MemberDep, ReaderDep
from rapport.core.bulk import BulkRequest, BulkResult
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, IfMatchDep, SessionDep, etag_headers
from rapport.tasks.repository import TASK_LISTING
from rapport.tasks.schemas import TaskCreate, TaskRead, TaskUpdate
from rapport.tasks.service import TaskService, task_read

router = ContractRouter(prefix="/tasks", tags=["tasks"])

Atomic = Annotated[bool, Query(description="false: apply the valid items, report each outcome.")]
LIST_FILTERS = {"parameters": TASK_LISTING.openapi_parameters()}


@router.get(
    "",
    name="tasks-list",
    summary="List tasks (status, assignee_id=me, due_at ranges, overdue, tag, cf.<name>, search)",
    response_model=ListEnvelope[TaskRead],
    responses=errors(),
    openapi_extra=LIST_FILTERS,
)
async def list_tasks(
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(TASK_LISTING.params)],
) -> EnvelopeResponse:
    page = await TaskService(session, principal).list(params)
    return ok([task_read(r) for r in page.rows], meta=page.meta())


@router.post(
    "",
    name="tasks-create",
    summary="Create a task",
    status_code=201,
    response_model=Envelope[TaskRead],
    responses=errors(),
)
async def create_task(
    body: TaskCreate, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await TaskService(session, principal).create(body)
    return ok(task_read(row), status_code=201, headers=etag_headers(row["version"]))


@router.post(
    "/bulk",
    name="tasks-bulk-create",
    summary="Create up to 1000 tasks (atomic by default)",
    response_model=Envelope[BulkResult[TaskRead]],
    responses=errors(400),
)
async def bulk_create_tasks(
    body: BulkRequest, principal: MemberDep, session: SessionDep, atomic: Atomic = True
) -> EnvelopeResponse:
    return ok(await TaskService(session, principal).bulk_create(body.items, atomic))


@router.patch(
    "/bulk",
    name="tasks-bulk-update",
    summary="Update up to 1000 tasks by id (atomic by default)",
    response_model=Envelope[BulkResult[TaskRead]],
    responses=errors(400),
)
async def bulk_update_tasks(
    body: BulkRequest, principal: MemberDep, session: SessionDep, atomic: Atomic = True
) -> EnvelopeResponse:
    return ok(await TaskService(session, principal).bulk_update(body.items, atomic))


@router.get(
    "/{task_id}",
    name="tasks-get",
    summary="Get a task",
    response_model=Envelope[TaskRead],
    responses=errors(404),
)
async def get_task(
    task_id: uuid.UUID, principal: ReaderDep, session: SessionDep
) -> EnvelopeResponse:
    row = await TaskService(session, principal).get(task_id)
    return ok(task_read(row), headers=etag_headers(row["version"]))


@router.patch(
    "/{task_id}",
    name="tasks-update",
    summary="Update the fields sent (If-Match honoured); status done sets completed_at",
    response_model=Envelope[TaskRead],
    responses=errors(400, 404, 412),
)
async def update_task(
    task_id: uuid.UUID,
    body: TaskUpdate,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    row = await TaskService(session, principal).update(task_id, body, if_match)
    return ok(task_read(row), headers=etag_headers(row["version"]))


@router.delete(
    "/{task_id}",
    name="tasks-delete",
    summary="Soft-delete a task, or erase it for good (admin, erase=true)",
    response_model=Envelope[Deleted],
    responses=errors(400, 404, 412),
)
async def delete_task(
    task_id: uuid.UUID,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
    erase: Annotated[bool, Query(description="Admins: remove the record for good.")] = False,
) -> EnvelopeResponse:
    service = TaskService(session, principal)
    if erase:
        await service.erase(task_id)
    else:
        await service.delete(task_id, if_match)
    return ok({"id": str(task_id), "deleted": True})


@router.post(
    "/{task_id}/restore",
    name="tasks-restore",
    summary="Restore a soft-deleted task",
    response_model=Envelope[TaskRead],
    responses=errors(404),
)
async def restore_task(
    task_id: uuid.UUID, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await TaskService(session, principal).restore(task_id)
    return ok(task_read(row), headers=etag_headers(row["version"]))
