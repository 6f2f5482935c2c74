"""server/asr/factory.py: the settings reach the engine's options (no model is loaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.asr import whisper_engine
from server.asr.factory import build_engine
from server.settings import Settings

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


class _Recorded:
    """Stands in for WhisperEngine: keeps what the factory built it with."""

    def __init__(self, model_dir: Path, *, name: str, vocabulary: Any,
                 options: whisper_engine.WhisperOptions) -> None:
        self.model_dir = model_dir
        self.name = name
        self.vocabulary = list(vocabulary)
        self.options = options


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whisper_engine, "WhisperEngine", _Recorded)


def _options(**kw: Any) -> whisper_engine.WhisperOptions:
    settings = Settings(models_dir=REPO_MODELS, asr_vocabulary="none", **kw)
    engine = build_engine(settings, "whisper")
    assert isinstance(engine, _Recorded)
    assert engine.name == "whisper-tiny.en" and (engine.model_dir / "model.bin").is_file()
    return engine.options


@pytest.mark.usefixtures("recorded")
def test_gpu_settings_reach_whisper_options() -> None:
    options = _options(asr_whisper_device="cuda", asr_whisper_device_index=1,
                       asr_whisper_compute_type="int8_float16", asr_workers=6,
                       asr_threads_per_worker=2)
    assert (options.device, options.device_index, options.compute_type) == (
        "cuda", 1, "int8_float16")
    assert options.resolved_compute_type == "int8_float16"
    assert (options.workers, options.threads) == (6, 2)


@pytest.mark.usefixtures("recorded")
def test_default_compute_type_follows_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = _options()
    assert (cpu.device, cpu.device_index, cpu.resolved_compute_type) == ("cpu", 0, "int8")
    monkeypatch.setenv("ROOMSCRIBE_ASR_WHISPER_DEVICE", "cuda")
    cuda = _options()
    assert (cuda.device, cuda.resolved_compute_type) == ("cuda", "float16")
