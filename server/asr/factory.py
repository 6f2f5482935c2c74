"""Build the configured engine from Settings (fail fast: model present? package installed?)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.asr.engine import SpeechEngine
from server.asr.errors import ModelNotInstalled
from server.asr.vocabulary import resolve_vocabulary
from server.modelstore import ModelMissing, ModelSpec, ModelStoreError, find_model
from server.modelstore import resolve_model_dir as _resolve
from server.settings import Settings

if TYPE_CHECKING:
    from server.asr.stage import TranscriptionStage
    from server.asr.vosk_engine import VoskEngine
    from server.asr.whisper_engine import WhisperEngine

__all__ = ["ENGINE_CHOICES", "build_engine", "build_stage", "choose_engine", "model_dir"]

ENGINE_CHOICES = ("auto", "vosk", "whisper", "two-pass")


def model_dir(settings: Settings, name: str) -> tuple[ModelSpec, Path]:
    """The manifest entry and directory of model ``name``, or a ModelNotInstalled that
    names the command that gets it."""
    try:
        spec = find_model(settings.models_dir, name)
        return spec, _resolve(spec, settings.models_dir)
    except ModelMissing as err:
        raise ModelNotInstalled(str(err)) from err
    except ModelStoreError as err:
        raise ModelNotInstalled(f"cannot find ASR model {name!r}: {err}") from err


def choose_engine(settings: Settings, requested: str | None = None) -> str:
    """``auto`` → ``vosk`` when its English model is present, else ``whisper``."""
    choice = requested or settings.asr_engine
    if choice != "auto":
        return choice
    try:
        spec, _ = model_dir(settings, settings.asr_vosk_model)
    except ModelNotInstalled:
        return "whisper"
    return "vosk" if spec.language in ("", "en") else "whisper"


def _vosk(settings: Settings, phrases: Sequence[str]) -> VoskEngine:
    from server.asr.vosk_engine import VoskEngine

    spec, path = model_dir(settings, settings.asr_vosk_model)
    return VoskEngine(path, name=spec.name, language=spec.language or "en", phrases=phrases)


def _whisper(settings: Settings, vocabulary: Sequence[str], partials: bool) -> WhisperEngine:
    from server.asr.whisper_engine import WhisperEngine, WhisperOptions

    spec, path = model_dir(settings, settings.asr_whisper_model)
    options = WhisperOptions(
        workers=settings.asr_workers, threads=settings.asr_threads_per_worker,
        partial_interval_s=settings.asr_partial_interval_s if partials else 0.0,
        min_silence_s=settings.asr_min_silence_ms / 1000,
        max_segment_s=min(settings.asr_max_segment_s, 28.0),
        min_speech_s=settings.asr_min_speech_ms / 1000,
        min_speech_dbfs=settings.asr_min_speech_dbfs,
        stock_phrase_vad_prob=settings.asr_stock_phrase_vad_prob,
        device=settings.asr_whisper_device, device_index=settings.asr_whisper_device_index,
        compute_type=settings.asr_whisper_compute_type)
    return WhisperEngine(path, name=spec.name, vocabulary=vocabulary, options=options)


def build_engine(settings: Settings, engine: str | None = None,
                 vocabulary: Sequence[str] | None = None,
                 vosk_phrases: Sequence[str] = ()) -> SpeechEngine:
    """Load the engine ``engine`` (default: the settings' choice). Blocking: loads models."""
    choice = choose_engine(settings, engine)
    if choice not in ENGINE_CHOICES[1:]:
        raise ValueError(f"unknown ASR engine {choice!r}; choose from {', '.join(ENGINE_CHOICES)}")
    terms = resolve_vocabulary(settings.asr_vocabulary) if vocabulary is None else vocabulary
    if choice == "vosk":
        return _vosk(settings, vosk_phrases)
    if choice == "whisper":
        return _whisper(settings, terms, partials=True)
    from server.asr.twopass import TwoPassEngine

    return TwoPassEngine(_vosk(settings, vosk_phrases), _whisper(settings, terms, partials=False))


def build_stage(settings: Settings, *, engine: SpeechEngine | None = None,
                **ports: Any) -> TranscriptionStage | None:
    """The server's transcription stage per settings (None when ``asr_engine = none`` and
    no ``engine`` is given), with its ports (``store``, ``events``, ``db_pool``,
    ``next_stage``, ``labeler``, ``watcher``, ``voices``, ``resume_from``, ``on_event``:
    see :class:`~server.asr.stage.TranscriptionStage`) from the composition root.

    Loads the engine now, so a missing model stops the server at start with a
    message naming the command that fetches it.
    """
    from concurrent.futures import ThreadPoolExecutor

    from server.asr.stage import StageLimits, TranscriptionStage

    if engine is None:
        if settings.asr_engine == "none":
            return None
        engine = build_engine(settings)
    pool = ThreadPoolExecutor(max_workers=settings.asr_workers, thread_name_prefix="asr")
    limits = StageLimits(behind_threshold_s=settings.asr_behind_threshold_s)
    return TranscriptionStage(engine, pool, limits=limits, owns_pool=True, **ports)
