"""A route's parameters and dependencies solved by a plan made once, not by FastAPI's general
solver on every request.

FastAPI's `solve_dependencies` re-inspects each parameter's annotation, alias choices and
parameter-model status on every request, for every dependency, and builds a response and exit
stacks the routes here never use: a fifth of the CPU of a small read. Most routes need only
path, query and header parameters, coroutine dependencies (authentication, the session, a
listing's parameters) and one JSON body model, and return a `Response` themselves. For those,
`compile_route` makes a plan with everything that does not depend on the request worked out
(aliases, which values are lists, defaults), and `RoutePlan.handler` runs it:

- the values and the validation errors are FastAPI's own: each parameter goes through the
  same pydantic field FastAPI built, with the same location (`("query", "limit")`), and a body
  through the same field with the JSON FastAPI would have decoded, so a 422 reads exactly the
  same either way (`tests/core/test_solver.py` checks this on every route, against FastAPI);
- a dependency shared by several others runs once per request, as with FastAPI's cache;
- anything else (form or file bodies, generator dependencies, background tasks, a `Response`
  parameter, security scopes, cookies, parameter models, sync callables, dependency
  overrides) leaves the route, or the request, on FastAPI's own handler.
"""

from __future__ import annotations

import copy
import email.message
import json
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import params as fastapi_params
from fastapi._compat import Undefined, field_annotation_is_sequence
from fastapi.dependencies.models import Dependant, _get_cache_key
from fastapi.dependencies.utils import (
    _get_param_aliases,
    _get_param_model,
    _is_async_gen_callable,
    _is_coroutine_callable,
    _is_gen_callable,
    _is_json_field,
    _validate_value_with_model_field,
    get_missing_field_error,
)
from fastapi.exceptions import HTTPException, RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

PARSE_ERROR = "There was an error parsing the body"
IMMUTABLE = (type(None), bool, int, float, str, bytes, tuple, frozenset)


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    field: Any  # FastAPI's ModelField: validate(value, values, loc=...)
    where: str  # "path", "query" or "header"
    keys: tuple[str, ...]  # the request keys that may carry it, in order of preference
    many: bool  # read every value of a repeated key (a list parameter)
    sequence: bool  # an empty list counts as absent
    required: bool
    default: Any
    copy_default: bool
    validate_default: bool

    def value(self, source: Any, values: dict[str, Any]) -> tuple[Any, list[Any]]:
        key = self.keys[0]
        if len(self.keys) > 1:
            key = next((k for k in self.keys if k in source), key)
        value = source.getlist(key) if self.many else source.get(key)
        if value is None or (self.sequence and len(value) == 0):
            if self.required:
                return None, [get_missing_field_error(loc=(self.where, key))]
            default = copy.deepcopy(self.default) if self.copy_default else self.default
            if not self.validate_default:
                return default, []
            value = default
        return self.field.validate(value, values, loc=(self.where, key))


@dataclass(frozen=True, slots=True)
class _Node:
    call: Callable[..., Awaitable[Any]]
    name: str | None
    cache_key: Any | None  # None: not cached (use_cache=False)
    dependencies: tuple[_Node, ...]
    params: tuple[_Param, ...]
    request_name: str | None
    body: Any | None  # the body's ModelField (one model, not embedded)

    async def solve(
        self, request: Request, body: Any, cache: dict[Any, Any]
    ) -> tuple[dict[str, Any], list[Any]]:
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for node in self.dependencies:
            sub_values, sub_errors = await node.solve(request, body, cache)
            if sub_errors:
                errors.extend(sub_errors)
                continue
            key = node.cache_key
            if key is not None and key in cache:
                solved = cache[key]
            else:
                solved = await node.call(**sub_values)
            if node.name is not None:
                values[node.name] = solved
            if key is not None and key not in cache:
                cache[key] = solved
        for param in self.params:
            if param.where == "query":
                source: Any = request.query_params
            elif param.where == "path":
                source = request.path_params
            else:
                source = request.headers
            value, param_errors = param.value(source, values)
            if param_errors:
                errors.extend(param_errors)
            else:
                values[param.name] = value
        if self.body is not None:
            value, body_errors = _validate_value_with_model_field(
                field=self.body, value=body, values=values, loc=("body",)
            )
            if body_errors:
                errors.extend(body_errors)
            else:
                values[self.body.name] = value
        if self.request_name is not None:
            values[self.request_name] = request
        return values, errors


