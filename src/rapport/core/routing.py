"""The route class every router uses, and the per-request dependencies built on the kernel.

`ContractRoute` authenticates before any parameter or body is parsed, so a route is private unless
it says otherwise: a public route declares `openapi_extra=PUBLIC` (`security: []` in OpenAPI, which
is also what the docs show). It also refuses non-JSON bodies (415) and, in the test environment,
checks every successful response against the route's declared response model.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi import params as fastapi_params
from fastapi.dependencies.models import Dependant
from fastapi.routing import (
    APIRoute,
    APIRouter,
    _effective_route_context_var,
    iter_route_contexts,
)
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import StringConvertor
from starlette.routing import Match, get_route_path
from starlette.types import Receive, Scope, Send

from rapport.core.auth import Principal
from rapport.core.errors import BadRequest, PreconditionFailed, Unauthorized, UnsupportedMediaType
from rapport.core.security import bearer_token
from rapport.core.solver import compile_route, is_json

PUBLIC: dict[str, Any] = {"security": []}
BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class ResponseContractError(AssertionError):
    """A response did not match its documented model (raised only in the test environment)."""


async def authenticate(request: Request) -> Principal:
    """Resolve the caller once per request (middlewares and the route share the result)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized()
    principal = await request.app.state.authenticator.authenticate(request, token)
    request.state.principal = principal
    return principal


def _body_params(dependant: Dependant) -> list[Any]:
    """Body fields of a route and of all its sub-dependencies (e.g. an OAuth2 form)."""
    found = list(dependant.body_params)
    for sub in dependant.dependencies:
        found.extend(_body_params(sub))
    return found


class ContractRoute(APIRoute):
    @property
    def is_public(self) -> bool:
        return bool(self.openapi_extra) and self.openapi_extra.get("security") == []

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        source = self._effective()
        plan = compile_route(source.dependant, source._embed_body_fields)
        if plan is not None:
            handler = plan.handler(handler, source.dependency_overrides_provider)
        public = self.is_public
        body_params = _body_params(self.dependant)
        accepts_form = any(isinstance(f.field_info, fastapi_params.Form) for f in body_params)
        has_body = bool(body_params)
        route = self

        async def contract_handler(request: Request) -> Response:
            if not public:
                await authenticate(request)
            if has_body and request.method in BODY_METHODS:
                content_type = request.headers.get("content-type", "")
                media = content_type.split(";", 1)[0].strip().lower()
                sent_body = bool(request.scope.get("state", {}).get("body"))
                if (content_type or sent_body) and not (
                    is_json(content_type) or (accepts_form and media in FORM_TYPES)
                ):
                    raise UnsupportedMediaType(
                        "Send the body as application/x-www-form-urlencoded."
                        if accepts_form
                        else "Send the body as application/json."
                    )
            response = await handler(request)
            if request.app.state.settings.env == "test":
                route.check_response(response)
            return response

        return contract_handler

    def _effective(self) -> Any:
        """What FastAPI builds this route's handler from: the route as an included router
        sees it (its dependencies with the router's), else the route itself."""
        context = _effective_route_context_var.get()
        return context if context is not None and context.original_route is self else self

    _adapter: TypeAdapter[Any] | None = None

    def check_response(self, response: Response) -> None:
        if self.response_model is None or not 200 <= response.status_code < 300:
            return
        body = getattr(response, "body", None)
        if not body:
            return
        if self._adapter is None:
            self._adapter = TypeAdapter(self.response_model)
        try:
            self._adapter.validate_json(body)
        except ValidationError as exc:
            raise ResponseContractError(f"{self.path}: {exc}") from exc


