from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query

from rapport.core.auth import AdminDep, MemberDep, ReaderDep
from rapport.core.bulk import BulkRequest, BulkResult
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, IfMatchDep, SessionDep, etag_headers
from rapport.deals.repository import DEAL_LISTING, HISTORY_LISTING, PIPELINE_LISTING
from rapport.deals.schemas import (
    MAX_STAGES,
    DealCreate,
    DealRead,
    DealStageChangeRead,
    DealUpdate,
    PipelineCreate,
    PipelineRead,
    PipelineUpdate,
    StageCreate,
    StageRead,
    StageReorder,
    StageUpdate,
)
from rapport.deals.service import DealService, PipelineService, deal_read

router = ContractRouter(prefix="/deals", tags=["deals"])
pipelines_router = ContractRouter(prefix="/pipelines", tags=["pipelines"])

Atomic = Annotated[bool, Query(description="false: apply the valid items, report each outcome.")]
ALL_STAGES = {"next_cursor": None, "has_more": False, "limit": MAX_STAGES}


# -- pipelines ---------------------------------------------------------------------------------
@pipelines_router.get(
    "",
    name="pipelines-list",
    summary="List pipelines with their stages (the default one is created on first use)",
    response_model=ListEnvelope[PipelineRead],
    responses=errors(),
    openapi_extra={"parameters": PIPELINE_LISTING.openapi_parameters()},
)
async def list_pipelines(
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(PIPELINE_LISTING.params)],
) -> EnvelopeResponse:
    page = await PipelineService(session, principal).list(params)
    return ok(page.rows, meta=page.meta())


@pipelines_router.post(
    "",
    name="pipelines-create",
    summary="Create a pipeline, optionally with its stages (admin)",
    status_code=201,
    response_model=Envelope[PipelineRead],
    responses=errors(409),
)
async def create_pipeline(
    body: PipelineCreate, principal: AdminDep, session: SessionDep
) -> EnvelopeResponse:
    data = await PipelineService(session, principal).create(body)
    return ok(data, status_code=201, headers=etag_headers(data["version"]))


@pipelines_router.get(
    "/{pipeline_id}",
    name="pipelines-get",
    summary="Get a pipeline with its stages",
    response_model=Envelope[PipelineRead],
    responses=errors(404),
)
async def get_pipeline(
    pipeline_id: uuid.UUID, principal: ReaderDep, session: SessionDep
) -> EnvelopeResponse:
    data = await PipelineService(session, principal).get(pipeline_id)
    return ok(data, headers=etag_headers(data["version"]))


