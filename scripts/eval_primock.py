"""PriMock57 end to end: real consultation timing, through the agent, to a draft.

    python scripts/eval_primock.py [--limit N | --all | --consultations ID,...] [--rooms 2]
                                   [--speed 0] [--json OUT.json] [--manual-only]
                                   [--voices neural|espeak]
                                   [--condition clean|reverb|reverb+20dB|reverb+10dB|all]

Each consultation in ../shared/data/primock57 (days 1-4; CC BY 4.0, Papadopoulos
Korfiatis et al. 2022) is synthesized with the voices of ``--voices`` (``neural``,
the default: Piper and Kokoro, server/lab/voices.py; ``espeak``: robotic
espeak-ng voices, the hard condition), each utterance at its real start time
from the TextGrids, played in the room of ``--condition`` (server/lab/room.py;
a comma list or ``all`` streams every consultation once per condition), streamed
through `roomscribe-device`
into a server (SQLite, the configured ASR engine, NLP drafting, review queue).
Reported per consultation and overall: WER of the stored transcript against
the manual transcript (transcriber tags removed; `server.asr.scoring`
normalisation); who spoke (`server.asr.speaker_scoring`): the role accuracy of
the stored words against the speaker whose synthesized utterance they fall in,
and the diarization error of the stored segments taken as role turns; and
ROUGE-1/2/L of the draft note against the clinician's note.
``--rooms N`` streams N consultations at once through N rooms (each room takes
the next consultation when its draft is in the queue), so both of the server's
speech workers are busy; the scores do not depend on it.

Beside them, the same NLP drafts each consultation from its manual transcript
(speakers as transcribed, no speech recognition): ``rouge*_manual`` and
``orders_manual`` tell what the synthetic voices and the ASR cost the draft.
``--manual-only`` computes just those, without a server (a minute or two).
"""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import sys
import threading
import time
import wave
from hashlib import sha256
from pathlib import Path
from typing import Any

from nlp.schema import Transcript, TranscriptSegment
from server.asr.scoring import normalize, word_errors
from server.asr.speaker_scoring import diarization_error, role_accuracy
from server.lab.primock import (
    Consultation,
    list_consultations,
    load_consultation,
    spoken_turns,
    synthesize_consultation,
)
from server.lab.processes import Room, RoomLab
from server.lab.room import CONDITIONS, apply_condition, parse_conditions
from server.lab.speech import write_wav
from server.lab.voices import VOICE_SETS
from server.review.document import document_from_draft

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "primock57"


def note_text(document: dict[str, Any]) -> str:
    return "\n".join(f"{s['title']}\n{s['text']}" for s in document["sections"] if s["text"])


def rouge(scorer: Any, reference: str, document: dict[str, Any]) -> dict[str, float]:
    scores = scorer.score(reference, note_text(document))
    return {k: round(100 * scores[k].fmeasure, 2) for k in ("rouge1", "rouge2", "rougeL")}


def from_manual_transcript(writer: Any, visit: Consultation, scorer: Any) -> dict[str, Any]:
    """The draft the NLP writes from the manual transcript, scored the same way."""
    segments = tuple(TranscriptSegment(i, t.start_s, t.end_s, t.text, t.speaker)
                     for i, t in enumerate(visit.turns))
    document = document_from_draft(writer.draft(Transcript(visit.id, segments, "manual",
                                                           "en")))
    return {**{f"{k}_manual": v for k, v in rouge(scorer, visit.note, document).items()},
            "orders_manual": len(document["orders"])}


def consultation_wav(visit: Consultation, audio_dir: Path, voices: str,
                     condition: str) -> Path:
    """The consultation spoken by ``voices`` in ``condition`` (made once, then reused)."""
    wav = audio_dir / voices / condition / f"{visit.id}.wav"
    if wav.exists():
        return wav
    clean = audio_dir / voices / "clean" / f"{visit.id}.wav"
    if not clean.exists():
        clean.parent.mkdir(parents=True, exist_ok=True)
        synthesize_consultation(visit, clean, voice_set=voices)
    if condition != "clean":
        with wave.open(str(clean), "rb") as w:
            pcm = w.readframes(w.getnframes())
        write_wav(wav, apply_condition(pcm, condition, seed=int(sha256(visit.id.encode())
                                                                .hexdigest()[:8], 16)))
    return wav