def _param(field: Any, where: str) -> _Param | None:
    if _get_param_model(field) is not None:
        return None
    keys = tuple(key for _, key in _get_param_aliases(field))
    info = field.field_info
    sequence = field_annotation_is_sequence(info.annotation)
    default = field.default
    return _Param(
        name=field.name,
        field=field,
        where=where,
        keys=keys,
        many=where != "path" and sequence and not _is_json_field(field),
        sequence=sequence,
        required=info.is_required(),
        default=default,
        copy_default=not isinstance(default, IMMUTABLE),
        validate_default=bool(info.validate_default),
    )


def _node(dependant: Dependant, top: bool) -> _Node | None:
    """The plan of one dependant, or None when it needs FastAPI's general solver."""
    call = dependant.call
    if (
        call is None
        or dependant.cookie_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
        or dependant.parent_oauth_scopes
        or dependant.concurrency is not None
        or _is_gen_callable(call)
        or _is_async_gen_callable(call)
        or not _is_coroutine_callable(call)
    ):
        return None
    body = None
    if dependant.body_params:
        if not top or len(dependant.body_params) != 1:
            return None
        body = dependant.body_params[0]
        if not isinstance(body.field_info, fastapi_params.Body) or isinstance(
            body.field_info, fastapi_params.Form | fastapi_params.File
        ):
            return None
    params: list[_Param] = []
    for where, fields in (
        ("path", dependant.path_params),
        ("query", dependant.query_params),
        ("header", dependant.header_params),
    ):
        for field in fields:
            param = _param(field, where)
            if param is None:
                return None
            params.append(param)
    dependencies: list[_Node] = []
    for sub in dependant.dependencies:
        node = _node(sub, top=False)
        if node is None:
            return None
        dependencies.append(node)
    return _Node(
        call=call,
        name=dependant.name,
        cache_key=_get_cache_key(dependant=dependant) if dependant.use_cache else None,
        dependencies=tuple(dependencies),
        params=tuple(params),
        request_name=dependant.request_param_name,
        body=body,
    )


def _returns_response(call: Callable[..., Any]) -> bool:
    try:
        returned = typing.get_type_hints(call).get("return")
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: not compiled
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


def is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _json_invalid(exc: json.JSONDecodeError, raw: bytes) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.msg},
            }
        ],
        body=raw,
    )


@dataclass(frozen=True)
class RoutePlan:
    endpoint: _Node

    def handler(
        self,
        fallback: Callable[[Request], Awaitable[Response]],
        overrides: Any | None,
    ) -> Callable[[Request], Awaitable[Response]]:
        """The route's request handler: this plan, or FastAPI's `fallback` while dependency
        overrides are set (tests that swap a dependency)."""
        endpoint = self.endpoint
        call = endpoint.call
        has_body = endpoint.body is not None

        async def handler(request: Request) -> Response:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await fallback(request)
            body: Any = Undefined
            if has_body:
                raw = await request.body()
                if raw:
                    content_type = request.headers.get("content-type")
                    if content_type and is_json(content_type):
                        try:
                            body = json.loads(raw)
                        except json.JSONDecodeError as exc:
                            raise _json_invalid(exc, raw) from exc
                        except Exception as exc:  # undecodable bytes, as FastAPI answers them
                            raise HTTPException(400, PARSE_ERROR) from exc
                    else:
                        body = raw
            values, errors = await endpoint.solve(request, body, {})
            if errors:
                raise RequestValidationError(errors, body=None if body is Undefined else body)
            response = await call(**values)
            if not isinstance(response, Response):  # pragma: no cover - checked when compiled
                raise TypeError(f"{call.__name__} did not return a Response")
            return response

        return handler


def compile_route(dependant: Dependant, embed_body_fields: bool) -> RoutePlan | None:
    """A plan for a route whose endpoint returns a `Response`, or None (FastAPI solves it)."""
    if dependant.call is None or not _returns_response(dependant.call) or embed_body_fields:
        return None
    node = _node(dependant, top=True)
    if node is None:
        return None
    return RoutePlan(endpoint=node)
