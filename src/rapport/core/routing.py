"""The route class every router uses, and the per-request dependencies built on the kernel.

`ContractRoute` authenticates before any parameter or body is parsed, so a route is private unless
it says otherwise: a public route declares `openapi_extra=PUBLIC` (`security: []` in OpenAPI, which
is also what the docs show). It also refuses non-JSON bodies (415) and, in the test environment,
checks every successful response against the route's declared response model.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi import params as fastapi_params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter, iter_route_contexts
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Match, get_route_path
from starlette.types import Scope

from rapport.core.auth import Principal
from rapport.core.errors import BadRequest, PreconditionFailed, Unauthorized, UnsupportedMediaType
from rapport.core.security import bearer_token

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


def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


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
                    _is_json(content_type) or (accepts_form and media in FORM_TYPES)
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
