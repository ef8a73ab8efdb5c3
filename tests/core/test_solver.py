"""The compiled solver (`core.solver`) against FastAPI's own: on every route it compiles, for
valid and invalid path, query, header and body values, both give the same values, the same
validation errors and the same refusals from dependencies."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import BackgroundTasks, Cookie, Depends, Header, Query
from fastapi.dependencies.utils import get_dependant, solve_dependencies
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from sqlalchemy.dialects import sqlite
from starlette.requests import Request
from starlette.responses import Response

from rapport.core.auth import Principal, Role
from rapport.core.solver import compile_route
from rapport.main import create_app
from tests.conftest import base_settings

QUERIES = [
    b"",
    b"limit=5&sort_order=desc",
    b"limit=0",
    b"limit=abc&include_total=maybe",
    b"limit=201&sort_order=up",
    b"sort_by=nope",
    b"cursor=not-a-cursor",
    b"search=" + b"x" * 201,
    b"search=ada&include_deleted=true&include_total=1",
    b"status=new,qualified&tag=a&tag=b",
    b"status=bogus",
    b"created_at[gte]=2026-01-01T00:00:00Z&created_at[lt]=yesterday",
    b"atomic=false&upsert=email",
    b"atomic=perhaps&upsert=phone",
    b"hard=true&limit=2",
    b"cf.size=3&cf.size[gt]=2",
    b"kind=call&contact_id=not-a-uuid",
    b"q=ada&resources=contact,company",
    b"days=7&months=abc",
]
SQLITE = sqlite.dialect()
UOW = type("UoW", (), {"session": "the session"})()
HEADERS = [[], [(b"if-match", b'"3"')], [(b"if-match", b'W/"x"')], [(b"if-match", b"*")]]
BODIES = [
    None,
    b"{}",
    b"null",
    b"[1, 2]",
    b'{"first_name": 1, "email": "nope"}',
    b'{"name": "Acme", "items": [{"first_name": "A"}], "contact_ids": ["x"]}',
    b'{"first_name": "Ada", "last_name": "L", "email": "ada@example.com", "status": "new"}',
]


def _path_values(template: str, valid: bool) -> str:
    parts = []
    for part in template.split("/"):
        if part.startswith("{") and part.endswith("}"):
            parts.append(str(uuid.UUID(int=7)) if valid else "not-a-uuid")
        else:
            parts.append(part)
    return "/".join(parts)


def _request(
    app: Any, path: str, params: dict[str, Any], query: bytes, headers: list[Any], role: Role
) -> Request:
    state = {
        "principal": Principal(
            user_id=uuid.UUID(int=1),
            workspace_id=uuid.UUID(int=2),
            role=role,
            credential="api_key",
            credential_id=uuid.UUID(int=3),
        ),
        "uow": UOW,
    }
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "path_params": params,
        "query_string": query,
        "headers": [(b"content-type", b"application/json"), *headers],
        "app": app,
        "state": state,
    }
    return Request(scope)


def _comparable(value: Any) -> Any:
    if isinstance(value, Request):
        return "the request"
    if isinstance(value, BaseModel):
        return ("model", type(value).__name__, value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _comparable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if hasattr(value, "compile"):  # a SQL expression (a listing's filters)
        compiled = value.compile(dialect=SQLITE)
        return (str(compiled), compiled.params)
    return value


def _errors(errors: list[Any]) -> list[Any]:
    return [{k: repr(v) if k == "ctx" else v for k, v in e.items() if k != "url"} for e in errors]


def _outcome(values: dict[str, Any], errors: list[Any]) -> Any:
    """The endpoint's arguments, or the errors it is not called with."""
    if errors:
        return ("invalid", _errors(errors))
    return ("solved", _comparable(values))


