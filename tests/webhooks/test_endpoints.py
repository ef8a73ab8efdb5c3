"""Webhook endpoints as admins configure them: secrets shown once, event filters validated,
enable/disable, If-Match, delete; only admins; other workspaces see nothing."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from tests.factories import add_member, register
from tests.isolation import assert_isolated
from tests.webhooks.factories import (
    PUBLIC_URL,
    create_endpoint,
    deliveries,
    recorded_events,
)

BASE = "/api/v1/webhooks"


class TestSecrets:
    async def test_secret_is_shown_on_create_only(self, client: Any) -> None:
        admin = await register(client)
        created = await create_endpoint(client, admin, description="warehouse")
        secret = created["secret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
        assert created["events"] == ["*"] and created["enabled"] is True
        assert created["secret_hint"] == secret[:10] + "…"

        got = await client.get(f"{BASE}/{created['id']}", headers=admin.headers)
        assert got.status_code == 200 and got.headers["etag"] == '"1"'
        assert "secret" not in got.json()["data"]
        assert secret not in got.text
        listed = await client.get(BASE, headers=admin.headers)
        assert [row["id"] for row in listed.json()["data"]] == [created["id"]]
        assert secret not in listed.text

    async def test_events_never_carry_the_secret(self, client: Any, database: Any) -> None:
        admin = await register(client)
        created = await create_endpoint(client, admin)
        rotated = await client.post(f"{BASE}/{created['id']}/rotate-secret", headers=admin.headers)
        assert rotated.status_code == 200, rotated.text
        made = await recorded_events(database, admin, "webhook_endpoint.created")
        turned = await recorded_events(database, admin, "webhook_endpoint.secret_rotated")
        assert [e["data"]["id"] for e in made + turned] == [created["id"]] * 2
        for event in made + turned:
            text = str(event["data"])
            assert created["secret"] not in text and rotated.json()["data"]["secret"] not in text
            assert "secret" not in event["data"] and "previous_secret" not in event["data"]

    async def test_rotation_shows_the_new_secret_and_the_overlap(self, client: Any) -> None:
        admin = await register(client)
        created = await create_endpoint(client, admin)
        path = f"{BASE}/{created['id']}/rotate-secret"
        rotated = (await client.post(path, headers=admin.headers)).json()["data"]
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
        assert rotated["previous_secret_expires_at"] is not None
        assert rotated["version"] == 2
        now_only = await client.post(
            path, json={"expire_previous_in_seconds": 0}, headers=admin.headers
        )
        assert now_only.status_code == 200
        assert now_only.json()["data"]["previous_secret_expires_at"] is None
        too_long = await client.post(
            path, json={"expire_previous_in_seconds": 8 * 86400}, headers=admin.headers
        )
        assert too_long.status_code == 422


class TestEventFilters:
    @pytest.mark.parametrize(
        "events",
        [
            [],
            ["contact"],
            ["Contact.created"],
            ["contact.created.extra"],
            ["contact.cre*"],
            ["contact.[ab]"],
            [""],
            ["*" * 3],
            ["x" * 60 + ".created"],
        ],
    )
    async def test_bad_patterns_are_refused(self, client: Any, events: list[str]) -> None:
        admin = await register(client)
        response = await client.post(
            BASE, json={"url": PUBLIC_URL, "events": events}, headers=admin.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"].startswith("body.events")

    async def test_good_patterns_are_kept_once_each(self, client: Any) -> None:
        admin = await register(client)
        created = await create_endpoint(
            client,
            admin,
            events=[
                "contact.*",
                "lead.converted",
                "*.deleted",
                "contact.*",
                " work_order.completed",
            ],
        )
        assert created["events"] == [
            "contact.*",
            "lead.converted",
            "*.deleted",
            "work_order.completed",
        ]


class TestUpdates:
    async def test_disable_with_a_reason_and_enable_again(self, client: Any) -> None:
        admin = await register(client)
        created = await create_endpoint(client, admin)
        path = f"{BASE}/{created['id']}"
        off = await client.patch(
            path, json={"enabled": False, "disabled_reason": "maintenance"}, headers=admin.headers
        )
        assert off.status_code == 200, off.text
        data = off.json()["data"]
        assert data["enabled"] is False and data["disabled_reason"] == "maintenance"
        assert data["disabled_at"] is not None and off.headers["etag"] == '"2"'

        listed = await client.get(BASE, params={"enabled": "false"}, headers=admin.headers)
        assert [r["id"] for r in listed.json()["data"]] == [created["id"]]

        on = await client.patch(path, json={"enabled": True}, headers=admin.headers)
        data = on.json()["data"]
        assert data["enabled"] is True and data["disabled_reason"] is None
        assert data["disabled_at"] is None

        reason_alone = await client.patch(
            path, json={"disabled_reason": "why"}, headers=admin.headers
        )
        assert reason_alone.status_code == 422
        assert reason_alone.json()["error"]["code"] == "disabled_reason_needs_disabled"

    async def test_fields_change_and_if_match_guards(self, client: Any) -> None:
        admin = await register(client)
        created = await create_endpoint(client, admin)
        path = f"{BASE}/{created['id']}"
        stale = await client.patch(
            path, json={"description": "x"}, headers={**admin.headers, "If-Match": '"7"'}
        )
        assert stale.status_code == 412
        changed = await client.patch(
            path,
            json={
                "description": "CRM sync",
                "events": ["deal.*"],
                "url": "https://93.184.216.34/v2",
                "enabled": None,
            },
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert changed.status_code == 200, changed.text
        data = changed.json()["data"]
        assert data["description"] == "CRM sync" and data["events"] == ["deal.*"]
        assert data["url"] == "https://93.184.216.34/v2" and data["enabled"] is True
        assert data["version"] == 2
        unknown = await client.patch(path, json={"secret": "whsec_x"}, headers=admin.headers)
        assert unknown.status_code == 422
        same = await client.patch(path, json={}, headers=admin.headers)
        assert same.json()["data"]["version"] == 2

    async def test_delete_removes_the_endpoint_and_its_log(self, hooks: Any, receiver: Any) -> None:
        admin = await register(hooks)
        created = await create_endpoint(hooks, admin, url=receiver.url)
        tested = await hooks.post(f"{BASE}/{created['id']}/test", headers=admin.headers)
        assert tested.status_code == 200
        assert len(await deliveries(hooks, admin, created["id"])) == 1
        stale = await hooks.delete(
            f"{BASE}/{created['id']}", headers={**admin.headers, "If-Match": '"9"'}
        )
        assert stale.status_code == 412
        gone = await hooks.delete(f"{BASE}/{created['id']}", headers=admin.headers)
        assert gone.status_code == 200
        assert gone.json()["data"] == {"id": created["id"], "deleted": True}
        assert (
            await hooks.get(f"{BASE}/{created['id']}", headers=admin.headers)
        ).status_code == 404
        log = await hooks.get(f"{BASE}/{created['id']}/deliveries", headers=admin.headers)
        assert log.status_code == 404
        assert log.json()["error"]["code"] == "webhook_endpoint_not_found"


class TestAccess:
    async def test_only_admins(self, client: Any) -> None:
        admin = await register(client)
        endpoint = await create_endpoint(client, admin)
        base = f"{BASE}/{endpoint['id']}"
        some_delivery = f"{base}/deliveries/{uuid.uuid4()}"
        calls = [
            ("GET", BASE, None),
            ("POST", BASE, {"url": PUBLIC_URL}),
            ("GET", base, None),
            ("PATCH", base, {"description": "x"}),
            ("DELETE", base, None),
            ("POST", f"{base}/rotate-secret", None),
            ("POST", f"{base}/test", None),
            ("GET", f"{base}/deliveries", None),
            ("GET", some_delivery, None),
            ("POST", f"{some_delivery}/redeliver", None),
        ]
        for role in ("member", "viewer"):
            other = await add_member(client, admin, role)
            for method, path, body in calls:
                response = await client.request(method, path, json=body, headers=other.headers)
                assert response.status_code == 403, f"{role} {method} {path}: {response.text}"
                assert response.json()["error"]["code"] == "forbidden"
        still = await client.get(base, headers=admin.headers)
        assert still.json()["data"]["version"] == 1

    async def test_other_workspaces_see_nothing(self, hooks: Any, receiver: Any) -> None:
        owner = await register(hooks)
        intruder = await register(hooks)
        endpoint = await create_endpoint(hooks, owner, url=receiver.url)
        base = f"{BASE}/{endpoint['id']}"
        tested = await hooks.post(f"{base}/test", headers=owner.headers)
        delivery_path = f"{base}/deliveries/{tested.json()['data']['id']}"
        await assert_isolated(
            hooks,
            owner=owner,
            intruder=intruder,
            record_path=base,
            list_path=BASE,
            requests=[
                ("POST", f"{base}/rotate-secret", None),
                ("POST", f"{base}/test", None),
                ("GET", f"{base}/deliveries", None),
                ("GET", delivery_path, None),
                ("POST", f"{delivery_path}/redeliver", None),
            ],
        )
        assert len(receiver.received) == 1  # the intruder's test and redeliver sent nothing
        # The intruder's own endpoint cannot reach the owner's deliveries either.
        theirs = await create_endpoint(hooks, intruder, url=receiver.url)
        crossed = f"{BASE}/{theirs['id']}/deliveries/{tested.json()['data']['id']}"
        response = await hooks.get(crossed, headers=intruder.headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "webhook_delivery_not_found"