class ContractRouter(APIRouter):
    """A domain's router: `ContractRoute` by default, and a cheap path gate.

    FastAPI compares a request with every route of every included router in turn (twice per
    nesting level), which for ~170 routes is the largest cost of a small request. `include()`
    gives each router the static path prefixes its routes can match, so a router whose prefixes
    the path does not start with is skipped with one `str.startswith`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("route_class", ContractRoute)
        super().__init__(*args, **kwargs)
        self.gate: tuple[str, ...] | None = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self.gate is not None and not get_route_path(scope).startswith(self.gate):
            return Match.NONE, {}
        return super().matches(scope)


@dataclass(frozen=True, slots=True)
class _Entry:
    literals: tuple[tuple[int, str], ...]  # (segment index, text) the path must have
    route: Any  # the route as declared
    api: bool  # a FastAPI route: matched and called here; else through its own matches()
    regex: Any = None
    methods: frozenset[str] = frozenset()
    convertors: dict[str, Any] | None = None
    endpoint: Any = None
    app: Any = None  # what FastAPI built to serve the route where it is included


class RouteIndex:
    """The ASGI app inside the router's middleware: finds the route serving a request by its
    path's shape, where FastAPI tries every route of every included router in turn (twice per
    router: once to match, once to handle) at a cost that grows with the number of routes.

    Routes are grouped by their number of path segments and, within that, by the literal
    segment that tells most of them apart (`/api/v1/<contacts>/{id}`); within a group they keep
    their order, so the route chosen is the one Starlette would choose (the first matching both
    path and method). A FastAPI route is then served as its router would serve it: its path
    parameters, endpoint and route in the scope, and the app FastAPI built for it (with its
    included router's dependencies) called. Anything the index cannot settle (no route, a method not
    allowed, a path with a trailing slash to redirect, a route with a `path` parameter or a
    mount) goes to the router itself, unchanged.
    """

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.fallback = router.app
        self.size = -1
        # segment count → (the position routes are told apart by, or None; its text → routes)
        self.groups: dict[int, tuple[int | None, dict[str | None, tuple[_Entry, ...]]]] = {}
        self.anywhere = False  # a route whose segment count varies: the router decides

    def rebuild(self) -> None:
        groups: dict[int, list[_Entry]] = {}
        self.anywhere = False
        for context in iter_route_contexts(self.router.routes):
            path = context.path_format
            convertors = getattr(context, "param_convertors", None) or {}
            if path is None or any(type(c) is not StringConvertor for c in convertors.values()):
                self.anywhere = True
                continue
            segments = path.split("/")
            literals = tuple((i, s) for i, s in enumerate(segments) if "{" not in s)
            route = context.original_route
            entry = _Entry(literals, route, api=False)
            if isinstance(route, APIRoute) and getattr(context, "app", None) is not None:
                entry = _Entry(
                    literals,
                    route,
                    api=True,
                    regex=context.path_regex,
                    methods=frozenset(context.methods or ()),
                    convertors=dict(convertors),
                    endpoint=context.endpoint,
                    app=context.app,
                )
            groups.setdefault(len(segments), []).append(entry)
        self.groups = {size: _by_segment(entries) for size, entries in groups.items()}
        self.size = len(self.router.routes)

    def lookup(self, scope: Scope) -> tuple[_Entry, dict[str, Any]] | None:
        """The FastAPI route serving this HTTP request and its path parameters, or None when
        the router is to decide."""
        if self.size != len(self.router.routes):
            self.rebuild()
        if self.anywhere:
            return None
        path = get_route_path(scope)
        segments = path.split("/")
        method = scope["method"]
        group = self.groups.get(len(segments))
        if group is None:
            return None
        position, buckets = group
        for entry in buckets.get(None if position is None else segments[position], ()):
            if any(segments[i] != text for i, text in entry.literals):
                continue
            if not entry.api:
                if entry.route.matches(scope)[0] is Match.FULL:
                    return None  # not a FastAPI route: the router serves it
                continue
            found = entry.regex.match(path)
            if found is None or method not in entry.methods:
                continue
            convertors = entry.convertors
            params = dict(scope.get("path_params") or ())
            for name, value in found.groupdict().items():
                params[name] = convertors[name].convert(value)
            return entry, params
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.lookup(scope) if scope["type"] == "http" else None
        if found is None:
            await self.fallback(scope, receive, send)
            return
        entry, params = found
        scope.setdefault("router", self.router)
        scope["path_params"] = params
        scope["endpoint"] = entry.endpoint
        scope["route"] = entry.route
        await entry.app(scope, receive, send)


def _by_segment(
    entries: list[_Entry],
) -> tuple[int | None, dict[str | None, tuple[_Entry, ...]]]:
    """Routes of one segment count by the text of the position where all of them have a
    literal and that has the most different ones (None: no such position, one bucket)."""
    literal_everywhere = set.intersection(*(set(dict(e.literals)) for e in entries))
    if not literal_everywhere:
        return None, {None: tuple(entries)}
    position = max(
        sorted(literal_everywhere), key=lambda i: len({dict(e.literals)[i] for e in entries})
    )
    buckets: dict[str | None, list[_Entry]] = {}
    for entry in entries:  # in order: each bucket keeps the routes' order
        buckets.setdefault(dict(entry.literals)[position], []).append(entry)
    return position, {text: tuple(found) for text, found in buckets.items()}


def install_route_index(app: Any) -> None:
    """Serve `app`'s requests through a `RouteIndex` (after its routes are all included)."""
    index = RouteIndex(app.router)
    index.rebuild()  # FastAPI builds each included route's app here, not on a first request
    app.router.middleware_stack = index