def evaluate(lab: RoomLab, room: Room, token: str, cid: str, audio_dir: Path, speed: float,
             scorer: Any, writer: Any, voices: str = "neural",
             condition: str = "clean") -> dict[str, Any]:
    """Stream one consultation through ``room`` and score its transcript and draft."""
    visit = load_consultation(DATA, cid)
    wav = consultation_wav(visit, audio_dir, voices, condition)
    before = {e["id"] for e in lab.encounters(room.room_id)}
    started = time.monotonic()
    if lab.start_agent(room, wav, speed=speed).wait(timeout=3600) != 0:
        raise RuntimeError(f"{cid}: the agent failed")
    encounter = next(e for e in lab.encounters(room.room_id) if e["id"] not in before)
    # the physician records the patient's consent (held audio is transcribed only then)
    lab.post(f"/api/v1/encounters/{encounter['id']}/consent", {"method": "verbal"}, token)
    item = lab.wait_for_draft(token, encounter["id"], timeout=1800)
    if item is None:
        raise RuntimeError(f"{cid}: no draft reached the queue")
    transcript = lab.api(f"/api/v1/encounters/{encounter['id']}/transcript", token=token)
    hypothesis = " ".join(s["text"] for s in transcript["segments"])
    ref_words, hyp_words = normalize(visit.reference_text), normalize(hypothesis)
    errors = word_errors(ref_words, hyp_words)
    who = speakers(visit, voices, transcript["segments"])
    return {"consultation": cid, "voice_set": voices, "condition": condition,
            "audio_s": round(visit.duration_s, 1),
            "ref_words": len(ref_words), "word_errors": errors,
            "wer": round(errors / max(1, len(ref_words)), 4),
            **rouge(scorer, visit.note, item["document"]),
            "orders": len(item["document"]["orders"]), **who,
            "seconds": round(time.monotonic() - started, 1),
            **from_manual_transcript(writer, visit, scorer)}


def speakers(visit: Consultation, voices: str, segments: list[dict[str, Any]]
             ) -> dict[str, Any]:
    """Who spoke when, as stored, against the synthesized visit: the roles of the
    stored words (``server.asr.speaker_scoring.role_accuracy``) and the diarization
    error of the stored segments taken as role turns."""
    reference = [(t.start_s, t.end_s, t.speaker) for t in spoken_turns(visit, voice_set=voices)]
    words = [(w["start_s"], w["end_s"], s["speaker"]) for s in segments for w in s["words"]]
    right, counted = role_accuracy(reference, words)
    err = diarization_error(reference, [(s["start_s"], s["end_s"], s["speaker"])
                                        for s in segments])
    return {"role_words": counted, "role_right": right,
            "role_acc": round(right / max(1, counted), 4),
            "der": round(err.rate, 4), "der_missed_s": round(err.missed, 2),
            "der_false_alarm_s": round(err.false_alarm, 2),
            "der_confusion_s": round(err.confusion, 2), "speech_s": round(err.speech, 2)}


def stream_all(ids: list[str], args: argparse.Namespace, scorer: Any,
               writer: Any, condition: str = "clean") -> list[dict[str, Any]]:
    """Every consultation through the agent and a server, ``args.rooms`` at once."""
    audio_dir = args.workdir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.workdir / "lab", ignore_errors=True)
    lab = RoomLab(args.workdir / "lab")
    lab.start_server(timeout=180)
    results: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    todo: queue.Queue[str] = queue.Queue()
    for cid in ids:
        todo.put(cid)

    def work(room: Room, token: str) -> None:
        while not failures:
            try:
                cid = todo.get_nowait()
            except queue.Empty:
                return
            try:
                row = evaluate(lab, room, token, cid, audio_dir, args.speed, scorer, writer,
                               args.voices, condition)
            except BaseException as err:
                failures.append(err)
                return
            results.append(row)
            print(json.dumps(row), flush=True)

    try:
        _, token = lab.add_physician("PriMock Clinic", "dr_eval")
        workers = []
        for i in range(max(1, args.rooms)):
            room = lab.add_room(f"primock-room-{i}", clinic="PriMock Clinic")
            lab.roomscribe("review", "room-physician", room.room_id, "dr_eval")
            workers.append(threading.Thread(target=work, args=(room, token), daemon=True))
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        lab.close()
    if failures:
        raise failures[0]
    return results


def mean(rows: list[dict[str, Any]], key: str) -> float:
    return round(sum(r[key] for r in rows) / max(1, len(rows)), 2)


