"""Mounts every domain router under /api/v1 (operations stay at the root)."""

from fastapi import APIRouter

from rapport.activities.router import router as activities_router
from rapport.activities.router import timeline_router as activity_timelines_router
from rapport.audit.router import router as audit_router
from rapport.companies.router import router as companies_router
from rapport.contacts.router import router as contacts_router
from rapport.core.routing import include
from rapport.custom_fields.router import router as custom_fields_router
from rapport.deals.router import pipelines_router
from rapport.deals.router import router as deals_router
from rapport.identity.router import api_keys_router, auth_router, users_router
from rapport.imports.router import router as imports_router
from rapport.leads.router import router as leads_router
from rapport.notifications.router import router as notifications_router
from rapport.realtime.router import router as realtime_router
from rapport.search.router import router as search_router
from rapport.tags.router import router as tags_router
from rapport.tasks.router import router as tasks_router
from rapport.webhooks.router import router as webhooks_router

API_PREFIX = "/api/v1"

DOMAIN_ROUTERS = (
    auth_router,
    users_router,
    api_keys_router,
    tags_router,
    custom_fields_router,
    companies_router,
    contacts_router,
    leads_router,
    pipelines_router,
    deals_router,
    activities_router,
    activity_timelines_router,
    tasks_router,
    search_router,
    imports_router,
    audit_router,
    notifications_router,
    realtime_router,
    webhooks_router,
)


def include_api(parent: APIRouter) -> None:
    """Each domain router straight under the parent (one nesting level), gated by its paths."""
    for router in DOMAIN_ROUTERS:
        include(parent, router, API_PREFIX)
