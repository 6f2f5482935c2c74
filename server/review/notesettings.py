"""How a clinic's drafts are written: its note template and style.

    settings = note_settings(session, clinic_id)            # for drafting
    set_note_settings(session, clinic_id, template="aci", style="detailed",
                      templates_dir=..., who=principal, clinics=op.clinics)

A template is a built-in name (``soap``, ``aci``) or the name of a TOML file
``<name>.toml`` in the server's templates folder (``Settings.note_templates``);
the style is one of ``nlp.assemble.STYLES`` — ``concise`` (the default: note
phrasing, repeats left out), ``detailed`` (note phrasing, every sentence kept)
or ``verbatim`` (the spoken sentences, tidied). A change is checked before it is
stored (an unknown template or style is a 422 with the choices) and leaves an
audit row saying who changed what.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from nlp.assemble import STYLES, TEMPLATES, load_template
from nlp.errors import InputError
from server.models import Clinic
from server.review import audit
from server.review.auth import Principal
from server.review.errors import Forbidden, InvalidInput, NotFound

__all__ = ["NoteSettings", "note_settings", "set_note_settings", "template_source"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class NoteSettings:
    template: str = "soap"
    style: str = "concise"


def template_source(name: str, templates_dir: Path) -> str:
    """What ``nlp`` loads for a template name: the built-in name, or the TOML file's path.
    Raises InvalidInput for a name that is neither (or a file that is not a template)."""
    if name in TEMPLATES:
        return name
    if not _NAME.match(name):
        raise InvalidInput(f"template {name!r}: use a built-in template {sorted(TEMPLATES)} "
                           "or the name of a .toml file (letters, digits, - and _)")
    path = templates_dir / f"{name}.toml"
    if not path.is_file():
        known = sorted([*TEMPLATES, *(p.stem for p in templates_dir.glob("*.toml"))])
        raise InvalidInput(f"no template {name!r}: known templates are {known}")
    try:
        load_template(str(path))
    except InputError as err:
        raise InvalidInput(str(err)) from err
    return str(path)


def note_settings(s: Session, clinic_id: str) -> NoteSettings:
    clinic = s.get(Clinic, clinic_id)
    if clinic is None:
        return NoteSettings()
    return NoteSettings(clinic.note_template or "soap", clinic.note_style or "concise")


def set_note_settings(s: Session, clinic_id: str, *, templates_dir: Path,
                      template: str | None = None, style: str | None = None,
                      who: Principal | None = None, actor: str = "",
                      clinics: Collection[str] | None = None) -> NoteSettings:
    """Change what is given (None: keep); audited. ``clinics``: the clinics the caller
    administers (None: all)."""
    if clinics is not None and clinic_id not in clinics:
        raise Forbidden(f"you do not administer clinic {clinic_id!r}")
    clinic = s.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"no clinic {clinic_id!r}")
    if style is not None and style not in STYLES:
        raise InvalidInput(f"unknown note style {style!r}: use one of {list(STYLES)}")
    if template is not None:
        template_source(template, templates_dir)
    before = NoteSettings(clinic.note_template, clinic.note_style)
    if template is not None:
        clinic.note_template = template
    if style is not None:
        clinic.note_style = style
    after = NoteSettings(clinic.note_template, clinic.note_style)
    if after != before:
        audit.record(s, who, audit.AuditAction.NOTE_SETTINGS, clinic_id=clinic_id, actor=actor,
                     detail=f"template {before.template} -> {after.template}; "
                            f"style {before.style} -> {after.style}")
    return after
