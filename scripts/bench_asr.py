#!/usr/bin/env python3
"""ASR benchmark: accuracy on drug/dose/order turns, speed, real-time capacity, latency.

    python scripts/bench_asr.py --json OUT.json [--data ../shared/data] [--turns 40]
                                [--engines whisper,whisper-base,whisper-novocab,vosk,two-pass]
                                [--stream-seconds 45] [--max-rooms 16] [--visit-minutes 10]
                                [--voices neural|espeak] [--condition clean|reverb|...|all]

Test set: dialogue turns from splits the medical vocabulary was NOT built from
(ACI-BENCH valid/test1/test2, MTS-Dialog validation/test-1) that contain a dose
(a number + mg/milligrams/...), or an order ("order", "prescribe", "start you
on", "refill", "referral"); 8–45 words; doctor and patient; spoken in turn by
the voices of ``--voices`` with a pause between: ``neural`` (default; Piper joe,
Kokoro jf_alpha and jm_kumo, see server/lab/voices.py) or ``espeak`` (six robotic
voices: espeak-ng en-us/en-gb variants, flite slt/awb/rms; the hard condition).
Utterances are cached (~/.cache/roomscribe/speech). ``--condition`` plays the audio
in a room (server/lab/room.py: clean, reverb, reverb+20dB, reverb+10dB; a comma
list or ``all`` runs each in turn). The JSON names the voice set and condition;
with several conditions it holds one report per condition under ``conditions``.

Per engine it reports:
  wer                 word error rate on the set (normalised text, scripts in server/asr/scoring.py)
  wer_drug_terms      share of drug-name occurrences in the references missing from the
                      hypothesis of the same turn (drug names found in the reference by dose
                      position, drug-name stems, or the vocabulary: independent of the ASR)
  drug_terms_inserted drug names in a hypothesis that its reference does not have
  rtf                 engine seconds / audio seconds, one thread, finals only (partials off);
                      rtf_with_partials with the live partials on
  max_realtime_streams   most rooms fed at once in real time (100 ms chunks, each room
                      playing the clip from a different point) through the real
                      TranscriptionStage (2 workers) whose finals keep up: no room ever more
                      than the server's falling-behind threshold (5 s) behind;
                      max_realtime_streams_p95_within_2s also holds p95 final latency <= 2 s
  final_latency_ms_p50/_p95   end of an utterance's audio arriving → its final (1 room)
  end_of_visit_to_transcript_ms   a 10-minute visit: its last audio arriving → transcript stored
                      (SQLite) — the visit is fed as fast as the engine keeps up, then its last
                      10 s in real time, so the end is as in a live room
Vosk needs an English model (`roomscribe models fetch vosk-small-en-us`); without one its
rows say so.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.schema import Transcript  # noqa: E402
from server.asr.engine import BYTES_PER_SECOND, Final, SpeechEngine  # noqa: E402
from server.asr.errors import ModelNotInstalled  # noqa: E402
from server.asr.factory import build_engine  # noqa: E402
from server.asr.scoring import normalize, word_errors  # noqa: E402
from server.asr.stage import StageLimits, TranscriptionStage  # noqa: E402
from server.asr.vocabulary import BUNDLED, load_vocabulary  # noqa: E402
from server.ingest.handoff import AudioChunk, EncounterInfo  # noqa: E402
from server.lab.room import CONDITIONS, apply_condition, parse_conditions  # noqa: E402
from server.lab.voices import VOICE_SETS, EspeakVoice, Voice, speak_cached, voice_set  # noqa: E402
from server.settings import Settings  # noqa: E402

RATE = 16_000
ESPEAK_VOICES = [("espeak", "en-us+m3"), ("espeak", "en-gb+f3"), ("flite", "slt"),
                 ("flite", "awb"), ("espeak", "en-us+f2"), ("flite", "rms")]
EVAL_FILES = [("aci-bench/valid.csv", "dialogue"), ("aci-bench/clinicalnlp_taskB_test1.csv",
              "dialogue"), ("aci-bench/clinicalnlp_taskC_test2.csv", "dialogue"),
              ("mts-dialog/MTS-Dialog-ValidationSet.csv", "dialogue"),
              ("mts-dialog/MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv", "dialogue")]
DOSE = re.compile(r"\b(\d+(?:\.\d+)?)\s*(mg|milligrams?|mcg|micrograms?|units?)\b", re.I)
DRUG_BEFORE_DOSE = re.compile(r"\b([A-Za-z][A-Za-z\-]{3,})\s+(?:\d+(?:\.\d+)?)\s*(?:mg|milligrams?"
                              r"|mcg|micrograms?|units?)\b", re.I)
ORDER = re.compile(r"\b(order|prescribe|start you on|refill|referral|refer you)\b", re.I)
STEMS = ("pril", "sartan", "olol", "statin", "formin", "azole", "cillin", "mycin", "cycline",
         "floxacin", "prazole", "tidine", "dipine", "zepam", "oxetine", "sone", "olone",
         "gliptin", "gliflozin", "glutide", "parin", "xaban", "thiazide", "semide", "profen",
         "codone", "lukast", "afil")
NOT_DRUGS = {"take", "taking", "about", "around", "from", "with", "were", "dose", "than",
             "person", "reason", "season", "response", "comparison"}


@dataclass
class Utterance:
    speaker: str
    text: str
    voice: str
    start_s: float = 0.0
    end_s: float = 0.0


# ----------------------------------------------------------------------------- test set

def _turns(data: Path) -> list[tuple[str, str]]:
    out = []
    for name, column in EVAL_FILES:
        with (data / name).open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                for line in row[column].splitlines():
                    m = re.match(r"\s*\[?(doctor|patient|Doctor|Patient|guest_family|"
                                 r"Guest_family)\]?\s*[:\]]?\s*(.+)", line)
                    if m:
                        out.append((m.group(1).lower(), m.group(2).strip()))
    return out


def detokenize(text: str) -> str:
    """ACI-BENCH turns are tokenised ("do n't", "gon na", "pain , and"): undo that."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" (n't|'s|'re|'ve|'m|'ll|'d)\b", r"\1", text)
    text = re.sub(r"\b(gon|wan) na\b", r"\1na", text)
    return re.sub(r" ([,.?!;:])", r"\1", text)


def pick_turns(data: Path, count: int, vocabulary: set[str],
               seed: int = 3) -> list[tuple[str, str]]:
    """Turns with a dose or an order; those naming a drug first (two thirds of the set)."""
    chosen = []
    for speaker, text in _turns(data):
        text = detokenize(text)
        n = len(text.split())
        if 8 <= n <= 45 and (DOSE.search(text) or ORDER.search(text)):
            chosen.append((speaker if speaker == "doctor" else "patient", text))
    chosen = sorted(set(chosen))
    random.Random(seed).shuffle(chosen)
    with_drugs = [c for c in chosen if drug_terms(c[1], vocabulary)]
    others = [c for c in chosen if not drug_terms(c[1], vocabulary)]
    patients = [c for c in with_drugs + others if c[0] == "patient"][:max(1, count // 5)]
    rest = [c for c in with_drugs if c not in patients][:count * 2 // 3 - len(patients)]
    rest += [c for c in others if c not in patients][:count - len(patients) - len(rest)]
    picked = patients + rest
    random.Random(seed).shuffle(picked)
    return picked


def drug_terms(text: str, vocabulary: set[str]) -> list[str]:
    terms = [m.group(1).lower() for m in DRUG_BEFORE_DOSE.finditer(text)]
    for w in re.findall(r"[A-Za-z][A-Za-z\-]+[A-Za-z]", text):
        lw = w.lower()
        if (lw in vocabulary or (len(lw) >= 6 and lw.endswith(STEMS))) and lw not in terms:
            terms.append(lw)
    return [t for t in terms if t not in NOT_DRUGS]


@dataclass(frozen=True)
class FliteVoice:
    """A flite voice (slt, awb, rms) behind server.lab.voices.Voice."""

    voice: str

    @property
    def name(self) -> str:
        return f"flite:{self.voice}"

    @property
    def key(self) -> str:
        return f"flite|{self.voice}"

    def speak(self, text: str) -> bytes:
        from server.lab.speech import wav_to_pcm16k

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "u.wav"
            subprocess.run(["flite", "-voice", self.voice, "-t", text, "-o", str(out)],
                           check=True, capture_output=True)
            return wav_to_pcm16k(out)


def synthesize(utts: list[Utterance], voices: dict[str, Voice], gap_s: float = 1.0) -> bytes:
    parts: list[np.ndarray] = [np.zeros(int(0.5 * RATE), np.int16)]
    pos = len(parts[0])
    for u in utts:
        x = np.frombuffer(speak_cached(voices[u.voice], u.text), dtype="<i2")
        u.start_s, u.end_s = pos / RATE, (pos + len(x)) / RATE
        parts += [x, np.zeros(int(gap_s * RATE), np.int16)]
        pos += len(x) + int(gap_s * RATE)
    return np.concatenate(parts).astype("<i2").tobytes()


def available_voices(voice_set_name: str) -> dict[str, Voice]:
    """The voices that speak the test set, by label (``piper:joe``, ``espeak:en-us+m3``)."""
    if voice_set_name == "neural":
        return {v.name: v for v in voice_set("neural").values()}
    have = {"espeak": shutil.which("espeak-ng") is not None, "flite": shutil.which("flite")
            is not None}
    voices: dict[str, Voice] = {}
    for engine, name in ESPEAK_VOICES:
        if have[engine]:
            voice = EspeakVoice(name, 160) if engine == "espeak" else FliteVoice(name)
            voices[voice.name] = voice
    if not voices:
        raise SystemExit("bench_asr: needs espeak-ng or flite (scripts/setup.sh installs both)")
    return voices


# ----------------------------------------------------------------------------- measures

def decode_all(engine: SpeechEngine, pcm: bytes, chunk_s: float = 0.1) -> tuple[list[Final],
                                                                             float]:
    rec = engine.recognizer()
    step = int(chunk_s * BYTES_PER_SECOND)
    events = []
    t0 = time.perf_counter()
    for i in range(0, len(pcm), step):
        events += rec.accept(pcm[i:i + step])
    events += rec.finish()
    return [e for e in events if isinstance(e, Final) and e.text], time.perf_counter() - t0


def accuracy(utts: list[Utterance], finals: list[Final], vocabulary: set[str]) -> dict[str, Any]:
    errors = ref_words = 0
    missed = total_terms = inserted = 0
    for u in utts:
        hyp = " ".join(f.text for f in finals
                       if f.end_s > u.start_s - 0.3 and f.start_s < u.end_s + 0.3)
        ref_n, hyp_n = normalize(u.text), normalize(hyp)
        errors += word_errors(ref_n, hyp_n)
        ref_words += len(ref_n)
        hyp_joined = " " + " ".join(hyp_n) + " "
        terms = drug_terms(u.text, vocabulary)
        total_terms += len(terms)
        missed += sum(1 for t in terms if f" {' '.join(normalize(t))} " not in hyp_joined)
        ref_terms = {" ".join(normalize(t)) for t in terms}
        inserted += sum(1 for t in drug_terms(hyp, vocabulary)
                        if " ".join(normalize(t)) not in ref_terms
                        and " ".join(normalize(t)) not in " ".join(ref_n))
    return {"wer": round(errors / ref_words, 4),
            "wer_drug_terms": round(missed / total_terms, 4) if total_terms else None,
            "drug_terms_recalled": f"{total_terms - missed}/{total_terms}",
            "drug_terms_inserted": inserted, "reference_words": ref_words}


async def _rooms_in_real_time(engine: SpeechEngine, pcm: bytes, rooms: int,
                              workers: int) -> dict[str, Any]:
    from server.asr.cli import MemoryTranscripts

    class Quiet:
        def publish(self, *_: Any) -> None:
            pass

    chunk = BYTES_PER_SECOND // 10
    with ThreadPoolExecutor(workers) as pool:
        stage = TranscriptionStage(engine, pool, limits=StageLimits(behind_threshold_s=5.0))
        progresses = []

        async def room(i: int) -> None:
            stage_i = TranscriptionStage(engine, pool, MemoryTranscripts(), Quiet(),
                                         limits=stage.limits, monitor=stage.monitor)
            # Each room plays the clip from a different point (rooms are not in lockstep:
            # their utterances end at different times, as in a real clinic).
            shift = (i * len(pcm) // rooms) // chunk * chunk
            audio = pcm[shift:] + pcm[:shift]

            async def feed() -> Any:
                start = time.monotonic() + i * 0.037
                for seq, off in enumerate(range(0, len(audio), chunk)):
                    await asyncio.sleep(max(0.0, start + seq * 0.1 - time.monotonic()))
                    yield AudioChunk(seq, seq * 100_000, audio[off:off + chunk])
                    if seq == 0:
                        progresses.append(stage.monitor.get(f"room-{i}"))

            await stage_i.run(EncounterInfo(f"room-{i}", "bench", f"room-{i}", 0), feed())

        await asyncio.gather(*(room(i) for i in range(rooms)))
    latencies = sorted(x for p in progresses if p for x in p.final_latency_ms)
    return {"rooms": rooms, "finals": len(latencies),
            "final_latency_ms_p50": _pct(latencies, 50),
            "final_latency_ms_p95": _pct(latencies, 95),
            "max_backlog_s": round(max((p.max_backlog_s for p in progresses if p), default=0), 2),
            "behind_events": stage.monitor.behind_events_total}


def _pct(xs: list[float], p: int) -> float | None:
    if not xs:
        return None
    return round(xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))], 1)


def realtime_capacity(engine: SpeechEngine, pcm: bytes, max_rooms: int, workers: int,
                      log: Any) -> tuple[int, int, list[dict[str, Any]]]:
    """(most rooms whose finals keep up, most rooms also within the 2 s p95 target, runs).

    Keeping up: no room ever had more than the server's falling-behind threshold
    (5 s) of audio waiting, i.e. no ``lagging`` event."""
    runs = []
    best = best_2s = 0
    n = 1
    while n <= max_rooms:
        r = asyncio.run(_rooms_in_real_time(engine, pcm, n, workers))
        keeps_up = r["finals"] > 0 and r["behind_events"] == 0
        within_2s = keeps_up and (r["final_latency_ms_p95"] or 1e9) <= 2000
        r["keeps_up"], r["p95_within_2s"] = keeps_up, within_2s
        runs.append(r)
        log(f"    {n:>2} rooms: p95 final latency {r['final_latency_ms_p95']} ms, "
            f"max backlog {r['max_backlog_s']} s -> {'keeps up' if keeps_up else 'behind'}")
        if not keeps_up:
            break
        best = n
        if within_2s:
            best_2s = n
        n = n * 2 if n < 4 else n + 2
    return best, best_2s, runs


async def _visit_end(engine: SpeechEngine, pcm: bytes, db_dir: Path) -> dict[str, Any]:
    from server import registry
    from server.db import Database
    from server.ingest.store import AudioStore, DeviceIdentity
    from server.migrate import upgrade
    from server.transcripts.store import TranscriptStore

    db = Database(f"sqlite:///{db_dir / 'bench.db'}")
    upgrade(db)
    with db.session() as s:
        clinic = registry.create_clinic(s, "Bench")
        registry.create_room(s, clinic.id, "Bench room", "bench-room")
        device = registry.create_device(s, "bench-room")
        ident = DeviceIdentity(device.id, "bench-room")
    eid = str(uuid.uuid4())
    AudioStore(db).open_encounter(ident, eid, 0)
    done: list[float] = []

    async def handed(_: EncounterInfo, t: Transcript) -> None:
        done.append(time.monotonic())

    class Quiet:
        def publish(self, *_: Any) -> None:
            pass

    chunk = BYTES_PER_SECOND // 10
    tail = len(pcm) - 10 * BYTES_PER_SECOND
    with ThreadPoolExecutor(1) as pool, ThreadPoolExecutor(2) as db_pool:
        stage = TranscriptionStage(engine, pool, TranscriptStore(db), Quiet(), db_pool=db_pool,
                                   next_stage=handed)
        last_sent: list[float] = []

        async def feed() -> Any:
            seq = 0
            for off in range(0, tail, chunk):  # as fast as the engine takes it
                yield AudioChunk(seq, seq * 100_000, pcm[off:off + chunk])
                seq += 1
            progress = stage.monitor.get(eid)
            for _ in range(6000):  # until the engine has caught up (at most 5 minutes)
                if progress is None or progress.backlog_s <= 0.2:
                    break
                await asyncio.sleep(0.05)
            start = time.monotonic()
            for i, off in enumerate(range(tail, len(pcm), chunk)):  # the last 10 s live
                await asyncio.sleep(max(0.0, start + i * 0.1 - time.monotonic()))
                yield AudioChunk(seq, seq * 100_000, pcm[off:off + chunk])
                seq += 1
            last_sent.append(time.monotonic())

        t0 = time.monotonic()
        await stage.run(EncounterInfo(eid, device.id, "bench-room", 0), feed())
        total = time.monotonic() - t0
    stored = TranscriptStore(db).load(eid)
    db.dispose()
    return {"visit_audio_s": round(len(pcm) / BYTES_PER_SECOND, 1),
            "end_of_visit_to_transcript_ms": round((done[0] - last_sent[0]) * 1000),
            "segments": len(stored.segments) if stored else 0,
            "whole_visit_wall_s": round(total, 1)}


def ten_minute_visit(data: Path, minutes: float, voices: str = "neural") -> bytes:
    """An ACI-BENCH valid visit spoken by two voices, ending with the last whole turn before
    ``minutes`` and 0.3 s of silence: shorter than the pause that closes an utterance, so
    the last utterance is still open when the visit ends (the hard case: stop pressed
    right after the last word) and is decoded after the end."""
    from server.lab.speech import read_aci_dialogue, synthesize_dialogue

    limit = minutes * 60
    turns = read_aci_dialogue(data / "aci-bench" / "valid.csv", row=0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "visit.wav"
        while True:
            timed = synthesize_dialogue(turns, out, gap_s=0.8, max_seconds=limit + 60,
                                        voice_set=voices)
            if timed[-1].end_s >= limit or len(timed) < len(turns):
                break
            turns = turns + turns  # a short dialogue: say it again
        with wave.open(str(out), "rb") as w:
            pcm = w.readframes(w.getnframes())
    last_end = max(t.end_s for t in timed if t.end_s <= limit)
    return pcm[: int((last_end + 0.3) * RATE) * 2]


# ----------------------------------------------------------------------------- main


def _conditions(text: str) -> list[str]:
    try:
        return parse_conditions(text)
    except ValueError as err:
        raise SystemExit(f"bench_asr: {err}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--turns", type=int, default=60)
    p.add_argument("--engines", default="whisper,whisper-novocab,vosk,two-pass")
    p.add_argument("--stream-seconds", type=float, default=45.0)
    p.add_argument("--max-rooms", type=int, default=16)
    p.add_argument("--workers", type=int, default=2, help="ASR worker threads for many rooms")
    p.add_argument("--visit-minutes", type=float, default=10.0)
    p.add_argument("--voices", choices=VOICE_SETS, default="neural",
                   help="who speaks the test set (default neural)")
    p.add_argument("--condition", default="clean",
                   help=f"room condition: {', '.join(CONDITIONS)}, a comma list, or all")
    args = p.parse_args(argv)
    conditions = _conditions(args.condition)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    vocabulary_terms = load_vocabulary(BUNDLED)
    vocab = {t.lower() for t in vocabulary_terms}
    voices = available_voices(args.voices)
    labels = list(voices)
    picked = pick_turns(args.data, args.turns, vocab)
    utts = [Utterance(s, t, labels[i % len(labels)]) for i, (s, t) in enumerate(picked)]
    log(f"bench_asr: {len(utts)} turns, voices {labels}")
    clean_pcm = synthesize(utts, voices)
    clean_visit: bytes | None = None
    reports = []
    for condition in conditions:
        log(f"condition {condition} ({args.voices} voices)")
        load_start = round(os.getloadavg()[0], 2)
        pcm = apply_condition(clean_pcm, condition)
        audio_s = len(pcm) / BYTES_PER_SECOND
        stream_pcm = pcm[: int(args.stream_seconds * BYTES_PER_SECOND)]
        log(f"  test set: {audio_s:.1f} s of speech")
        visit_pcm: bytes | None = None
        base = Settings(data_dir=Path(tempfile.mkdtemp()), models_dir=ROOT / "models",
                        asr_workers=1, asr_threads_per_worker=1)
        results: dict[str, Any] = {}
        for name in [e.strip() for e in args.engines.split(",") if e.strip()]:
            log(f"engine {name}")
            kind = "whisper" if name.startswith("whisper") else name
            vocabulary = [] if name == "whisper-novocab" else vocabulary_terms
            # "whisper-base": the larger model (models/asr.toml), same vocabulary and options
            model = {"asr_whisper_model": "whisper-base"} if name == "whisper-base" else {}
            try:
                finals_only = build_engine(
                    base.model_copy(update={"asr_partial_interval_s": 0, **model}), kind,
                    vocabulary=vocabulary)
            except ModelNotInstalled as err:
                results[name] = {"available": False, "reason": str(err)}
                log(f"  unavailable: {err}")
                continue
            finals, seconds = decode_all(finals_only, pcm)
            row: dict[str, Any] = {
                "available": True, "engine": finals_only.name,
                "vocabulary_terms_in_prompt": len(getattr(finals_only, "terms", [])),
                **accuracy(utts, finals, vocab),
                "wer_by_voice": {v: accuracy([u for u in utts if u.voice == v], finals,
                                             vocab)["wer"]
                                 for v in labels if any(u.voice == v for u in utts)},
                "rtf": round(seconds / audio_s, 4)}
            log(f"  wer {row['wer']}  drug-term miss {row['wer_drug_terms']} "
                f"({row['drug_terms_recalled']})  rtf {row['rtf']}")
            if name == "whisper-novocab":
                results[name] = row
                continue
            live = build_engine(base.model_copy(update={"asr_workers": args.workers, **model}),
                                kind,
                                vocabulary=vocabulary)
            _, seconds = decode_all(live, stream_pcm)
            row["rtf_with_partials"] = round(seconds / (len(stream_pcm) / BYTES_PER_SECOND), 4)
            one = asyncio.run(_rooms_in_real_time(live, stream_pcm, 1, args.workers))
            row["final_latency_ms_p50"] = one["final_latency_ms_p50"]
            row["final_latency_ms_p95"] = one["final_latency_ms_p95"]
            log(f"  rtf with partials {row['rtf_with_partials']}; 1 room: final latency p50 "
                f"{one['final_latency_ms_p50']} ms, p95 {one['final_latency_ms_p95']} ms")
            best, best_2s, runs = realtime_capacity(live, stream_pcm, args.max_rooms,
                                                    args.workers, log)
            row["max_realtime_streams"] = best
            row["max_realtime_streams_p95_within_2s"] = best_2s
            row["realtime_runs"] = runs
            if visit_pcm is None:
                if clean_visit is None:
                    log(f"  synthesizing a {args.visit_minutes:g}-minute visit")
                    clean_visit = ten_minute_visit(args.data, args.visit_minutes, args.voices)
                visit_pcm = apply_condition(clean_visit, condition)
            with tempfile.TemporaryDirectory() as tmp:
                row.update(asyncio.run(_visit_end(live, visit_pcm, Path(tmp))))
            log(f"  end of visit -> transcript {row['end_of_visit_to_transcript_ms']} ms "
                f"({row['visit_audio_s']} s visit)")
            results[name] = row
        reports.append({
            "voice_set": args.voices, "condition": condition,
            "machine": {"cpus": _cpus(), "python": platform.python_version(),
                        "platform": platform.platform(),
                        # Other work on the machine during the run (1-minute load averages).
                        "load_average_start": load_start,
                        "load_average_end": round(os.getloadavg()[0], 2)},
            "test_set": {"turns": len(utts), "audio_s": round(audio_s, 1),
                         "voice_set": args.voices, "voices": labels,
                         "condition": condition, "sources": [f for f, _ in EVAL_FILES],
                         "stream_seconds": args.stream_seconds},
            "targets": {"wer_whisper_with_vocabulary": 0.10, "rtf": 0.15,
                        "max_realtime_streams": 8, "final_latency_ms_p95": 2000,
                        "end_of_visit_to_transcript_ms": 3000},
            "engines": results,
        })
    args.json.parent.mkdir(parents=True, exist_ok=True)
    out = reports[0] if len(reports) == 1 else {"voice_set": args.voices,
                                                 "conditions": reports}
    args.json.write_text(json.dumps(out, indent=2))
    keys = ("wer", "wer_drug_terms", "drug_terms_recalled", "drug_terms_inserted", "rtf",
            "rtf_with_partials", "max_realtime_streams", "max_realtime_streams_p95_within_2s",
            "final_latency_ms_p50", "final_latency_ms_p95", "end_of_visit_to_transcript_ms",
            "reason")
    summary = {f"{r['voice_set']}/{r['condition']}": {
        k: {m: v.get(m) for m in keys if m in v} for k, v in r["engines"].items()}
        for r in reports}
    print(json.dumps(summary, indent=2))
    return 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 0)


if __name__ == "__main__":
    raise SystemExit(main())
