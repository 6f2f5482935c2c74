"""The patient's consent to recording, per encounter, and the gate it opens.

::

    encounter-start ──▶ held ──consent──▶ given ──▶ transcription, draft (as before)
                         │ │                │
                         │ └──grace period after the end, or the longest hold
                         │    (a visit that never ends), no consent──▶ audio deleted
                         └──────────────────┴──withdraw──▶ withdrawn: capture stopped,
                                                            audio + transcript + draft deleted

Consent is recorded from the room's device (``roomscribe-device ctl consent``, the
``consent`` protocol event), the web API and the review page (a physician of the clinic),
the CLI, or the clinic's schedule (an appointment with consent on file,
:mod:`server.privacy.scheduled`). Where
the clinic does not require consent (``Clinic.consent_required`` off) audio is never
held. Held audio is stored (the device's spool drains) but no transcript or draft is
made from it; :class:`ConsentGate` is what the ingest hand-off awaits before it hands a
visit to transcription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from protocol import Consent, ConsentChange
from server.db import Database
from server.models import ConsentState, Encounter, utcnow
from server.privacy.retention import (
    DeletionReason,
    LegalHoldError,
    Purge,
    clinic_of,
    held_detail,
    held_expired,
    purge,
)
from server.privacy.scheduled import consent_from_schedule
from server.review.audit import AuditAction, record
from server.review.errors import Conflict, InvalidInput, NotFound, ReviewError

__all__ = [
    "DEFAULT_MAX_HOLD",
    "ConsentGate",
    "ConsentMethod",
    "Verdict",
    "apply_device_consent",
    "consent_view",
    "record_consent",
    "verdict",
    "withdraw_consent",
]

log = logging.getLogger(__name__)

#: The longest audio is held waiting for consent while its visit has not ended
#: (``ROOMSCRIBE_CONSENT_HOLD_MAX_MIN``).
DEFAULT_MAX_HOLD = timedelta(minutes=60)


class ConsentMethod(StrEnum):
    VERBAL = "verbal"
    WRITTEN = "written"


class Verdict(StrEnum):
    """What the pipeline may do with an encounter's audio now."""

    PROCEED = "proceed"  # consent given, or the clinic does not require it
    HOLD = "hold"  # keep it, make nothing of it, ask again later
    DISCARD = "discard"  # held past its grace period (deleted now), or already deleted
    WITHDRAWN = "withdrawn"  # consent withdrawn: stop, everything is deleted
    GONE = "gone"  # no such encounter


def verdict(s: Session, encounter_id: str, now: datetime, grace: timedelta,
            max_hold: timedelta | None = None) -> Verdict:
    enc = s.get(Encounter, encounter_id)
    if enc is None:
        return Verdict.GONE
    if enc.consent_state == ConsentState.WITHDRAWN:
        return Verdict.WITHDRAWN
    if enc.consent_state == ConsentState.GIVEN:
        return Verdict.PROCEED
    clinic = clinic_of(s, enc)
    if clinic is None or not clinic.consent_required:
        return Verdict.PROCEED
    if enc.audio_deleted_at is not None:
        return Verdict.DISCARD
    if held_expired(s, enc, now, grace, max_hold) and not enc.legal_hold:
        return Verdict.DISCARD
    return Verdict.HOLD


def consent_view(enc: Encounter) -> dict[str, object]:
    return {"encounter_id": enc.id, "state": enc.consent_state or "none",
            "method": enc.consent_method, "obtained_by": enc.consent_by,
            "at": enc.consent_at.isoformat() if enc.consent_at else None,
            "source": enc.consent_source, "legal_hold": enc.legal_hold,
            "audio_deleted_at": enc.audio_deleted_at.isoformat() if enc.audio_deleted_at
            else None}


def _encounter(s: Session, encounter_id: str) -> Encounter:
    enc = s.get(Encounter, encounter_id)
    if enc is None:
        raise NotFound(f"no encounter {encounter_id}")
    return enc


def record_consent(s: Session, encounter_id: str, *, method: str, obtained_by: str,
                   source: str, now: datetime, at: datetime | None = None,
                   actor: str = "", user_id: int | None = None) -> Encounter:
    """Record that the patient consented (idempotent for the same consent).

    Refused (Conflict) once consent was withdrawn or the held audio was already deleted:
    that visit's recording is gone; start a new one."""
    if method not in ConsentMethod._value2member_map_:
        raise InvalidInput("consent method must be verbal or written")
    obtained_by = obtained_by.strip()
    if not obtained_by:
        raise InvalidInput("say who obtained the consent (obtained_by)")
    enc = _encounter(s, encounter_id)
    if enc.consent_state == ConsentState.WITHDRAWN:
        raise Conflict("consent was withdrawn for this encounter; start a new recording")
    if enc.audio_deleted_at is not None and enc.consent_state != ConsentState.GIVEN:
        raise Conflict("this encounter's audio was deleted (no consent within the grace "
                       "period); start a new recording")
    if enc.consent_state == ConsentState.GIVEN:
        return enc
    clinic = clinic_of(s, enc)
    enc.consent_state = ConsentState.GIVEN
    enc.consent_method = method
    enc.consent_by = obtained_by[:200]
    enc.consent_at = at or now
    enc.consent_source = source[:16]
    event = record(s, None, AuditAction.CONSENT, None,
                   f"{method} consent obtained by {obtained_by[:200]} (via {source})",
                   clinic_id=clinic.id if clinic else "", actor=actor or obtained_by,
                   encounter_id=enc.id, now=now)
    event.user_id = user_id
    s.flush()
    return enc


