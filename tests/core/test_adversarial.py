"""Hostile and malformed input against tags, users and auth: always a 4xx envelope (or a normal
2xx), never a 500, never the database's own words, never an executed payload.

Every request in the injection barrages is timed: a payload that slept or burned CPU in the database
would blow the bound. Bugs these tests found each keep a test of their own below.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

import rapport.core.repository as repository
from tests.factories import PASSWORD, Account, add_member, create_tag, login, register, unique_email

LEAK_MARKERS = (
    "sqlite",
    "psycopg",
    "asyncpg",
    "select",
    "syntax error",
    "traceback",
    "sqlalchemy",
)
TIME_BOUND = 2.5  # seconds; a bound, not a benchmark
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

LONG = ("a'; DROP TABLE tag; -- " * 500)[:10_000]
SQL_PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE tag; --",
    "1 UNION SELECT password_hash FROM user_account--",
    "' UNION SELECT id, password_hash, email, NULL FROM user_account --",
    "1); SELECT pg_sleep(3); --",
    "'; SELECT pg_sleep(3); --",
    "' || (SELECT sqlite_version()) || '",
    "randomblob(1000000000)",
    "' AND 1=(SELECT COUNT(*) FROM sqlite_master) --",
    "Robert'); DELETE FROM tag WHERE ('1'='1",
    '" OR ""="',
    "%' OR name LIKE '%",
    "\\'; SELECT 1; --",
    "%s %(name)s ? :workspace_id $1",
    "Ωμέγα 漢字 🚀 ' OR 1=1 --",
    LONG,
]
NUL_PAYLOADS = ["\x00", "a\x00' OR 1=1 --"]


# -- helpers ------------------------------------------------------------------------------------
async def timed(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    started = time.perf_counter()
    response = await client.request(method, url, **kwargs)
    elapsed = time.perf_counter() - started
    assert elapsed < TIME_BOUND, f"{method} {url[:120]} took {elapsed:.2f}s"
    return response


def _echo_forms(value: str) -> list[str]:
    """How a value sent by the client can come back in a JSON body (raw or JSON-escaped)."""
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    ascii_escaped = json.dumps(value)[1:-1]
    return sorted({value, escaped, ascii_escaped}, key=len, reverse=True)


def assert_no_leak(response: httpx.Response, *echoed: str) -> None:
    """No database or stack text in the body. What the client itself sent (a tag name, a filter
    key named in error details) may come back and is removed before the check."""
    text = response.text
    for value in echoed:
        for form in _echo_forms(value):
            if form:
                text = text.replace(form, "")
    lowered = text.lower()
    leaked = [marker for marker in LEAK_MARKERS if marker in lowered]
    assert not leaked, f"{leaked} in {response.status_code} body: {response.text[:500]}"


def assert_envelope(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) >= {"success", "data", "error", "meta"}, body
    assert isinstance(body["meta"]["request_id"], str) and body["meta"]["request_id"]
    if response.status_code >= 400:
        assert body["success"] is False and body["data"] is None, body
        assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    else:
        assert body["success"] is True and body["error"] is None, body
    return body


def assert_error(
    response: httpx.Response, status: int, code: str | None = None, *echoed: str
) -> dict[str, Any]:
    assert response.status_code == status, (
        f"expected {status}: {response.status_code} {response.text[:500]}"
    )
    body = assert_envelope(response)
    if code is not None:
        assert body["error"]["code"] == code, body
    assert_no_leak(response, *echoed)
    return body


def assert_handled(
    response: httpx.Response, *echoed: str, allowed: Iterable[int] | None = None
) -> dict[str, Any]:
    """A normal 2xx or a 4xx envelope (in `allowed` when given); never 5xx, never a leak."""
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:500]}"
    if allowed is not None:
        assert status in set(allowed), f"{status} not in {sorted(allowed)}: {response.text[:500]}"
    assert 200 <= status < 300 or 400 <= status < 500, status
    body = assert_envelope(response)
    assert_no_leak(response, *echoed)
    return body


async def assert_still_works(client: httpx.AsyncClient, admin: Account) -> None:
    """After a barrage: the tag table accepts writes and reads, and the admin can still log in."""
    name = f"after-{uuid.uuid4().hex[:8]}"
    created = await create_tag(client, admin, name=name)
    listed = await client.get("/api/v1/tags", params={"name": name}, headers=admin.headers)
    assert listed.status_code == 200, listed.text
    assert [row["id"] for row in listed.json()["data"]] == [created["id"]]
    again = await login(client, admin.email)
    assert again.user["id"] == admin.user["id"]
    users = await client.get("/api/v1/users", headers=again.headers)
    assert users.status_code == 200 and admin.email in {u["email"] for u in users.json()["data"]}


def make_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


async def list_tags(
    client: httpx.AsyncClient, account: Account, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/tags", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def names(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(row["name"] for row in rows)


JSON = {"Content-Type": "application/json"}


# -- malformed bodies ---------------------------------------------------------------------------
class TestMalformedBodies:
    async def _targets(self, client: httpx.AsyncClient) -> tuple[Account, list[tuple[str, str]]]:
        admin = await register(client)
        member = await add_member(client, admin, "member")
        tag = await create_tag(client, admin)
        return admin, [
            ("POST", "/api/v1/tags"),
            ("PATCH", f"/api/v1/tags/{tag['id']}"),
            ("PATCH", f"/api/v1/users/{member.user['id']}"),
            ("POST", "/api/v1/users/invitations"),
            ("POST", "/api/v1/auth/login"),
            ("POST", "/api/v1/auth/register"),
            ("POST", "/api/v1/auth/refresh"),
        ]

    async def test_malformed_json_is_400_malformed_json(self, client):
        admin, targets = await self._targets(client)
        for body in (b'{"name": "a"', b"{name: 'a'}", b'{"name": "a",}', b"{'name'", b"}"):
            for method, path in targets:
                response = await timed(
                    client, method, path, content=body, headers={**admin.headers, **JSON}
                )
                assert_error(response, 400, "malformed_json")

    async def test_undecodable_or_absurdly_nested_json_is_400(self, client):
        admin, targets = await self._targets(client)
        bodies = [
            b"\xff\xfe{\x00",
            b"[" * 100_000 + b"]" * 100_000,
            b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
        ]
        for body in bodies:
            for method, path in targets:
                response = await timed(
                    client, method, path, content=body, headers={**admin.headers, **JSON}
                )
                assert_error(response, 400)

    async def test_wrong_types_are_422(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        tag = await create_tag(client, admin)
        cases = [
            ("POST", "/api/v1/tags", {"name": 123}),
            ("POST", "/api/v1/tags", {"name": ["x"]}),
            ("POST", "/api/v1/tags", {"name": {"$ne": None}}),
            ("POST", "/api/v1/tags", {"name": None}),
            ("POST", "/api/v1/tags", {"name": "ok", "color": 16711680}),
            ("POST", "/api/v1/tags", []),
            ("POST", "/api/v1/tags", "a string"),
            ("POST", "/api/v1/tags", None),
            ("PATCH", f"/api/v1/tags/{tag['id']}", {"description": 5}),
            ("PATCH", f"/api/v1/tags/{tag['id']}", {"name": True}),
            ("PATCH", f"/api/v1/users/{member.user['id']}", {"is_active": "maybe"}),
            ("PATCH", f"/api/v1/users/{member.user['id']}", {"is_active": [True]}),
            ("PATCH", f"/api/v1/users/{member.user['id']}", {"role": 5}),
            ("POST", "/api/v1/users/invitations", {"email": 5}),
            ("POST", "/api/v1/users/invitations", {"email": "x@example.com", "role": ["admin"]}),
            ("POST", "/api/v1/auth/login", {"username_or_email": 1, "password": True}),
            (
                "POST",
                "/api/v1/auth/register",
                {"email": [], "password": PASSWORD, "full_name": "x"},
            ),
            ("POST", "/api/v1/auth/refresh", {"refresh_token": 12345}),
        ]
        for method, path, body in cases:
            content = json.dumps(body).encode()
            response = await timed(
                client, method, path, content=content, headers={**admin.headers, **JSON}
            )
            assert_error(response, 422, "validation_error")
        assert (await client.get(f"/api/v1/tags/{tag['id']}", headers=admin.headers)).json()[
            "data"
        ]["version"] == 1

    async def test_unknown_body_fields_are_422(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        tag = await create_tag(client, admin)
        cases = [
            (
                "POST",
                "/api/v1/tags",
                {"name": "x", "workspace_id": str(uuid.uuid4())},
                "workspace_id",
            ),
            ("PATCH", f"/api/v1/tags/{tag['id']}", {"version": 99}, "version"),
            (
                "PATCH",
                f"/api/v1/users/{member.user['id']}",
                {"password_hash": "x"},
                "password_hash",
            ),
            ("PATCH", f"/api/v1/users/{member.user['id']}", {"email": "new@example.com"}, "email"),
            (
                "POST",
                "/api/v1/users/invitations",
                {"email": "a@example.com", "admin": True},
                "admin",
            ),
            (
                "POST",
                "/api/v1/auth/login",
                {"username_or_email": admin.email, "password": PASSWORD, "remember": True},
                "remember",
            ),
            (
                "POST",
                "/api/v1/auth/register",
                {"email": unique_email(), "password": PASSWORD, "full_name": "x", "role": "admin"},
                "role",
            ),
            ("POST", "/api/v1/auth/refresh", {"refresh_token": "x", "sid": "y"}, "sid"),
        ]
        for method, path, body, extra in cases:
            response = await timed(client, method, path, json=body, headers=admin.headers)
            details = assert_error(response, 422, "validation_error")["error"]["details"]
            assert f"body.{extra}" in {d["field"] for d in details}, details
        patched = await client.get(f"/api/v1/users/{member.user['id']}", headers=admin.headers)
        assert patched.json()["data"]["email"] == member.email

    async def test_invalid_enum_values_are_422(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        for role in ("superuser", "ADMIN", "Admin", "", "owner", "admin "):
            patched = await timed(
                client,
                "PATCH",
                f"/api/v1/users/{member.user['id']}",
                json={"role": role},
                headers=admin.headers,
            )
            assert_error(patched, 422, "validation_error")
            invited = await timed(
                client,
                "POST",
                "/api/v1/users/invitations",
                json={"email": unique_email(), "role": role},
                headers=admin.headers,
            )
            assert_error(invited, 422, "validation_error")
        me = await client.get(f"/api/v1/users/{member.user['id']}", headers=admin.headers)
        assert me.json()["data"]["role"] == "member"
        invitations = await client.get("/api/v1/users/invitations", headers=admin.headers)
        assert {i["email"] for i in invitations.json()["data"]} <= {member.email}

    async def test_body_over_the_size_limit_is_413(self, client, app):
        admin = await register(client)
        limit = app.state.settings.max_body_bytes
        prefix, suffix = b'{"name": "', b'"}'
        too_big = prefix + b"x" * (limit + 1 - len(prefix) - len(suffix)) + suffix
        assert len(too_big) == limit + 1
        for path in ("/api/v1/tags", "/api/v1/auth/login", "/api/v1/users/invitations"):
            response = await timed(
                client, "POST", path, content=too_big, headers={**admin.headers, **JSON}
            )
            assert_error(response, 413, "payload_too_large")

    async def test_streamed_body_over_the_limit_is_413(self, client, app):
        """No Content-Length to trust: the limit holds while reading."""
        admin = await register(client)
        limit = app.state.settings.max_body_bytes
        chunk = b"x" * 65536

        async def stream() -> AsyncIterator[bytes]:
            yield b'{"name": "'
            for _ in range(limit // len(chunk) + 2):
                yield chunk
            yield b'"}'

        response = await timed(
            client, "POST", "/api/v1/tags", content=stream(), headers={**admin.headers, **JSON}
        )
        assert_error(response, 413, "payload_too_large")

    async def test_body_exactly_at_the_limit_is_read(self, client, app):
        admin = await register(client)
        limit = app.state.settings.max_body_bytes
        prefix, suffix = b'{"name": "', b'"}'
        exact = prefix + b"x" * (limit - len(prefix) - len(suffix)) + suffix
        response = await timed(
            client, "POST", "/api/v1/tags", content=exact, headers={**admin.headers, **JSON}
        )
        assert_error(response, 422, "validation_error")  # read, then refused: name too long

    async def test_wrong_content_type_is_415(self, client):
        admin = await register(client)
        tag = await create_tag(client, admin)
        member = await add_member(client, admin, "member")
        body = b'{"name": "typed"}'
        for content_type in (
            "text/plain",
            "application/xml",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json",
            "' OR '1'='1",
        ):
            headers = {**admin.headers, "Content-Type": content_type}
            for method, path in (
                ("POST", "/api/v1/tags"),
                ("PATCH", f"/api/v1/tags/{tag['id']}"),
                ("PATCH", f"/api/v1/users/{member.user['id']}"),
                ("POST", "/api/v1/users/invitations"),
                ("POST", "/api/v1/auth/login"),
                ("POST", "/api/v1/auth/register"),
            ):
                response = await timed(client, method, path, content=body, headers=headers)
                assert_error(response, 415, "unsupported_media_type")
        assert await list_tags(client, admin, name="typed") == []

    async def test_put_is_405(self, client):
        admin = await register(client)
        tag = await create_tag(client, admin)
        for path in (
            "/api/v1/tags",
            f"/api/v1/tags/{tag['id']}",
            "/api/v1/users",
            f"/api/v1/users/{admin.user['id']}",
            "/api/v1/users/invitations",
            "/api/v1/api-keys",
        ):
            response = await timed(client, "PUT", path, json={"name": "x"}, headers=admin.headers)
            assert_error(response, 405, "method_not_allowed")


# -- paths and query parameters -----------------------------------------------------------------
ID_ROUTES = [
    ("GET", "/api/v1/tags/{}"),
    ("PATCH", "/api/v1/tags/{}"),
    ("DELETE", "/api/v1/tags/{}"),
    ("POST", "/api/v1/tags/{}/restore"),
    ("GET", "/api/v1/users/{}"),
    ("PATCH", "/api/v1/users/{}"),
    ("DELETE", "/api/v1/users/invitations/{}"),
    ("DELETE", "/api/v1/api-keys/{}"),
]
LISTS = ["/api/v1/tags", "/api/v1/users", "/api/v1/users/invitations", "/api/v1/api-keys"]


class TestPathAndQueryValidation:
    async def test_non_uuid_ids_in_paths_are_422(self, client):
        admin = await register(client)
        for bad in ("123", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", "null", "-1"):
            for method, template in ID_ROUTES:
                body = {} if method in ("PATCH", "POST") else None
                response = await timed(
                    client, method, template.format(bad), json=body, headers=admin.headers
                )
                details = assert_error(response, 422, "validation_error")["error"]["details"]
                assert any(d["field"].startswith("path.") for d in details), details

    async def test_limit_out_of_range_is_422(self, client):
        admin = await register(client)
        for path in LISTS:
            for limit in ("100000", "0", "-1", "201", "abc", "1.5", ""):
                response = await timed(
                    client, "GET", path, params={"limit": limit}, headers=admin.headers
                )
                assert_error(response, 422, "validation_error")
            for limit in ("1", "200"):
                ok = await timed(
                    client, "GET", path, params={"limit": limit}, headers=admin.headers
                )
                assert ok.status_code == 200 and ok.json()["meta"]["limit"] == int(limit)

    async def test_unknown_sort_is_422(self, client):
        admin = await register(client)
        for path in LISTS:
            for params in (
                {"sort_by": "password_hash"},
                {"sort_by": "workspace_id"},
                {"sort_by": "name; DROP TABLE tag"},
                {"sort_order": "sideways"},
                {"sort_order": "ASC"},
            ):
                response = await timed(client, "GET", path, params=params, headers=admin.headers)
                assert_error(response, 422, "validation_error")

    async def test_unknown_filter_field_is_422_invalid_filter(self, client):
        admin = await register(client)
        cases = [
            ("/api/v1/tags", {"password_hash": "x"}),
            ("/api/v1/tags", {"workspace_id": str(uuid.uuid4())}),
            ("/api/v1/tags", {"deleted_at": "2026-01-01"}),
            ("/api/v1/tags", {"Name": "x"}),
            ("/api/v1/tags", {"name[": "x"}),
            ("/api/v1/users", {"email": admin.email}),
            ("/api/v1/users", {"password_hash": "x"}),
            ("/api/v1/users/invitations", {"token_hash": "x"}),
            ("/api/v1/api-keys", {"key_hash": "x"}),
        ]
        for path, params in cases:
            response = await timed(client, "GET", path, params=params, headers=admin.headers)
            details = assert_error(response, 422, "invalid_filter")["error"]["details"]
            assert details and details[0]["field"].startswith("query."), details

    async def test_bad_cursor_is_422_invalid_cursor(self, client):
        admin = await register(client)
        valid_id = str(uuid.uuid4())
        cursors = [
            "garbage",
            "!!!!",
            "e30",  # {}
            base64.urlsafe_b64encode(b"hello").decode(),
            make_cursor("created_at", "desc"),
            make_cursor("created_at", "desc", "not-a-date", valid_id),
            make_cursor("created_at", "desc", "2026-01-01T00:00:00+00:00", "not-a-uuid"),
            make_cursor("created_at", "desc", None, valid_id),
            make_cursor("created_at", "desc", ["x"], valid_id),
            make_cursor("password_hash", "desc", "x", valid_id),
            "é",
            "x" * 1001,
        ]
        for cursor in cursors:
            for path in LISTS:
                response = await timed(
                    client, "GET", path, params={"cursor": cursor}, headers=admin.headers
                )
                code = "validation_error" if len(cursor) > 1000 else "invalid_cursor"
                assert_error(response, 422, code)

    async def test_cursor_with_a_non_string_row_id_is_422(self, client):
        admin = await register(client)
        for row_id in (123, ["x"], {"a": 1}):
            cursor = make_cursor("created_at", "desc", "2026-01-01T00:00:00+00:00", row_id)
            response = await timed(
                client, "GET", "/api/v1/tags", params={"cursor": cursor}, headers=admin.headers
            )
            assert_error(response, 422, "invalid_cursor")

    async def test_cursor_issued_for_another_sort_is_422(self, client):
        admin = await register(client)
        for i in range(3):
            await create_tag(client, admin, name=f"cur{i}")
        first = await client.get(
            "/api/v1/tags",
            params={"sort_by": "name", "sort_order": "asc", "limit": 1},
            headers=admin.headers,
        )
        cursor = first.json()["meta"]["next_cursor"]
        assert cursor
        again = await client.get(
            "/api/v1/tags",
            params={"sort_by": "name", "sort_order": "asc", "limit": 1, "cursor": cursor},
            headers=admin.headers,
        )
        assert again.status_code == 200  # the cursor itself is good
        for params in (
            {"sort_by": "created_at", "sort_order": "asc"},
            {"sort_by": "name", "sort_order": "desc"},
            {"sort_by": "updated_at", "sort_order": "asc"},
            {},  # the default sort
        ):
            response = await timed(
                client,
                "GET",
                "/api/v1/tags",
                params={**params, "cursor": cursor},
                headers=admin.headers,
            )
            assert_error(response, 422, "invalid_cursor")
        users_page = await client.get(
            "/api/v1/users", params={"cursor": cursor}, headers=admin.headers
        )
        assert_error(users_page, 422, "invalid_cursor")

    async def test_invalid_if_match_is_400(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        tag = await create_tag(client, admin)
        for value in ("banana", '"abc"', '"-1"', '"1.5"', "W/", '"' + "9" * 19 + '"', '"1", "2"'):
            headers = {**admin.headers, "If-Match": value}
            for method, path, body in (
                ("PATCH", f"/api/v1/tags/{tag['id']}", {"description": "x"}),
                ("DELETE", f"/api/v1/tags/{tag['id']}", None),
                ("PATCH", f"/api/v1/users/{member.user['id']}", {"role": "viewer"}),
            ):
                response = await timed(client, method, path, json=body, headers=headers)
                assert_error(response, 400, "invalid_if_match")
        got = await client.get(f"/api/v1/tags/{tag['id']}", headers=admin.headers)
        assert got.status_code == 200 and got.json()["data"]["version"] == 1

    async def test_bad_filter_values_are_422(self, client):
        admin = await register(client)
        cases = [
            ("/api/v1/tags", {"created_at[gte]": "yesterday"}),
            ("/api/v1/tags", {"created_at[gte]": "9999-12-31T23:59:59-10:00"}),
            ("/api/v1/tags", {"version[gt]": "one"}),
            ("/api/v1/tags", {"version": "1.5"}),
            ("/api/v1/tags", {"name": ",".join(["a"] * 101)}),
            ("/api/v1/tags", {"name": "x" * 501}),
            ("/api/v1/users", {"role": "superuser"}),
            ("/api/v1/users", {"is_active": "maybe"}),
            ("/api/v1/users", {"created_at[gte]": "2026-13-01"}),
            ("/api/v1/users/invitations", {"role": "superuser"}),
            ("/api/v1/api-keys", {"created_by": "not-a-uuid"}),
        ]
        for path, params in cases:
            response = await timed(client, "GET", path, params=params, headers=admin.headers)
            assert_error(response, 422, "invalid_filter")

    async def test_integer_filter_beyond_the_column_range_is_422(self, client):
        admin = await register(client)
        for params in (
            {"version": "99999999999999999999"},
            {"version[gt]": "9223372036854775808"},
            {"version[lte]": "2147483648"},
        ):
            response = await timed(
                client, "GET", "/api/v1/tags", params=params, headers=admin.headers
            )
            assert_error(response, 422, "invalid_filter")

    async def test_a_thousand_repeated_filters_are_not_a_server_error(
        self, client, backend, request
    ):
        admin = await register(client)
        query = "&".join(f"name=a{i}" for i in range(1000))
        response = await timed(client, "GET", f"/api/v1/tags?{query}", headers=admin.headers)
        body = assert_handled(response, allowed=(200, 400, 422))
        if response.status_code == 200:
            assert body["data"] == []


# -- injection barrages -------------------------------------------------------------------------
# Query parameters per list: "text" ones are bound values (a non-matching search finds nothing),
# "typed" ones must refuse SQL-looking text (422).
QUERY_SPECS: dict[str, dict[str, tuple[str, ...]]] = {
    "/api/v1/tags": {
        "text": ("search", "name", "color"),
        "typed": (
            "limit",
            "cursor",
            "sort_by",
            "sort_order",
            "include_total",
            "include_deleted",
            "version",
            "version[gt]",
            "created_at",
            "created_at[gte]",
            "updated_at[lte]",
            "name[gt]",
            "color[like]",
        ),
    },
    "/api/v1/users": {
        "text": ("search",),
        "typed": (
            "limit",
            "cursor",
            "sort_by",
            "sort_order",
            "include_total",
            "role",
            "is_active",
            "created_at[gte]",
            "created_at[lt]",
            "email",
        ),
    },
    "/api/v1/users/invitations": {
        "text": ("search", "email"),
        "typed": ("limit", "cursor", "sort_by", "sort_order", "include_total", "role"),
    },
    "/api/v1/api-keys": {
        "text": ("search",),
        "typed": ("limit", "cursor", "sort_by", "sort_order", "role", "created_by"),
    },
}


class TestInjection:
    async def _seed(self, client: httpx.AsyncClient) -> tuple[Account, Account, dict[str, Any]]:
        admin = await register(client)
        member = await add_member(client, admin, "member")
        tag = await create_tag(client, admin, name="alpha", description="the first")
        await create_tag(client, admin, name="beta")
        invited = await client.post(
            "/api/v1/users/invitations", json={"email": unique_email("inj")}, headers=admin.headers
        )
        assert invited.status_code == 201
        return admin, member, tag

    async def test_sql_in_every_list_query_parameter(self, client):
        admin, _, _ = await self._seed(client)
        for path, spec in QUERY_SPECS.items():
            for payload in SQL_PAYLOADS:
                for param in spec["text"]:
                    response = await timed(
                        client, "GET", path, params={param: payload}, headers=admin.headers
                    )
                    body = assert_handled(response, payload, allowed=(200, 422))
                    if len(payload) <= 200:
                        assert response.status_code == 200, (path, param, response.text[:300])
                    if response.status_code == 200:
                        assert body["data"] == [], (path, param, payload)
                for param in spec["typed"]:
                    response = await timed(
                        client, "GET", path, params={param: payload}, headers=admin.headers
                    )
                    assert_error(response, 422, None, payload)
                for key in (payload, f"name[{payload}]"):
                    response = await timed(
                        client, "GET", path, params={key: "1"}, headers=admin.headers
                    )
                    assert_error(response, 422, "invalid_filter", payload, key)
        await assert_still_works(client, admin)

    async def test_sql_in_query_parameters_of_record_routes(self, client):
        admin, _, tag = await self._seed(client)
        path = f"/api/v1/tags/{tag['id']}"
        for payload in SQL_PAYLOADS:
            erase = await timed(
                client, "DELETE", path, params={"erase": payload}, headers=admin.headers
            )
            assert_error(erase, 422, "validation_error", payload)
            ignored = await timed(client, "GET", path, params={"q": payload}, headers=admin.headers)
            assert ignored.status_code == 200 and ignored.json()["data"]["id"] == tag["id"]
        got = await client.get(path, headers=admin.headers)
        assert got.json()["data"]["version"] == 1 and got.json()["data"]["deleted_at"] is None
        await assert_still_works(client, admin)

    async def test_sql_in_every_path_segment(self, client):
        admin, _, _ = await self._seed(client)
        for payload in SQL_PAYLOADS:
            segment = quote(payload, safe="")
            for method, template in ID_ROUTES:
                body = {} if method in ("PATCH", "POST") else None
                response = await timed(
                    client, method, template.format(segment), json=body, headers=admin.headers
                )
                assert_error(response, 422, "validation_error", payload)
            for path in (f"/api/v1/{segment}", f"/api/v1/tags/{uuid.uuid4()}/{segment}"):
                response = await timed(client, "GET", path, headers=admin.headers)
                assert_error(response, 404, None, payload)
        await assert_still_works(client, admin)

    async def test_sql_in_headers(self, client):
        admin, member, tag = await self._seed(client)
        tag_path = f"/api/v1/tags/{tag['id']}"
        for i, payload in enumerate(SQL_PAYLOADS):
            raw = payload.encode()
            # X-Request-ID: never echoed unless it is a safe token.
            listed = await timed(
                client, "GET", "/api/v1/tags", headers={**admin.headers, "X-Request-ID": raw}
            )
            assert_handled(listed, payload, allowed=(200,))
            echoed = listed.headers["x-request-id"]
            assert echoed != payload and REQUEST_ID.match(echoed)
            assert listed.json()["meta"]["request_id"] == echoed
            # Idempotency-Key: a bound value; a replay with the same key finds the same record.
            key_headers = {**admin.headers, "Idempotency-Key": raw}
            body = {"name": f"idem-{i}"}
            first = await timed(client, "POST", "/api/v1/tags", json=body, headers=key_headers)
            assert_handled(first, payload, allowed=(201, 400))
            if first.status_code == 201:
                replay = await timed(client, "POST", "/api/v1/tags", json=body, headers=key_headers)
                assert replay.status_code == 201, replay.text
                assert replay.headers.get("idempotent-replayed") == "true"
                assert replay.json()["data"]["id"] == first.json()["data"]["id"]
            else:
                assert first.json()["error"]["code"] == "invalid_idempotency_key"
            # If-Match: only an ETag this API issued.
            for method, path, json_body in (
                ("PATCH", tag_path, {"description": "x"}),
                ("DELETE", tag_path, None),
                ("PATCH", f"/api/v1/users/{member.user['id']}", {"role": "viewer"}),
            ):
                response = await timed(
                    client, method, path, json=json_body, headers={**admin.headers, "If-Match": raw}
                )
                assert_error(response, 400, "invalid_if_match", payload)
            # Authorization: as a token or as an API key, never a way in.
            for credential in (payload, "rpk_" + payload):
                response = await timed(
                    client,
                    "GET",
                    "/api/v1/tags",
                    headers={"Authorization": b"Bearer " + credential.encode()},
                )
                assert_error(response, 401, None, payload)
            # Content-Type: not JSON, so 415.
            response = await timed(
                client,
                "POST",
                "/api/v1/tags",
                content=b'{"name": "ct"}',
                headers={**admin.headers, "Content-Type": raw},
            )
            assert_error(response, 415, "unsupported_media_type", payload)
        got = await client.get(tag_path, headers=admin.headers)
        assert got.json()["data"]["version"] == 1
        role = await client.get(f"/api/v1/users/{member.user['id']}", headers=admin.headers)
        assert role.json()["data"]["role"] == "member"
        await assert_still_works(client, admin)

    async def test_sql_in_tag_json_fields_is_stored_literally(self, client):
        admin, _, tag = await self._seed(client)
        for payload in SQL_PAYLOADS:
            created = await timed(
                client, "POST", "/api/v1/tags", json={"name": payload}, headers=admin.headers
            )
            assert_handled(created, payload, allowed=(201, 422))
            if len(payload) <= 100:
                assert created.status_code == 201, created.text
                row = created.json()["data"]
                got = await client.get(f"/api/v1/tags/{row['id']}", headers=admin.headers)
                assert got.json()["data"]["name"] == payload
                found = await timed(
                    client,
                    "GET",
                    "/api/v1/tags",
                    params={"search": payload},
                    headers=admin.headers,
                )
                if payload.isascii():  # non-ASCII search on SQLite: see test_non_ascii_...
                    assert [r["id"] for r in found.json()["data"]] == [row["id"]], payload
                else:
                    assert_handled(found, payload, allowed=(200,))
                exact = await timed(
                    client, "GET", "/api/v1/tags", params={"name": payload}, headers=admin.headers
                )
                if "," not in payload:
                    assert [r["id"] for r in exact.json()["data"]] == [row["id"]], payload
            described = await timed(
                client,
                "PATCH",
                f"/api/v1/tags/{tag['id']}",
                json={"description": payload},
                headers=admin.headers,
            )
            assert_handled(described, payload, allowed=(200,) if len(payload) <= 1000 else (422,))
            if described.status_code == 200:
                assert described.json()["data"]["description"] == payload
            for body in ({"name": "c", "color": payload}, {"name": payload[:100], "bogus": 1}):
                refused = await timed(
                    client, "POST", "/api/v1/tags", json=body, headers=admin.headers
                )
                assert_error(refused, 422, "validation_error", payload)
            colored = await timed(
                client,
                "PATCH",
                f"/api/v1/tags/{tag['id']}",
                json={"color": payload},
                headers=admin.headers,
            )
            assert_error(colored, 422, "validation_error", payload)
        total = await client.get("/api/v1/tags?include_total=true", headers=admin.headers)
        short = sum(1 for p in SQL_PAYLOADS if len(p) <= 100)
        assert total.json()["meta"]["total"] == 2 + short
        await assert_still_works(client, admin)

    async def test_sql_in_user_json_fields(self, client):
        admin, member, _ = await self._seed(client)
        member_path = f"/api/v1/users/{member.user['id']}"
        for payload in SQL_PAYLOADS:
            for body in ({"email": payload}, {"email": unique_email(), "role": payload}):
                response = await timed(
                    client, "POST", "/api/v1/users/invitations", json=body, headers=admin.headers
                )
                assert_error(response, 422, "validation_error", payload)
            for body in ({"role": payload}, {"is_active": payload}):
                response = await timed(
                    client, "PATCH", member_path, json=body, headers=admin.headers
                )
                assert_error(response, 422, "validation_error", payload)
        got = await client.get(member_path, headers=admin.headers)
        assert got.json()["data"]["role"] == "member" and got.json()["data"]["is_active"] is True
        await assert_still_works(client, admin)

    async def test_sql_in_auth_json_and_form_fields(self, client):
        admin, _, _ = await self._seed(client)
        for payload in SQL_PAYLOADS:
            for body in (
                {"username_or_email": payload, "password": PASSWORD},
                {"username_or_email": admin.email, "password": payload},
            ):
                response = await timed(client, "POST", "/api/v1/auth/login", json=body)
                assert_error(response, 401 if len(payload) <= 256 else 422, None, payload)
            for form in (
                {"username": payload, "password": PASSWORD},
                {"username": admin.email, "password": payload},
            ):
                if len(payload) > 256:  # over-long form fields: see TestOutOfRangeValues
                    continue
                response = await timed(client, "POST", "/api/v1/auth/token", data=form)
                assert_handled(response, payload, allowed=(401,))
            refreshed = await timed(
                client, "POST", "/api/v1/auth/refresh", json={"refresh_token": payload}
            )
            assert_handled(refreshed, payload, allowed=(401, 422))
            base = {"email": unique_email("inj"), "password": PASSWORD, "full_name": "Inj"}
            for field, allowed in (
                ("email", (422,)),
                ("username", (422,)),
                ("full_name", (201, 422)),
                ("workspace_name", (201, 422)),
                ("invitation_token", (404, 422)),
            ):
                body = {**base, "email": unique_email("inj"), field: payload}
                response = await timed(client, "POST", "/api/v1/auth/register", json=body)
                assert_handled(response, payload, allowed=allowed)
                if response.status_code == 201:
                    data = response.json()["data"]
                    if field == "full_name":
                        assert data["user"]["full_name"] == payload
                    else:
                        assert data["workspace"]["name"] == payload
        await assert_still_works(client, admin)


class TestNulBytes:
    """NUL is valid in JSON strings and query strings; PostgreSQL text cannot hold it."""

    async def test_nul_in_search_matches_nothing(self, client):
        admin = await register(client)
        await create_tag(client, admin, name="alpha")
        for payload in NUL_PAYLOADS:
            for path in ("/api/v1/tags", "/api/v1/users", "/api/v1/users/invitations"):
                response = await timed(
                    client, "GET", path, params={"search": payload}, headers=admin.headers
                )
                body = assert_handled(response, payload, allowed=(200, 422))
                if response.status_code == 200:
                    assert body["data"] == [], (path, payload)

    async def test_nul_in_filters_and_cursors(self, client, backend, request):
        admin = await register(client)
        await create_tag(client, admin, name="alpha")
        for payload in NUL_PAYLOADS:
            for path, param in (
                ("/api/v1/tags", "name"),
                ("/api/v1/tags", "color"),
                ("/api/v1/users/invitations", "email"),
            ):
                response = await timed(
                    client, "GET", path, params={param: payload}, headers=admin.headers
                )
                body = assert_handled(response, payload, allowed=(200, 422))
                if response.status_code == 200:
                    assert body["data"] == [], (path, param, payload)
            cursor = make_cursor("name", "asc", payload, str(uuid.uuid4()))
            response = await timed(
                client,
                "GET",
                "/api/v1/tags",
                params={"sort_by": "name", "sort_order": "asc", "cursor": cursor},
                headers=admin.headers,
            )
            assert_handled(response, payload, allowed=(200, 422))
        await assert_still_works(client, admin)

    async def test_nul_in_json_fields(self, client, backend, request):
        admin = await register(client)
        tag = await create_tag(client, admin)
        for i, payload in enumerate(NUL_PAYLOADS):
            cases = [
                ("POST", "/api/v1/tags", {"name": f"n{i}{payload}"}, admin.headers, (201, 422)),
                (
                    "PATCH",
                    f"/api/v1/tags/{tag['id']}",
                    {"description": payload},
                    admin.headers,
                    (200, 422),
                ),
                (
                    "POST",
                    "/api/v1/auth/login",
                    {"username_or_email": payload, "password": "x"},
                    {},
                    (401, 422),
                ),
                (
                    "POST",
                    "/api/v1/auth/register",
                    {"email": unique_email(), "password": PASSWORD, "full_name": payload},
                    {},
                    (201, 422),
                ),
                (
                    "POST",
                    "/api/v1/auth/register",
                    {
                        "email": unique_email(),
                        "password": PASSWORD,
                        "full_name": "x",
                        "workspace_name": payload,
                    },
                    {},
                    (201, 422),
                ),
                ("POST", "/api/v1/api-keys", {"name": f"k{payload}"}, admin.headers, (201, 422)),
                (
                    "POST",
                    "/api/v1/users/invitations",
                    {"email": f"a{payload}@example.com"},
                    admin.headers,
                    (422,),
                ),
            ]
            for method, path, body, headers, allowed in cases:
                response = await timed(client, method, path, json=body, headers=headers)
                assert_handled(response, payload, allowed=allowed)
        await assert_still_works(client, admin)


class TestOutOfRangeValues:
    async def test_token_form_with_over_long_fields_is_4xx(self, client):
        admin = await register(client)
        for form in (
            {"username": "u" * 321, "password": PASSWORD},
            {"username": admin.email, "password": "p" * 257},
        ):
            response = await timed(client, "POST", "/api/v1/auth/token", data=form)
            assert_handled(response, allowed=(401, 422))

    async def test_api_key_expiry_beyond_the_calendar_is_422(self, client):
        admin = await register(client)
        response = await timed(
            client,
            "POST",
            "/api/v1/api-keys",
            json={"name": "far", "expires_at": "9999-12-31T23:59:59-10:00"},
            headers=admin.headers,
        )
        assert_error(response, 422)


# -- search, filters, pagination ----------------------------------------------------------------
class TestSearchIsLiteral:
    async def test_percent_and_underscore_match_themselves(self, client):
        admin = await register(client)
        for name in ("100% real", "1000 real", "a_b", "axb"):
            await create_tag(client, admin, name=name)
        assert names(await list_tags(client, admin, search="%")) == ["100% real"]
        assert names(await list_tags(client, admin, search="_")) == ["a_b"]
        assert names(await list_tags(client, admin, search="0%")) == ["100% real"]
        assert names(await list_tags(client, admin, search="a_")) == ["a_b"]
        assert names(await list_tags(client, admin, search="%%")) == []
        assert names(await list_tags(client, admin, search="real")) == ["100% real", "1000 real"]

    async def test_search_is_case_insensitive(self, client):
        admin = await register(client)
        for name in ("Alpha Real", "beta"):
            await create_tag(client, admin, name=name)
        assert names(await list_tags(client, admin, search="REAL")) == ["Alpha Real"]
        assert names(await list_tags(client, admin, search="alpha")) == ["Alpha Real"]

    async def test_non_ascii_text_is_found_case_insensitively(self, client, backend, request):
        admin = await register(client)
        await create_tag(client, admin, name="Ωμέγα ÉCOLE")
        await create_tag(client, admin, name="plain")
        for term in ("Ωμέγα", "ωμέγα", "ÉCOLE", "école", "É"):
            assert names(await list_tags(client, admin, search=term)) == ["Ωμέγα ÉCOLE"], term

    async def test_backslash_is_literal_too(self, client):
        admin = await register(client)
        for name in ("c\\d", "cd", "c%d"):
            await create_tag(client, admin, name=name)
        assert names(await list_tags(client, admin, search="\\")) == ["c\\d"]
        assert names(await list_tags(client, admin, search="c\\%d")) == []
        assert names(await list_tags(client, admin, search="c%")) == ["c%d"]

    async def test_wildcards_match_nothing_in_the_users_list(self, client):
        admin = await register(client)  # emails and names here hold no % and no _
        for term in ("%", "_", "%_%"):
            response = await client.get(
                "/api/v1/users", params={"search": term}, headers=admin.headers
            )
            assert response.status_code == 200 and response.json()["data"] == [], term


class TestFilters:
    async def test_any_of(self, client):
        admin = await register(client)
        for name in ("a", "b", "c"):
            await create_tag(client, admin, name=name)
        assert names(await list_tags(client, admin, name="a,b")) == ["a", "b"]
        assert names(await list_tags(client, admin, name="a")) == ["a"]
        assert names(await list_tags(client, admin, name="a, c ,zzz")) == ["a", "c"]
        assert names(await list_tags(client, admin, name="zzz")) == []

    async def test_created_at_ranges(self, client):
        admin = await register(client)
        first = await create_tag(client, admin, name="first")
        second = await create_tag(client, admin, name="second")
        third = await create_tag(client, admin, name="third")
        assert first["created_at"] < second["created_at"] < third["created_at"]
        at = second["created_at"]
        assert names(await list_tags(client, admin, **{"created_at[gte]": at})) == [
            "second",
            "third",
        ]
        assert names(await list_tags(client, admin, **{"created_at[gt]": at})) == ["third"]
        assert names(await list_tags(client, admin, **{"created_at[lt]": at})) == ["first"]
        assert names(await list_tags(client, admin, **{"created_at[lte]": at})) == [
            "first",
            "second",
        ]
        between = await list_tags(client, admin, **{"created_at[gte]": at, "created_at[lte]": at})
        assert names(between) == ["second"]
        day = datetime.fromisoformat(first["created_at"].replace("Z", "+00:00")).date()
        assert len(await list_tags(client, admin, **{"created_at[gte]": day.isoformat()})) == 3
        future = datetime(2999, 1, 1, tzinfo=UTC).isoformat()
        assert await list_tags(client, admin, **{"created_at[gte]": future}) == []

    async def test_version_ranges(self, client):
        admin = await register(client)
        once = await create_tag(client, admin, name="once")
        twice = await create_tag(client, admin, name="twice")
        await create_tag(client, admin, name="never")
        for tag, times in ((once, 1), (twice, 2)):
            for n in range(times):
                response = await client.patch(
                    f"/api/v1/tags/{tag['id']}",
                    json={"description": f"d{n}"},
                    headers=admin.headers,
                )
                assert response.status_code == 200
        assert names(await list_tags(client, admin, **{"version[gt]": "1"})) == ["once", "twice"]
        assert names(await list_tags(client, admin, **{"version[gte]": "3"})) == ["twice"]
        assert names(await list_tags(client, admin, **{"version[lt]": "2"})) == ["never"]
        assert names(await list_tags(client, admin, version="2")) == ["once"]
        assert names(await list_tags(client, admin, version="1,3")) == ["never", "twice"]
        both = await list_tags(client, admin, **{"version[gt]": "1", "name": "twice"})
        assert names(both) == ["twice"]

    async def test_unsupported_operators_are_422(self, client):
        admin = await register(client)
        cases = [
            ("/api/v1/tags", "name[gt]"),
            ("/api/v1/tags", "name[in]"),
            ("/api/v1/tags", "color[lte]"),
            ("/api/v1/tags", "version[like]"),
            ("/api/v1/tags", "version[ne]"),
            ("/api/v1/tags", "created_at[between]"),
            ("/api/v1/users", "role[gt]"),
            ("/api/v1/users", "is_active[gte]"),
            ("/api/v1/users", "created_at"),  # users allow ranges on created_at, not equality
        ]
        for path, key in cases:
            response = await client.get(path, params={key: "x"}, headers=admin.headers)
            body = assert_error(response, 422, "invalid_filter")
            assert body["error"]["details"][0]["field"] == f"query.{key}"


class TestPagination:
    async def _seed(self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> Account:
        """25 tags, all listed with include_deleted=true: 20 live ones and 5 soft-deleted
        namesakes (so sorting by name has ties), 10 of them created at one frozen instant (so
        sorting by created_at has ties); the id breaks every tie. The instant is frozen by
        pinning the clock the repository stamps rows with, nothing else."""
        admin = await register(client)
        frozen = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
        real_now = repository.utcnow
        for name in ("tag03", "tag03", "tag07", "tag07", "tag11"):
            tag = await create_tag(client, admin, name=name)
            deleted = await client.delete(f"/api/v1/tags/{tag['id']}", headers=admin.headers)
            assert deleted.status_code == 200
        for i in range(20):
            if i == 5:
                monkeypatch.setattr(repository, "utcnow", lambda: frozen)
            if i == 15:
                monkeypatch.setattr(repository, "utcnow", real_now)
            await create_tag(client, admin, name=f"tag{i:02d}")
        monkeypatch.setattr(repository, "utcnow", real_now)
        return admin

    async def _pages(
        self,
        client: httpx.AsyncClient,
        admin: Account,
        params: dict[str, Any],
        between_pages: Any = None,
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        for page_number in range(50):
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = await client.get("/api/v1/tags", params=query, headers=admin.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            page, meta = body["data"], body["meta"]
            assert len(page) <= params["limit"] and meta["limit"] == params["limit"]
            rows.extend(page)
            if not meta["has_more"]:
                assert meta["next_cursor"] is None
                return rows
            assert meta["next_cursor"] and len(page) == params["limit"]
            cursor = meta["next_cursor"]
            if between_pages is not None:
                await between_pages(page_number)
        raise AssertionError("pagination did not end")

    @staticmethod
    def _key(row: dict[str, Any], sort_by: str) -> tuple[Any, str]:
        if sort_by == "name":
            return row["name"].lower(), row["id"]
        return datetime.fromisoformat(row[sort_by].replace("Z", "+00:00")), row["id"]

    @pytest.mark.parametrize("sort_by", ["name", "created_at"])
    @pytest.mark.parametrize("sort_order", ["asc", "desc"])
    async def test_every_row_exactly_once_in_order(self, client, monkeypatch, sort_by, sort_order):
        admin = await self._seed(client, monkeypatch)
        everything = await list_tags(client, admin, limit=200, include_deleted="true")
        assert len(everything) == 25
        params = {
            "limit": 7,
            "sort_by": sort_by,
            "sort_order": sort_order,
            "include_deleted": "true",
        }
        rows = await self._pages(client, admin, params)
        ids = [row["id"] for row in rows]
        assert len(ids) == len(set(ids)) == 25
        assert set(ids) == {row["id"] for row in everything}
        keys = [self._key(row, sort_by) for row in rows]
        assert keys == sorted(keys, reverse=sort_order == "desc")
        if sort_by == "name":
            assert sum(1 for row in rows if row["name"] == "tag03") == 3  # the ties are there
        else:
            assert len({row["created_at"] for row in rows}) <= 16

    @pytest.mark.parametrize("sort_by", ["name", "created_at"])
    @pytest.mark.parametrize("sort_order", ["asc", "desc"])
    async def test_inserts_between_pages_skip_and_repeat_nothing(
        self, client, monkeypatch, sort_by, sort_order
    ):
        admin = await self._seed(client, monkeypatch)
        original = {
            row["id"] for row in await list_tags(client, admin, limit=200, include_deleted="true")
        }

        async def insert(page_number: int) -> None:
            # Names that fall before, between and after the rows already seen.
            for suffix in ("a", "m", "z"):
                await create_tag(client, admin, name=f"tag{page_number * 4:02d}{suffix}")
            await create_tag(client, admin, name=f"aaa{page_number}")

        params = {
            "limit": 7,
            "sort_by": sort_by,
            "sort_order": sort_order,
            "include_deleted": "true",
        }
        rows = await self._pages(client, admin, params, between_pages=insert)
        ids = [row["id"] for row in rows]
        assert len(ids) == len(set(ids)), "a row came twice"
        assert original <= set(ids), "an original row was skipped"
        keys = [self._key(row, sort_by) for row in rows]
        assert keys == sorted(keys, reverse=sort_order == "desc")

    async def test_total_and_last_page_meta(self, client, monkeypatch):
        admin = await self._seed(client, monkeypatch)
        counted = await client.get(
            "/api/v1/tags", params={"limit": 5, "include_total": "true"}, headers=admin.headers
        )
        meta = counted.json()["meta"]
        assert meta["total"] == 20 and meta["has_more"] is True and meta["next_cursor"]
        with_deleted = await client.get(
            "/api/v1/tags",
            params={"limit": 5, "include_total": "true", "include_deleted": "true"},
            headers=admin.headers,
        )
        assert with_deleted.json()["meta"]["total"] == 25
        uncounted = await client.get("/api/v1/tags", params={"limit": 5}, headers=admin.headers)
        assert "total" not in uncounted.json()["meta"] or uncounted.json()["meta"]["total"] is None
        # 20 live rows in pages of 5: the fourth page is the last, with no empty fifth page.
        rows = await self._pages(client, admin, {"limit": 5})
        assert len(rows) == 20
        last = await client.get(
            "/api/v1/tags", params={"limit": 200, "include_total": "true"}, headers=admin.headers
        )
        meta = last.json()["meta"]
        assert meta["has_more"] is False and meta["next_cursor"] is None and meta["total"] == 20
        filtered = await client.get(
            "/api/v1/tags",
            params={"name": "tag01,tag02", "include_total": "true", "limit": 1},
            headers=admin.headers,
        )
        assert filtered.json()["meta"]["total"] == 2 and len(filtered.json()["data"]) == 1