@pipelines_router.patch(
    "/{pipeline_id}",
    name="pipelines-update",
    summary="Rename, reposition or make default a pipeline (admin, If-Match honoured)",
    response_model=Envelope[PipelineRead],
    responses=errors(400, 404, 412),
)
async def update_pipeline(
    pipeline_id: uuid.UUID,
    body: PipelineUpdate,
    principal: AdminDep,
    session: SessionDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    data = await PipelineService(session, principal).update(pipeline_id, body, if_match)
    return ok(data, headers=etag_headers(data["version"]))


@pipelines_router.delete(
    "/{pipeline_id}",
    name="pipelines-delete",
    summary="Soft-delete a pipeline that has no deals (admin)",
    response_model=Envelope[Deleted],
    responses=errors(400, 404, 409, 412),
)
async def delete_pipeline(
    pipeline_id: uuid.UUID, principal: AdminDep, session: SessionDep, if_match: IfMatchDep
) -> EnvelopeResponse:
    await PipelineService(session, principal).delete(pipeline_id, if_match)
    return ok({"id": str(pipeline_id), "deleted": True})


@pipelines_router.post(
    "/{pipeline_id}/restore",
    name="pipelines-restore",
    summary="Restore a soft-deleted pipeline (admin)",
    response_model=Envelope[PipelineRead],
    responses=errors(404),
)
async def restore_pipeline(
    pipeline_id: uuid.UUID, principal: AdminDep, session: SessionDep
) -> EnvelopeResponse:
    data = await PipelineService(session, principal).restore(pipeline_id)
    return ok(data, headers=etag_headers(data["version"]))


# -- stages ------------------------------------------------------------------------------------
@pipelines_router.get(
    "/{pipeline_id}/stages",
    name="pipelines-stages-list",
    summary=f"List a pipeline's stages in order (all of them: at most {MAX_STAGES})",
    response_model=ListEnvelope[StageRead],
    responses=errors(404),
)
async def list_stages(
    pipeline_id: uuid.UUID, principal: ReaderDep, session: SessionDep
) -> EnvelopeResponse:
    return ok(await PipelineService(session, principal).list_stages(pipeline_id), meta=ALL_STAGES)


@pipelines_router.post(
    "/{pipeline_id}/stages",
    name="pipelines-stages-create",
    summary="Add a stage (admin; default position: last)",
    status_code=201,
    response_model=Envelope[StageRead],
    responses=errors(404, 409),
)
async def create_stage(
    pipeline_id: uuid.UUID, body: StageCreate, principal: AdminDep, session: SessionDep
) -> EnvelopeResponse:
    data = await PipelineService(session, principal).create_stage(pipeline_id, body)
    return ok(data, status_code=201, headers=etag_headers(data["version"]))


@pipelines_router.post(
    "/{pipeline_id}/stages/reorder",
    name="pipelines-stages-reorder",
    summary="Put the pipeline's stages in a new order (admin; list every stage once)",
    response_model=ListEnvelope[StageRead],
    responses=errors(404),
)
async def reorder_stages(
    pipeline_id: uuid.UUID, body: StageReorder, principal: AdminDep, session: SessionDep
) -> EnvelopeResponse:
    stages = await PipelineService(session, principal).reorder_stages(pipeline_id, body)
    return ok(stages, meta=ALL_STAGES)


@pipelines_router.patch(
    "/{pipeline_id}/stages/{stage_id}",
    name="pipelines-stages-update",
    summary="Update a stage (admin, If-Match honoured)",
    response_model=Envelope[StageRead],
    responses=errors(400, 404, 409, 412),
)
async def update_stage(
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID,
    body: StageUpdate,
    principal: AdminDep,
    session: SessionDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    data = await PipelineService(session, principal).update_stage(
        pipeline_id, stage_id, body, if_match
    )
    return ok(data, headers=etag_headers(data["version"]))


@pipelines_router.delete(
    "/{pipeline_id}/stages/{stage_id}",
    name="pipelines-stages-delete",
    summary="Delete a stage that has no deals (admin)",
    response_model=Envelope[Deleted],
    responses=errors(400, 404, 409, 412),
)
async def delete_stage(
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID,
    principal: AdminDep,
    session: SessionDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    await PipelineService(session, principal).delete_stage(pipeline_id, stage_id, if_match)
    return ok({"id": str(stage_id), "deleted": True})


# -- deals -------------------------------------------------------------------------------------
@router.get(
    "",
    name="deals-list",
    summary="List deals (filters incl. amount ranges, tag and cf.<name>, search, cursor)",
    response_model=ListEnvelope[DealRead],
    responses=errors(),
    openapi_extra={"parameters": DEAL_LISTING.openapi_parameters()},
)
async def list_deals(
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(DEAL_LISTING.params)],
) -> EnvelopeResponse:
    page = await DealService(session, principal).list(params)
    return ok([deal_read(r) for r in page.rows], meta=page.meta())


@router.post(
    "",
    name="deals-create",
    summary="Create a deal (default: the default pipeline's first stage)",
    status_code=201,
    response_model=Envelope[DealRead],
    responses=errors(),
)
async def create_deal(
    body: DealCreate, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await DealService(session, principal).create(body)
    return ok(deal_read(row), status_code=201, headers=etag_headers(row["version"]))


@router.post(
    "/bulk",
    name="deals-bulk-create",
    summary="Create up to 1000 deals (atomic by default)",
    response_model=Envelope[BulkResult[DealRead]],
    responses=errors(400),
)
async def bulk_create_deals(
    body: BulkRequest, principal: MemberDep, session: SessionDep, atomic: Atomic = True
) -> EnvelopeResponse:
    return ok(await DealService(session, principal).bulk_create(body.items, atomic))


@router.patch(
    "/bulk",
    name="deals-bulk-update",
    summary="Update up to 1000 deals by id (atomic by default)",
    response_model=Envelope[BulkResult[DealRead]],
    responses=errors(400),
)
async def bulk_update_deals(
    body: BulkRequest, principal: MemberDep, session: SessionDep, atomic: Atomic = True
) -> EnvelopeResponse:
    return ok(await DealService(session, principal).bulk_update(body.items, atomic))


@router.get(
    "/{deal_id}",
    name="deals-get",
    summary="Get a deal",
    response_model=Envelope[DealRead],
    responses=errors(404),
)
async def get_deal(
    deal_id: uuid.UUID, principal: ReaderDep, session: SessionDep
) -> EnvelopeResponse:
    row = await DealService(session, principal).get(deal_id)
    return ok(deal_read(row), headers=etag_headers(row["version"]))


@router.patch(
    "/{deal_id}",
    name="deals-update",
    summary="Update the fields sent; a stage or status change is kept in the stage history",
    response_model=Envelope[DealRead],
    responses=errors(400, 404, 412),
)
async def update_deal(
    deal_id: uuid.UUID,
    body: DealUpdate,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    row = await DealService(session, principal).update(deal_id, body, if_match)
    return ok(deal_read(row), headers=etag_headers(row["version"]))


@router.delete(
    "/{deal_id}",
    name="deals-delete",
    summary="Soft-delete a deal, or erase it for good (admin, erase=true)",
    response_model=Envelope[Deleted],
    responses=errors(400, 404, 412),
)
async def delete_deal(
    deal_id: uuid.UUID,
    principal: MemberDep,
    session: SessionDep,
    if_match: IfMatchDep,
    erase: Annotated[bool, Query(description="Admins: remove the record for good.")] = False,
) -> EnvelopeResponse:
    service = DealService(session, principal)
    if erase:
        await service.erase(deal_id)
    else:
        await service.delete(deal_id, if_match)
    return ok({"id": str(deal_id), "deleted": True})


@router.post(
    "/{deal_id}/restore",
    name="deals-restore",
    summary="Restore a soft-deleted deal",
    response_model=Envelope[DealRead],
    responses=errors(404),
)
async def restore_deal(
    deal_id: uuid.UUID, principal: MemberDep, session: SessionDep
) -> EnvelopeResponse:
    row = await DealService(session, principal).restore(deal_id)
    return ok(deal_read(row), headers=etag_headers(row["version"]))


@router.get(
    "/{deal_id}/stage-history",
    name="deals-stage-history",
    summary="A deal's stage moves, oldest first",
    response_model=ListEnvelope[DealStageChangeRead],
    responses=errors(404),
    openapi_extra={"parameters": HISTORY_LISTING.openapi_parameters()},
)
async def deal_stage_history(
    deal_id: uuid.UUID,
    principal: ReaderDep,
    session: SessionDep,
    params: Annotated[ListParams, Depends(HISTORY_LISTING.params)],
) -> EnvelopeResponse:
    page = await DealService(session, principal).stage_history(deal_id, params)
    return ok(page.rows, meta=page.meta())
