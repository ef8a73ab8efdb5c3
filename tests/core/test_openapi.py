"""The checked-in openapi.json matches the code, and every route documents itself."""

from __future__ import annotations

import json
from pathlib import Path

from rapport.cli import render_openapi

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_spec_is_current():
    current = render_openapi()
    checked_in = (ROOT / "openapi.json").read_text()
    assert checked_in == current, "openapi.json is stale: run `make openapi` and commit it"


def test_every_operation_has_summary_stable_id_and_errors():
    spec = json.loads(render_openapi())
    assert spec["openapi"].startswith("3.1")
    seen = set()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op.get("summary"), f"{method} {path} has no summary"
            op_id = op["operationId"]
            assert op_id not in seen and "_" not in op_id, op_id
            seen.add(op_id)
            if op.get("security") != []:
                assert "401" in op["responses"], f"{method} {path} does not document 401"
    assert {"tags-list", "tags-create", "auth-login", "users-list", "api-keys-create"} <= seen


def test_list_filters_are_documented():
    spec = json.loads(render_openapi())
    params = {p["name"] for p in spec["paths"]["/api/v1/tags"]["get"]["parameters"]}
    assert {
        "limit",
        "cursor",
        "sort_by",
        "sort_order",
        "search",
        "include_total",
        "name",
        "created_at[gte]",
        "version[lt]",
    } <= params
