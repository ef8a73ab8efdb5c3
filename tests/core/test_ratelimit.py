"""Rate limits: headers on every metered response, 429 with Retry-After, per-IP auth limits, and
limits shared across app instances through Redis."""

from __future__ import annotations

import time

import pytest

from rapport.main import create_app
from tests.conftest import base_settings, client_for, redis_prefix
from tests.factories import PASSWORD, register


def limited_app(settings, database, **overrides):
    return create_app(base_settings(database_url=settings.database_url, **overrides), db=database)


class TestHeaders:
    async def test_every_metered_response_carries_the_three_headers(self, client):
        admin = await register(client)
        for response in [
            await client.get("/api/v1/tags", headers=admin.headers),
            await client.get("/api/v1/tags"),  # 401 is metered too
            await client.get("/api/v1/nowhere", headers=admin.headers),
        ]:
            assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
                response.headers
            )
            assert int(response.headers["x-ratelimit-reset"]) >= int(time.time())

    async def test_remaining_counts_down_per_user(self, client):
        admin = await register(client)
        first = await client.get("/api/v1/tags", headers=admin.headers)
        second = await client.get("/api/v1/tags", headers=admin.headers)
        assert (
            int(second.headers["x-ratelimit-remaining"])
            == int(first.headers["x-ratelimit-remaining"]) - 1
        )


class TestLimits:
    async def test_user_limit_answers_429_with_retry_after(self, settings, database):
        app = limited_app(settings, database, rate_limit_default="5/minute")
        async with client_for(app) as c:
            admin = await register(c)
            statuses = [
                (await c.get("/api/v1/tags", headers=admin.headers)).status_code for _ in range(6)
            ]
            assert statuses == [200] * 5 + [429]
            last = await c.get("/api/v1/tags", headers=admin.headers)
            assert last.status_code == 429
            assert last.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(last.headers["retry-after"]) <= 60
            assert last.headers["x-ratelimit-remaining"] == "0"
            other = await register(c)  # another user has their own budget
            assert (await c.get("/api/v1/tags", headers=other.headers)).status_code == 200

    async def test_auth_routes_are_limited_per_ip(self, settings, database):
        app = limited_app(settings, database, rate_limit_auth="3/minute")
        async with client_for(app) as c:
            body = {"username_or_email": "nobody@example.com", "password": "wrong-password"}
            statuses = [
                (await c.post("/api/v1/auth/login", json=body)).status_code for _ in range(4)
            ]
            assert statuses == [401, 401, 401, 429]

    async def test_health_is_not_metered(self, settings, database):
        app = limited_app(settings, database, rate_limit_default="1/minute")
        async with client_for(app) as c:
            statuses = [(await c.get("/health")).status_code for _ in range(5)]
            assert statuses == [200] * 5

    async def test_disabled_limits_send_no_headers(self, settings, database):
        app = limited_app(settings, database, rate_limit_enabled=False)
        async with client_for(app) as c:
            response = await c.get("/api/v1/tags")
            assert response.status_code == 401 and "x-ratelimit-limit" not in response.headers


class TestRedis:
    async def test_limits_are_shared_between_app_instances(self, settings, database, redis_url):
        if not redis_url:
            pytest.skip("RAPPORT_TEST_REDIS_URL not set (CI sets it)")
        prefix = redis_prefix() + "shared:"
        apps = [
            limited_app(
                settings,
                database,
                redis_url=redis_url,
                redis_key_prefix=prefix,
                rate_limit_default="4/minute",
            )
            for _ in range(2)
        ]
        async with client_for(apps[0]) as a, client_for(apps[1]) as b:
            admin = await register(a)
            statuses = []
            for i in range(5):
                c = a if i % 2 == 0 else b
                statuses.append((await c.get("/api/v1/tags", headers=admin.headers)).status_code)
            assert statuses == [200, 200, 200, 200, 429]

    async def test_unreachable_redis_falls_back_to_memory(self, settings, database):
        app = limited_app(
            settings,
            database,
            redis_url="redis://127.0.0.1:1/0",
            rate_limit_default="2/minute",
            rate_limit_redis_fallback="memory",
        )
        async with client_for(app) as c:
            admin = await register(c)
            statuses = [
                (await c.get("/api/v1/tags", headers=admin.headers)).status_code for _ in range(3)
            ]
            assert statuses == [200, 200, 429]

    async def test_unreachable_redis_in_open_mode_keeps_serving(self, settings, database):
        app = limited_app(
            settings,
            database,
            redis_url="redis://127.0.0.1:1/0",
            rate_limit_default="1/minute",
            rate_limit_redis_fallback="open",
        )
        async with client_for(app) as c:
            admin = await register(c)
            statuses = [
                (await c.get("/api/v1/tags", headers=admin.headers)).status_code for _ in range(3)
            ]
            assert statuses == [200, 200, 200]


class TestLoginPassword:
    async def test_right_password_still_logs_in_under_the_limit(self, client):
        admin = await register(client)
        response = await client.post(
            "/api/v1/auth/login", json={"username_or_email": admin.email, "password": PASSWORD}
        )
        assert response.status_code == 200
