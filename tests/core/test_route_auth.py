"""Every route is private unless API.md names it public, and a private route refuses every kind of
bad credential with a 401 envelope before it looks at parameters or bodies.

Routes are enumerated from the app itself (`app.routes`, flattened through FastAPI's included
routers), so a route added later is covered without touching this file; a route made public later
fails `TestPublicRoutes` until it is listed in `PUBLIC_REQUIRED` below.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from starlette.routing import BaseRoute

from rapport.core.routing import ContractRoute
from tests.factories import PASSWORD, Account, register, unique_email

# What API.md allows without credentials: /health, /ready, /metrics, the docs, and
# POST /auth/register|login|token|refresh. Nothing else may be added without listing it here.
PUBLIC_REQUIRED: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/metrics"),
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/api/openapi.json"),
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/token"),
        ("POST", "/api/v1/auth/refresh"),
    }
)
# FastAPI serves Swagger's OAuth2 redirect page beside /docs; it is part of the docs if present.
PUBLIC_OPTIONAL: frozenset[tuple[str, str]] = frozenset({("GET", "/docs/oauth2-redirect")})

PATH_PARAM = re.compile(r"\{[^}]+\}")
BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    route: BaseRoute

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def is_api_route(self) -> bool:
        return isinstance(self.route, APIRoute)

    @property
    def is_public(self) -> bool:
        """Public iff declared `openapi_extra={"security": []}`; non-API routes (the docs pages
        FastAPI adds) never authenticate, so they count as public too."""
        if not isinstance(self.route, APIRoute):
            return True
        return (self.route.openapi_extra or {}).get("security") == []

    def url(self) -> str:
        return PATH_PARAM.sub(lambda _: str(uuid.uuid4()), self.path)


def endpoints(app: Any) -> list[Endpoint]:
    """Every (method, path) the app serves, from `app.routes` with included routers expanded."""
    found: list[Endpoint] = []
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIWebSocketRoute):
            continue  # no HTTP methods; tests/realtime proves each refuses a bad handshake
        path = context.path
        methods = context.methods
        assert path is not None and methods, f"a route without a path or methods: {context!r}"
        for method in sorted(methods):
            if method == "HEAD":  # Starlette adds HEAD to every GET route: same handler
                continue
            found.append(Endpoint(method, path, context.original_route))
    assert len({e.key for e in found}) == len(found), "two routes answer the same method and path"
    return found


def private_endpoints(app: Any) -> list[Endpoint]:
    return [e for e in endpoints(app) if not e.is_public]


def assert_401_envelope(response: httpx.Response, what: str) -> None:
    assert response.status_code == 401, f"{what}: {response.status_code} {response.text[:300]}"
    body = response.json()
    assert body["success"] is False, what
    assert body["data"] is None, what
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], what
    assert isinstance(body["meta"]["request_id"], str) and body["meta"]["request_id"], what


# -- bad credentials ----------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(account: Account) -> dict[str, Any]:
    """The real claims of the account's access token (read without checking the signature)."""
    return jwt.decode(account.token, options={"verify_signature": False})


def _sign(claims: dict[str, Any], secret: str, kid: str, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm, headers={"kid": kid})


def _keyring(app: Any) -> Any:
    return app.state.security.keyring


def _current_secret(app: Any) -> str:
    keyring = _keyring(app)
    return keyring._keys[keyring.current_kid]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tampered_payload(account: Account, _: Any) -> dict[str, str]:
    header, payload, signature = account.token.split(".")
    middle = len(payload) // 2
    swapped = "B" if payload[middle] == "A" else "A"
    tampered = payload[:middle] + swapped + payload[middle + 1 :]
    assert tampered != payload
    return _bearer(f"{header}.{tampered}.{signature}")


def _forged_claims(account: Account, _: Any) -> dict[str, str]:
    """Readable, well-formed claims for another user, carrying the original signature."""
    header, _payload, signature = account.token.split(".")
    claims = {**_claims(account), "sub": str(uuid.uuid4()), "role": "admin"}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return _bearer(f"{header}.{payload}.{signature}")


def _expired(account: Account, app: Any) -> dict[str, str]:
    now = int(time.time())
    claims = {**_claims(account), "iat": now - 7200, "exp": now - 3600}
    return _bearer(_sign(claims, _current_secret(app), _keyring(app).current_kid))


