"""Where one visit's CPU goes: speech detection, finals, partials, speaker labels, notes.

    python scripts/profile_visit.py [--seconds 600] [--json OUT.json]

One synthesized ACI-BENCH visit (the rooms benchmark's first, dense speech) is
fed to the whisper engine in the server's order, without a server: audio in
0.5-s calls with every partial that falls due decoded (the most partials can
cost: the server decodes them only from spare CPU), speaker labels after every
final, the note prepared from the transcript so far every 10 s of audio (as
the drafting stage does), and the draft at the end, one after another. Prints
CPU seconds (the process's, all its threads) per part, how many sentences and
turns went through the models, and the share of one core the visit needs; a
capacity estimate, not a load test (`bench_rooms.py` is that).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_rooms import visits  # noqa: E402

from nlp.schema import Transcript, TranscriptSegment  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=600.0, help="visit length")
    p.add_argument("--call-s", type=float, default=0.5, help="audio per engine call")
    p.add_argument("--prepare-every-s", type=float, default=10.0)
    p.add_argument("--no-partials", action="store_true")
    p.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench_rooms" / "audio")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    from nlp.encoder import set_inference_threads
    from nlp.pipeline import DraftWriter
    from server.asr.engine import BYTES_PER_SECOND, Final
    from server.asr.factory import build_engine
    from server.asr.whisper_engine import WhisperEngine
    from server.settings import Settings

    settings = Settings()
    wav = visits(1, args.seconds, args.workdir)[0]
    with wave.open(str(wav)) as w:
        pcm = w.readframes(w.getnframes())
    engine = build_engine(settings, "whisper")
    assert isinstance(engine, WhisperEngine)
    set_inference_threads(settings.nlp_threads)
    writer = DraftWriter.load(settings.models_dir)
    cpu: dict[str, float] = {"speech_detection": 0.0, "finals": 0.0, "partials": 0.0,
                             "speaker_labels": 0.0, "note_preparations": 0.0,
                             "final_draft": 0.0}
    decode = engine.decode

    def timed_decode(*a: Any, **k: Any) -> Any:
        t0 = time.process_time()
        try:
            return decode(*a, **k)
        finally:
            cpu["finals" if k.get("with_words") else "partials"] += time.process_time() - t0

    setattr(engine, "decode", timed_decode)  # noqa: B010 (an instance patch)
    setattr(engine, "partial_allowed", lambda: not args.no_partials)  # noqa: B010
    recognizer = engine.recognizer()
    segments: list[TranscriptSegment] = []

    def on_events(events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, Final) and ev.text:
                seg = TranscriptSegment(len(segments), ev.start_s, ev.end_s, ev.text,
                                        "unknown", ev.words)
                t0 = time.process_time()
                labels = writer.label_speakers((*segments, seg))
                cpu["speaker_labels"] += time.process_time() - t0
                segments.append(replace(seg, speaker=labels[-1]))

    step = int(args.call_s * BYTES_PER_SECOND)
    prepared_at, preparations = 0.0, 0
    for offset in range(0, len(pcm), step):
        t0 = time.process_time()
        decoded_before = cpu["finals"] + cpu["partials"]
        events = recognizer.accept(pcm[offset:offset + step])
        cpu["speech_detection"] += (time.process_time() - t0
                                    - (cpu["finals"] + cpu["partials"] - decoded_before))
        on_events(events)
        heard = (offset + step) / BYTES_PER_SECOND
        if segments and args.prepare_every_s and heard - prepared_at >= args.prepare_every_s:
            prepared_at = heard
            t0 = time.process_time()
            writer.draft(Transcript("profile", tuple(segments), engine.name, "en"))
            cpu["note_preparations"] += time.process_time() - t0
            preparations += 1
    on_events(recognizer.finish())
    t0 = time.process_time()
    labels = writer.label_speakers(tuple(segments))
    final = tuple(replace(s, speaker=label) for s, label in zip(segments, labels, strict=True))
    note = writer.draft(Transcript("profile", final, engine.name, "en"))
    cpu["final_draft"] = time.process_time() - t0
    audio_s = len(pcm) / BYTES_PER_SECOND
    total = sum(cpu.values())
    sections: Any = writer._sections  # the classifiers' counters
    roles: Any = writer._roles._clf
    result: dict[str, Any] = {
        "audio_s": round(audio_s, 1), "segments": len(segments),
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()}, "cpu_s_total": round(total, 2),
        "core_share": round(total / audio_s, 4),
        "sections_encoded": sections.computed, "sections_answered": sections.computed
        + sections.memo_hits, "turns_encoded_for_roles": roles.computed,
        "note_preparations": preparations, "orders": len(note.orders),
        "sections_in_note": sum(1 for s in note.sections if s.sentences),
    }
    for part, seconds in cpu.items():
        print(f"{part:<20} {seconds:8.2f} s   {100 * seconds / audio_s:5.2f} % of a core")
    print(f"{'total':<20} {total:8.2f} s   {100 * total / audio_s:5.2f} % of a core")
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
