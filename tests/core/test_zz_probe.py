import base64, orjson, time, logging
from tests.factories import register, create_tag

async def test_probe(client, backend):
    admin = await register(client)
    for method, path, params, body in [
        ("GET", "/api/v1/tags", {"cursor": base64.urlsafe_b64encode(orjson.dumps(["created_at","desc","2026-01-01", ["x"]])).decode()}, None),
        ("POST", "/api/v1/api-keys", None, {"name": "k", "expires_at": "9999-12-31T23:59:59-10:00"}),
        ("GET", "/api/v1/tags", {"version": "99999999999999999999"}, None),
    ]:
        r = await client.request(method, path, params=params, json=body, headers=admin.headers)
        print(r.status_code)
