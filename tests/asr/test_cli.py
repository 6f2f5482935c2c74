"""``roomscribe transcribe``: a WAV file through the stage, printed as JSON."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from server.asr.cli import main
from server.lab.speech import Turn
from server.settings import Settings
from tests.asr.speech import needs_espeak, synthesize

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture
def cli_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", models_dir=REPO_MODELS, asr_engine="none")


def test_bad_input_is_a_clear_error(tmp_path: Path, cli_settings: Settings,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("not audio")
    assert main([str(not_wav)], cli_settings) == 1
    assert "not a PCM WAV file" in capsys.readouterr().err
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(bytes(4 * 100))
    assert main([str(stereo)], cli_settings) == 1
    assert "expected 16000 Hz 16-bit mono" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.wav")], cli_settings) == 1
    assert "no such file" in capsys.readouterr().err


def test_vosk_without_its_model_names_the_fetch_command(
        tmp_path: Path, cli_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(32000))
    assert main([str(silent), "--engine", "vosk"], cli_settings) == 1
    assert "roomscribe models fetch vosk-small-en-us" in capsys.readouterr().err


@needs_espeak
def test_transcribes_a_wav_file_to_json(tmp_path: Path, cli_settings: Settings,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("faster_whisper")
    pcm, _ = synthesize([Turn("doctor", "Please take the metformin with breakfast.")],
                        tmp_path / "clip.wav", {"doctor": "en-us+m3"})
    with wave.open(str(tmp_path / "clip.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    vocab = tmp_path / "terms.txt"
    vocab.write_text("# test terms\nmetformin\n")
    assert main([str(tmp_path / "clip.wav"), "--engine", "whisper", "--vocabulary",
                 str(vocab), "--events"], cli_settings) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["engine"] == "whisper:whisper-tiny.en" and len(out["segments"]) == 1
    seg = out["segments"][0]
    assert "metformin" in seg["text"].lower() and seg["words"]
    events = [json.loads(line)["type"] for line in captured.err.splitlines()]
    assert events[0] == "transcription-start" and events[-1] == "transcript-complete"
    assert "final" in events
