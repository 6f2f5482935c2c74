"""Login flood benchmark: do 100 concurrent bad logins slow down everyone else?

    python scripts/bench_login_flood.py [--seconds 20] [--concurrency 100] [--json OUT.json]
                                        [--set password_hash_concurrency=1 ...]
                                        [--database-url postgresql+psycopg://...]

A real ``roomscribe serve`` (its own process, SQLite in a temporary data directory
unless ``--database-url``, production argon2 cost, no ASR or drafting) on a free
loopback port. One signed-in client (a bearer API token) reads ``GET
/api/v1/auth/me`` in a loop, first alone (``baseline``), then while ``--concurrency``
clients (another process, asyncio) post bad logins as fast as they are answered for
``--seconds``. Two floods:

- ``one_address``: the clinic's defaults; the flood comes from one address (loopback),
  so after ``login_ip_failures`` failures it gets 429s;
- ``many_addresses``: the per-address limit lifted (as for a flood from many addresses,
  or behind a proxy without ``--proxy-headers``): every login reaches the hashing gate.

Prints and writes (``--json``) the reader's p50 / p95 / max latency and request count,
and the flood's answers by status, per flood. The target (issue 16): reader p95 under
200 ms. Numbers depend on the machine (cores, other load): say which.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.db import Database  # noqa: E402
from server.migrate import upgrade  # noqa: E402
from server.review import auth, directory  # noqa: E402
from server.settings import Settings  # noqa: E402

LOGIN = "/api/v1/auth/login"
READ = "/api/v1/auth/me"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def prepare(data_dir: Path, database_url: str) -> str:
    """A clinic, the reader's account and its API token; the flood's target account."""
    settings = Settings(data_dir=data_dir, database_url=database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        upgrade(db)
        with db.session() as s:
            from server import registry

            clinic = registry.create_clinic(s, "Bench Clinic")
            reader = directory.add_user(s, "reader", "reader password 1", clinic.id,
                                        "partner")
            directory.add_user(s, "target", "target password 1", clinic.id, "physician")
            token = auth.create_user_token(s, reader.id, "bench")
        return token
    finally:
        db.dispose()


class Server:
    """``roomscribe serve`` in its own process."""

    def __init__(self, data_dir: Path, database_url: str, overrides: dict[str, str]) -> None:
        self.port = free_port()
        env = {**os.environ, "ROOMSCRIBE_DATA_DIR": str(data_dir),
               "ROOMSCRIBE_DATABASE_URL": database_url, "ROOMSCRIBE_DRAFTING": "false",
               "ROOMSCRIBE_ASR_ENGINE": "none", "ROOMSCRIBE_ENVIRONMENT": "dev"}
        env.update({f"ROOMSCRIBE_{k.upper()}": v for k, v in overrides.items()})
        self.log = (data_dir / "server.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "--log-level", "warning", "serve",
             "--port", str(self.port)], cwd=ROOT, env=env, stdout=self.log,
            stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited; see {data_dir / 'server.log'}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start within 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def _flood(url: str, concurrency: int, seconds: float) -> dict[str, int]:
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def one(i: int) -> None:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                user = "target" if (i + n) % 4 == 0 else f"nobody{i}-{n}"
                try:
                    r = await client.post(LOGIN, json={"username": user,
                                                       "password": f"guess {i} {n}"})
                    statuses[str(r.status_code)] += 1
                except httpx.HTTPError as err:
                    statuses[type(err).__name__] += 1

        await asyncio.gather(*(one(i) for i in range(concurrency)))
    return dict(statuses)


def flood_process(url: str, concurrency: int, seconds: float,
                  out: multiprocessing.queues.Queue[Any]) -> None:
    out.put(asyncio.run(_flood(url, concurrency, seconds)))


def read_for(url: str, token: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as c:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            r = c.get(READ)
            latencies.append(time.perf_counter() - started)
            if r.status_code != 200:
                raise RuntimeError(f"the reader got {r.status_code}: {r.text[:200]}")
    return latencies


def summary(latencies: list[float]) -> dict[str, Any]:
    return {"reads": len(latencies), "p50_ms": percentile(latencies, 0.5),
            "p95_ms": percentile(latencies, 0.95),
            "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None}


def run_flood(name: str, overrides: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rs_bench_login_") as tmp:
        data_dir = Path(tmp) / "server"
        if args.database_url:
            from tests.support import reset_database  # a fresh schema each flood

            reset_database(args.database_url)
        token = prepare(data_dir, args.database_url)
        server = Server(data_dir, args.database_url, overrides)
        try:
            read_for(server.url, token, 1.0)  # warm up
            baseline = summary(read_for(server.url, token, args.baseline_seconds))
            out: multiprocessing.Queue[Any] = multiprocessing.Queue()
            flood = multiprocessing.Process(target=flood_process, args=(
                server.url, args.concurrency, args.seconds, out))
            flood.start()
            time.sleep(0.5)  # the flood is under way
            during = read_for(server.url, token, args.seconds - 1.0)
            answers = out.get(timeout=args.seconds + 120)
            flood.join(timeout=30)
        finally:
            server.stop()
    result = {"flood": name, "settings": overrides, "baseline": baseline,
              "during_flood": summary(during), "flood_answers": answers,
              "flood_requests_per_s": round(sum(answers.values()) / args.seconds, 1)}
    print(f"{name:15s} baseline p50 {baseline['p50_ms']} ms p95 {baseline['p95_ms']} ms | "
          f"flood: reader p50 {result['during_flood']['p50_ms']} ms "
          f"p95 {result['during_flood']['p95_ms']} ms max {result['during_flood']['max_ms']} "
          f"ms ({result['during_flood']['reads']} reads) | answers {answers}", flush=True)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="how long each flood lasts")
    p.add_argument("--baseline-seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                   help="a server setting for both floods (e.g. password_hash_concurrency=1)")
    p.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    common = dict(item.split("=", 1) for item in args.set)
    results = [run_flood("one_address", common, args),
               run_flood("many_addresses", {**common, "login_ip_failures": "1000000"}, args)]
    report = {"machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
              "concurrency": args.concurrency, "seconds": args.seconds,
              "database": "postgresql" if args.database_url else "sqlite",
              "target_p95_ms": 200, "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
