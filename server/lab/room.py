"""Room acoustics for benchmarks: reverberation, background noise, named conditions.

All audio is 16 kHz mono s16le PCM (``bytes``), as :mod:`server.lab.voices` speaks it.

* :func:`reverb` — a room's reverberation (sox's ``reverb`` effect, fixed
  parameters per room); the output keeps the input's length, the tail rings
  into the silence that follows speech;
* :func:`noise` — deterministic background noise of a kind (``fan``, ``hvac``,
  ``paper``) for a seed, coloured in numpy;
* :func:`mix_at_snr` — adds noise at a signal-to-noise ratio measured over the
  speech-active samples only (pauses do not dilute the speech's power);
* :data:`CONDITIONS` / :func:`apply_condition` — the named conditions every
  benchmark reports: ``clean``, ``reverb``, ``reverb+20dB``, ``reverb+10dB``.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from server.lab.voices import RATE

__all__ = [
    "CONDITIONS",
    "NOISE_KINDS",
    "ROOMS",
    "Condition",
    "active_mask",
    "apply_condition",
    "mix_at_snr",
    "noise",
    "parse_conditions",
    "reverb",
]

#: sox ``reverb`` parameters: reverberance %, HF damping %, room scale %, stereo depth %,
#: pre-delay ms, wet gain dB.
ROOMS: dict[str, tuple[int, int, int, int, int, int]] = {
    "exam": (45, 40, 35, 0, 8, -2),  # small, hard-surfaced exam room
    "office": (25, 70, 25, 0, 5, -6),  # carpeted consultation office
}
NOISE_KINDS = ("fan", "hvac", "paper")
_FRAME = RATE // 50  # 20 ms
_NOISE_RMS = 0.05  # noise() is scaled to this RMS of full scale (-26 dBFS)


@dataclass(frozen=True, slots=True)
class Condition:
    """A benchmark condition: optional room reverb, then noise at ``snr_db``."""

    room: str | None = None
    noises: tuple[str, ...] = ()
    snr_db: float | None = None
    description: str = ""


CONDITIONS: dict[str, Condition] = {
    "clean": Condition(description="the voices as synthesized"),
    "reverb": Condition("exam", description="exam-room reverberation"),
    "reverb+20dB": Condition("exam", ("hvac", "paper"), 20.0,
                             "exam-room reverberation, ventilation and paper at 20 dB SNR"),
    "reverb+10dB": Condition("exam", ("hvac", "paper"), 10.0,
                             "exam-room reverberation, ventilation and paper at 10 dB SNR"),
}


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0


def _pcm(x: np.ndarray) -> bytes:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes()


def reverb(pcm: bytes, room: str = "exam") -> bytes:
    """``pcm`` as heard in ``room`` (see :data:`ROOMS`); same length, deterministic."""
    if room not in ROOMS:
        raise ValueError(f"unknown room {room!r}; choose one of {sorted(ROOMS)}")
    if not pcm:
        return b""
    exe = shutil.which("sox")
    if exe is None:
        raise RuntimeError("sox is not installed (apt-get install sox)")
    raw = ["-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c", "1", "-L"]
    # -D: no dither (repeatable output); -3 dB headroom for the added reflections.
    out = subprocess.run([exe, "-D", "-V1", *raw, "-", *raw, "-", "gain", "-3", "reverb",
                          *(str(p) for p in ROOMS[room])],
                         input=pcm, capture_output=True, check=True).stdout
    return out[: len(pcm)].ljust(len(pcm), b"\0")


def _coloured(rng: np.random.Generator, n: int, exponent: float,
              band: tuple[float, float] = (20.0, 7800.0)) -> np.ndarray:
    """Noise with power spectrum ∝ 1/f**exponent inside ``band``, unit RMS."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.fft.rfftfreq(n, 1 / RATE)
    shape = np.zeros_like(f)
    inside = (f >= band[0]) & (f <= band[1])
    shape[inside] = f[inside] ** (-exponent / 2)
    x = np.fft.irfft(spectrum * shape, n)
    return x / (np.sqrt(np.mean(x ** 2)) or 1.0)


