"""Webhook fan-out, from commit to receiver: the last phase of `make bench` (`--fanout`).

A receiver on loopback (`receiver`, its own uvicorn process) counts the deliveries that reach it
and, for each, the time since the event's `timestamp` (when it was recorded, in the transaction
of its change). Rapport, allowed private targets, gets `--fanout-endpoints` webhook endpoints
subscribed to `contact.created`; bulk writes then create `--fanout` contacts, and the bench waits
until every delivery has arrived. Figures: deliveries per second (from the first request to the
last arrival) and, since a burst's latency is mostly its queue, p50 and p99 of commit-to-receiver
latency measured apart at a steady trickle (`TRICKLE` single creates, `TRICKLE_RATE` a second).

The floor: the same number of Standard Webhooks deliveries (the same envelopes, signed the same
way) POSTed to the same receiver by a bare httpx client with as many at once as Rapport's two
workers run delivery jobs (10 each): what the receiver and loopback HTTP allow, with no database,
outbox or job queue between the commit and the POST.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

RECEIVER_PORT = 8102
CONCURRENCY = 20  # Rapport: 2 workers × min(worker_concurrency 50, db_pool_size 20 // 2)
EVENT = "contact.created"
TRICKLE, TRICKLE_RATE = 200, 20

# -- the receiver (its own process) ------------------------------------------------------------
_arrivals: list[tuple[float, float]] = []  # (arrival, seconds since the event's timestamp)


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _hook(request: Request) -> Response:
    body = orjson.loads(await request.body())
    now = time.time()
    _arrivals.append((now, now - _timestamp(body["timestamp"])))
    return Response(status_code=204)


async def _stats(_request: Request) -> Response:
    latencies = sorted(lag for _, lag in _arrivals)
    arrivals = [at for at, _ in _arrivals]
    return JSONResponse(
        {
            "count": len(_arrivals),
            "first": min(arrivals, default=None),
            "last": max(arrivals, default=None),
            "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None,
        }
    )


async def _reset(_request: Request) -> Response:
    _arrivals.clear()
    return Response(status_code=204)


receiver = Starlette(
    routes=[
        Route("/hook/{n}", _hook, methods=["POST"]),
        Route("/stats", _stats),
        Route("/reset", _reset, methods=["POST"]),
    ]
)


# -- the measurement -----------------------------------------------------------------------------
def _stats_of(client: httpx.Client) -> dict[str, Any]:
    return client.get("/stats").json()


def _wait_for(client: httpx.Client, count: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stats = _stats_of(client)
        if stats["count"] >= count or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


def _rapport(
    api: httpx.Client, key: str, events: int, endpoints: int, bulk_once: Any
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    made = []
    for n in range(endpoints):
        resp = api.post(
            "/api/v1/webhooks",
            json={"url": f"http://127.0.0.1:{RECEIVER_PORT}/hook/{n}", "events": [EVENT]},
            headers=headers,
        )
        if resp.status_code != 201:
            raise RuntimeError(f"webhook endpoint refused: {resp.status_code} {resp.text[:300]}")
        made.append(resp.json()["data"]["id"])
    with httpx.Client(base_url=f"http://127.0.0.1:{RECEIVER_PORT}", timeout=30) as rx:
        rx.post("/reset")
        started = time.time()
        for b in range(events // 1000):
            bulk_once(api, key, f"fan{uuid.uuid4().hex[:8]}{b}")
        stats = _wait_for(rx, events * endpoints, timeout=600)
        rx.post("/reset")
        for i in range(TRICKLE):
            resp = api.post(
                "/api/v1/contacts",
                json={"first_name": "Trickle", "email": f"trickle-{uuid.uuid4().hex}-{i}@x.io"},
                headers=headers,
            )
            resp.raise_for_status()
            time.sleep(1 / TRICKLE_RATE)
        steady = _wait_for(rx, TRICKLE * endpoints, timeout=120)
    for endpoint_id in made:  # the later phases (none today) would otherwise deliver too
        api.delete(f"/api/v1/webhooks/{endpoint_id}", headers=headers)
    delivered = stats["count"]
    return {
        "deliveries": delivered,
        "expected": events * endpoints,
        "per_s": delivered / (stats["last"] - started) if delivered else 0.0,
        "burst_p50_ms": stats["p50_ms"],
        "burst_p99_ms": stats["p99_ms"],
        "trickle_per_s": TRICKLE_RATE,
        "trickle_deliveries": steady["count"],
        "p50_ms": steady["p50_ms"],
        "p99_ms": steady["p99_ms"],
    }


async def _floor(deliveries: int) -> dict[str, Any]:
    """`deliveries` signed envelopes POSTed `CONCURRENCY` at a time, as a sender with nothing
    between it and the receiver would."""
    from standardwebhooks import Webhook

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    signer = Webhook(secret)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(deliveries):
        queue.put_nowait(i)

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            msg_id = str(uuid.uuid4())
            now = datetime.now(UTC)
            body = orjson.dumps(
                {
                    "id": msg_id,
                    "type": EVENT,
                    "timestamp": now.isoformat().replace("+00:00", "Z"),
                    "data": {"id": str(uuid.uuid4()), "email": f"floor{i}@bench.example.com"},
                }
            ).decode()
            headers = {
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signer.sign(msg_id=msg_id, timestamp=now, data=body),
            }
            resp = await client.post(f"/hook/{i % 4}", content=body, headers=headers)
            resp.raise_for_status()

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{RECEIVER_PORT}", limits=limits, timeout=30
    ) as client:
        await client.post("/reset")
        started = time.time()
        await asyncio.gather(*(sender(client) for _ in range(CONCURRENCY)))
        stats = (await client.get("/stats")).json()
    return {
        "deliveries": stats["count"],
        "per_s": stats["count"] / (stats["last"] - started),
        "p50_ms": stats["p50_ms"],
        "p99_ms": stats["p99_ms"],
    }


def measure(
    rapport_env: dict[str, str],
    key: str,
    events: int,
    endpoints: int,
    workers: int,
) -> dict[str, Any]:
    """Rapport's fan-out, then the floor's, each delivering `events` × `endpoints`."""
    from bench.run import RAPPORT_PORT, bulk_api_once, serve, stop

    rx = serve("bench.fanout:receiver", RECEIVER_PORT, {}, 1, False)
    try:
        env = {**rapport_env, "RAPPORT_WEBHOOKS_ALLOW_PRIVATE": "true"}
        api_server = serve("rapport.main:create_app", RAPPORT_PORT, env, workers, True)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{RAPPORT_PORT}", timeout=120) as api:
                ours = _rapport(api, key, events, endpoints, bulk_api_once)
        finally:
            stop(api_server)
        floor = asyncio.run(_floor(events * endpoints))
    finally:
        stop(rx)
    return {
        "events": events,
        "endpoints": endpoints,
        "rapport": ours,
        "floor": floor,
        "ratio": ours["per_s"] / floor["per_s"] if floor["per_s"] else 0.0,
    }
