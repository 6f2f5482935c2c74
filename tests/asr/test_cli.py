"""``roomscribe transcribe``: a WAV file through the stage, printed as JSON."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from server.asr.cli import main
from server.lab.speech import Turn
from server.settings import Settings
from tests.asr.speech import needs_espeak, needs_neural, synthesize

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


@needs_neural
def test_speakers_come_from_the_voice_and_the_role_model(
        tmp_path: Path, cli_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("resemblyzer")
    if not (REPO_MODELS / "nlp" / "roles" / "meta.json").is_file():
        pytest.skip("no role model (roomscribe models build)")
    turns = [Turn("doctor", "Good morning. What brings you in today?"),
             Turn("patient", "I have had a bad cough for about two weeks now."),
             Turn("doctor", "Are you bringing anything up when you cough?"),
             Turn("patient", "Yes, some yellow phlegm, mostly in the mornings."),
             Turn("doctor", "I am going to order a chest x-ray and start you on an inhaler.")]
    pcm, _ = synthesize(turns, tmp_path / "visit.wav")
    with wave.open(str(tmp_path / "visit.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    assert main([str(tmp_path / "visit.wav"), "--engine", "whisper", "--diarize"],
                cli_settings) == 0
    segments = json.loads(capsys.readouterr().out)["segments"]
    said = {s["speaker"]: " ".join(x["text"] for x in segments if x["speaker"] == s["speaker"])
            for s in segments}
    assert set(said) == {"doctor", "patient"}
    assert "x-ray" in said["doctor"].lower() and "mornings" in said["patient"].lower()
    # without diarization and without the role model, nobody is named
    asr_only = tmp_path / "models"  # the speech models' manifest, no NLP models
    asr_only.mkdir()
    (asr_only / "asr.toml").write_text((REPO_MODELS / "asr.toml").read_text())
    no_models = Settings(data_dir=tmp_path / "var", models_dir=asr_only, asr_engine="none")
    assert main([str(tmp_path / "visit.wav"), "--engine", "whisper", "--no-diarize"],
                no_models) == 0
    captured = capsys.readouterr()
    assert {s["speaker"] for s in json.loads(captured.out)["segments"]} == {"unknown"}
    assert "no role model" in captured.err