async def _fastapi(request: Request, dependant: Any, body: Any, embed: bool) -> Any:
    async with AsyncExitStack() as stack:
        request.scope["fastapi_inner_astack"] = stack
        request.scope["fastapi_function_astack"] = stack
        try:
            solved = await solve_dependencies(
                request=request,
                dependant=dependant,
                body=body,
                async_exit_stack=stack,
                embed_body_fields=embed,
            )
        except Exception as exc:  # noqa: BLE001 - a dependency's refusal is compared too
            return ("raised", type(exc).__name__, str(exc))
        return _outcome(solved.values, solved.errors)


async def _compiled(request: Request, plan: Any, body: Any) -> Any:
    try:
        values, errors = await plan.endpoint.solve(request, body, {})
    except Exception as exc:  # noqa: BLE001
        return ("raised", type(exc).__name__, str(exc))
    return _outcome(values, errors)


def _routes(app: Any) -> list[tuple[Any, Any]]:
    found = []
    for context in iter_route_contexts(app.router.routes):
        if isinstance(context.original_route, APIRoute):
            found.append((context, context._route_context))
    return found


@pytest.fixture(scope="module")
def solver_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = Path(tmp_path_factory.mktemp("solver")) / "solver.db"
    return create_app(base_settings(database_url=f"sqlite+aiosqlite:///{path}"))


def test_the_record_routes_are_compiled(solver_app: Any) -> None:
    compiled = {
        context.name
        for context, effective in _routes(solver_app)
        if compile_route(effective.dependant, effective._embed_body_fields) is not None
    }
    for name in (
        "contacts-get",
        "contacts-list",
        "contacts-create",
        "contacts-update",
        "contacts-bulk-create",
        "contacts-timeline",
        "companies-list",
        "deals-update",
    ):
        assert name in compiled
    assert len(compiled) >= 100


async def test_compiled_routes_solve_as_fastapi_does(solver_app: Any) -> None:
    compared = 0
    for context, effective in _routes(solver_app):
        plan = compile_route(effective.dependant, effective._embed_body_fields)
        if plan is None:
            continue
        template = context.path_format
        bodies: list[Any] = [None]
        if plan.endpoint.body is not None:
            bodies = [json.loads(b) if b else None for b in BODIES if b is not None]
            bodies.append(b"raw-bytes")
        for valid_path in (True, False):
            path = _path_values(template, valid_path)
            params = {
                name: (str(uuid.UUID(int=7)) if valid_path else "not-a-uuid")
                for name in context.param_convertors
            }
            for query in QUERIES:
                for headers in HEADERS:
                    for role in (Role.viewer, Role.admin):
                        for body in bodies:
                            sent = body if body is not None else _undefined()
                            theirs = await _fastapi(
                                _request(solver_app, path, params, query, headers, role),
                                effective.dependant,
                                sent,
                                effective._embed_body_fields,
                            )
                            ours = await _compiled(
                                _request(solver_app, path, params, query, headers, role),
                                plan,
                                sent,
                            )
                            assert ours == theirs, (
                                template,
                                query,
                                headers,
                                role,
                                body,
                                ours,
                                theirs,
                            )
                            compared += 1
    assert compared > 10_000


def _undefined() -> Any:
    from fastapi._compat import Undefined

    return Undefined


# -- shapes the routes above do not use yet -------------------------------------------------------
CALLS: list[str] = []


async def shared(request: Request) -> str:
    CALLS.append("shared")
    return request.url.path


async def first(value: Annotated[str, Depends(shared)]) -> str:
    return "first:" + value


async def second(
    value: Annotated[str, Depends(shared)],
    fresh: Annotated[str, Depends(shared, use_cache=False)],
) -> str:
    return "second:" + value + fresh