def withdraw_consent(s: Session, encounter_id: str, *, obtained_by: str, source: str,
                     now: datetime, actor: str = "", user_id: int | None = None,
                     reason: str = "") -> Purge | None:
    """The patient withdrew consent: mark it, and delete the audio, transcript and any
    draft/note of the visit (one ``consent_withdrawn`` audit row with the counts).
    Idempotent: a second withdrawal deletes what arrived since. Under legal hold the
    consent is marked withdrawn but nothing is deleted (None, audited)."""
    enc = _encounter(s, encounter_id)
    clinic = clinic_of(s, enc)
    first = enc.consent_state != ConsentState.WITHDRAWN
    enc.consent_state = ConsentState.WITHDRAWN
    if first:
        enc.consent_by = (obtained_by.strip() or actor)[:200]
        enc.consent_at = now
        enc.consent_source = source[:16]
    who = actor or obtained_by or source
    try:
        return purge(s, enc, DeletionReason.WITHDRAWAL, audio=True, transcript=True, note=True,
                     actor=who, user_id=user_id, now=now,
                     detail=f"consent withdrawn (via {source}); capture stopped"
                     + (f"; {reason}" if reason else ""))
    except LegalHoldError:
        event = record(s, None, AuditAction.CONSENT_WITHDRAWN, None,
                       "consent withdrawn; nothing deleted: the encounter is under legal hold",
                       clinic_id=clinic.id if clinic else "", actor=who, encounter_id=enc.id,
                       now=now)
        event.user_id = user_id
        return None


def apply_device_consent(db: Database, device_id: str, event: Consent) -> str:
    """Record a ``consent`` event from a room's device (blocking; one transaction).

    Raises LookupError for an encounter this device did not start, ValueError for a
    consent the encounter cannot take (withdrawn before, audio already deleted)."""
    now = utcnow()
    at = datetime.fromtimestamp(event.at_us / 1e6, UTC) if event.at_us > 0 else now
    with db.session() as s:
        enc = s.get(Encounter, event.encounter_id)
        if enc is None or enc.device_id != device_id:
            raise LookupError(f"encounter {event.encounter_id} was never started")
        try:
            if event.state == ConsentChange.WITHDRAWN:
                withdraw_consent(s, enc.id, obtained_by=event.obtained_by, source="device",
                                 now=now, actor=event.obtained_by or f"device:{device_id}")
            else:
                record_consent(s, enc.id, method=event.method, obtained_by=event.obtained_by
                               or f"device:{device_id}", source="device", now=now, at=at,
                               actor=event.obtained_by or f"device:{device_id}")
        except ReviewError as err:
            raise ValueError(err.message) from err
        return enc.consent_state


class ConsentGate:
    """What the ingest hand-off awaits before transcribing a visit.

    :meth:`wait` returns True once the visit may be transcribed, False when it never
    will be (withdrawn, or held past its grace period or longer than ``max_hold``: then
    the held audio is deleted here). Each look also asks the clinic's schedule (consent on
    file for the visit's appointment releases it). While held it asks the database again
    every ``poll_s`` seconds, or at once when :meth:`changed` is called (consent recorded
    in this process). ``clock`` is injected so tests move time instead of sleeping."""

    def __init__(self, db: Database, *, grace: timedelta, poll_s: float = 5.0,
                 max_hold: timedelta | None = DEFAULT_MAX_HOLD,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.grace = grace
        self.max_hold = max_hold
        self.poll_s = poll_s
        self.clock = clock
        self._wakes: dict[str, asyncio.Event] = {}

    def changed(self, encounter_id: str) -> None:
        """Consent (or the clock) changed for this encounter: look again now."""
        wake = self._wakes.get(encounter_id)
        if wake is not None:
            wake.set()

    @property
    def waiting(self) -> list[str]:
        return sorted(self._wakes)

    async def wait(self, encounter_id: str) -> bool:
        wake = self._wakes.setdefault(encounter_id, asyncio.Event())
        logged = False
        try:
            while True:
                wake.clear()
                answer = await asyncio.to_thread(self._check, encounter_id)
                if answer is Verdict.PROCEED:
                    if logged:
                        log.info("encounter %s: consent recorded; transcribing", encounter_id)
                    return True
                if answer is not Verdict.HOLD:
                    log.info("encounter %s: %s; nothing is transcribed", encounter_id,
                             answer.value)
                    return False
                if not logged:
                    logged = True
                    log.info("encounter %s: no consent recorded yet; audio held",
                             encounter_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=self.poll_s)
        finally:
            if self._wakes.get(encounter_id) is wake:
                del self._wakes[encounter_id]

    def _check(self, encounter_id: str) -> Verdict:
        now = self.clock()
        with self.db.session() as s:
            enc = s.get(Encounter, encounter_id)
            if enc is not None and enc.consent_state == ConsentState.NONE:
                consent_from_schedule(s, enc, now)
            answer = verdict(s, encounter_id, now, self.grace, self.max_hold)
            if answer is Verdict.DISCARD and enc is not None \
                    and enc.audio_deleted_at is None:
                purge(s, enc, DeletionReason.HELD_EXPIRED, now=now.astimezone(UTC),
                      actor="consent-gate",
                      detail=held_detail(enc, now, self.grace, self.max_hold))
            return answer
