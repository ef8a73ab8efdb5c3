"""Pipelines and stages through HTTP: the default pipeline, CRUD, ordering, in-use rules."""

from __future__ import annotations

import asyncio

from tests.deals.factories import (
    DEALS,
    PIPELINES,
    default_pipeline,
    event_types,
    make_deal,
    make_pipeline,
    pipeline_rows,
    stage_id,
)
from tests.factories import add_member, register
from tests.isolation import assert_isolated

SALES_STAGES = [
    ("Lead", 10, False, False),
    ("Qualified", 25, False, False),
    ("Proposal", 50, False, False),
    ("Negotiation", 75, False, False),
    ("Won", 100, True, False),
    ("Lost", 0, False, True),
]


def shape(stages):
    return [(s["name"], s["probability"], s["is_won"], s["is_lost"]) for s in stages]


def names(stages):
    return [s["name"] for s in stages]


class TestDefaultPipeline:
    async def test_first_list_creates_sales_with_its_stages_once(self, client, database):
        admin = await register(client)
        first = await client.get(PIPELINES, headers=admin.headers)
        assert first.status_code == 200, first.text
        [pipeline] = first.json()["data"]
        assert pipeline["name"] == "Sales" and pipeline["is_default"] is True
        assert shape(pipeline["stages"]) == SALES_STAGES
        assert [s["position"] for s in pipeline["stages"]] == list(range(6))
        again = await client.get(PIPELINES, headers=admin.headers)
        assert [p["id"] for p in again.json()["data"]] == [pipeline["id"]]
        assert await pipeline_rows(database, admin) == (1, 1, 6)
        assert await event_types(database, pipeline["id"]) == ["pipeline.created"]

    async def test_concurrent_first_use_seeds_exactly_one_default(self, client, database):
        for _ in range(3):
            admin = await register(client)
            viewer = await add_member(client, admin, "viewer")
            requests = [client.get(PIPELINES, headers=admin.headers) for _ in range(6)]
            requests += [client.get(PIPELINES, headers=viewer.headers) for _ in range(2)]
            requests += [
                client.post(DEALS, json={"name": f"Deal {i}"}, headers=admin.headers)
                for i in range(3)
            ]
            responses = await asyncio.gather(*requests)
            for response in responses:
                assert response.status_code in (200, 201), response.text
            pipeline_ids = set()
            for response in responses[:8]:
                [pipeline] = response.json()["data"]
                assert shape(pipeline["stages"]) == SALES_STAGES
                pipeline_ids.add(pipeline["id"])
            pipeline_ids |= {r.json()["data"]["pipeline_id"] for r in responses[8:]}
            assert len(pipeline_ids) == 1
            assert {r.json()["data"]["stage_name"] for r in responses[8:]} == {"Lead"}
            assert await pipeline_rows(database, admin) == (1, 1, 6)
            created = await event_types(database, pipeline_ids.pop())
            assert created == ["pipeline.created"]

    async def test_creating_a_deal_seeds_the_default(self, client, database):
        admin = await register(client)
        deal = await make_deal(client, admin)
        assert deal["pipeline_name"] == "Sales" and deal["stage_name"] == "Lead"
        assert deal["probability"] == 10 and deal["status"] == "open"
        assert (await default_pipeline(client, admin))["id"] == deal["pipeline_id"]
        assert await pipeline_rows(database, admin) == (1, 1, 6)

    async def test_a_first_pipeline_of_ones_own_becomes_the_default(self, client, database):
        admin = await register(client)
        mine = await make_pipeline(client, admin, is_default=False)
        assert mine["is_default"] is True
        listed = await client.get(PIPELINES, headers=admin.headers)
        assert [p["name"] for p in listed.json()["data"]] == ["Enterprise"]
        deal = await make_deal(client, admin)
        assert deal["pipeline_id"] == mine["id"] and deal["stage_name"] == "Discovery"

    async def test_deleting_every_pipeline_brings_the_default_back_when_needed(
        self, client, database
    ):
        admin = await register(client)
        sales = await default_pipeline(client, admin)
        gone = await client.delete(f"{PIPELINES}/{sales['id']}", headers=admin.headers)
        assert gone.status_code == 200
        again = await default_pipeline(client, admin)
        assert again["id"] == sales["id"] and shape(again["stages"]) == SALES_STAGES
        assert await pipeline_rows(database, admin) == (1, 1, 6)


