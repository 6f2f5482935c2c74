#!/usr/bin/env python3
"""Hallucination benchmark: words the real engines write when nobody in the room speaks.

    python scripts/bench_silence.py [--json OUT.json] [--minutes 2]
                                    [--engines whisper-tiny.en,whisper-base,auto,two-pass]
                                    [--conditions silence,room-tone,hvac,paper-doors,radio]
                                    [--no-speech-check]

A room device listens all day, so every word in a transcript that nobody said is
a word the clinician has to find and delete. Each engine is fed, in 100 ms
chunks as frames arrive, ``--minutes`` of each condition (generated, seeded):

  silence       digital zeros
  room-tone     a quiet room: pink noise at -62 dBFS and a faint mains hum
  hvac          ventilation: rumbling low-passed noise at -40 dBFS, slowly breathing,
                with a 120 Hz hum
  fan           a desk fan: blade tone and harmonics over broadband noise at -38 dBFS
  paper-doors   room tone, paper rustles and crinkles (to -25 dBFS) and a door bang
                (peaks near -6 dBFS) every 12-25 s
  radio         a radio in the corridor: continuous speech, band-limited to
                300-3400 Hz, reverberant (RT60 ~0.8 s), at -48 dBFS RMS, i.e. 28 dB
                below the -20 dBFS the room's own speech is played at here

and reports the final words per hour of audio (``words_per_hour``; the finals
are the transcript; live partials are off) per condition and engine. Noise comes
from ``server.lab.room.noise`` and the radio's voices from ``server.lab.voices``
when those modules exist (``neural`` voices), else from the generators below
and espeak-ng.

A speech check follows (skip with ``--no-speech-check``): a short synthesized
doctor-patient dialogue at the room level, the same with fan noise at 15 dB SNR,
and the same 18 dB quieter (a soft-spoken patient farther away), so a gate that
silences noise but also speech shows up as WER. Per engine: WER and the real-time
factor (engine seconds / audio seconds, one thread, finals only).

Engines: ``whisper-tiny.en`` and ``whisper-base`` (the whisper engine with that
model), ``auto`` (what ``asr_engine=auto`` picks here) and ``two-pass`` (vosk
partials + whisper finals; needs a vosk model: English if fetched, else the Korean
test model, since only whisper's finals reach the transcript).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.asr.engine import SAMPLE_RATE, Final, Partial, SpeechEngine  # noqa: E402
from server.asr.factory import build_engine, choose_engine  # noqa: E402
from server.asr.scoring import normalize, word_errors  # noqa: E402
from server.lab.speech import Turn, synthesize_dialogue, wav_to_pcm16k  # noqa: E402
from server.settings import Settings  # noqa: E402

SR = SAMPLE_RATE
SPEECH_DBFS = -20.0  # RMS of the room's own speech here
RADIO_BELOW_DB = 28.0
CONDITIONS = ("silence", "room-tone", "hvac", "fan", "paper-doors", "radio")
ENGINES = ("whisper-tiny.en", "whisper-base", "auto", "two-pass")

RADIO_TEXT = [
    "Good afternoon, this is the news at three. Traffic is heavy on the northbound highway.",
    "Tonight will be cloudy with a chance of showers, lows around forty five degrees.",
    "In sports, the home team won last night's game by two points in overtime.",
    "Stay tuned for more music after this short break from our sponsors.",
    "The city council will meet on Thursday to discuss the new library budget.",
    "Temperatures climb to the upper sixties tomorrow with sunshine in the afternoon.",
    "Call in now with your questions, the lines are open until four o'clock.",
    "That was the latest from the studio, and now back to the morning show.",
]
DIALOGUE = [
    Turn("doctor", "Good morning. What brings you in today?"),
    Turn("patient", "I have had a bad cough and a fever for about five days."),
    Turn("doctor", "Any shortness of breath or chest pain when you cough?"),
    Turn("patient", "A little chest pain at night but no trouble breathing."),
    Turn("doctor", "I am going to start you on amoxicillin five hundred milligrams "
                   "three times a day."),
    Turn("patient", "Thank you. Should I keep taking my lisinopril?"),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- signals

def dbfs(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def at_level(x: np.ndarray, level_dbfs: float) -> np.ndarray:
    return x * (10 ** (level_dbfs / 20) / (10 ** (dbfs(x) / 20)))


def pink(n: int, rng: np.random.Generator, slope: float = 1.0) -> np.ndarray:
    """Noise with power ~ 1/f**slope (1 = pink, 2 = brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]
    return np.fft.irfft(spec / f ** (slope / 2), n)