def static_prefixes(paths: list[str]) -> tuple[str, ...]:
    """The literal beginnings of path templates, cut before their first parameter's segment;
    the fewest prefixes that cover them all (`/a/{id}` and `/a/{id}/b` → `/a/`)."""
    found = sorted({path.split("{", 1)[0] for path in paths})
    kept: list[str] = []
    for prefix in found:
        if not any(prefix.startswith(k) for k in kept):
            kept.append(prefix)
    return tuple(kept)


def include(parent: APIRouter, router: APIRouter, prefix: str = "") -> None:
    """`parent.include_router(router, prefix=prefix)`, gating a `ContractRouter` by its paths."""
    if isinstance(router, ContractRouter):
        router.gate = static_prefixes([prefix + getattr(r, "path", "") for r in router.routes])
    parent.include_router(router, prefix=prefix)


def document_security(app: Any, scheme: Any) -> None:
    """Every operation that is not public needs the bearer `scheme` in OpenAPI (public ones
    already say `security: []`); the routes themselves do not depend on it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema: dict[str, Any] = build()
        name = scheme.scheme_name
        model = scheme.model.model_dump(mode="json", by_alias=True, exclude_none=True)
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[name] = model
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                if isinstance(operation, dict) and "security" not in operation:
                    operation["security"] = [{name: []}]
        return schema

    app.openapi = openapi


def effective_routes(app: Any) -> list[tuple[str, frozenset[str], Any]]:
    """(full path, methods, route) for every route the app serves, included routers expanded."""
    found = []
    for context in iter_route_contexts(app.routes):
        path = context.path_format or context.path
        if path is None:
            continue
        found.append((path, frozenset(context.methods or ()), context.original_route))
    return found


def route_templates(app: Any) -> dict[Any, str]:
    """Endpoint function → full path template, for labelling metrics."""
    return {
        route.endpoint: path
        for path, _, route in effective_routes(app)
        if getattr(route, "endpoint", None) is not None
    }


async def request_session(request: Request) -> AsyncSession:
    return request.state.uow.session


SessionDep = Annotated[AsyncSession, Depends(request_session)]


def parse_if_match(value: str | None) -> int | None:
    """`If-Match: "3"` (or W/"3", or 3) → 3; absent or `*` → None."""
    if value is None or value.strip() == "*":
        return None
    raw = value.strip()
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(
            'If-Match must be an ETag this API returned, like "3".', code="invalid_if_match"
        )
    return int(raw)


async def if_match_header(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match", description='ETag from a previous read, e.g. "3" (412 on mismatch).'
        ),
    ] = None,
) -> int | None:
    return parse_if_match(if_match)


IfMatchDep = Annotated[int | None, Depends(if_match_header)]


def etag_headers(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def check_version(expected: int | None, actual: int) -> None:
    if expected is not None and expected != actual:
        raise PreconditionFailed()
