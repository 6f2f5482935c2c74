"""Cross-node live update latency: prints numbers, writes JSON. Not a test.

    .venv/bin/python scripts/bench_live.py --database-url postgresql+psycopg://... \\
        [--redis-url redis://127.0.0.1:6379/0] [--rounds 200] [--json var/bench_live.json]

Starts two real ``roomscribe serve`` nodes ("web-a", "web-b") on the given
PostgreSQL database (**every table in it is dropped first**) and Redis, builds
the tests' clinic world, and has partner alice claim and release one draft on
node A ``--rounds`` times. Physician dr_north's review socket is open on both
nodes; per change it records, from the moment alice's request is sent:

- ``same_node_ms``: until the change reaches dr_north's socket on node A
  (request, commit, local fan-out);
- ``cross_node_ms``: until it reaches his socket on node B (the same, plus the
  hop through Redis pub/sub to the other node): the figure the issue targets
  (p95 ≤ 250 ms);
- ``bus_hop_ms``: cross minus same, per change: what the second node costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' clinic world

import websockets

from server.db import Database
from tests.cluster.conftest import WebNodes
from tests.review.world import UserClient, add_encounter, build_world
from tests.support import reset_database


def _pct(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 2),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
            "max": round(ordered[-1], 2), "n": len(ordered)}


async def _socket(http_url: str, client: UserClient) -> Any:
    port = http_url.rsplit(":", 1)[1]
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/review", open_timeout=15,
        additional_headers={"Cookie": f"rs_session={client.http.cookies.get('rs_session')}"})
    await asyncio.wait_for(ws.recv(), 15)  # hello
    return ws


async def _arrival(ws: Any, action: str) -> float:
    """perf_counter() when the next change made by ``action`` arrives."""
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if msg["type"] == "item-changed" and msg["action"] == action:
            return time.perf_counter()


async def _measure(nodes: WebNodes, item: str, rounds: int) -> dict[str, list[float]]:
    a, b = nodes["web-a"], nodes["web-b"]
    alice = await asyncio.to_thread(UserClient, a.http_url, "alice")
    dr_a = await asyncio.to_thread(UserClient, a.http_url, "dr_north")
    dr_b = await asyncio.to_thread(UserClient, b.http_url, "dr_north")
    on_a, on_b = await _socket(a.http_url, dr_a), await _socket(b.http_url, dr_b)
    same, cross, hop = [], [], []
    try:
        for n in range(rounds):
            action = "claim" if n % 2 == 0 else "release"
            t0 = time.perf_counter()
            post = asyncio.to_thread(alice.post, f"/api/v1/review/items/{item}/{action}")
            response, t_a, t_b = await asyncio.gather(post, _arrival(on_a, action),
                                                      _arrival(on_b, action))
            if response.status_code != 200:
                raise RuntimeError(f"{action}: HTTP {response.status_code} {response.text}")
            same.append((t_a - t0) * 1000)
            cross.append((t_b - t0) * 1000)
            hop.append((t_b - t_a) * 1000)
    finally:
        for ws in (on_a, on_b):
            await ws.close()
        for client in (alice, dr_a, dr_b):
            client.close()
    return {"same_node_ms": same, "cross_node_ms": cross, "bus_hop_ms": hop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "ROOMSCRIBE_TEST_DATABASE_URL", ""), help="PostgreSQL; all its tables are dropped")
    parser.add_argument("--redis-url", default=os.environ.get(
        "ROOMSCRIBE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL URL (several nodes share it)")
    reset_database(args.database_url)
    with tempfile.TemporaryDirectory(prefix="bench_live_") as tmp:
        nodes = WebNodes(Path(tmp), args.database_url, args.redis_url,
                         f"bench{secrets.token_hex(3)}")
        try:
            nodes.start()
            db = Database(args.database_url)
            try:
                build_world(db)
                _, item = add_encounter(db, "exam-1")
            finally:
                db.dispose()
            assert item is not None
            samples = asyncio.run(_measure(nodes, item, args.rounds))
        finally:
            nodes.close()
    result: dict[str, Any] = {
        "rounds": args.rounds, "machine": platform.platform(),
        "cpus": os.cpu_count(), **{k: _pct(v) for k, v in samples.items()},
        "target": {"cross_node_p95_ms": 250},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
