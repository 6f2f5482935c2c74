"""Acoustic diarization on mixed-voice visits: DER, and speaker-role accuracy with and
without the voices.

    python scripts/eval_diarization.py [--aci 2] [--primock 2] [--max-seconds 120]
                                       [--condition all|clean,reverb,...] [--voices neural]
                                       [--roles-model DIR] [--json OUT.json]

Visits: the first ``--aci`` ACI-BENCH train dialogues (../shared/data/aci-bench,
CC BY 4.0) and the first ``--primock`` PriMock57 day 1–4 consultations
(../shared/data/primock57, CC BY 4.0), truncated to ``--max-seconds``. Each turn is
spoken by its speaker's voice (server/lab/voices.py ``voice_set``: doctor, patient,
other), turn after turn (PriMock: its real pause, 0.1–1.5 s; ACI: a seeded 0.15–1.0 s),
and the visit is played in each room condition (server/lab/room.py).

Segments: NOT speech recognition (to save CPU) but the reference turns, joined the way
the recognizer's VAD would join them (a pause under 0.5 s, up to 12 s) and cut at 12 s,
with each turn's words spread evenly over its audio. So some segments hold two voices:
the in-segment change detection has to split them. Each segment then goes through
exactly the live stage's path (``server.asr.stage.voice_parts`` → ``SpeakerClusters``
→ ``refine`` → ``name_roles``).

Reported per condition (all visits pooled):

* DER: missed + false alarm + confusion over 10 ms frames of reference speech, no
  collar, clusters mapped to speakers one-to-one for the most overlap (Hungarian);
  a segment too short to embed counts as missed speech;
* role accuracy over reference words: text-only (the role model's Viterbi labels,
  as without diarization); "vote" (those text labels voted per voice cluster,
  ``name_roles``: what the live stage stores since 2026-12-03, and the drafting
  stage keeps); "names" — the stage until 2026-12-03: the role model sees the
  cluster tags (``roles.tag_clusters``) and names each cluster from its segments'
  summed role probabilities, then ``name_roles``; and "relabelled" — what the
  drafting stage made of the stored roles until 2026-12-03: relabelled from the
  words, each taken as a 0.9 prior (``nlp.roles``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.schema import Speaker, TranscriptSegment, Word  # noqa: E402
from server.asr.diarization import ClusterParams, SpeakerClusters, name_roles  # noqa: E402
from server.asr.engine import BYTES_PER_SECOND, SAMPLE_RATE  # noqa: E402
from server.asr.roles import tag_clusters  # noqa: E402
from server.asr.speaker_scoring import diarization_error  # noqa: E402
from server.asr.stage import voice_parts  # noqa: E402
from server.asr.voiceprint import Resemblyzer  # noqa: E402
from server.lab.primock import list_consultations, load_consultation  # noqa: E402
from server.lab.speech import Turn, read_aci_dialogue  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
FRAME_S = 0.01
JOIN_GAP_S = 0.5
MAX_SEGMENT_S = 12.0


@dataclass(frozen=True)
class Visit:
    name: str
    pcm: bytes
    turns: list[Turn]  # speaker, text, start_s, end_s in the synthesized audio
    words: list[tuple[Word, str]]  # every reference word and its speaker


def _role(speaker: str) -> str:
    return speaker if speaker in ("doctor", "patient") else "other"


def synthesize(name: str, turns: list[Turn], gaps: list[float], voices: dict[str, Any],
               max_seconds: float) -> Visit:
    from server.lab.voices import speak_cached

    parts: list[bytes] = []
    placed: list[Turn] = []
    words: list[tuple[Word, str]] = []
    t = 0.3
    parts.append(bytes(int(t * SAMPLE_RATE) * 2))
    for turn, gap in zip(turns, gaps, strict=True):
        role = _role(turn.speaker)
        pcm = speak_cached(voices[role], turn.text)
        length = len(pcm) / BYTES_PER_SECOND
        if not length:
            continue
        if t + length > max_seconds:
            break
        placed.append(Turn(role, turn.text, round(t, 3), round(t + length, 3)))
        tokens = turn.text.split()
        step = length / len(tokens)
        words += [(Word(w, round(t + i * step, 3), round(t + (i + 1) * step, 3)), role)
                  for i, w in enumerate(tokens)]
        parts += [pcm, bytes(int(gap * SAMPLE_RATE) * 2)]
        t += length + int(gap * SAMPLE_RATE) / SAMPLE_RATE
    return Visit(name, b"".join(parts), placed, words)


def aci_visits(n: int, voices: dict[str, Any], max_seconds: float) -> list[Visit]:
    out = []
    for row in range(n):
        turns = read_aci_dialogue(DATA / "aci-bench" / "train.csv", row=row)
        rng = random.Random(row)
        gaps = [rng.uniform(0.15, 1.0) for _ in turns]
        out.append(synthesize(f"aci-train-{row}", turns, gaps, voices, max_seconds))
    return out


def primock_visits(n: int, voices: dict[str, Any], max_seconds: float) -> list[Visit]:
    root = DATA / "primock57"
    ids = [c for c in list_consultations(root) if c.split("_")[0] in
           ("day1", "day2", "day3", "day4")][:n]
    out = []
    for cid in ids:
        turns = list(load_consultation(root, cid).turns)
        gaps = [min(1.5, max(0.1, b.start_s - a.end_s)) for a, b in itertools.pairwise(turns)]
        out.append(synthesize(cid, turns, [*gaps, 0.5], voices, max_seconds))
    return out


def segments_of(visit: Visit) -> list[TranscriptSegment]:
    """Reference turns joined as the VAD would (pause < JOIN_GAP_S, ≤ MAX_SEGMENT_S) and
    cut at MAX_SEGMENT_S, with their words."""
    groups: list[list[Word]] = []
    for turn in visit.turns:
        tw = [w for w, _ in visit.words if turn.start_s <= w.start_s < turn.end_s]
        if not tw:
            continue
        last = groups[-1] if groups else None
        if (last is not None and tw[0].start_s - last[-1].end_s < JOIN_GAP_S
                and tw[-1].end_s - last[0].start_s <= MAX_SEGMENT_S):
            last.extend(tw)
        else:
            groups.append(list(tw))
    cut: list[list[Word]] = []
    for g in groups:
        piece: list[Word] = []
        for w in g:
            if piece and w.end_s - piece[0].start_s > MAX_SEGMENT_S:
                cut.append(piece)
                piece = []
            piece.append(w)
        cut.append(piece)
    return [TranscriptSegment(i, ws[0].start_s, ws[-1].end_s, " ".join(w.text for w in ws),
                              words=tuple(ws)) for i, ws in enumerate(cut)]


def diarize(pcm: bytes, segments: list[TranscriptSegment], voices: Resemblyzer,
            params: ClusterParams) -> tuple[list[TranscriptSegment], list[int | None]]:
    """The live stage's path, in order: voice parts, online clusters, refine at the end."""
    clusters = SpeakerClusters(params)
    out: list[TranscriptSegment] = []
    for seg in segments:
        a = round(seg.start_s * SAMPLE_RATE) * 2
        b = round(seg.end_s * SAMPLE_RATE) * 2
        for part, emb in voice_parts(voices, pcm[a:b], seg, params):
            part = replace(part, id=len(out))
            clusters.add(part.id, emb, weight=part.end_s - part.start_s)
            out.append(part)
    clusters.refine()
    return out, clusters.assignments([s.id for s in out])