def band(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    sos = butter(4, [lo, hi], btype="band", fs=SR, output="sos")
    return sosfilt(sos, x)


def lowpass(x: np.ndarray, hi: float) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(4, hi, btype="low", fs=SR, output="sos"), x)


def reverb(x: np.ndarray, rng: np.random.Generator, rt60: float = 0.8,
           direct: float = 0.3) -> np.ndarray:
    from scipy.signal import fftconvolve

    t = np.arange(int(rt60 * SR)) / SR
    ir = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
    ir[0] = direct * np.abs(ir).sum() / 20
    return fftconvolve(x, ir)[: x.size]


def hum(n: int, base: float = 60.0) -> np.ndarray:
    t = np.arange(n) / SR
    return sum(np.sin(2 * np.pi * base * k * t) / k for k in (1, 2, 3))  # type: ignore[return-value]


def room_tone(n: int, rng: np.random.Generator) -> np.ndarray:
    return at_level(pink(n, rng), -62) + at_level(hum(n), -70)


def hvac(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    rumble = lowpass(pink(n, rng, 1.6), 1500) * (1 + 0.25 * np.sin(2 * np.pi * 0.07 * t))
    return at_level(rumble, -40) + at_level(hum(n, 120), -55)


def fan(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    blade = sum(np.sin(2 * np.pi * 87.0 * k * t + k) / k for k in range(1, 6))
    return at_level(pink(n, rng, 0.8), -38) + at_level(np.asarray(blade), -48)


def paper_doors(n: int, rng: np.random.Generator) -> np.ndarray:
    out = room_tone(n, rng)
    pos = int(rng.uniform(1, 4) * SR)
    while pos < n:  # rustles and crinkles
        length = int(rng.uniform(0.3, 1.8) * SR)
        seg = band(rng.standard_normal(length), 1000, 7500)
        crackle = (rng.random(length) < 0.02) * rng.standard_normal(length) * 4
        env = np.sin(np.linspace(0, np.pi, length)) ** 2 * (0.5 + rng.random(length) * 0.5)
        burst = at_level((seg + crackle) * env, rng.uniform(-32, -25))
        end = min(n, pos + length)
        out[pos:end] += burst[: end - pos]
        pos += length + int(rng.uniform(1.0, 6.0) * SR)
    pos = int(rng.uniform(3, 10) * SR)
    while pos < n:  # door bangs: a thump, a click, the room ringing
        length = int(1.2 * SR)
        t = np.arange(length) / SR
        thump = np.sin(2 * np.pi * rng.uniform(60, 140) * t) * np.exp(-t / 0.08)
        click = rng.standard_normal(length) * np.exp(-t / 0.01)
        bang = reverb(thump + 0.5 * click, rng, rt60=0.6, direct=1.0)
        bang *= 10 ** (rng.uniform(-8, -5) / 20) / np.abs(bang).max()
        end = min(n, pos + length)
        out[pos:end] += bang[: end - pos]
        pos += int(rng.uniform(12, 25) * SR)
    return out


def _espeak(text: str, voice: str, tmp: Path) -> np.ndarray:
    import wave

    out = tmp / "radio-line.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "170", "-w", str(out), text], check=True,
                   capture_output=True)
    with wave.open(str(out), "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768
    return np.interp(np.arange(int(x.size * SR / rate)) * rate / SR, np.arange(x.size), x)


def _radio_lines(tmp: Path) -> list[np.ndarray]:
    """Each radio line once: server.lab.voices (neural, cached) when present, else espeak-ng."""
    who = ["doctor", "patient", "other"]
    try:
        from server.lab.voices import speak_cached, voice_set

        voices = voice_set("neural")
        return [np.frombuffer(speak_cached(voices[who[i % 3]], text), dtype="<i2")
                .astype(np.float64) / 32768 for i, text in enumerate(RADIO_TEXT)]
    except (ImportError, RuntimeError) as err:
        log(f"  radio voices: espeak-ng ({err})")
        espeak = ["en-us+m3", "en-gb+f3", "en-us+m1"]
        return [_espeak(text, espeak[i % 3], tmp) for i, text in enumerate(RADIO_TEXT)]


def radio(n: int, rng: np.random.Generator, tmp: Path) -> np.ndarray:
    lines = _radio_lines(tmp)
    pieces: list[np.ndarray] = []
    total = 0
    while total < n:  # the lines in shuffled order, again and again, 0.3-0.8 s apart
        for i in rng.permutation(len(lines)):
            pieces += [lines[i], np.zeros(int(rng.uniform(0.3, 0.8) * SR))]
            total += lines[i].size + pieces[-1].size
    far = reverb(band(np.concatenate(pieces)[:n], 300, 3400), rng, rt60=0.8)
    return at_level(far, SPEECH_DBFS - RADIO_BELOW_DB) + room_tone(n, rng)


def condition_audio(name: str, seconds: float, seed: int, tmp: Path) -> np.ndarray:
    n = int(seconds * SR)
    rng = np.random.default_rng(seed)
    if name == "silence":
        return np.zeros(n)
    if name == "radio":
        return radio(n, rng, tmp)
    lab_kind = {"hvac": "hvac", "fan": "fan", "paper-doors": "paper"}.get(name)
    if lab_kind is not None:
        try:
            from server.lab.room import noise

            pcm = noise(lab_kind, seconds, seed)
            return np.frombuffer(pcm, dtype="<i2").astype(np.float64)[:n] / 32768
        except ImportError:
            pass
    gen = {"room-tone": room_tone, "hvac": hvac, "fan": fan, "paper-doors": paper_doors}[name]
    return gen(n, rng)


def to_pcm(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1 - 1 / 32768) * 32767).astype("<i2").tobytes()


# ---------------------------------------------------------------------- engines

def make_engine(name: str, settings: Settings) -> tuple[SpeechEngine, str]:
    if name.startswith("whisper-"):
        s = settings.model_copy(update={"asr_whisper_model": name})
        return build_engine(s, "whisper"), name
    if name == "auto":
        chosen = choose_engine(settings)
        return build_engine(settings), f"auto={chosen}"
    if name == "two-pass":
        for vosk in (settings.asr_vosk_model, "vosk-small-ko"):
            s = settings.model_copy(update={"asr_vosk_model": vosk})
            try:
                return build_engine(s, "two-pass"), f"two-pass({vosk})"
            except Exception as err:
                log(f"  two-pass with {vosk}: {err}")
        raise RuntimeError("two-pass: no vosk model")
    raise ValueError(f"unknown engine {name!r}")


def run(engine: SpeechEngine, pcm: bytes) -> tuple[list[Final], int, float]:
    """Finals, partial words, and engine seconds for ``pcm`` fed in 100 ms chunks."""
    rec = engine.recognizer()
    events: list[Any] = []
    started = time.perf_counter()
    for i in range(0, len(pcm), 3200):
        events += rec.accept(pcm[i:i + 3200])
    events += rec.finish()
    elapsed = time.perf_counter() - started
    finals = [e for e in events if isinstance(e, Final) and e.text]
    partial_words = sum(len(e.text.split()) for e in events if isinstance(e, Partial))
    return finals, partial_words, elapsed


def speech_clips(tmp: Path, seed: int) -> tuple[str, dict[str, bytes]]:
    timed = synthesize_dialogue(DIALOGUE, tmp / "dialogue.wav", gap_s=1.2,
                                voices={"doctor": "en-us+m3", "patient": "en-gb+f3"},
                                words_per_minute=150)
    del timed
    clean = np.frombuffer(wav_to_pcm16k(tmp / "dialogue.wav"), dtype="<i2") / 32768
    clean = np.concatenate([np.zeros(SR // 2), clean, np.zeros(int(1.5 * SR))])
    active = clean[np.abs(clean) > 1e-3]
    gain = 10 ** ((SPEECH_DBFS - dbfs(active)) / 20)
    room = clean * gain
    rng = np.random.default_rng(seed)
    noise = fan(room.size, rng)
    noise = at_level(noise, SPEECH_DBFS - 15)
    ref = " ".join(t.text for t in DIALOGUE)
    return ref, {"speech": to_pcm(room + room_tone(room.size, rng)),
                 "speech+fan(15dB)": to_pcm(room + noise),
                 "speech-18dB": to_pcm(room * 10 ** (-18 / 20) + room_tone(room.size, rng))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--minutes", type=float, default=2.0, help="audio per condition")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--conditions", default=",".join(CONDITIONS))
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--no-speech-check", action="store_true")
    args = p.parse_args(argv)
    settings = Settings(data_dir=Path(tempfile.mkdtemp()), models_dir=ROOT / "models",
                        asr_workers=1, asr_threads_per_worker=1, asr_partial_interval_s=0)
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    seconds = args.minutes * 60
    results: dict[str, Any] = {"minutes_per_condition": args.minutes, "seed": args.seed,
                               "machine": {"cpus": os.cpu_count(),
                                           "processor": platform.processor()},
                               "speech_dbfs": SPEECH_DBFS, "engines": {}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        audio = {}
        for i, c in enumerate(conditions):
            x = condition_audio(c, seconds, args.seed + i, tmp)
            audio[c] = to_pcm(x)
            log(f"condition {c}: {dbfs(x):.1f} dBFS RMS")
        ref, speech = ("", {}) if args.no_speech_check else speech_clips(tmp, args.seed)
        for name in [e.strip() for e in args.engines.split(",") if e.strip()]:
            try:
                engine, label = make_engine(name, settings)
            except Exception as err:
                log(f"engine {name}: unavailable: {err}")
                results["engines"][name] = {"error": str(err)}
                continue
            log(f"engine {label} ({engine.name})")
            row: dict[str, Any] = {"label": label, "engine": engine.name, "conditions": {},
                                   "speech": {}}
            for c in conditions:
                finals, partial_words, elapsed = run(engine, audio[c])
                words = sum(len(f.text.split()) for f in finals)
                row["conditions"][c] = {
                    "words": words, "words_per_hour": round(words * 3600 / seconds, 1),
                    "partial_words": partial_words, "rtf": round(elapsed / seconds, 4),
                    "texts": [f"{f.start_s:.1f}-{f.end_s:.1f}: {f.text}" for f in finals]}
                log(f"  {c:<12} {words:4d} words  {elapsed:6.1f} s  "
                    + " | ".join(f.text for f in finals)[:200])
            for k, pcm in speech.items():
                finals, _, elapsed = run(engine, pcm)
                hyp = " ".join(f.text for f in finals)
                r = normalize(ref)
                wer = word_errors(r, normalize(hyp)) / len(r)
                row["speech"][k] = {"wer": round(wer, 3),
                                    "rtf": round(elapsed / (len(pcm) / 2 / SR), 3),
                                    "hypothesis": hyp}
                log(f"  {k:<16} WER {wer:.3f}  RTF {elapsed / (len(pcm) / 2 / SR):.3f}  {hyp}")
            results["engines"][name] = row
    print_table(results, conditions)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def print_table(results: dict[str, Any], conditions: list[str]) -> None:
    rows = [(name, r) for name, r in results["engines"].items() if "error" not in r]
    print(f"\nhallucinated words per hour ({results['minutes_per_condition']} min per condition)")
    print(f"{'engine':<28}" + "".join(f"{c:>13}" for c in conditions))
    for _, r in rows:
        print(f"{r['label']:<28}" + "".join(
            f"{r['conditions'][c]['words_per_hour']:>13.1f}" for c in conditions))
    speech_keys = sorted({k for _, r in rows for k in r["speech"]})
    if speech_keys:
        print("\nspeech check: WER / RTF")
        print(f"{'engine':<28}" + "".join(f"{k:>20}" for k in speech_keys))
        for _, r in rows:
            print(f"{r['label']:<28}" + "".join(
                f"{r['speech'][k]['wer']:>12.3f} / {r['speech'][k]['rtf']:.3f}"
                for k in speech_keys))


if __name__ == "__main__":
    sys.exit(main())
