"""`GET /search`: one ranked search across every record type."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import case, func, select

from rapport.core.auth import ReaderDep
from rapport.core.envelope import EnvelopeResponse, ListEnvelope, ok
from rapport.core.errors import ValidationFailed
from rapport.core.listing import escape_like, has_control_characters
from rapport.core.responses import errors
from rapport.core.routing import ContractRouter, SessionDep
from rapport.search.indexer import documents, term_matches

router = ContractRouter(tags=["search"])
TYPES = ("contact", "company", "lead", "deal", "activity", "task")


class SearchHit(BaseModel):
    type: Literal["contact", "company", "lead", "deal", "activity", "task"]
    id: uuid.UUID
    title: str
    subtitle: str | None
    rank: int


@router.get(
    "/search",
    name="search",
    summary="Search contacts, companies, leads and deals at once (ranked)",
    response_model=ListEnvelope[SearchHit],
    responses=errors(),
)
async def search(
    principal: ReaderDep,
    session: SessionDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Text to find.")],
    types: Annotated[
        str | None, Query(description="Comma-separated: contact,company,lead,deal,activity,task")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> EnvelopeResponse:
    term = q.strip().lower()
    if not term or has_control_characters(term):
        raise ValidationFailed(
            "Give some text to search for.",
            details=[{"field": "query.q", "reason": "empty or control characters"}],
        )
    wanted = TYPES
    if types:
        wanted = tuple(t.strip() for t in types.split(",") if t.strip())
        unknown = [t for t in wanted if t not in TYPES]
        if unknown or not wanted:
            raise ValidationFailed(
                "Unknown search type.",
                details=[{"field": "query.types", "reason": f"must be among {', '.join(TYPES)}"}],
            )
    title = func.lower(documents.c.title)
    rank = case(
        (title == term, 0),
        (title.like(f"{escape_like(term)}%", escape="\\"), 1),
        else_=2,
    ).label("rank")
    stmt = (
        select(
            documents.c.resource,
            documents.c.record_id,
            documents.c.title,
            documents.c.subtitle,
            rank,
        )
        .where(
            documents.c.workspace_id == principal.workspace_id,
            documents.c.resource.in_(wanted),
            documents.c.is_deleted.is_(False),
            term_matches(term),
        )
        .order_by(rank, documents.c.updated_at.desc(), documents.c.record_id)
        .limit(limit)
    )
    rows = (await session.execute(stmt)).all()
    return ok(
        [
            {
                "type": r.resource,
                "id": r.record_id,
                "title": r.title,
                "subtitle": r.subtitle,
                "rank": r.rank,
            }
            for r in rows
        ],
        meta={"limit": limit, "has_more": False, "next_cursor": None},
    )
