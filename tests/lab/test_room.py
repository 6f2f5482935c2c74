"""Room acoustics: reverb tails, deterministic noise, mixing at a measured SNR, conditions."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from server.lab.room import (
    CONDITIONS,
    NOISE_KINDS,
    active_mask,
    apply_condition,
    mix_at_snr,
    noise,
    reverb,
)
from server.lab.voices import RATE

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")


def _pcm(x: np.ndarray) -> bytes:
    return np.round(x * 32768).astype("<i2").tobytes()


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0


def bursts(seconds: float = 4.0, amplitude: float = 0.3) -> np.ndarray:
    """'Speech': 0.5 s of a vowel-like tone, 0.5 s of silence, and so on."""
    t = np.arange(int(seconds * RATE)) / RATE
    on = (t % 1.0) < 0.5
    vowel = np.sin(2 * np.pi * 150 * t) + 0.5 * np.sin(2 * np.pi * 450 * t)
    return amplitude * vowel / np.sqrt(np.mean(vowel ** 2) * 2) * on


def test_conditions_are_the_four_benchmark_conditions() -> None:
    assert list(CONDITIONS) == ["clean", "reverb", "reverb+20dB", "reverb+10dB"]
    assert CONDITIONS["reverb+10dB"].snr_db == 10.0 and CONDITIONS["clean"].room is None
    with pytest.raises(ValueError, match="reverb"):
        apply_condition(b"\0\0", "underwater")


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_mix_at_snr_hits_the_asked_ratio_over_speech(kind: str, snr_db: float) -> None:
    speech = bursts()
    on = (np.arange(len(speech)) / RATE % 1.0) < 0.5
    mixed = _samples(mix_at_snr(_pcm(speech), noise(kind, 3.0, seed=1), snr_db))
    clean = _samples(_pcm(speech))
    assert len(mixed) == len(clean)
    # Loud bursts of noise may have made the mix scale both down together: undo that.
    gain = float(np.dot(mixed, clean) / np.dot(clean, clean))
    assert 0.05 < gain < 1.01
    added = mixed - gain * clean
    measured = 10 * np.log10(np.mean((gain * clean[on]) ** 2) / np.mean(added ** 2))
    assert abs(measured - snr_db) < 0.5, measured


def test_speech_activity_ignores_pauses() -> None:
    speech = bursts()
    on = (np.arange(len(speech)) / RATE % 1.0) < 0.5
    mask = active_mask(speech)
    assert np.mean(mask == on) > 0.98


def test_mix_scales_down_rather_than_clipping() -> None:
    loud = bursts(amplitude=0.9)
    mixed = _samples(mix_at_snr(_pcm(loud), noise("hvac", 4.0, seed=2), 0.0))
    assert np.max(np.abs(mixed)) < 1.0
    assert np.mean(np.abs(mixed) >= 32767 / 32768) < 1e-4


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_noise_is_deterministic_per_seed(kind: str) -> None:
    a = noise(kind, 2.0, seed=5)
    assert len(a) == 2 * 2 * RATE
    assert a == noise(kind, 2.0, seed=5)
    assert a != noise(kind, 2.0, seed=6)
    x = _samples(a)
    assert 0.005 < np.sqrt(np.mean(x ** 2)) <= 0.051 and np.max(np.abs(x)) <= 0.9


def test_noise_kinds_differ_in_colour() -> None:
    def centroid(pcm: bytes) -> float:
        spectrum = np.abs(np.fft.rfft(_samples(pcm)))
        return float((spectrum * np.fft.rfftfreq(len(spectrum) * 2 - 2, 1 / RATE)).sum()
                     / spectrum.sum())

    fan, hvac, paper = (centroid(noise(k, 3.0, seed=0)) for k in ("fan", "hvac", "paper"))
    assert fan < hvac < paper  # rumble, airflow, crackle
    with pytest.raises(ValueError, match="fan"):
        noise("traffic", 1.0)


@needs_sox
def test_reverb_lengthens_the_tail_and_keeps_the_length() -> None:
    click = np.zeros(RATE)
    click[: RATE // 10] = bursts(0.1, 0.5)
    dry = _pcm(click)
    wet = reverb(dry, "exam")
    assert len(wet) == len(dry)
    tail = slice(int(0.15 * RATE), int(0.4 * RATE))  # 50-300 ms after the sound stops
    assert np.sqrt(np.mean(_samples(dry)[tail] ** 2)) == 0.0
    assert np.sqrt(np.mean(_samples(wet)[tail] ** 2)) > 0.003
    assert reverb(dry, "exam") == wet  # deterministic
    assert reverb(dry, "office") != wet
    with pytest.raises(ValueError, match="exam"):
        reverb(dry, "cathedral")


@needs_sox
def test_conditions_keep_length_and_get_noisier() -> None:
    speech = _pcm(np.concatenate([bursts(3.0), np.zeros(RATE)]))
    assert apply_condition(speech, "clean") == speech
    out = {name: apply_condition(speech, name, seed=3) for name in CONDITIONS}
    assert all(len(pcm) == len(speech) for pcm in out.values())
    assert out["reverb+10dB"] == apply_condition(speech, "reverb+10dB", seed=3)
    silence = slice(-RATE // 2, None)  # the last half second: no speech, no tail
    level = {name: np.sqrt(np.mean(_samples(pcm)[silence] ** 2)) for name, pcm in out.items()}
    assert level["clean"] == 0.0
    assert level["reverb"] < level["reverb+20dB"] < level["reverb+10dB"]


def test_parse_conditions_names_lists_and_all() -> None:
    import pytest

    from server.lab.room import CONDITIONS, parse_conditions

    assert parse_conditions("all") == list(CONDITIONS)
    assert parse_conditions("clean, reverb+20dB") == ["clean", "reverb+20dB"]
    with pytest.raises(ValueError, match="bogus"):
        parse_conditions("clean,bogus")
