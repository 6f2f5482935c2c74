"""Where a finished draft enters the queue.

The pipeline calls :func:`receive_draft` (blocking: run it in the executor) or
the async :func:`submit_draft`, which also commits and pushes the live update::

    item = await submit_draft(services, encounter_id, draft, transcript)

``services`` is anything with a ``db``, a ``review_hub`` and ``run_db`` (an
:class:`IntakeContext`: the server's Services, or a worker's); this module does not
import the server's composition.

The draft becomes version 1 of a :class:`ReviewItem`, placed in a pool by the
clinic's routing rules (lowest priority number whose conditions all match),
owned by the room's physician, due after the pool's turnaround time. A copy of
the transcript is kept with the item so evidence and playback do not depend on
the transcript tables' shape. Receiving a draft again for the same encounter
replaces the AI draft while nobody has touched it, and is refused after.

The item gets its patient from the clinic's schedule
(:func:`server.review.patients.link_from_schedule`): the appointment of its
room whose window holds the visit's start (the device's capture clock; the
time of intake when the device did not say). No single match leaves it
unlinked, for a reviewer to pick; a patient a reviewer chose is never replaced.
Consent on file for that appointment becomes the visit's consent when none was
recorded (:mod:`server.privacy.scheduled`; where the clinic requires consent the
consent gate has already done this before anything was transcribed).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp.schema import DraftNote, Transcript
from server.db import Database
from server.models import Encounter, Room, utcnow
from server.pipeline.events import OnEvent, PipelineEvent, Stage
from server.review.audit import AuditAction, record
from server.review.document import document_from_draft
from server.review.errors import Conflict, NotFound
from server.review.lifecycle import ReviewState
from server.review.live import ItemChange, LiveHub
from server.review.models import NoteVersion, Pool, ReviewItem, RoomPhysician, RoutingRule
from server.review.patients import SOURCE_REVIEWER, link_from_schedule, visit_start

__all__ = ["DEFAULT_TURNAROUND_H", "IntakeContext", "receive_draft", "route", "submit_draft"]

T = TypeVar("T")


class IntakeContext(Protocol):
    """What :func:`submit_draft` needs of the process it runs in."""

    @property
    def db(self) -> Database: ...

    @property
    def review_hub(self) -> LiveHub: ...

    def run_db(self, fn: Callable[..., T], *args: Any) -> Awaitable[T]: ...

DEFAULT_TURNAROUND_H = 24.0
AI_AUTHOR = "RoomScribe draft"


def route(s: Session, clinic_id: str, room_id: str, template: str) -> Pool | None:
    """The pool a new draft from ``room_id`` goes to, or None (the physician's queue only)."""
    rules = s.scalars(select(RoutingRule).where(RoutingRule.clinic_id == clinic_id)
                      .order_by(RoutingRule.priority, RoutingRule.id))
    for rule in rules:
        if rule.room_id and rule.room_id != room_id:
            continue
        if rule.room_prefix and not room_id.startswith(rule.room_prefix):
            continue
        if rule.template and rule.template != template:
            continue
        return s.get(Pool, rule.pool_id)
    return None


def _stored_transcript(s: Session, encounter_id: str) -> dict[str, Any] | None:
    """The ASR stage's stored segments, when the pipeline did not hand a transcript over."""
    from server.transcripts.tables import TranscriptSegmentRow

    rows = list(s.scalars(select(TranscriptSegmentRow)
                          .where(TranscriptSegmentRow.encounter_id == encounter_id)
                          .order_by(TranscriptSegmentRow.segment_id)))
    if not rows:
        return None
    return {"encounter_id": encounter_id, "engine": "", "language": "en",
            "segments": [{"id": r.segment_id, "start_s": r.start_s, "end_s": r.end_s,
                          "text": r.text, "speaker": r.speaker, "words": r.words or []}
                         for r in rows]}


def receive_draft(s: Session, encounter_id: str, draft: DraftNote,
                  transcript: Transcript | None = None, *, now: datetime | None = None,
                  ) -> ReviewItem:
    """Store ``draft`` as version 1 of the encounter's review item and route it."""
    now = now or utcnow()
    enc = s.get(Encounter, encounter_id)
    if enc is None:
        raise NotFound(f"no encounter {encounter_id}")
    room = s.get(Room, enc.room_id)
    assert room is not None
    document = document_from_draft(draft)
    copied = transcript.to_dict() if transcript else _stored_transcript(s, encounter_id)
    author = AI_AUTHOR + "".join(f" {k}={v}" for k, v in sorted(draft.model_versions.items()))

    item = s.scalars(select(ReviewItem).where(ReviewItem.encounter_id == encounter_id)
                     .with_for_update()).first()
    if item is not None:
        if item.version != 1 or item.state != ReviewState.READY:
            raise Conflict(f"encounter {encounter_id} is already under review "
                           f"({item.state}, version {item.version}); a new draft is refused")
        first = s.scalars(select(NoteVersion).where(NoteVersion.item_id == item.id,
                                                    NoteVersion.number == 1)).one()
        first.document, first.author_name, first.created_at = document, author[:200], now
        item.transcript, item.updated_at = copied, now
        linked = item.patient_source != SOURCE_REVIEWER and link_from_schedule(
            s, item, visit_start(enc, now)) is not None
        record(s, None, AuditAction.INTAKE, item, "AI draft replaced before review"
               + ("; patient from schedule" if linked else ""), now=now)
        s.flush()
        return item

    pool = route(s, room.clinic_id, room.id, draft.template)
    owner = s.get(RoomPhysician, room.id)
    turnaround = pool.turnaround_h if pool else DEFAULT_TURNAROUND_H
    item = ReviewItem(
        id=str(uuid.uuid4()), encounter_id=encounter_id, clinic_id=room.clinic_id,
        room_id=room.id, pool_id=pool.id if pool else None,
        physician_id=owner.user_id if owner else None, state=ReviewState.READY.value,
        version=1, received_at=now, updated_at=now, due_at=now + timedelta(hours=turnaround),
        transcript=copied,
    )
    appointment = link_from_schedule(s, item, visit_start(enc, now))
    if appointment is not None:  # consent on file there is the visit's (where none is yet)
        # imported here: server.privacy imports the review package (its audit log)
        from server.privacy.scheduled import consent_from_appointment

        consent_from_appointment(s, enc, appointment, now)
    s.add(item)
    s.flush()
    s.add(NoteVersion(item_id=item.id, number=1, kind="ai_draft", author_id=None,
                      author_name=author[:200], created_at=now, document=document))
    record(s, None, AuditAction.INTAKE, item,
           f"routed to {pool.id if pool else 'no pool'}; " + (
               f"patient from schedule (appointment {appointment.id})" if appointment
               else "no appointment matched: patient not linked"), now=now)
    s.flush()
    return item


async def submit_draft(services: IntakeContext, encounter_id: str, draft: DraftNote,
                       transcript: Transcript | None = None, *,
                       on_event: OnEvent | None = None) -> ReviewItem:
    """Receive the draft in the executor, commit, then push it to open browsers
    (``review-start`` to ``on_event``)."""

    def work() -> ReviewItem:
        with services.db.session() as s:
            return receive_draft(s, encounter_id, draft, transcript)

    item: ReviewItem = await services.run_db(work)
    services.review_hub.publish(ItemChange.of(item, "intake", "system"))
    if on_event is not None:
        on_event(PipelineEvent.start(Stage.REVIEW, encounter_id, item=item.id,
                                     pool=item.pool_id or ""))
    return item
