"""The response envelope of API.md: `{"success", "data", "error", "meta"}` on every response.

Bodies are encoded with orjson straight from plain data (rows already shaped by the service); the
Pydantic models here document the shapes in OpenAPI and check them in the test suite.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

T = TypeVar("T")

request_id_var: ContextVar[str] = ContextVar("request_id", default="")

ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):  # asyncpg's UUID subclass (orjson takes only the exact type)
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=ORJSON_OPTIONS)


class ErrorDetail(BaseModel):
    field: str | None = Field(None, examples=["body.email"])
    reason: str = Field(examples=["value is not a valid email address"])
    index: int | None = None


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["Not found."])
    details: list[ErrorDetail] | None = None


class Meta(BaseModel):
    model_config = ConfigDict(extra="allow")
    request_id: str = Field(examples=["0193a6f0c2f37c4e9b1d2e3f4a5b6c7d"])


class ListMeta(Meta):
    next_cursor: str | None = None
    has_more: bool = False
    limit: int = 50
    total: int | None = None


class Envelope(BaseModel, Generic[T]):
    success: bool = True
    data: T
    error: None = None
    meta: Meta


class ListEnvelope(BaseModel, Generic[T]):
    success: bool = True
    data: list[T]
    error: None = None
    meta: ListMeta


class ErrorEnvelope(BaseModel):
    success: bool = False
    data: None = None
    error: ErrorBody
    meta: Meta


class Deleted(BaseModel):
    id: str
    deleted: bool = True


class EnvelopeResponse(Response):
    media_type = "application/json"


def ok(
    data: Any,
    *,
    status_code: int = 200,
    meta: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> EnvelopeResponse:
    body = {
        "success": True,
        "data": data,
        "error": None,
        "meta": {"request_id": request_id_var.get(), **(meta or {})},
    }
    return EnvelopeResponse(dumps(body), status_code=status_code, headers=headers)


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "success": False,
        "data": None,
        "error": {"code": code, "message": message, "details": details},
        "meta": {"request_id": request_id_var.get()},
    }


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> EnvelopeResponse:
    return EnvelopeResponse(
        dumps(error_body(code, message, details)), status_code=status_code, headers=headers
    )