def _wrong_secret(account: Account, app: Any) -> dict[str, str]:
    return _bearer(_sign(_claims(account), "not-the-secret-" + "y" * 40, _keyring(app).current_kid))


def _unknown_kid(account: Account, app: Any) -> dict[str, str]:
    return _bearer(_sign(_claims(account), _current_secret(app), "0123456789abcdef"))


def _other_algorithm(account: Account, app: Any) -> dict[str, str]:
    """Right secret and kid, but HS512: only HS256 is accepted."""
    kid = _keyring(app).current_kid
    with warnings.catch_warnings():  # the test secret is shorter than HS512 recommends
        warnings.simplefilter("ignore")
        return _bearer(_sign(_claims(account), _current_secret(app), kid, "HS512"))


def _missing_claims(account: Account, app: Any) -> dict[str, str]:
    claims = {k: v for k, v in _claims(account).items() if k not in ("sid", "wid")}
    return _bearer(_sign(claims, _current_secret(app), _keyring(app).current_kid))


def _alg_none(account: Account, app: Any) -> dict[str, str]:
    header = {"alg": "none", "typ": "JWT", "kid": _keyring(app).current_kid}
    token = ".".join(
        [
            _b64(json.dumps(header).encode()),
            _b64(json.dumps(_claims(account)).encode()),
            "",
        ]
    )
    return _bearer(token)


def _garbage(_: Account, __: Any) -> dict[str, str]:
    return _bearer("this-is-not-a-token")


def _unknown_api_key(_: Account, __: Any) -> dict[str, str]:
    return _bearer("rpk_" + uuid.uuid4().hex + uuid.uuid4().hex)


def _wrong_scheme(account: Account, _: Any) -> dict[str, str]:
    """A valid token under another scheme is no bearer credential."""
    return {"Authorization": f"Basic {account.token}"}


def _missing(_: Account, __: Any) -> dict[str, str]:
    return {}


CREDENTIALS: dict[str, Callable[[Account, Any], dict[str, str]]] = {
    "no_authorization_header": _missing,
    "tampered_payload": _tampered_payload,
    "forged_claims_with_original_signature": _forged_claims,
    "expired_token": _expired,
    "wrong_secret": _wrong_secret,
    "unknown_kid": _unknown_kid,
    "hs512_instead_of_hs256": _other_algorithm,
    "missing_required_claims": _missing_claims,
    "alg_none": _alg_none,
    "garbage_bearer": _garbage,
    "unknown_api_key": _unknown_api_key,
    "valid_token_wrong_scheme": _wrong_scheme,
}


async def _request_all_private(
    client: httpx.AsyncClient, app: Any, headers: dict[str, str]
) -> list[str]:
    """Call every private route with `headers`; return a description of each that is not a 401."""
    failures: list[str] = []
    for endpoint in private_endpoints(app):
        url = endpoint.url()
        body = {} if endpoint.method in BODY_METHODS else None
        response = await client.request(endpoint.method, url, json=body, headers=headers)
        try:
            assert_401_envelope(response, f"{endpoint.method} {url}")
        except (AssertionError, ValueError, KeyError, TypeError) as exc:
            failures.append(f"{endpoint.method} {endpoint.path}: {exc}")
    return failures


class TestPrivateRoutesRefuseBadCredentials:
    async def test_there_are_private_routes_to_check(self, app):
        private = {e.key for e in private_endpoints(app)}
        # A sanity floor, so an enumeration that silently finds nothing cannot pass the tests below.
        assert ("GET", "/api/v1/tags") in private
        assert ("PATCH", "/api/v1/users/{user_id}") in private
        assert ("POST", "/api/v1/auth/logout") in private
        assert len(private) >= 15

    @pytest.mark.parametrize("kind", list(CREDENTIALS))
    async def test_every_private_route_answers_401(self, client, app, kind):
        account = await register(client)
        headers = CREDENTIALS[kind](account, app)
        failures = await _request_all_private(client, app, headers)
        assert not failures, "\n".join(failures)

    async def test_every_private_route_answers_401_after_logout(self, client, app):
        account = await register(client)
        out = await client.post("/api/v1/auth/logout", headers=account.headers)
        assert out.status_code == 200, out.text
        failures = await _request_all_private(client, app, account.headers)
        assert not failures, "\n".join(failures)

    async def test_the_forged_tokens_are_otherwise_well_formed(self, client, app):
        """The expired token fails only on `exp`: the same claims with a future exp are accepted,
        so the 401s above come from the check under test and not from a malformed token."""
        account = await register(client)
        now = int(time.time())
        claims = {**_claims(account), "iat": now, "exp": now + 600}
        token = _sign(claims, _current_secret(app), _keyring(app).current_kid)
        me = await client.get("/api/v1/auth/me", headers=_bearer(token))
        assert me.status_code == 200, me.text
        assert me.json()["data"]["user"]["id"] == account.user["id"]


