"""Deliveries end to end, against a real receiver on 127.0.0.1 that checks Standard Webhooks
signatures: exactly once per change (after a crash too), retries on the backoff schedule,
disabling after a day of failures, secret rotation, filters, workspaces kept apart, the delivery
log, redeliver and test sends."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from rapport.core.background import Background
from rapport.webhooks.delivery import RETRY_SCHEDULE
from rapport.webhooks.sender import SERVICE_KEY
from tests.factories import register
from tests.query_plans import captured
from tests.webhooks.factories import (
    create_contact,
    create_endpoint,
    deliveries,
    delivery,
    recorded_events,
)

BASE = "/api/v1/webhooks"


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def close(background: Background) -> None:
    sender = background.services.get(SERVICE_KEY)
    if sender is not None:
        await sender.aclose()


class TestExactlyOnce:
    async def test_a_crash_between_commit_and_dispatch_still_delivers_each_change_once(
        self, hooks: Any, hooks_app: Any, hooks_settings: Any, database: Any, receiver: Any
    ) -> None:
        admin = await register(hooks)
        endpoint = await create_endpoint(hooks, admin, url=receiver.url, events=["contact.*"])
        contact_id = await create_contact(hooks, admin)
        patched = await hooks.patch(
            f"/api/v1/contacts/{contact_id}", json={"job_title": "CTO"}, headers=admin.headers
        )
        assert patched.status_code == 200
        assert receiver.received == []  # committed, never relayed: the process "died" here

        restarted = Background(hooks_settings, database)  # a new process: nothing in memory
        try:
            await restarted.drain()
            await restarted.drain()
            await hooks_app.state.background.drain()  # the old process coming back
        finally:
            await close(restarted)

        got = receiver.events("contact.")
        assert [json.loads(r.body)["type"] for r in got] == ["contact.created", "contact.updated"]
        changes = await recorded_events(database, admin, "contact.created")
        changes += await recorded_events(database, admin, "contact.updated")
        assert [r.webhook_id for r in got] == [str(e["id"]) for e in changes]
        for request in got:
            payload = request.verify(endpoint["secret"])
            assert payload["data"]["id"] == contact_id
            assert payload["workspace_id"] == admin.workspace_id
            assert payload["actor"]["id"] == admin.user["id"]
            assert request.path == "/hooks/rapport" and request.method == "POST"
            assert request.headers["content-type"] == "application/json"
        log = await deliveries(hooks, admin, endpoint["id"])
        assert {(d["status"], d["attempt_count"]) for d in log} == {("succeeded", 1)}
        assert len(log) == 2


class TestRetries:
    async def test_failures_are_retried_on_the_backoff_schedule(
        self, hooks: Any, hooks_app: Any, hooks_clock: Any, receiver: Any
    ) -> None:
        background = hooks_app.state.background
        admin = await register(hooks)
        endpoint = await create_endpoint(hooks, admin, url=receiver.url, events=["contact.*"])
        receiver.plan = [500, 503, 500]
        receiver.answer_body = b"down " * 1000  # 5 KB: the log keeps 2 KB
        await create_contact(hooks, admin)
        await background.drain()
        assert len(receiver.received) == 1
        hooks_clock.advance(seconds=4)
        await background.drain()
        assert len(receiver.received) == 1  # not due yet
        hooks_clock.advance(seconds=1)
        await background.drain()
        assert len(receiver.received) == 2
        hooks_clock.advance(minutes=5)
        await background.drain()
        [pending] = await deliveries(hooks, admin, endpoint["id"])
        assert pending["status"] == "pending" and pending["attempt_count"] == 3
        assert when(pending["next_attempt_at"]) - when(pending["last_attempt_at"]) == timedelta(
            minutes=30
        )
        hooks_clock.advance(minutes=30)
        await background.drain()
        hooks_clock.advance(hours=3)
        await background.drain()

        assert len(receiver.received) == 4
        assert len({r.webhook_id for r in receiver.received}) == 1  # one message, retried
        for request in receiver.received:
            request.verify(endpoint["secret"])
        detail = await delivery(hooks, admin, endpoint["id"], pending["id"])
        assert detail["status"] == "succeeded" and detail["next_attempt_at"] is None
        attempts = detail["attempts"]
        assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
        assert [a["response_status"] for a in attempts] == [500, 503, 500, 200]
        assert [a["error"] for a in attempts] == ["HTTP 500", "HTTP 503", "HTTP 500", None]
        assert {a["trigger"] for a in attempts} == {"scheduled"}
        gaps = [
            when(b["created_at"]) - when(a["created_at"])
            for a, b in zip(attempts, attempts[1:], strict=False)
        ]
        assert gaps == list(RETRY_SCHEDULE[:3])
        assert attempts[0]["response_body"] == ("down " * 1000)[:2048]  # the first 2 KB
        assert all(a["latency_ms"] >= 0 for a in attempts)
        sent = attempts[0]["request_headers"]
        assert sent["webhook-id"] == receiver.received[0].webhook_id
        assert sent["webhook-signature"] == receiver.received[0].headers["webhook-signature"]
        assert json.loads(detail["request_body"])["type"] == "contact.created"

    async def test_an_endpoint_that_fails_for_a_day_is_disabled(
        self, hooks: Any, hooks_app: Any, hooks_clock: Any, database: Any, receiver: Any
    ) -> None:
        background = hooks_app.state.background
        admin = await register(hooks)
        receiver.default = 500
        endpoint = await create_endpoint(hooks, admin, url=receiver.url, events=["contact.*"])
        await create_contact(hooks, admin)
        await background.drain()
        for wait in RETRY_SCHEDULE:
            hooks_clock.advance(seconds=wait.total_seconds())
            await background.drain()
        assert len(receiver.received) == len(RETRY_SCHEDULE) + 1

        [failed] = await deliveries(hooks, admin, endpoint["id"])
        assert failed["status"] == "failed" and failed["attempt_count"] == 8
        assert failed["next_attempt_at"] is None and failed["last_status_code"] == 500
        got = (await hooks.get(f"{BASE}/{endpoint['id']}", headers=admin.headers)).json()["data"]
        assert got["enabled"] is False and "HTTP 500" in got["disabled_reason"]
        [event] = await recorded_events(database, admin, "webhook_endpoint.disabled")
        assert event["resource_id"] is not None and str(event["resource_id"]) == endpoint["id"]
        assert event["data"]["id"] == event["data"]["endpoint_id"] == endpoint["id"]
        assert event["data"]["url"] == receiver.url
        assert event["data"]["reason"] == got["disabled_reason"]
        assert "secret" not in event["data"]
        assert event["actor_type"] is None  # the system did it

        # The admin is told, through the notifications module's subscriber.
        await background.drain()
        inbox = await hooks.get("/api/v1/notifications", headers=admin.headers)
        [notice] = [n for n in inbox.json()["data"] if n["type"] == "webhook_endpoint.disabled"]
        assert notice["resource_id"] == endpoint["id"] and notice["read_at"] is None

        # Disabled: new changes make no deliveries.
        await create_contact(hooks, admin)
        await background.drain()
        assert len(receiver.received) == 8
        assert len(await deliveries(hooks, admin, endpoint["id"])) == 1

        # Enabled again: a fresh start.
        on = await hooks.patch(
            f"{BASE}/{endpoint['id']}", json={"enabled": True}, headers=admin.headers
        )
        assert on.json()["data"]["disabled_reason"] is None
        receiver.default = 200
        await create_contact(hooks, admin)
        await background.drain()
        assert len(receiver.received) == 9

    async def test_a_flaky_endpoint_is_not_disabled(
        self, hooks: Any, hooks_app: Any, hooks_clock: Any, receiver: Any
    ) -> None:
        """One delivery fails for good, but others got through meanwhile: the endpoint lives."""
        background = hooks_app.state.background
        admin = await register(hooks)
        endpoint = await create_endpoint(hooks, admin, url=receiver.url, events=["contact.*"])
        receiver.plan = [500]
        await create_contact(hooks, admin)
        await background.drain()  # the first delivery fails once...
        receiver.default = 200
        await create_contact(hooks, admin)
        await background.drain()  # ...a second one succeeds
        receiver.default = 500
        for wait in RETRY_SCHEDULE:
            hooks_clock.advance(seconds=wait.total_seconds())
            await background.drain()
        statuses = sorted(d["status"] for d in await deliveries(hooks, admin, endpoint["id"]))
        assert statuses == ["failed", "succeeded"]
        got = (await hooks.get(f"{BASE}/{endpoint['id']}", headers=admin.headers)).json()["data"]
        assert got["enabled"] is True


class TestSigning:
    async def test_rotation_signs_with_both_secrets_during_the_overlap(
        self, hooks: Any, hooks_app: Any, hooks_clock: Any, receiver: Any
    ) -> None:
        background = hooks_app.state.background
        admin = await register(hooks)
        endpoint = await create_endpoint(hooks, admin, url=receiver.url, events=["contact.*"])
        old = endpoint["secret"]
        rotated = await hooks.post(f"{BASE}/{endpoint['id']}/rotate-secret", headers=admin.headers)
        new = rotated.json()["data"]["secret"]
        await create_contact(hooks, admin)
        await background.drain()
        [during] = receiver.events("contact.")
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        assert during.verify(old)["type"] == "contact.created"
        assert during.verify(new)["type"] == "contact.created"

        hooks_clock.advance(hours=25)  # the 24 h overlap is over
        await create_contact(hooks, admin)
        await background.drain()
        after = receiver.events("contact.")[1]
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        assert after.verify(new)["type"] == "contact.created"
        with pytest.raises(WebhookVerificationError):
            after.verify(old)


class TestRouting:
    async def test_filters_with_wildcards_in_one_query_per_batch(
        self,
        hooks: Any,
        hooks_app: Any,
        database: Any,
        receiver: Any,
        other_receiver: Any,
    ) -> None:
        background = hooks_app.state.background
        admin = await register(hooks)
        await create_endpoint(hooks, admin, url=receiver.url, events=["contact.*"])
        await create_endpoint(
            hooks, admin, url=other_receiver.url, events=["company.created", "*.deleted"]
        )
        contact_id = await create_contact(hooks, admin)
        await hooks.patch(
            f"/api/v1/contacts/{contact_id}", json={"job_title": "CTO"}, headers=admin.headers
        )
        company = await hooks.post(
            "/api/v1/companies", json={"name": "Acme"}, headers=admin.headers
        )
        assert company.status_code == 201
        deleted = await hooks.delete(f"/api/v1/contacts/{contact_id}", headers=admin.headers)
        assert deleted.status_code == 200

        batches = 0
        with captured(database, "FROM webhook_endpoint") as lookups:
            while await background.relay.run_once():
                batches += 1
        assert len(lookups) == batches  # one endpoint lookup per batch, not per event
        await background.drain()

        def types(r: Any) -> list[str]:
            return [json.loads(x.body)["type"] for x in r.received]

        assert types(receiver) == ["contact.created", "contact.updated", "contact.deleted"]
        assert types(other_receiver) == ["company.created", "contact.deleted"]

    async def test_no_workspace_receives_another_workspaces_events(
        self, hooks: Any, hooks_app: Any, receiver: Any, other_receiver: Any
    ) -> None:
        first = await register(hooks)
        second = await register(hooks)
        await create_endpoint(hooks, first, url=receiver.url)
        await create_endpoint(hooks, second, url=other_receiver.url)
        await create_contact(hooks, first)
        await create_contact(hooks, second, first_name="Grace")
        await hooks_app.state.background.drain()
        for account, got in ((first, receiver), (second, other_receiver)):
            payloads = [json.loads(r.body) for r in got.received]
            assert {p["workspace_id"] for p in payloads} == {account.workspace_id}
            assert [p["type"] for p in payloads if p["type"].startswith("contact.")] == [
                "contact.created"
            ]


class TestLogAndReplay:
    async def test_redeliver_makes_a_new_attempt_now(
        self, hooks: Any, hooks_app: Any, hooks_clock: Any, receiver: Any
    ) -> None:
        background = hooks_app.state.background
        admin = await register(hooks)
        endpoint = await create_endpoint(hooks, admin, url=receiver.url, events=["contact.*"])
        receiver.default = 500
        await create_contact(hooks, admin)
        await background.drain()
        [pending] = await deliveries(hooks, admin, endpoint["id"])
        assert pending["status"] == "pending"

        receiver.default = 200
        path = f"{BASE}/{endpoint['id']}/deliveries/{pending['id']}/redeliver"
        response = await hooks.post(path, headers=admin.headers)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["status"] == "succeeded" and data["attempt_count"] == 2
        assert [(a["trigger"], a["response_status"]) for a in data["attempts"]] == [
            ("scheduled", 500),
            ("redeliver", 200),
        ]
        first, again = receiver.received
        assert first.webhook_id == again.webhook_id == str(data["event_id"])
        assert again.body == first.body
        again.verify(endpoint["secret"])

        hooks_clock.advance(seconds=5)  # the scheduled retry finds the delivery done
        await background.drain()
        assert len(receiver.received) == 2

        missing = await hooks.post(
            f"{BASE}/{endpoint['id']}/deliveries/{endpoint['id']}/redeliver", headers=admin.headers
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "webhook_delivery_not_found"

    async def test_test_sends_to_that_endpoint_only_and_answers_the_outcome(
        self, hooks: Any, hooks_app: Any, receiver: Any, other_receiver: Any
    ) -> None:
        admin = await register(hooks)
        endpoint = await create_endpoint(hooks, admin, url=receiver.url)
        await create_endpoint(hooks, admin, url=other_receiver.url)  # "*": but not for tests
        response = await hooks.post(f"{BASE}/{endpoint['id']}/test", headers=admin.headers)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["status"] == "succeeded" and data["event_type"] == "webhook.test"
        [attempt] = data["attempts"]
        assert attempt["trigger"] == "test" and attempt["response_status"] == 200
        assert attempt["response_body"] == '{"ok": true}' and attempt["error"] is None
        assert attempt["url"] == receiver.url
        [sent] = receiver.events("webhook.test")
        payload = sent.verify(endpoint["secret"])
        assert payload["data"]["endpoint_id"] == endpoint["id"]
        assert payload["id"] == sent.webhook_id == data["event_id"]
        await hooks_app.state.background.drain()
        assert other_receiver.events("webhook.test") == []

        receiver.default = 404
        failed = (await hooks.post(f"{BASE}/{endpoint['id']}/test", headers=admin.headers)).json()
        assert failed["data"]["status"] == "failed"
        assert failed["data"]["attempts"][0]["error"] == "HTTP 404"
        assert failed["data"]["last_status_code"] == 404

    async def test_the_log_filters_and_pages(self, hooks: Any, receiver: Any) -> None:
        admin = await register(hooks)
        endpoint = await create_endpoint(hooks, admin, url=receiver.url)
        path = f"{BASE}/{endpoint['id']}/test"
        ids = [(await hooks.post(path, headers=admin.headers)).json()["data"]["id"]]
        receiver.default = 500
        ids.append((await hooks.post(path, headers=admin.headers)).json()["data"]["id"])
        ids.append((await hooks.post(path, headers=admin.headers)).json()["data"]["id"])

        failed = await deliveries(hooks, admin, endpoint["id"], status="failed")
        assert [d["id"] for d in failed] == ids[:0:-1]  # newest first
        ok = await deliveries(hooks, admin, endpoint["id"], status="succeeded")
        assert [d["id"] for d in ok] == ids[:1]
        typed = await deliveries(hooks, admin, endpoint["id"], event_type="webhook.test,x.y")
        assert len(typed) == 3
        assert await deliveries(hooks, admin, endpoint["id"], event_type="contact.created") == []

        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = await hooks.get(
                f"{BASE}/{endpoint['id']}/deliveries", params=params, headers=admin.headers
            )
            body = page.json()
            seen += [d["id"] for d in body["data"]]
            cursor = body["meta"]["next_cursor"]
            if not cursor:
                break
        assert seen == ids[::-1]
        bad = await hooks.get(
            f"{BASE}/{endpoint['id']}/deliveries", params={"colour": "red"}, headers=admin.headers
        )
        assert bad.status_code == 422
        bad_status = await hooks.get(
            f"{BASE}/{endpoint['id']}/deliveries", params={"status": "lost"}, headers=admin.headers
        )
        assert bad_status.status_code == 422
