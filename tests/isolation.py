"""The cross-workspace isolation check every module's tests call.

`assert_isolated` creates nothing: give it a record that belongs to `owner`'s workspace and the
requests that address it; each one, made by `intruder` (a user of another workspace, even an admin),
must answer 404 with the envelope, and the owner's record must be unchanged afterwards. The list
check proves the record does not appear in the intruder's lists or searches either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from tests.factories import Account

Request = tuple[str, str, dict[str, Any] | None]


async def assert_isolated(
    client: httpx.AsyncClient,
    *,
    owner: Account,
    intruder: Account,
    record_path: str,
    requests: Sequence[Request] = (),
    list_path: str | None = None,
    search_term: str | None = None,
) -> None:
    before = await client.get(record_path, headers=owner.headers)
    assert before.status_code == 200, before.text
    default: list[Request] = [
        ("GET", record_path, None),
        ("PATCH", record_path, {}),
        ("DELETE", record_path, None),
        ("POST", f"{record_path}/restore", None),
    ]
    for method, path, body in [*default, *requests]:
        response = await client.request(method, path, json=body, headers=intruder.headers)
        assert response.status_code == 404, f"{method} {path} by another workspace: {response.text}"
        payload = response.json()
        assert payload["success"] is False and payload["error"]["code"].endswith("not_found")
    if list_path is not None:
        record_id = before.json()["data"]["id"]
        params = {"limit": 200}
        if search_term:
            params["search"] = search_term
        listed = await client.get(list_path, params=params, headers=intruder.headers)
        assert listed.status_code == 200, listed.text
        assert record_id not in {row["id"] for row in listed.json()["data"]}
    after = await client.get(record_path, headers=owner.headers)
    assert after.status_code == 200
    assert after.json()["data"] == before.json()["data"], "another workspace changed the record"
