"""The review queue and its items: list, open, edit, claim, send, return, sign.

Every response with patient data writes an audit row first. Edits use
optimistic concurrency: ``PUT …/note`` with ``base_version`` (or ``If-Match:
"<version>"``); a stale one gets 409 with the current version and nothing is
overwritten. Changes are pushed to open browsers after they commit.

Every route here refuses the IT API key (403) and audits refusals
(``AuditRefusals``: one ``access_denied`` row per refused request). Numbers in
the URL are range-checked (422 with the allowed range). ``POST /tickets``
gives a 60-second single-use ``?ticket=`` for the places a browser cannot send
a header (the live-transcript socket, ``<audio src>``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from server.deps import ServicesDep, SessionDep
from server.models import utcnow
from server.review import audio, fhir, workflow
from server.review.access import item_for
from server.review.audit import AuditAction, record
from server.review.auth import Principal
from server.review.deps import AuditRefusals, CurrentUser
from server.review.document import InstructionChange, OrderChange
from server.review.errors import InvalidInput, NotFound
from server.review.lifecycle import Action, ReviewState, allowed_actions
from server.review.live import hub_of
from server.review.models import FhirExport, ReviewItem
from server.review.queue import list_queue, pool_turnaround
from server.review.schemas import (
    ItemPublic,
    NoteEdit,
    PoolTurnaroundPublic,
    QueueEntryPublic,
    ReturnRequest,
    SignRequest,
    SignReviewPublic,
    VersionPublic,
)
from server.review.tickets import TICKET_TTL_S, TicketPurpose
from server.review.viewers import encounter_grant, request_principal
from server.services import Services

router = APIRouter(prefix="/api/v1/review", tags=["review"], dependencies=[AuditRefusals])
log = logging.getLogger(__name__)

#: Audio times (seconds from the visit's first frame): finite, 0..24 h.
MAX_AUDIO_S = 24 * 3600.0
#: Version numbers: 1..2^31-1 (the column is a 32-bit integer).
MAX_VERSION = 2**31 - 1
AudioTime = Query(ge=0, le=MAX_AUDIO_S, allow_inf_nan=False,
                  description="seconds from the start of the visit, 0..86400")
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION,
                                    description="a version number, 1..2147483647")]


def item_public(session: SessionDep, who: Principal, item: ReviewItem) -> ItemPublic:
    from server.review.patients import patient_of

    _, actor = item_for(session, who, item.id)
    allowed = [a.value for a in allowed_actions(workflow.facts_of(item), actor, utcnow())]
    return ItemPublic(
        id=item.id, encounter_id=item.encounter_id, clinic_id=item.clinic_id,
        room_id=item.room_id, pool_id=item.pool_id, physician_id=item.physician_id,
        state=item.state, version=item.version, claimed_by=item.claimed_by,
        lease_expires_at=item.lease_expires_at, received_at=item.received_at,
        due_at=item.due_at, sent_at=item.sent_at, signed_at=item.signed_at,
        return_comment=item.return_comment, edit_distance=item.edit_distance,
        draft_words=item.draft_words, allowed_actions=allowed,
        document=workflow.current_version(session, item).document,
        patient=patient_of(item))


def publish(session: SessionDep, services: Services, result: workflow.Result) -> None:
    """Commit, push the change to browsers, report pipeline events (``review-end``), and
    drop any FHIR export in the outbox."""
    session.commit()
    hub = hub_of(services)
    for change in result.changes:
        hub.publish(change)
    for event in result.events:
        services.on_event(event)
    if result.export is not None:
        write_export(services, result.export)


def write_export(services: Services, export: FhirExport) -> None:
    try:
        fhir.write_outbox(services.settings.fhir_outbox, export.outbox_path, export.bundle)
    except OSError:
        # The export is stored; `roomscribe review outbox flush` writes it later.
        log.exception("could not write %s to the FHIR outbox", export.outbox_path)


@router.get("/queue", response_model=list[QueueEntryPublic])
def queue(session: SessionDep, who: CurrentUser, clinic_id: str | None = None,
          pool_id: str | None = None, state: Annotated[list[str] | None, Query()] = None,
          mine: bool = False) -> list[Any]:
    """Drafts you can see: overdue unclaimed first; signed ones only with ``state=signed``."""
    try:
        states = {ReviewState(s) for s in state} if state else None
    except ValueError:
        raise InvalidInput(f"state must be among {', '.join(s.value for s in ReviewState)}"
                           ) from None
    return list_queue(session, who, utcnow(), clinic_id=clinic_id, pool_id=pool_id,
                      states=states, mine=mine)


@router.get("/turnaround", response_model=list[PoolTurnaroundPublic])
def turnaround(session: SessionDep, who: CurrentUser) -> list[PoolTurnaroundPublic]:
    """Per pool: share signed within the turnaround target, and who holds overdue drafts."""
    return [PoolTurnaroundPublic(**{**t.__dict__, "pct_in_time": t.pct_in_time,
                                    "meets_target": t.meets_target})
            for t in pool_turnaround(session, who, utcnow())]


@router.get("/items/{item_id}", response_model=ItemPublic)
def get_item(item_id: str, session: SessionDep, who: CurrentUser, response: Response,
             ) -> ItemPublic:
    item, _ = item_for(session, who, item_id)
    record(session, who, AuditAction.VIEW, item, f"v{item.version}")
    session.commit()
    response.headers["ETag"] = f'"{item.version}"'
    return item_public(session, who, item)


def _base_version(body: NoteEdit, if_match: str | None) -> int:
    if if_match:
        try:
            return int(if_match.strip().removeprefix("W/").strip('"'))
        except ValueError:
            raise InvalidInput('If-Match must be "<version>"') from None
    return body.base_version


@router.put("/items/{item_id}/note", response_model=ItemPublic)
def save_note(item_id: str, body: NoteEdit, session: SessionDep, services: ServicesDep,
              who: CurrentUser, response: Response,
              if_match: Annotated[str | None, Header()] = None) -> ItemPublic:
    """Save an edit (sections' text, orders' accept / reject / modify, patient instructions
    changed / added / removed) as a new version.

    Signed notes: the same call makes an amendment (new version, new FHIR export); it
    needs a ``reason``."""
    changes = [OrderChange(o.id, o.decision, o.fields, o.remove) for o in body.orders]
    instructions = [InstructionChange(i.id, i.fields, i.remove) for i in body.instructions]
    result = workflow.edit(session, who, item_id, _base_version(body, if_match),
                           body.sections, changes, utcnow(), instructions=instructions,
                           reason=body.reason)
    publish(session, services, result)
    response.headers["ETag"] = f'"{result.item.version}"'
    return item_public(session, who, result.item)


def _act(item_id: str, action: Action, session: SessionDep, services: ServicesDep,
         who: Principal, comment: str = "", sign: SignRequest | None = None) -> ItemPublic:
    sign = sign or SignRequest()
    result = workflow.act(session, who, item_id, action, utcnow(), comment,
                          attest=sign.attest, acknowledged=sign.acknowledged)
    publish(session, services, result)
    return item_public(session, who, result.item)


@router.post("/items/{item_id}/claim", response_model=ItemPublic)
def claim(item_id: str, session: SessionDep, services: ServicesDep,
          who: CurrentUser) -> ItemPublic:
    """Claim the draft (a lease that expires; claiming again renews it). 409 if held."""
    return _act(item_id, Action.CLAIM, session, services, who)


@router.post("/items/{item_id}/release", response_model=ItemPublic)
def release(item_id: str, session: SessionDep, services: ServicesDep,
            who: CurrentUser) -> ItemPublic:
    return _act(item_id, Action.RELEASE, session, services, who)


@router.post("/items/{item_id}/send", response_model=ItemPublic)
def send(item_id: str, session: SessionDep, services: ServicesDep,
         who: CurrentUser) -> ItemPublic:
    """Send the claimed draft to the responsible physician for signature."""
    return _act(item_id, Action.SEND, session, services, who)


@router.post("/items/{item_id}/return", response_model=ItemPublic)
def return_(item_id: str, body: ReturnRequest, session: SessionDep, services: ServicesDep,
            who: CurrentUser) -> ItemPublic:
    """Physician: send the draft back to the pool with a comment."""
    return _act(item_id, Action.RETURN, session, services, who, body.comment)


@router.post("/items/{item_id}/sign", response_model=ItemPublic)
def sign(item_id: str, session: SessionDep, services: ServicesDep, who: CurrentUser,
         body: SignRequest | None = None) -> ItemPublic:
    """Physician: sign, attesting the review (``{"attest": true, "acknowledged": [ids]}``).

    422 ``invalid-input`` without ``attest``; 422 ``sign-blocked`` (with ``checks`` and
    ``blocking``) while a sign check is neither passed nor acknowledged. Stores the
    attestation and the draft→signed diff, and exports FHIR to the outbox. (A missing
    body reads as no attestation, after the role and state checks.)"""
    return _act(item_id, Action.SIGN, session, services, who, sign=body)


@router.get("/items/{item_id}/sign-review", response_model=SignReviewPublic)
def sign_review(item_id: str, session: SessionDep, who: CurrentUser,
                acknowledged: Annotated[list[str] | None, Query()] = None) -> Any:
    """What signing means now: the sign checks, each section's word diff from the AI
    draft, each order's and instruction's change, who edited, and the attestation
    signing would record (acknowledging ``acknowledged``; by default every
    acknowledgeable blocker)."""
    item, _ = item_for(session, who, item_id)
    review = workflow.review_of(session, item, who, acknowledged)
    record(session, who, AuditAction.VIEW_VERSIONS, item, "sign-review")
    session.commit()
    return SignReviewPublic.model_validate(asdict(review))


@router.get("/items/{item_id}/versions", response_model=list[VersionPublic])
def list_versions(item_id: str, session: SessionDep, who: CurrentUser) -> list[VersionPublic]:
    item, _ = item_for(session, who, item_id)
    record(session, who, AuditAction.VIEW_VERSIONS, item)
    session.commit()
    return [VersionPublic(number=v.number, kind=v.kind, author_name=v.author_name,
                          created_at=v.created_at) for v in workflow.versions(session, item)]


@router.get("/items/{item_id}/versions/{number}", response_model=VersionPublic)
def get_version(item_id: str, number: VersionNumber, session: SessionDep,
                who: CurrentUser) -> VersionPublic:
    item, _ = item_for(session, who, item_id)
    v = workflow.current_version(session, item, number)
    record(session, who, AuditAction.VIEW_VERSIONS, item, f"v{number}")
    session.commit()
    return VersionPublic(number=v.number, kind=v.kind, author_name=v.author_name,
                         created_at=v.created_at, document=v.document)


@router.get("/items/{item_id}/transcript")
def transcript(item_id: str, session: SessionDep, who: CurrentUser) -> dict[str, Any]:
    """The transcript the draft was made from (segments with times and speakers)."""
    item, _ = item_for(session, who, item_id)
    record(session, who, AuditAction.VIEW_TRANSCRIPT, item)
    session.commit()
    return item.transcript or {"encounter_id": item.encounter_id, "segments": []}


@router.get("/items/{item_id}/audio.wav", responses={200: {"content": {"audio/wav": {}}}})
def audio_wav(item_id: str, request: Request, session: SessionDep, services: ServicesDep,
              start: Annotated[float, AudioTime] = 0.0,
              end: Annotated[float | None, AudioTime] = None) -> Response:
    """A span of the visit's audio (seconds, 0..86400; 16 kHz mono WAV) for evidence
    playback. A bearer user token, the session cookie, or a ``?ticket=`` of purpose
    ``item-audio`` for this item."""
    who = request_principal(session, request, tickets=services.tickets,
                            purpose=TicketPurpose.ITEM_AUDIO, resource=item_id)
    item, _ = item_for(session, who, item_id)
    wav = audio.audio_span(session, item.encounter_id, start, end)
    record(session, who, AuditAction.PLAY_AUDIO, item, f"{start:.2f}-{end if end else 'end'} s")
    session.commit()
    return Response(wav, media_type="audio/wav", headers={"Cache-Control": "no-store"})


@router.get("/items/{item_id}/fhir")
def fhir_bundle(item_id: str, session: SessionDep, who: CurrentUser,
                version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
                ) -> dict[str, Any]:
    """The FHIR R4 (4.3.0) document Bundle exported when the note was signed/amended."""
    item, _ = item_for(session, who, item_id)
    stmt = select(FhirExport).where(FhirExport.item_id == item.id)
    if version is not None:
        stmt = stmt.where(FhirExport.version == version)
    export = session.scalars(stmt.order_by(FhirExport.version.desc())).first()
    if export is None:
        raise NotFound("no FHIR export: the note is not signed")
    record(session, who, AuditAction.EXPORT, item, f"served FHIR bundle v{export.version}")
    session.commit()
    return export.bundle


@router.get("/items/{item_id}/diff")
def signed_diff(item_id: str, session: SessionDep, who: CurrentUser) -> dict[str, Any]:
    """AI draft → signed note: word edit distance, draft length, unified diff."""
    item, _ = item_for(session, who, item_id)
    if item.edit_distance is None:
        raise NotFound("the note is not signed yet")
    record(session, who, AuditAction.VIEW_VERSIONS, item, "diff")
    session.commit()
    return {"edit_distance": item.edit_distance, "draft_words": item.draft_words,
            "edit_rate": round(item.edit_distance / max(item.draft_words or 1, 1), 4),
            "unified_diff": item.signed_diff}


class TicketRequest(BaseModel):
    purpose: TicketPurpose
    resource: str  # the encounter id (live-transcript, encounter-audio) or the item id


class TicketPublic(BaseModel):
    ticket: str
    purpose: TicketPurpose
    resource: str
    expires_in_s: int


@router.post("/tickets", response_model=TicketPublic)
def create_ticket(body: TicketRequest, session: SessionDep, services: ServicesDep,
                  who: CurrentUser) -> TicketPublic:
    """A single-use ``?ticket=`` for one resource, valid 60 s, bound to you: for the live
    transcript socket and ``<audio>`` elements, which cannot send a bearer header.
    Refused (404 / 403) where you could not open the resource yourself."""
    if body.purpose is TicketPurpose.ITEM_AUDIO:
        item_for(session, who, body.resource)
    else:
        encounter_grant(session, who, body.resource)
    text, _ = services.tickets.issue(who.user_id, body.purpose, body.resource,
                                  utcnow().timestamp())
    return TicketPublic(ticket=text, purpose=body.purpose, resource=body.resource,
                        expires_in_s=TICKET_TTL_S)
