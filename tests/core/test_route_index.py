"""The route index (`core.routing.RouteIndex`) picks the route FastAPI's router would pick, with
the same path parameters, for every path and method the API serves; what it cannot settle it
leaves to the router."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from rapport.core.routing import RouteIndex
from rapport.main import create_app
from tests.conftest import base_settings

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE", "HEAD")


@pytest.fixture(scope="module")
def index_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = Path(tmp_path_factory.mktemp("index")) / "index.db"
    return create_app(base_settings(database_url=f"sqlite+aiosqlite:///{path}"))


def _paths(app: Any) -> set[str]:
    found = {"/", "/nowhere", "/api/v1/nowhere/at/all", "/api/v1/contacts/"}
    for context in iter_route_contexts(app.router.routes):
        template = context.path_format
        if template is None:
            continue
        for value in (str(uuid.UUID(int=9)), "merge", "not-a-uuid"):
            path = "/".join(value if part.startswith("{") else part for part in template.split("/"))
            found |= {path, path + "/"}
    return found


def _scope(app: Any, method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "app": app,
        "state": {},
    }


async def _routers_choice(app: Any, method: str, path: str) -> tuple[Any, dict[str, Any]]:
    """The route FastAPI's router itself sends this request to (the route's handler refuses it
    without credentials, or answers it: either way the scope says where it went)."""
    scope = _scope(app, method, path)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: dict[str, Any]) -> None:
        return None

    with contextlib.suppress(Exception):  # a refusal after routing: the choice is made
        await app.router.app(scope, receive, send)
    return scope.get("route"), scope.get("path_params", {})


async def test_the_index_chooses_as_the_router_does(index_app: Any) -> None:
    index = index_app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    settled = 0
    for path in sorted(_paths(index_app)):
        for method in METHODS:
            found = index.lookup(_scope(index_app, method, path))
            if found is None:
                continue
            entry, params = found
            route, router_params = await _routers_choice(index_app, method, path)
            assert route is entry.route, (method, path)
            assert params == router_params, (method, path)
            settled += 1
    api_routes = [
        c
        for c in iter_route_contexts(index_app.router.routes)
        if isinstance(c.original_route, APIRoute)
    ]
    assert settled >= len(api_routes)


def test_the_router_decides_what_the_index_cannot(index_app: Any) -> None:
    index = index_app.router.middleware_stack
    for method, path in [
        ("GET", "/nowhere"),  # no route: 404 from the router
        ("PUT", "/api/v1/contacts"),  # no such method: 405 from the router
        ("GET", "/api/v1/contacts/"),  # a trailing slash: the router redirects
        ("GET", "/docs"),  # not a FastAPI route
    ]:
        assert index.lookup(_scope(index_app, method, path)) is None, (method, path)
    found = index.lookup(_scope(index_app, "GET", f"/api/v1/contacts/{uuid.UUID(int=5)}"))
    assert found is not None
    assert found[0].route.name == "contacts-get"
    assert found[1] == {"contact_id": str(uuid.UUID(int=5))}


async def test_a_route_added_later_is_indexed(tmp_path: Path) -> None:
    app = create_app(base_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    index = app.router.middleware_stack
    assert index.lookup(_scope(app, "GET", "/api/v1/late")) is None

    @app.get("/api/v1/late")
    async def late() -> dict[str, str]:
        return {}

    found = index.lookup(_scope(app, "GET", "/api/v1/late"))
    assert found is not None and found[0].endpoint is late
