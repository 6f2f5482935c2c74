"""The server's implementations of the stages' ports (blocking; run them in the database
worker pool). The composition root (server/services.py) binds them to its database and
settings with :func:`functools.partial`; the stages see plain callables."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from server.db import Database
from server.models import Room, utcnow

__all__ = ["consent_allows", "note_settings"]

log = logging.getLogger(__name__)


def consent_allows(db: Database, grace: timedelta, encounter_id: str) -> bool:
    """The patient's consent (server/privacy) still allows a draft of this visit."""
    from server.privacy.consent import Verdict, verdict

    with db.session() as s:
        return verdict(s, encounter_id, utcnow(), grace) is Verdict.PROCEED


def note_settings(db: Database, templates_dir: Path, room_id: str) -> tuple[str, str]:
    """(template source, style) of the room's clinic (``server.review.notesettings``);
    a template that has gone missing since it was chosen falls back to SOAP, logged."""
    from server.review.errors import InvalidInput
    from server.review.notesettings import NoteSettings, template_source
    from server.review.notesettings import note_settings as clinic_note_settings

    with db.session() as s:
        room = s.get(Room, room_id)
        note = clinic_note_settings(s, room.clinic_id) if room is not None else NoteSettings()
    try:
        return template_source(note.template, templates_dir), note.style
    except InvalidInput as err:
        log.warning("room %s: note template %r unusable (%s); drafting with soap",
                    room_id, note.template, err)
        return "soap", note.style