async def endpoint(
    a: Annotated[str, Depends(first)],
    b: Annotated[str, Depends(second)],
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    ids: Annotated[list[uuid.UUID] | None, Query()] = None,
    size: Annotated[int, Query(ge=1)] = 3,
    name: Annotated[str | None, Query(alias="q", max_length=5)] = None,
    x_trace: Annotated[str | None, Header()] = None,
    checked: Annotated[int, Query(validate_default=True)] = 0,
) -> Response:
    return Response()


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"tag=a&tag=b&ids=" + str(uuid.UUID(int=1)).encode(),
        b"ids=nope&ids=" + str(uuid.UUID(int=1)).encode(),
        b"size=0&q=toolong",
        b"size=2&q=ok",
        b"tag=",
    ],
)
@pytest.mark.parametrize("headers", [[], [(b"x-trace", b"t1")], [(b"x_trace", b"t2")]])
async def test_lists_aliases_headers_and_the_dependency_cache(
    solver_app: Any, query: bytes, headers: list[Any]
) -> None:
    dependant = get_dependant(path="/things", call=endpoint)
    plan = compile_route(dependant, embed_body_fields=False)
    assert plan is not None
    outcomes = []
    for solve in ("fastapi", "compiled"):
        CALLS.clear()
        request = _request(solver_app, "/things", {}, query, headers, Role.viewer)
        if solve == "fastapi":
            outcome = await _fastapi(request, dependant, _undefined(), False)
        else:
            outcome = await _compiled(request, plan, _undefined())
        outcomes.append((outcome, len(CALLS)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][1] == 2  # the shared dependency once, and once more uncached


def test_what_needs_fastapis_own_solver_is_left_to_it() -> None:
    async def with_background(tasks: BackgroundTasks) -> Response:
        return Response()

    async def with_response(response: Response) -> Response:
        return response

    async def returns_a_dict() -> dict[str, Any]:
        return {}

    async def generator() -> AsyncIterator[int]:
        yield 1

    async def with_generator(value: Annotated[int, Depends(generator)]) -> Response:
        return Response()

    async def with_cookie(session: Annotated[str | None, Cookie()] = None) -> Response:
        return Response()

    for call in (with_background, with_response, returns_a_dict, with_generator, with_cookie):
        assert compile_route(get_dependant(path="/x", call=call), False) is None, call.__name__


async def _handle(handler: Any, body: bytes, content_type: bytes = b"application/json") -> Any:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/x",
        "path_params": {},
        "query_string": b"",
        "headers": [(b"content-type", content_type)],
    }
    try:
        response = await handler(Request(scope, receive))
    except RequestValidationError as exc:
        return type(exc).__name__, exc.errors()
    except HTTPException as exc:
        return type(exc).__name__, exc.detail
    return "ok", bytes(response.body)


class Item(BaseModel):
    name: str


async def create_item(item: Item) -> Response:
    return Response(item.name.encode())


async def test_the_handler_decodes_json_bodies_as_fastapi_does() -> None:
    plan = compile_route(get_dependant(path="/x", call=create_item), embed_body_fields=False)
    assert plan is not None

    async def fallback(_: Request) -> Response:
        return Response(b"fastapi")

    handler = plan.handler(fallback, None)
    assert await _handle(handler, b'{"name": "a"}') == ("ok", b"a")
    kind, errors = await _handle(handler, b'{"name": ')
    assert kind == "RequestValidationError"
    assert errors[0]["type"] == "json_invalid" and errors[0]["loc"] == ("body", 9)
    assert await _handle(handler, b'{"name": "\xff"}') == (
        "HTTPException",
        "There was an error parsing the body",
    )
    kind, errors = await _handle(handler, b"null")
    assert (kind, errors[0]["loc"]) == ("RequestValidationError", ("body",))
    kind, errors = await _handle(handler, b"name=a", b"text/plain")  # bytes, not decoded
    assert (kind, errors[0]["type"]) == ("RequestValidationError", "model_attributes_type")
    kind, errors = await _handle(handler, b"")
    assert (kind, errors[0]["type"]) == ("RequestValidationError", "missing")

    overridden = type("App", (), {"dependency_overrides": {create_item: create_item}})()
    assert await _handle(plan.handler(fallback, overridden), b"{}") == ("ok", b"fastapi")