class TestPublicRoutes:
    def test_every_api_route_uses_the_contract_route(self, app):
        """ContractRoute is what authenticates before parsing: no APIRoute may bypass it."""
        plain = [
            e.key
            for e in endpoints(app)
            if e.is_api_route and not isinstance(e.route, ContractRoute)
        ]
        assert not plain, f"routes without ContractRoute: {plain}"

    def test_the_public_routes_are_exactly_those_api_md_allows(self, app):
        public = {e.key for e in endpoints(app) if e.is_public}
        unexpected = public - PUBLIC_REQUIRED - PUBLIC_OPTIONAL
        missing = PUBLIC_REQUIRED - public
        assert not unexpected, f"public routes API.md does not allow: {sorted(unexpected)}"
        assert not missing, f"routes API.md makes public are missing or private: {sorted(missing)}"

    async def test_openapi_marks_exactly_the_public_operations_open(self, client, app):
        spec = (await client.get("/api/openapi.json")).json()
        open_ops: set[tuple[str, str]] = set()
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                security = operation.get("security", spec.get("security"))
                if security == []:
                    open_ops.add((method.upper(), path))
                else:
                    assert security, f"{method.upper()} {path} documents no security requirement"
        declared = {e.key for e in endpoints(app) if e.is_api_route and e.is_public}
        assert open_ops == declared

    @pytest.mark.parametrize(
        "path", ["/health", "/ready", "/metrics", "/api/openapi.json", "/docs", "/redoc"]
    )
    async def test_operational_and_docs_routes_answer_without_credentials(self, client, path):
        response = await client.get(path)
        assert response.status_code == 200, response.text[:300]

    async def test_health_and_openapi_bodies(self, client):
        health = await client.get("/health")
        assert health.json()["success"] is True and health.json()["data"]["status"] == "ok"
        spec = await client.get("/api/openapi.json")
        assert spec.json()["openapi"].startswith("3.1")

    async def test_auth_routes_answer_without_credentials(self, client):
        email = unique_email("public")
        registered = await client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "full_name": "Public Path"},
        )
        assert registered.status_code == 201, registered.text
        login = await client.post(
            "/api/v1/auth/login", json={"username_or_email": email, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        token = await client.post(
            "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        assert token.json()["token_type"] == "bearer" and token.json()["access_token"]
        refreshed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": login.json()["data"]["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text


class TestRouteMatching:
    async def test_fixed_path_wins_over_id_path(self, client):
        admin = await register(client)
        email = unique_email("invitee")
        invited = await client.post(
            "/api/v1/users/invitations",
            json={"email": email, "role": "viewer"},
            headers=admin.headers,
        )
        assert invited.status_code == 201, invited.text
        listed = await client.get("/api/v1/users/invitations", headers=admin.headers)
        # Parsed as /users/{user_id}, "invitations" would be a 422 (not a UUID).
        assert listed.status_code == 200, listed.text
        data = listed.json()["data"]
        assert isinstance(data, list)
        assert [row["email"] for row in data] == [email]
        assert data[0]["id"] == invited.json()["data"]["id"]

    async def test_id_path_still_serves_ids(self, client):
        admin = await register(client)
        got = await client.get(f"/api/v1/users/{admin.user['id']}", headers=admin.headers)
        assert got.status_code == 200, got.text
        assert got.json()["data"]["email"] == admin.email

    async def test_fixed_path_delete_beside_id_path(self, client):
        admin = await register(client)
        invited = await client.post(
            "/api/v1/users/invitations",
            json={"email": unique_email("revoke")},
            headers=admin.headers,
        )
        invitation_id = invited.json()["data"]["id"]
        revoked = await client.delete(
            f"/api/v1/users/invitations/{invitation_id}", headers=admin.headers
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["data"] == {"id": invitation_id, "deleted": True}
