from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from rapport.core.auth import MemberDep, ReaderDep
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, IfMatchDep, SessionDep, etag_headers
from rapport.tags.repository import TAG_LISTING
from rapport.tags.schemas import TagCreate, TagRead, TagUpdate
from rapport.tags.service import TagService, tag_read

router = ContractRouter(prefix="/tags", tags=["tags"])


@router.get(
    "",
    name="tags-list",
    summary="List tags (filters, sort, search, cursor pages)",
    response_model=ListEnvelope[TagRead],
    responses=errors(),
    openapi_extra={"parameters": TAG_LISTING.openapi_parameters()},
)
async def list_tags(
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(TAG_LISTING.params)],
) -> EnvelopeResponse:
    page = await TagService(session, principal).list(params)
    return ok([tag_read(r) for r in page.rows], meta=page.meta())


@router.post(
    "",
    name="tags-create",
    summary="Create a tag",
    status_code=201,
    response_model=Envelope[TagRead],
    responses=errors(409),
)
async def create_tag(
    body: TagCreate, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await TagService(session, principal).create(body)
    return ok(tag_read(row), status_code=201, headers=etag_headers(row["version"]))


@router.get(
    "/{tag_id}",
    name="tags-get",
    summary="Get a tag (ETag carries its version)",
    response_model=Envelope[TagRead],
    responses=errors(404),
)
async def get_tag(tag_id: uuid.UUID, principal: ReaderDep, session: SessionDep) -> EnvelopeResponse:
    row = await TagService(session, principal).get(tag_id)
    return ok(tag_read(row), headers=etag_headers(row["version"]))


@router.patch(
    "/{tag_id}",
    name="tags-update",
    summary="Update the fields sent (If-Match: 412 on a stale version)",
    response_model=Envelope[TagRead],
    responses=errors(400, 404, 409, 412),
)
async def update_tag(
    tag_id: uuid.UUID,
    body: TagUpdate,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    row = await TagService(session, principal).update(tag_id, body, if_match)
    return ok(tag_read(row), headers=etag_headers(row["version"]))


@router.delete(
    "/{tag_id}",
    name="tags-delete",
    summary="Soft-delete a tag, or erase it for good (admin, erase=true)",
    response_model=Envelope[Deleted],
    responses=errors(400, 404, 412),
)
async def delete_tag(
    tag_id: uuid.UUID,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
    erase: Annotated[bool, Query(description="Admins: remove the record for good.")] = False,
) -> EnvelopeResponse:
    service = TagService(session, principal)
    if erase:
        await service.erase(tag_id)
    else:
        await service.delete(tag_id, if_match)
    return ok({"id": str(tag_id), "deleted": True})


@router.post(
    "/{tag_id}/restore",
    name="tags-restore",
    summary="Restore a soft-deleted tag",
    response_model=Envelope[TagRead],
    responses=errors(404, 409),
)
async def restore_tag(
    tag_id: uuid.UUID, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await TagService(session, principal).restore(tag_id)
    return ok(tag_read(row), headers=etag_headers(row["version"]))
