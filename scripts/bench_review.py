"""Review-queue timings on this machine: prints numbers, writes JSON. Not a test.

    .venv/bin/python scripts/bench_review.py [--drafts 300] [--json var/bench_review.json]
                                             [--database-url postgresql+psycopg://...]

Measures, on a fresh database (SQLite in a temp dir by default):

- ``intake_ms``: ``submit_draft`` — store the draft as version 1, route it,
  commit — until the live update reaches a subscribed browser queue (p50/p95);
- ``queue_ms``: a partner's queue (access rule + lease + ordering) with
  ``--drafts`` open drafts (p50);
- ``claim_ms``, ``save_ms``, ``sign_ms``: one claim, one edit (new version),
  one signature (diff + FHIR bundle built and validated), p50/p95;
- ``claim_race``: rounds of two threads claiming the same draft at once, and how
  many rounds had exactly one winner.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' clinic world

from server.migrate import upgrade
from server.models import utcnow
from server.review import directory, submit_draft, workflow
from server.review.auth import load_principal
from server.review.document import OrderChange
from server.review.errors import ClaimHeld
from server.review.lifecycle import Action
from server.review.live import hub_of
from server.review.queue import list_queue
from server.services import Services
from server.settings import Settings
from tests.review.world import add_encounter, build_world, make_draft, make_transcript
from tests.support import reset_database


def _pct(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"p50": round(statistics.median(values), 2),
            "p95": round(values[int(0.95 * (len(values) - 1))], 2), "n": len(values)}


async def _intake(services: Services, encounters: list[str]) -> list[float]:
    with services.db.session() as s:
        who = load_principal(s, directory.get_user(s, "alice"), "bench")
    sub = hub_of(services).subscribe(who, {"north-general"})
    times = []
    for enc in encounters:
        t0 = time.perf_counter()
        await submit_draft(services, enc, make_draft(enc), make_transcript(enc))
        await asyncio.wait_for(sub.queue.get(), timeout=10)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--drafts", type=int, default=300)
    p.add_argument("--races", type=int, default=30)
    p.add_argument("--database-url", default="")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-review-"))
    if args.database_url:
        reset_database(args.database_url)
    settings = Settings(data_dir=tmp, database_url=args.database_url)
    services = Services.build(settings)
    upgrade(services.db)
    build_world(services.db)
    encounters = [add_encounter(services.db, "exam-1", draft=False)[0]
                  for _ in range(args.drafts)]
    intake = asyncio.run(_intake(services, encounters))

    db = services.db
    with db.session() as s:
        alice = load_principal(s, directory.get_user(s, "alice"), "bench")
        doc = load_principal(s, directory.get_user(s, "dr_north"), "bench")
        items = [e.item_id for e in list_queue(s, alice, utcnow(), limit=100_000)]
    queue_ms = []
    for _ in range(20):
        with db.session() as s:
            t0 = time.perf_counter()
            list_queue(s, alice, utcnow(), limit=100_000)
            queue_ms.append((time.perf_counter() - t0) * 1000)

    claim_ms, save_ms, sign_ms = [], [], []
    decided = [OrderChange(o, "accepted") for o in ("o1", "o2", "o3")]
    for item in items[:50]:
        with db.session() as s:
            t0 = time.perf_counter()
            workflow.act(s, alice, item, Action.CLAIM, utcnow())
            s.commit()
            t1 = time.perf_counter()
            workflow.edit(s, alice, item, 1, {"plan": "Start lisinopril 20 mg daily."}, decided,
                          utcnow())
            s.commit()
            t2 = time.perf_counter()
            workflow.act(s, alice, item, Action.SEND, utcnow())
            s.commit()
            t3 = time.perf_counter()
            workflow.act(s, doc, item, Action.SIGN, utcnow(), attest=True,
                         acknowledged=["no-patient"])
            s.commit()
            t4 = time.perf_counter()
        claim_ms.append((t1 - t0) * 1000)
        save_ms.append((t2 - t1) * 1000)
        sign_ms.append((t4 - t3) * 1000)

    one_winner = 0
    with db.session() as s:
        bob = load_principal(s, directory.get_user(s, "bob"), "bench")
    for item in items[50:50 + args.races]:
        barrier, results = threading.Barrier(2), []

        def claim(who: Any, item: str = item, barrier: threading.Barrier = barrier,
                  results: list[str] = results) -> None:
            barrier.wait(timeout=10)
            with db.session() as s:
                try:
                    workflow.act(s, who, item, Action.CLAIM, utcnow())
                    results.append("won")
                except ClaimHeld:
                    results.append("lost")

        threads = [threading.Thread(target=claim, args=(w,)) for w in (alice, bob)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        one_winner += sorted(results) == ["lost", "won"]

    result = {
        "database": db.engine.dialect.name,
        "drafts_in_queue": len(items),
        "intake_ms": _pct(intake),
        "queue_ms": _pct(queue_ms),
        "claim_ms": _pct(claim_ms),
        "save_ms": _pct(save_ms),
        "sign_ms": _pct(sign_ms),
        "claim_race": {"rounds": args.races, "exactly_one_winner": one_winner},
    }
    asyncio.run(services.aclose())
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