class TestPipelineCrud:
    async def test_create_with_ordered_stages_get_patch(self, client):
        admin = await register(client)
        await default_pipeline(client, admin)
        created = await client.post(
            PIPELINES,
            json={
                "name": "Partners",
                "stages": [
                    {"name": "Signed", "position": 3, "is_won": True},
                    {"name": "Intro", "position": 0, "probability": 5},
                    {"name": "Pilot", "position": 1, "probability": 60},
                    {"name": "Dropped", "position": 4, "is_lost": True},
                ],
            },
            headers=admin.headers,
        )
        assert created.status_code == 201, created.text
        assert created.headers["etag"] == '"1"'
        pipeline = created.json()["data"]
        assert pipeline["is_default"] is False and pipeline["position"] == 1
        assert shape(pipeline["stages"]) == [
            ("Intro", 5, False, False),
            ("Pilot", 60, False, False),
            ("Signed", 100, True, False),
            ("Dropped", 0, False, True),
        ]
        assert [s["position"] for s in pipeline["stages"]] == [0, 1, 2, 3]
        path = f"{PIPELINES}/{pipeline['id']}"
        got = await client.get(path, headers=admin.headers)
        assert got.status_code == 200 and got.json()["data"] == pipeline
        patched = await client.patch(
            path,
            json={"name": "Channel", "position": 0},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert patched.status_code == 200, patched.text
        assert (
            patched.json()["data"]["name"] == "Channel" and patched.json()["data"]["version"] == 2
        )
        stale = await client.patch(
            path, json={"name": "X"}, headers={**admin.headers, "If-Match": '"1"'}
        )
        assert stale.status_code == 412
        listed = await client.get(PIPELINES, headers=admin.headers)
        assert [p["name"] for p in listed.json()["data"]] == ["Sales", "Channel"]  # id breaks ties
        sales = listed.json()["data"][0]
        await client.patch(
            f"{PIPELINES}/{sales['id']}", json={"position": 9}, headers=admin.headers
        )
        listed = await client.get(PIPELINES, headers=admin.headers)
        assert [p["name"] for p in listed.json()["data"]] == ["Channel", "Sales"]
        by_name = await client.get(
            PIPELINES, params={"sort_by": "name", "sort_order": "desc"}, headers=admin.headers
        )
        assert [p["name"] for p in by_name.json()["data"]] == ["Sales", "Channel"]
        only_default = await client.get(
            PIPELINES, params={"is_default": "true"}, headers=admin.headers
        )
        assert [p["name"] for p in only_default.json()["data"]] == ["Sales"]

    async def test_only_one_default(self, client, database):
        admin = await register(client)
        sales = await default_pipeline(client, admin)
        other = await make_pipeline(client, admin, is_default=True)
        assert other["is_default"] is True
        assert (await default_pipeline(client, admin))["id"] == other["id"]
        back = await client.patch(
            f"{PIPELINES}/{sales['id']}", json={"is_default": True}, headers=admin.headers
        )
        assert back.status_code == 200 and back.json()["data"]["is_default"] is True
        assert (await default_pipeline(client, admin))["id"] == sales["id"]
        refused = await client.patch(
            f"{PIPELINES}/{sales['id']}", json={"is_default": False}, headers=admin.headers
        )
        assert refused.status_code == 422
        assert (await pipeline_rows(database, admin))[1] == 1
        # Deleting the default hands the role to another live pipeline.
        await client.delete(f"{PIPELINES}/{sales['id']}", headers=admin.headers)
        assert (await default_pipeline(client, admin))["id"] == other["id"]
        assert (await pipeline_rows(database, admin))[1] == 1

    async def test_soft_delete_and_restore(self, client):
        admin = await register(client)
        await default_pipeline(client, admin)
        pipeline = await make_pipeline(client, admin)
        path = f"{PIPELINES}/{pipeline['id']}"
        stale = await client.delete(path, headers={**admin.headers, "If-Match": '"7"'})
        assert stale.status_code == 412
        deleted = await client.delete(path, headers=admin.headers)
        assert deleted.status_code == 200 and deleted.json()["data"] == {
            "id": pipeline["id"],
            "deleted": True,
        }
        missing = await client.get(path, headers=admin.headers)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "pipeline_not_found"
        listed = await client.get(PIPELINES, headers=admin.headers)
        assert pipeline["id"] not in {p["id"] for p in listed.json()["data"]}
        with_deleted = await client.get(
            PIPELINES, params={"include_deleted": "true"}, headers=admin.headers
        )
        assert pipeline["id"] in {p["id"] for p in with_deleted.json()["data"]}
        restored = await client.post(f"{path}/restore", headers=admin.headers)
        assert restored.status_code == 200 and restored.json()["data"]["deleted_at"] is None
        assert len(restored.json()["data"]["stages"]) == 4
        assert (await client.get(path, headers=admin.headers)).status_code == 200

    async def test_bad_pipelines_are_refused(self, client):
        admin = await register(client)
        for body, status in (
            ({"name": ""}, 422),
            ({"name": "x", "unknown": 1}, 422),
            ({"name": "x", "stages": [{"name": "A", "is_won": True, "is_lost": True}]}, 422),
            ({"name": "x", "stages": [{"name": "A", "probability": 101}]}, 422),
            ({"name": "x", "stages": [{"name": "A", "probability": -1}]}, 422),
            ({"name": "x", "stages": [{"name": f"S{i}"} for i in range(51)]}, 422),
            ({"name": "x", "stages": [{"name": "Same"}, {"name": "same"}]}, 409),
        ):
            response = await client.post(PIPELINES, json=body, headers=admin.headers)
            assert response.status_code == status, (body, response.text)
        missing = await client.get(
            f"{PIPELINES}/01900000-0000-7000-8000-000000000000", headers=admin.headers
        )
        assert missing.status_code == 404


class TestStages:
    async def test_create_list_move_and_delete_keep_positions_dense(self, client):
        admin = await register(client)
        pipeline = await make_pipeline(client, admin)
        base = f"{PIPELINES}/{pipeline['id']}/stages"
        appended = await client.post(base, json={"name": "Legal"}, headers=admin.headers)
        assert appended.status_code == 201, appended.text
        assert appended.json()["data"]["position"] == 4
        inserted = await client.post(
            base, json={"name": "Trial", "position": 1, "probability": 30}, headers=admin.headers
        )
        assert inserted.status_code == 201 and inserted.json()["data"]["position"] == 1
        listed = await client.get(base, headers=admin.headers)
        assert listed.status_code == 200
        assert names(listed.json()["data"]) == [
            "Discovery",
            "Trial",
            "Demo",
            "Closed won",
            "Closed lost",
            "Legal",
        ]
        assert [s["position"] for s in listed.json()["data"]] == list(range(6))
        legal = appended.json()["data"]
        moved = await client.patch(
            f"{base}/{legal['id']}", json={"position": 2}, headers=admin.headers
        )
        assert moved.status_code == 200 and moved.json()["data"]["position"] == 2
        listed = await client.get(base, headers=admin.headers)
        assert names(listed.json()["data"]) == [
            "Discovery",
            "Trial",
            "Legal",
            "Demo",
            "Closed won",
            "Closed lost",
        ]
        removed = await client.delete(
            f"{base}/{inserted.json()['data']['id']}", headers=admin.headers
        )
        assert removed.status_code == 200
        listed = await client.get(base, headers=admin.headers)
        assert names(listed.json()["data"]) == [
            "Discovery",
            "Legal",
            "Demo",
            "Closed won",
            "Closed lost",
        ]
        assert [s["position"] for s in listed.json()["data"]] == list(range(5))
        # The pipeline read shows the same order.
        got = await client.get(f"{PIPELINES}/{pipeline['id']}", headers=admin.headers)
        assert names(got.json()["data"]["stages"]) == names(listed.json()["data"])

    async def test_stage_validations(self, client):
        admin = await register(client)
        pipeline = await make_pipeline(client, admin)
        base = f"{PIPELINES}/{pipeline['id']}/stages"
        demo = stage_id(pipeline, "Demo")
        dup = await client.post(base, json={"name": "DEMO"}, headers=admin.headers)
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "stage_name_taken"
        rename_dup = await client.patch(
            f"{base}/{demo}", json={"name": "discovery"}, headers=admin.headers
        )
        assert rename_dup.status_code == 409
        both = await client.post(
            base, json={"name": "X", "is_won": True, "is_lost": True}, headers=admin.headers
        )
        assert both.status_code == 422
        won = stage_id(pipeline, "Closed won")
        both_patch = await client.patch(
            f"{base}/{won}", json={"is_lost": True}, headers=admin.headers
        )
        assert both_patch.status_code == 422
        for body in ({"probability": 101}, {"name": ""}, {"bogus": 1}, {"position": -1}):
            response = await client.patch(f"{base}/{demo}", json=body, headers=admin.headers)
            assert response.status_code == 422, (body, response.text)
        renamed = await client.patch(
            f"{base}/{demo}",
            json={"name": "Live demo", "probability": 45},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["data"]["name"] == "Live demo"
        assert renamed.json()["data"]["probability"] == 45
        stale = await client.patch(
            f"{base}/{demo}", json={"probability": 50}, headers={**admin.headers, "If-Match": '"1"'}
        )
        assert stale.status_code == 412
        # A stage is addressed through its own pipeline only.
        other = await make_pipeline(client, admin, name="Other")
        wrong = await client.patch(
            f"{PIPELINES}/{other['id']}/stages/{demo}", json={"name": "Y"}, headers=admin.headers
        )
        assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "stage_not_found"
        full = await make_pipeline(
            client, admin, name="Full", stages=[{"name": f"S{i}"} for i in range(50)]
        )
        too_many = await client.post(
            f"{PIPELINES}/{full['id']}/stages", json={"name": "One more"}, headers=admin.headers
        )
        assert too_many.status_code == 422

    async def test_reorder_takes_exactly_the_pipelines_stages(self, client):
        admin = await register(client)
        pipeline = await make_pipeline(client, admin)
        other = await make_pipeline(client, admin, name="Other")
        ids = [s["id"] for s in pipeline["stages"]]
        path = f"{PIPELINES}/{pipeline['id']}/stages/reorder"
        new_order = [ids[3], ids[1], ids[0], ids[2]]
        done = await client.post(path, json={"stage_ids": new_order}, headers=admin.headers)
        assert done.status_code == 200, done.text
        assert [s["id"] for s in done.json()["data"]] == new_order
        assert [s["position"] for s in done.json()["data"]] == [0, 1, 2, 3]
        got = await client.get(f"{PIPELINES}/{pipeline['id']}", headers=admin.headers)
        assert [s["id"] for s in got.json()["data"]["stages"]] == new_order
        for bad in (
            ids[:3],
            [*ids, ids[0]],
            [ids[0], ids[0], ids[1], ids[2]],
            [*ids[:3], other["stages"][0]["id"]],
            [*ids, other["stages"][0]["id"]],
            [],
        ):
            response = await client.post(path, json={"stage_ids": bad}, headers=admin.headers)
            assert response.status_code == 422, (bad, response.text)
            assert response.json()["error"]["code"] == "invalid_stage_order"
        unchanged = await client.get(f"{PIPELINES}/{pipeline['id']}", headers=admin.headers)
        assert [s["id"] for s in unchanged.json()["data"]["stages"]] == new_order

    async def test_stages_and_pipelines_with_deals_are_in_use(self, client):
        admin = await register(client)
        pipeline = await make_pipeline(client, admin)
        demo = stage_id(pipeline, "Demo")
        deal = await make_deal(client, admin, pipeline_id=pipeline["id"], stage_id=demo)
        stage_path = f"{PIPELINES}/{pipeline['id']}/stages/{demo}"
        busy = await client.delete(stage_path, headers=admin.headers)
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "stage_in_use"
        flag = await client.patch(stage_path, json={"is_won": True}, headers=admin.headers)
        assert flag.status_code == 409 and flag.json()["error"]["code"] == "stage_in_use"
        busy_pipeline = await client.delete(f"{PIPELINES}/{pipeline['id']}", headers=admin.headers)
        assert busy_pipeline.status_code == 409
        assert busy_pipeline.json()["error"]["code"] == "pipeline_in_use"
        # A soft-deleted deal still holds its stage (it can be restored) ...
        await client.delete(f"{DEALS}/{deal['id']}", headers=admin.headers)
        assert (await client.delete(stage_path, headers=admin.headers)).status_code == 409
        # ... an erased one does not.
        erased = await client.delete(f"{DEALS}/{deal['id']}?erase=true", headers=admin.headers)
        assert erased.status_code == 200
        assert (await client.delete(stage_path, headers=admin.headers)).status_code == 200
        gone = await client.delete(f"{PIPELINES}/{pipeline['id']}", headers=admin.headers)
        assert gone.status_code == 200


class TestAccess:
    async def test_members_and_viewers_read_only_admins_write(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        viewer = await add_member(client, admin, "viewer")
        pipeline = await make_pipeline(client, admin)
        base = f"{PIPELINES}/{pipeline['id']}"
        first = pipeline["stages"][0]["id"]
        for account in (member, viewer):
            assert (await client.get(PIPELINES, headers=account.headers)).status_code == 200
            assert (await client.get(base, headers=account.headers)).status_code == 200
            assert (await client.get(f"{base}/stages", headers=account.headers)).status_code == 200
            for method, path, body in (
                ("POST", PIPELINES, {"name": "Nope"}),
                ("PATCH", base, {"name": "Nope"}),
                ("DELETE", base, None),
                ("POST", f"{base}/restore", None),
                ("POST", f"{base}/stages", {"name": "Nope"}),
                ("PATCH", f"{base}/stages/{first}", {"name": "Nope"}),
                ("DELETE", f"{base}/stages/{first}", None),
                ("POST", f"{base}/stages/reorder", {"stage_ids": []}),
            ):
                response = await client.request(method, path, json=body, headers=account.headers)
                assert response.status_code == 403, (method, path, response.text)
        unchanged = await client.get(base, headers=admin.headers)
        assert unchanged.json()["data"] == pipeline

    async def test_pipelines_are_isolated_between_workspaces(self, client):
        admin = await register(client)
        pipeline = await make_pipeline(client, admin, name="Secret pipeline")
        intruder = await register(client)
        base = f"{PIPELINES}/{pipeline['id']}"
        first = pipeline["stages"][0]["id"]
        await assert_isolated(
            client,
            owner=admin,
            intruder=intruder,
            record_path=base,
            requests=[
                ("GET", f"{base}/stages", None),
                ("POST", f"{base}/stages", {"name": "Injected"}),
                ("PATCH", f"{base}/stages/{first}", {"name": "Hijacked"}),
                ("DELETE", f"{base}/stages/{first}", None),
                ("POST", f"{base}/stages/reorder", {"stage_ids": [first]}),
            ],
            list_path=PIPELINES,
            search_term="secret",
        )
        stages = await client.get(f"{base}/stages", headers=admin.headers)
        assert names(stages.json()["data"]) == names(pipeline["stages"])
