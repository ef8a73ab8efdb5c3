from __future__ import annotations

from rapport.core.config import Settings
from rapport.core.db import Database
from rapport.main import create_app
from tests.conftest import base_settings, client_for
from tests.factories import register


class TestProbes:
    async def test_health(self, client):
        response = await client.get("/health")
        assert response.status_code == 200 and response.json()["data"]["status"] == "ok"

    async def test_ready_when_database_answers(self, client):
        response = await client.get("/ready")
        assert response.status_code == 200 and response.json()["data"]["database"] == "ok"

    async def test_ready_is_503_when_database_is_unreachable(self):
        settings = base_settings(
            database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none", db_pool_timeout=1
        )
        app = create_app(settings, db=Database(settings))
        async with client_for(app) as c:
            response = await c.get("/ready")
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "database_unavailable"
            # and an authenticated request answers 503 too, never 500
            await_login = await c.post(
                "/api/v1/auth/login",
                json={"username_or_email": "a@example.com", "password": "x" * 10},
            )
            assert await_login.status_code == 503


class TestMetricsAndRequestId:
    async def test_metrics_count_requests_by_route_template(self, client):
        admin = await register(client)
        await client.get("/api/v1/tags", headers=admin.headers)
        text = (await client.get("/metrics")).text
        assert 'rapport_http_requests_total{method="GET",route="/api/v1/tags",status="200"}' in text
        assert "rapport_http_request_duration_seconds_bucket" in text

    async def test_made_up_methods_are_counted_under_one_label(self, client):
        for method in ("BREW", "WHEN", "X-ANY"):
            assert (await client.request(method, "/api/v1/tags")).status_code in (401, 405)
        text = (await client.get("/metrics")).text
        assert 'method="other"' in text
        assert 'method="BREW"' not in text and 'method="X-ANY"' not in text

    async def test_request_id_is_echoed_or_made(self, client):
        echoed = await client.get("/health", headers={"X-Request-ID": "abc-123"})
        assert echoed.headers["x-request-id"] == "abc-123"
        assert echoed.json()["meta"]["request_id"] == "abc-123"
        made = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
        assert made.headers["x-request-id"] != "bad id with spaces"
        assert len(made.headers["x-request-id"]) == 32


class TestCors:
    async def test_configured_origins_are_allowed(self, settings: Settings, database):
        app = create_app(
            base_settings(
                database_url=settings.database_url, cors_origins="https://app.example.com"
            ),
            db=database,
        )
        async with client_for(app) as c:
            response = await c.options(
                "/api/v1/tags",
                headers={
                    "Origin": "https://app.example.com",
                    "Access-Control-Request-Method": "GET",
                },
            )
            assert response.headers["access-control-allow-origin"] == "https://app.example.com"
            refused = await c.options(
                "/api/v1/tags",
                headers={
                    "Origin": "https://evil.example.com",
                    "Access-Control-Request-Method": "GET",
                },
            )
            assert "access-control-allow-origin" not in refused.headers
