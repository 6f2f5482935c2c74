"""Cluster benchmark: rooms kept in real time with 1, 2, 3 worker processes.

    python scripts/bench_cluster.py --database-url postgresql+psycopg://... \\
        [--workers 1,2,3] [--levels 2,4,6,8,12,16] [--visit-s 60] [--cores-per-worker N] \\
        [--engine whisper|tones] [--baseline] [--json OUT.json]

For each worker count W: a fresh PostgreSQL schema, one ``roomscribe serve`` with no
stages of its own (ingest and web only), W ``roomscribe worker --stages
transcription,drafting`` processes, each pinned to its own ``--cores-per-worker``
cores (``sched_setaffinity``; the server and the agents get the cores left). Then
levels of N rooms: N ``roomscribe-device`` agents stream synthesized ACI-BENCH visits
(``--engine tones``: the tone visits of tests/cluster, a smoke run) in real time. A
level passes when every room's transcript completed and no room fell behind
(``behind_events`` = 0 in its transcription row: its backlog never crossed
``asr_behind_threshold_s``). ``capacity`` is the largest passing level; the levels
stop at the first failure. End of visit → transcript and → draft (the last stored
frame to the draft's arrival in the queue) are reported per level, p50/p95.

``--baseline``: the same levels on ``roomscribe serve`` alone (SQLite, every stage in
the one process, its cores = ``--cores-per-worker``), the default installation.

``linearity`` = capacity(W) / (W × capacity(1)): the issue's target is ≥ 0.8.
Numbers depend on the machine: run it where the workers get dedicated cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from sqlalchemy import select  # noqa: E402

from server.db import Database  # noqa: E402
from server.lab.processes import BIN, Room, RoomLab  # noqa: E402
from server.models import Encounter  # noqa: E402
from server.review.models import ReviewItem  # noqa: E402
from server.transcripts.tables import TranscriptionRow  # noqa: E402


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def reset(url: str) -> None:
    from tests.support import reset_database

    reset_database(url)


def core_slices(workers: int, per_worker: int) -> tuple[list[set[int]], set[int]]:
    """Cores for each worker, and the rest (server, agents)."""
    cores = sorted(os.sched_getaffinity(0))
    if per_worker * workers >= len(cores):
        raise SystemExit(f"{workers} workers × {per_worker} cores leave none of the "
                         f"{len(cores)} cores for the server and the agents")
    slices = [set(cores[i * per_worker:(i + 1) * per_worker]) for i in range(workers)]
    return slices, set(cores[workers * per_worker:])


def visit_wavs(engine: str, n: int, seconds: float, workdir: Path) -> list[Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    if engine == "tones":
        from tests.cluster.test_worker_tones import tone_visit, write_wav

        utterances = max(1, int(seconds / 1.1))
        return [write_wav(tone_visit(utterances), workdir / f"tones-{i}.wav")
                if not (workdir / f"tones-{i}.wav").exists() else workdir / f"tones-{i}.wav"
                for i in range(n)]
    from bench_rooms import visits

    return list(visits(n, seconds, workdir))


class Cluster:
    """A server (stages off, or all of them for the baseline) and W pinned workers."""

    def __init__(self, workdir: Path, url: str, engine: str, workers: int,
                 per_worker: int, baseline: bool) -> None:
        self.workdir = workdir
        self.engine = engine
        env: dict[str, str] = {"ROOMSCRIBE_NODE_ID": "web", "ROOMSCRIBE_STAGE_POLL_S": "0.2"}
        if engine == "tones":
            env.update(ROOMSCRIBE_ASR_ENGINE="none", ROOMSCRIBE_DRAFTING="false")
        self.baseline = baseline
        if not baseline:
            env["ROOMSCRIBE_RUN_STAGES"] = "none"
        self.lab = RoomLab(workdir / "web", database_url="" if baseline else url,
                           extra_env=env)
        slices, rest = core_slices(workers if not baseline else 1, per_worker)
        self.server_cores = slices[0] if baseline else rest
        self.worker_cores = [] if baseline else slices
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        cores = self.server_cores
        self.lab.start_server(timeout=180)
        assert self.lab.server_pid is not None
        os.sched_setaffinity(self.lab.server_pid, cores)
        for i, cores in enumerate(self.worker_cores):
            name = f"worker-{i + 1}"
            env = {**self.lab.env, "ROOMSCRIBE_NODE_ID": name,
                   "ROOMSCRIBE_DATA_DIR": str(self.workdir / name),
                   "ROOMSCRIBE_ASR_WORKERS": str(len(cores))}
            if self.engine == "tones":
                cmd = [sys.executable, "-m", "tests.cluster.test_worker_tones", "worker",
                       "--stages", "transcription"]
            else:
                cmd = [str(BIN / "roomscribe"), "worker", "--stages", "transcription,drafting"]
            log = (self.workdir / f"{name}.log").open("ab")
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT,
                                    preexec_fn=lambda c=cores: os.sched_setaffinity(0, c))  # type: ignore[misc]
            self.procs.append(proc)
        deadline = time.monotonic() + 180
        for i, proc in enumerate(self.procs):
            log_path = self.workdir / f"worker-{i + 1}.log"
            while "jobs; database" not in log_path.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"worker {i + 1} did not start; see {log_path}")
                time.sleep(0.2)

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.lab.close()


def run_level(cluster: Cluster, rooms: list[Room], wavs: list[Path], db: Database,
              drafting: bool, timeout: float) -> dict[str, Any]:
    agents = [cluster.lab.start_agent(room, wav, speed=1.0)
              for room, wav in zip(rooms, wavs, strict=True)]
    for agent in agents:
        agent.wait(timeout=timeout)
    room_ids = {r.room_id for r in rooms}
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = encounter_rows(db, room_ids)
        if len(rows) == len(rooms) and all(r["done"] and (r["draft_ms"] is not None
                                                          or not drafting) for r in rows):
            break
        time.sleep(0.5)
    kept = [r for r in rows if r["done"] and r["behind_events"] == 0]
    return {"rooms": len(rooms), "kept_up": len(kept), "passed": len(kept) == len(rooms),
            "max_backlog_s": max((r["max_backlog_s"] for r in rows), default=None),
            "end_to_transcript_ms_p50": percentile([r["transcript_ms"] for r in rows
                                                    if r["transcript_ms"] is not None], 0.5),
            "end_to_transcript_ms_p95": percentile([r["transcript_ms"] for r in rows
                                                    if r["transcript_ms"] is not None], 0.95),
            "end_of_visit_to_draft_ms_p50": percentile([r["draft_ms"] for r in rows
                                                        if r["draft_ms"] is not None], 0.5),
            "end_of_visit_to_draft_ms_p95": percentile([r["draft_ms"] for r in rows
                                                        if r["draft_ms"] is not None], 0.95)}


def encounter_rows(db: Database, room_ids: set[str]) -> list[dict[str, Any]]:
    """Per encounter of these rooms (the newest each): done, lag, latencies."""
    out: dict[str, dict[str, Any]] = {}
    with db.session() as s:
        for enc in s.scalars(select(Encounter).where(Encounter.room_id.in_(room_ids))
                             .order_by(Encounter.created_at)):
            t = s.get(TranscriptionRow, enc.id)
            item = s.scalars(select(ReviewItem).where(ReviewItem.encounter_id == enc.id)
                             ).first()
            draft_ms = None
            if item is not None:
                draft_ms = (item.received_at - enc.updated_at).total_seconds() * 1000
            out[enc.room_id] = {
                "done": t is not None and t.status == "complete",
                "behind_events": t.behind_events if t else None,
                "max_backlog_s": t.max_backlog_s if t else None,
                "transcript_ms": t.end_to_transcript_ms if t else None,
                "draft_ms": draft_ms}
    return list(out.values())


def measure(args: argparse.Namespace, workers: int, baseline: bool) -> dict[str, Any]:
    url = "" if baseline else args.database_url
    if url:
        reset(url)
    name = "baseline" if baseline else f"{workers}-workers"
    workdir = args.workdir / name
    cluster = Cluster(workdir, url, args.engine, workers, args.cores_per_worker, baseline)
    levels: list[dict[str, Any]] = []
    cluster.start()
    try:
        db = Database(cluster.lab.env.get("ROOMSCRIBE_DATABASE_URL")
                      or f"sqlite:///{(workdir / 'web' / 'server' / 'roomscribe.db').resolve()}")
        clinic = cluster.lab.roomscribe("admin", "clinic", "add", "Bench Clinic")["id"]
        cluster.lab.roomscribe("retention", "policy", clinic, "--consent-required", "off")
        rooms: list[Room] = []
        for n in args.levels:
            while len(rooms) < n:
                rooms.append(cluster.lab.add_room(f"bench-{len(rooms):02d}",
                                                  clinic="Bench Clinic"))
            wavs = visit_wavs(args.engine, n, args.visit_s, args.workdir / "wavs")
            level = run_level(cluster, rooms[:n], wavs, db, args.engine != "tones",
                              timeout=args.visit_s * 3 + 120)
            levels.append(level)
            print(f"{name}: {n} rooms: {level['kept_up']} kept up; draft p95 "
                  f"{level['end_of_visit_to_draft_ms_p95']} ms", flush=True)
            if not level["passed"]:
                break
        db.dispose()
    finally:
        cluster.close()
    passing = [lv["rooms"] for lv in levels if lv["passed"]]
    return {"workers": 0 if baseline else workers, "baseline": baseline,
            "cores_per_worker": args.cores_per_worker, "capacity": max(passing, default=0),
            "levels": levels}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", default=os.environ.get(
        "ROOMSCRIBE_BENCH_DATABASE_URL", os.environ.get("ROOMSCRIBE_TEST_DATABASE_URL", "")),
        help="PostgreSQL (its schema is dropped and made again)")
    p.add_argument("--workers", default="1,2,3")
    p.add_argument("--levels", default="2,4,6,8,12,16")
    p.add_argument("--visit-s", type=float, default=60.0)
    p.add_argument("--cores-per-worker", type=int, default=2)
    p.add_argument("--engine", choices=["whisper", "tones"], default="whisper")
    p.add_argument("--baseline", action="store_true",
                   help="also the one-process SQLite server with the same cores")
    p.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench_cluster")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if not args.database_url.startswith("postgresql"):
        print("bench_cluster: give --database-url postgresql+psycopg://... (workers share "
              "PostgreSQL)", file=sys.stderr)
        return 2
    if args.baseline and args.engine == "tones":
        print("bench_cluster: --baseline needs a real engine (the server alone cannot load "
              "the tone engine)", file=sys.stderr)
        return 2
    args.levels = [int(x) for x in args.levels.split(",") if x]
    runs = [measure(args, 1, True)] if args.baseline else []
    runs += [measure(args, int(w), False) for w in args.workers.split(",") if w]
    one = next((r["capacity"] for r in runs if r["workers"] == 1), 0)
    for r in runs:
        if r["workers"] and one:
            r["linearity"] = round(r["capacity"] / (r["workers"] * one), 2)
    summary = {"engine": args.engine, "visit_s": args.visit_s, "cpu_count": os.cpu_count(),
               "runs": runs}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