def summarize(results: list[dict[str, Any]], manual_only: bool) -> dict[str, Any]:
    """Overall scores of ``results``; prints the table of consultations."""
    results.sort(key=lambda r: str(r["consultation"]))
    overall: dict[str, Any] = {"consultations": len(results)}
    if not manual_only:
        overall["wer"] = round(sum(r["word_errors"] for r in results)
                               / max(1, sum(r["ref_words"] for r in results)), 4)
        overall |= {k: mean(results, k) for k in ("rouge1", "rouge2", "rougeL")}
        overall["role_acc"] = round(sum(r["role_right"] for r in results)
                                    / max(1, sum(r["role_words"] for r in results)), 4)
        speech = max(1e-9, sum(r["speech_s"] for r in results))
        overall["der"] = round(sum(r["der_missed_s"] + r["der_false_alarm_s"]
                                   + r["der_confusion_s"] for r in results) / speech, 4)
        overall["orders"] = sum(r["orders"] for r in results)
    overall |= {k: mean(results, k) for k in ("rouge1_manual", "rouge2_manual", "rougeL_manual")}
    overall["orders_manual"] = sum(r["orders_manual"] for r in results)
    columns = [("WER", "wer", ".3f"), ("roles", "role_acc", ".3f"), ("DER", "der", ".3f"),
               ("R-1", "rouge1", ".2f"), ("R-2", "rouge2", ".2f"),
               ("R-L", "rougeL", ".2f"), ("orders", "orders", "d"),
               ("R-1 man", "rouge1_manual", ".2f"), ("R-L man", "rougeL_manual", ".2f"),
               ("ord man", "orders_manual", "d")]
    columns = [c for c in columns if c[1] in overall]
    print(f"{'consultation':<22}" + "".join(f" {h:>8}" for h, _, _ in columns))
    for r in [*results, {"consultation": "overall", **overall}]:
        print(f"{r['consultation']:<22}" + "".join(
            f" {r[k]:>8{fmt}}" for _, k, fmt in columns))
    return overall



def _conditions(text: str) -> list[str]:
    try:
        return parse_conditions(text)
    except ValueError as err:
        raise SystemExit(f"eval_primock: {err}") from None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=6, help="first N consultations (default 6)")
    p.add_argument("--all", action="store_true", help="every consultation")
    p.add_argument("--consultations", default="",
                   help="a comma list of consultation ids (day1_consultation01,...) instead")
    p.add_argument("--rooms", type=int, default=2, help="consultations streamed at once")
    p.add_argument("--speed", type=float, default=0.0, help="agent speed (0 = as fast as it can)")
    p.add_argument("--manual-only", action="store_true",
                   help="only draft from the manual transcripts (no server, no speech)")
    p.add_argument("--voices", choices=VOICE_SETS, default="neural",
                   help="who speaks the consultations (default neural)")
    p.add_argument("--condition", default="clean",
                   help=f"room condition: {', '.join(CONDITIONS)}, a comma list, or all")
    p.add_argument("--workdir", type=Path, default=ROOT / "var" / "eval_primock")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    conditions = ["clean"] if args.manual_only else _conditions(args.condition)
    from rouge_score import rouge_scorer

    from nlp.encoder import set_inference_threads
    from nlp.pipeline import DraftWriter

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    set_inference_threads(1)  # the server beside it has the cores
    writer = DraftWriter.load(ROOT / "models")
    ids = list_consultations(DATA)
    if args.consultations:
        wanted = [c.strip() for c in args.consultations.split(",") if c.strip()]
        if unknown := [c for c in wanted if c not in ids]:
            raise SystemExit(f"eval_primock: no consultation {', '.join(unknown)} in {DATA}")
        ids = wanted
    elif not args.all:
        ids = ids[: args.limit]
    reports = []
    for condition in conditions:
        if args.manual_only:
            results = [{"consultation": cid, **from_manual_transcript(
                writer, load_consultation(DATA, cid), scorer)} for cid in ids]
        else:
            print(f"{args.voices} voices, condition {condition}", flush=True)
            results = stream_all(ids, args, scorer, writer, condition)
        overall = summarize(results, args.manual_only)
        reports.append({"voice_set": args.voices, "condition": condition,
                        "overall": overall, "consultations": results})
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = reports[0] if len(reports) == 1 else {"voice_set": args.voices,
                                                     "conditions": reports}
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