def der(visit: Visit, segments: list[TranscriptSegment], clusters: list[int | None]
        ) -> tuple[float, float, float, float]:
    """(missed, false alarm, confusion, reference speech) in seconds."""
    err = diarization_error([(t.start_s, t.end_s, t.speaker) for t in visit.turns],
                            [(s.start_s, s.end_s, str(c)) for s, c in
                             zip(segments, clusters, strict=True) if c is not None], FRAME_S)
    return err.missed, err.false_alarm, err.confusion, err.speech


def word_accuracy(visit: Visit, segments: list[TranscriptSegment], roles: list[str]
                  ) -> tuple[int, int]:
    """Reference words whose segment's role is their speaker's: (right, all)."""
    right = total = 0
    for word, gold in visit.words:
        if word.start_s > segments[-1].end_s:
            break
        mid = (word.start_s + word.end_s) / 2
        for s, r in zip(segments, roles, strict=True):
            if s.start_s <= mid <= s.end_s:
                right += r == gold
                break
        total += 1
    return right, total


def find_roles_model(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    for base in [ROOT / "models" / "nlp", *sorted((Path.home() / ".cache" / "roomscribe" /
                                                   "nlp").glob("*"))]:
        if (base / "roles" / "meta.json").is_file():
            return base / "roles"
    raise SystemExit("no role model: run `roomscribe models build` or pass --roles-model")


def _conditions(text: str) -> list[str]:
    from server.lab.room import parse_conditions

    try:
        return parse_conditions(text)
    except ValueError as err:
        raise SystemExit(f"eval_diarization: {err}") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aci", type=int, default=2)
    ap.add_argument("--primock", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--condition", default="all")
    ap.add_argument("--voices", default="neural")
    ap.add_argument("--roles-model")
    defaults = ClusterParams()
    ap.add_argument("--new-speaker", type=float, default=defaults.new_speaker)
    ap.add_argument("--merge", type=float, default=defaults.merge)
    ap.add_argument("--change", type=float, default=defaults.change)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    from nlp.roles import RoleLabeller
    from server.lab.room import apply_condition
    from server.lab.voices import voice_set

    conditions = _conditions(args.condition)
    params = ClusterParams(new_speaker=args.new_speaker, merge=args.merge, change=args.change)
    room = voice_set(args.voices)
    visits = (aci_visits(args.aci, room, args.max_seconds)
              + primock_visits(args.primock, room, args.max_seconds))
    labeller = RoleLabeller.load(find_roles_model(args.roles_model))
    voices = Resemblyzer()
    voices.warm_up()
    rows: dict[str, dict[str, Any]] = {}
    per_visit: list[dict[str, Any]] = []
    for cond in conditions:
        tot = dict.fromkeys(("missed", "fa", "conf", "speech"), 0.0)
        acc = dict.fromkeys(("text", "acoustic", "model_clusters", "relabelled", "words"), 0)
        speakers: list[int] = []
        splits = 0
        t0 = time.monotonic()
        for k, visit in enumerate(visits):
            pcm = apply_condition(visit.pcm, cond, seed=k)
            segments = segments_of(visit)
            parts, clusters = diarize(pcm, segments, voices, params)
            splits += len(parts) - len(segments)
            m, f, c, s = der(visit, parts, clusters)
            tot["missed"] += m
            tot["fa"] += f
            tot["conf"] += c
            tot["speech"] += s
            plain = [replace(p, speaker=Speaker.UNKNOWN.value) for p in parts]
            text = labeller.label(plain)
            voted = name_roles(text, clusters, [p.end_s - p.start_s for p in parts])
            tagged = tag_clusters(parts, clusters)  # what the stage's labeler sees
            by_model = name_roles(labeller.label(tagged), clusters,
                                  [p.end_s - p.start_s for p in parts])
            right_text, n = word_accuracy(visit, parts, text)
            right_ac, _ = word_accuracy(visit, parts, voted)
            right_model, _ = word_accuracy(visit, parts, by_model)
            relabelled = labeller.label([replace(p, speaker=r)
                                         for p, r in zip(parts, voted, strict=True)])
            right_re, _ = word_accuracy(visit, parts, relabelled)
            acc["relabelled"] += right_re
            acc["text"] += right_text
            acc["acoustic"] += right_ac
            acc["model_clusters"] += right_model
            acc["words"] += n
            n_spk = len({x for x in clusters if x is not None})
            speakers.append(n_spk)
            per_visit.append({"condition": cond, "visit": visit.name,
                              "audio_s": round(len(pcm) / BYTES_PER_SECOND, 1),
                              "segments": len(segments), "splits": len(parts) - len(segments),
                              "clusters": n_spk,
                              "speakers": len({t.speaker for t in visit.turns}),
                              "der": round((m + f + c) / max(s, 1e-9), 4),
                              "role_acc_text": round(right_text / max(n, 1), 4),
                              "role_acc_acoustic": round(right_ac / max(n, 1), 4),
                              "role_acc_model_clusters": round(right_model / max(n, 1), 4),
                              "role_acc_relabelled": round(right_re / max(n, 1), 4)})
            print(json.dumps(per_visit[-1]), flush=True)
        speech = max(tot["speech"], 1e-9)
        rows[cond] = {
            "der": round((tot["missed"] + tot["fa"] + tot["conf"]) / speech, 4),
            "missed": round(tot["missed"] / speech, 4),
            "false_alarm": round(tot["fa"] / speech, 4),
            "confusion": round(tot["conf"] / speech, 4),
            "role_acc_text": round(acc["text"] / max(acc["words"], 1), 4),
            "role_acc_acoustic": round(acc["acoustic"] / max(acc["words"], 1), 4),
            "role_acc_model_clusters": round(acc["model_clusters"] / max(acc["words"], 1), 4),
            "role_acc_relabelled": round(acc["relabelled"] / max(acc["words"], 1), 4),
            "clusters_per_visit": speakers, "splits": splits, "words": acc["words"],
            "seconds": round(time.monotonic() - t0, 1)}

    print(f"\n{len(visits)} visits ({', '.join(v.name for v in visits)}), "
          f"{args.voices} voices, segments = reference turns joined like the VAD")
    print(f"{'condition':<13}{'DER':>7}{'miss':>7}{'FA':>7}{'conf':>7}"
          f"{'roles text':>12}{'vote':>10}{'names':>10}{'relabel':>10}  clusters")
    for cond, r in rows.items():
        print(f"{cond:<13}{r['der']:>7.1%}{r['missed']:>7.1%}{r['false_alarm']:>7.1%}"
              f"{r['confusion']:>7.1%}{r['role_acc_text']:>12.1%}{r['role_acc_acoustic']:>10.1%}"
              f"{r['role_acc_model_clusters']:>10.1%}{r['role_acc_relabelled']:>10.1%}"
              f"  {r['clusters_per_visit']}")
    if args.json:
        args.json.write_text(json.dumps({
            "visits": [v.name for v in visits], "voices": args.voices,
            "max_seconds": args.max_seconds, "params": dataclasses.asdict(params),
            "segments": "reference turns joined like the VAD (pause < 0.5 s, <= 12 s)",
            "conditions": rows, "per_visit": per_visit}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
