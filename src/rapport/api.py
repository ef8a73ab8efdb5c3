"""Mounts every domain router under /api/v1 (operations stay at the root)."""

from fastapi import APIRouter

from rapport.companies.router import router as companies_router
from rapport.custom_fields.router import router as custom_fields_router
from rapport.identity.router import api_keys_router, auth_router, users_router
from rapport.search.router import router as search_router
from rapport.tags.router import router as tags_router

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
for router in (
    auth_router,
    users_router,
    api_keys_router,
    tags_router,
    custom_fields_router,
    companies_router,
    search_router,
):
    api_router.include_router(router)