def _fan(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / RATE
    blade = 118.0 + rng.uniform(-4, 4)  # blade-pass tone and harmonics
    hum = sum(np.sin(2 * np.pi * k * blade * t + rng.uniform(0, 2 * np.pi)) / k
              for k in (1, 2, 3))
    wobble = 1 + 0.15 * np.sin(2 * np.pi * 0.7 * t)
    return 0.8 * _coloured(rng, n, 2.0, (30, 4000)) + 0.35 * hum * wobble


def _hvac(rng: np.random.Generator, n: int) -> np.ndarray:
    return _coloured(rng, n, 1.0, (40, 6000))


def _paper(rng: np.random.Generator, n: int) -> np.ndarray:
    """Quiet room tone with rustle bursts: crackly high-passed noise, ~0.4 per second."""
    out = 0.05 * _coloured(rng, n, 1.0, (40, 6000))
    rustle = _coloured(rng, n, 0.0, (1500, 7800))
    at = 0
    while True:
        at += int(rng.exponential(2.5) * RATE)
        length = int(rng.uniform(0.15, 0.7) * RATE)
        if at + length > n:
            break
        envelope = np.sin(np.linspace(0, np.pi, length)) ** 2
        crackle = rng.random(length) ** 3  # sparse, spiky amplitude
        out[at:at + length] += rng.uniform(0.5, 1.5) * envelope * crackle * \
            rustle[at:at + length]
        at += length
    return out


_KINDS = {"fan": _fan, "hvac": _hvac, "paper": _paper}


def noise(kind: str, seconds: float, seed: int = 0) -> bytes:
    """``seconds`` of ``kind`` noise (see :data:`NOISE_KINDS`); the same for the same seed.

    Scaled to -26 dBFS RMS, or lower where that would put a peak above -1 dBFS.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown noise {kind!r}; choose one of {NOISE_KINDS}")
    n = round(seconds * RATE)
    if n <= 0:
        return b""
    rng = np.random.default_rng([seed, NOISE_KINDS.index(kind)])
    x = _KINDS[kind](rng, n)
    rms, peak = np.sqrt(np.mean(x ** 2)), np.max(np.abs(x))
    return _pcm(x * min(_NOISE_RMS / (rms or 1.0), 0.9 / (peak or 1.0)))


def active_mask(x: np.ndarray, floor_db: float = -35.0) -> np.ndarray:
    """Per sample: in a 20 ms frame within ``floor_db`` of the loudest frames (speech)."""
    n = len(x) // _FRAME * _FRAME
    mask = np.zeros(len(x), dtype=bool)
    if n == 0:
        return mask
    power = np.mean(x[:n].reshape(-1, _FRAME) ** 2, axis=1)
    top = float(np.percentile(power, 99))
    if top <= 0:
        return mask
    frames = power >= top * 10 ** (floor_db / 10)
    mask[:n] = np.repeat(frames, _FRAME)
    return mask


def mix_at_snr(speech_pcm: bytes, noise_pcm: bytes, snr_db: float) -> bytes:
    """Speech plus noise scaled to ``snr_db`` (speech power over its active samples).

    The noise is looped or cut to the speech's length. If the sum would clip,
    both are scaled down together, which keeps the ratio.
    """
    s = _samples(speech_pcm)
    if not len(s):
        return b""
    v = _samples(noise_pcm)
    if not len(v):
        raise ValueError("no noise to mix")
    v = np.resize(v, len(s))
    active = active_mask(s)
    p_speech = float(np.mean(s[active] ** 2)) if active.any() else 0.0
    p_noise = float(np.mean(v ** 2))
    if p_noise <= 0 or p_speech <= 0:
        return speech_pcm
    mixed = s + v * np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    peak = float(np.max(np.abs(mixed)))
    if peak > 32767 / 32768:
        mixed *= (32767 / 32768) / peak
    return _pcm(mixed)


def apply_condition(pcm: bytes, name: str, seed: int = 0) -> bytes:
    """``pcm`` under the condition ``name`` of :data:`CONDITIONS`; same length."""
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; choose one of {list(CONDITIONS)}")
    condition = CONDITIONS[name]
    if condition.room is not None:
        pcm = reverb(pcm, condition.room)
    if condition.snr_db is not None and condition.noises and pcm:
        seconds = len(pcm) / 2 / RATE
        background = sum(_samples(noise(kind, seconds, seed + i))
                         for i, kind in enumerate(condition.noises))
        pcm = mix_at_snr(pcm, _pcm(np.asarray(background)), condition.snr_db)
    return pcm


def parse_conditions(text: str) -> list[str]:
    """``--condition`` of the benchmarks: one name, a comma list, or ``all``."""
    names = list(CONDITIONS) if text == "all" else [c.strip() for c in text.split(",")
                                                    if c.strip()]
    unknown = [c for c in names if c not in CONDITIONS]
    if unknown or not names:
        raise ValueError(f"unknown condition {unknown}; choose from "
                         f"{', '.join(CONDITIONS)} (a comma list) or all")
    return names
