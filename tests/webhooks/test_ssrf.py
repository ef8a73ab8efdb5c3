"""Webhooks never reach internal addresses unless the operator allows them: refused when an
endpoint is saved (422 with a clear code) and again at every connection, where the HTTP client
resolves, vets and connects to the vetted address itself (DNS rebinding has no second lookup)."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest

from rapport.core.background import Background
from rapport.main import create_app
from rapport.webhooks.ssrf import GuardedTransport, address_problem, refusal_of
from tests.conftest import base_settings, client_for
from tests.factories import register
from tests.webhooks.factories import create_contact, create_endpoint, deliveries
from tests.webhooks.test_delivery import close

BASE = "/api/v1/webhooks"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "2002:a00:1::",  # 6to4 around 10.0.0.1
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address), allow_private=False) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:2800:220:1::1"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address), allow_private=False) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"])
def test_metadata_addresses_are_refused_even_when_private_is_allowed(address: str) -> None:
    assert "metadata" in (address_problem(ipaddress.ip_address(address), allow_private=True) or "")
    assert address_problem(ipaddress.ip_address("10.0.0.1"), allow_private=True) is None


class TestWhenSaved:
    @pytest.mark.parametrize(
        ("url", "code"),
        [
            ("https://127.0.0.1/hook", "webhook_url_private"),
            ("https://10.20.30.40/hook", "webhook_url_private"),
            ("https://169.254.169.254/latest/meta-data", "webhook_url_private"),
            ("https://localhost:8443/hook", "webhook_url_private"),  # resolves to loopback
            ("https://[::1]/hook", "webhook_url_private"),
            ("https://[::ffff:7f00:1]/hook", "webhook_url_private"),
            ("https://metadata.google.internal/computeMetadata", "webhook_url_private"),
            ("https://0x7f000001/hook", "webhook_url_private"),  # 127.0.0.1 spelled in hex
            ("http://93.184.216.34/hook", "webhook_url_insecure"),
            ("ftp://93.184.216.34/hook", "webhook_url_invalid"),
            ("https:///no-host", "webhook_url_invalid"),
            ("https://93.184.216.34:99999/", "webhook_url_invalid"),
            ("https://exa mple.com/", "webhook_url_invalid"),
            ("https://no-such-host.invalid/hook", "webhook_url_unresolvable"),
        ],
    )
    async def test_refused_urls(self, client: Any, url: str, code: str) -> None:
        admin = await register(client)
        response = await client.post(BASE, json={"url": url}, headers=admin.headers)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == code
        assert error["details"][0]["field"] == "body.url"

    async def test_an_update_is_checked_too(self, client: Any) -> None:
        admin = await register(client)
        endpoint = await create_endpoint(client, admin)
        response = await client.patch(
            f"{BASE}/{endpoint['id']}", json={"url": "https://localhost/x"}, headers=admin.headers
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "webhook_url_private"
        got = await client.get(f"{BASE}/{endpoint['id']}", headers=admin.headers)
        assert got.json()["data"]["url"] == endpoint["url"]

    async def test_the_operator_can_allow_http_to_public_addresses(
        self, settings: Any, database: Any
    ) -> None:
        app = create_app(
            base_settings(database_url=settings.database_url, webhooks_allow_http=True),
            db=database,
        )
        async with client_for(app) as client:
            admin = await register(client)
            await create_endpoint(client, admin, url="http://93.184.216.34/hook")
            private = await client.post(
                BASE, json={"url": "http://127.0.0.1/hook"}, headers=admin.headers
            )
            assert private.json()["error"]["code"] == "webhook_url_private"


class TestWhenSending:
    async def test_each_connection_is_vetted_again(
        self, hooks: Any, settings: Any, database: Any, receiver: Any
    ) -> None:
        """Saved while private targets were allowed, sent by a process where they are not (as
        when DNS changes after the check): the attempt is refused and nothing reaches the host."""
        admin = await register(hooks)
        endpoint = await create_endpoint(hooks, admin, url=receiver.url, events=["contact.*"])
        await create_contact(hooks, admin)
        strict = Background(
            base_settings(
                database_url=settings.database_url,
                data_dir=settings.data_dir,
                webhooks_allow_http=True,  # the receiver speaks http: only the address is at stake
            ),
            database,
        )
        try:
            await strict.drain()
        finally:
            await close(strict)
        assert receiver.received == []
        [refused] = await deliveries(hooks, admin, endpoint["id"])
        assert refused["status"] == "pending" and refused["attempt_count"] == 1
        assert refused["last_error"].startswith("webhook_url_private: 127.0.0.1")

    async def test_the_client_vets_hostnames_at_connect_time(self, receiver: Any) -> None:
        url = f"http://localhost:{receiver.port}/hook"
        limits = httpx.Limits(max_connections=5)
        strict = GuardedTransport(allow_private=False, resolve_timeout=2.0, limits=limits)
        async with httpx.AsyncClient(transport=strict) as client:
            with pytest.raises(httpx.ConnectError) as raised:
                await client.post(url, content=b"{}")
        refusal = refusal_of(raised.value)
        assert refusal is not None and refusal.code == "webhook_url_private"
        assert "resolves to a refused address" in refusal.reason
        assert receiver.received == []

        lenient = GuardedTransport(allow_private=True, resolve_timeout=2.0, limits=limits)
        async with httpx.AsyncClient(transport=lenient) as client:
            response = await client.post(url, content=b"{}")
        assert response.status_code == 200 and len(receiver.received) == 1

    async def test_redirects_are_not_followed(self, hooks: Any, receiver: Any) -> None:
        admin = await register(hooks)
        endpoint = await create_endpoint(hooks, admin, url=receiver.url)
        receiver.default = 302
        tested = (await hooks.post(f"{BASE}/{endpoint['id']}/test", headers=admin.headers)).json()
        assert tested["data"]["status"] == "failed"
        assert tested["data"]["attempts"][0]["error"] == "HTTP 302"
        assert len(receiver.received) == 1
