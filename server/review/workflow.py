"""The review actions: claim, release, save, send, return, sign, amend.

Each one loads the item for its user (:mod:`server.review.access`: role and
clinic, row-locked ``FOR UPDATE`` on PostgreSQL), asks the pure lifecycle
(:func:`server.review.lifecycle.decide`) for the outcome, applies it, and
writes the audit row in the same transaction. The item's ``revision`` column
guards the UPDATE (``WHERE revision = <read>``): on SQLite, where there is no
row lock, a concurrent change makes the flush fail, the transaction is rolled
back and the action re-decided on fresh data — so of two partners claiming at
once exactly one wins, and the other gets :class:`ClaimHeld`.

Edits carry the version they were based on; a stale one is refused with
:class:`VersionConflict` and overwrites nothing. Once signed, a note changes
only by an amendment, and an amendment needs a reason (kept on its version).

Signing is an attestation: the physician confirms the review (``attest``),
every sign check (:mod:`server.review.signcheck`) is passed or acknowledged by
id, or the signature is refused with :class:`SignBlocked`; the statement
signed (:func:`~server.review.signcheck.attestation`) is kept on the item.
:func:`review_of` gives what the physician reviews before signing. A signature ends
the encounter's review stage: its :class:`Result` carries the ``review-end`` pipeline
event, which the caller emits once the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server.pipeline.events import PipelineEvent, Stage
from server.review import fhir, signcheck
from server.review.access import facts_of, item_for
from server.review.audit import AuditAction, record
from server.review.auth import Principal
from server.review.diffing import compare
from server.review.document import (
    InstructionChange,
    OrderChange,
    apply_edit,
    document_text,
    undecided_orders,
)
from server.review.errors import Conflict, InvalidInput, SignBlocked, VersionConflict
from server.review.lifecycle import FINAL_STATES, Action, ReviewState, decide
from server.review.live import ItemChange
from server.review.models import FhirExport, NoteVersion, Pool, ReviewItem
from server.review.patients import patient_of

__all__ = ["Result", "act", "current_version", "edit", "editors_of", "facts_of", "review_of",
           "versions"]

T = TypeVar("T")
DEFAULT_LEASE_MIN = 30.0
REASON_MAX = 2000
_ATTEMPTS = 4
_AUDIT = {Action.CLAIM: AuditAction.CLAIM, Action.RELEASE: AuditAction.RELEASE,
          Action.SEND: AuditAction.SEND, Action.RETURN: AuditAction.RETURN,
          Action.SIGN: AuditAction.SIGN}


@dataclass
class Result:
    item: ReviewItem
    changes: list[ItemChange] = field(default_factory=list)
    export: FhirExport | None = None
    saved: bool = True  # False: the edit changed nothing, no version was written
    #: Pipeline events to emit after the commit (``review-end`` when signed).
    events: list[PipelineEvent] = field(default_factory=list)


def _retrying(s: Session, attempt: Callable[[], T]) -> T:
    """Run ``attempt`` and flush; on a lost compare-and-set, roll back and run it again."""
    for _ in range(_ATTEMPTS):
        try:
            result = attempt()
            s.flush()
            return result
        except (StaleDataError, IntegrityError):  # lost the race (row guard / unique version)
            s.rollback()
    raise Conflict("the draft kept changing while you acted on it; try again")


def _lease(s: Session, item: ReviewItem) -> timedelta:
    pool = s.get(Pool, item.pool_id) if item.pool_id else None
    return timedelta(minutes=pool.lease_min if pool else DEFAULT_LEASE_MIN)


def current_version(s: Session, item: ReviewItem, number: int | None = None) -> NoteVersion:
    row = s.scalars(select(NoteVersion).where(NoteVersion.item_id == item.id,
                                              NoteVersion.number == (number or item.version))
                    ).one_or_none()
    if row is None:
        raise InvalidInput(f"the note has no version {number}")
    return row


def versions(s: Session, item: ReviewItem) -> list[NoteVersion]:
    return list(s.scalars(select(NoteVersion).where(NoteVersion.item_id == item.id)
                          .order_by(NoteVersion.number)))


def editors_of(s: Session, item: ReviewItem) -> list[str]:
    """The people who changed the AI draft (authors of versions 2 and on), first one first."""
    names: list[str] = []
    for v in versions(s, item):
        if v.number >= 2 and v.author_name and v.author_name not in names:
            names.append(v.author_name)
    return names


def review_of(s: Session, item: ReviewItem, who: Principal,
              acknowledged: Sequence[str] | None = None) -> signcheck.SignReview:
    """The sign checks and the changes since the AI draft, as ``who`` would sign them
    (the preview acknowledges ``acknowledged``; None: every acknowledgeable blocker)."""
    return signcheck.sign_review(
        current_version(s, item, 1).document, current_version(s, item).document,
        patient_linked=bool(item.patient_mrn), editors=editors_of(s, item), signer=who.name,
        acknowledged=acknowledged)


def _finish(s: Session, item: ReviewItem, who: Principal, document: dict[str, Any],
            now: datetime, amended: bool) -> FhirExport:
    """Store the AI-draft→signed diff and the validated FHIR export of this version."""
    draft = current_version(s, item, 1).document
    diff = compare(document_text(draft), document_text(document, decided_only=True))
    item.edit_distance, item.draft_words, item.signed_diff = (
        diff.edit_distance, diff.draft_words, diff.unified)
    bundle = fhir.build_bundle(item_id=item.id, encounter_id=item.encounter_id,
                               version=item.version, document=document, signer_id=who.user_id,
                               signer_name=who.name, signed_at=now, amended=amended,
                               patient=patient_of(item))
    export = FhirExport(item_id=item.id, version=item.version, created_at=now, bundle=bundle,
                        sha256=fhir.bundle_digest(bundle),
                        outbox_path=f"{item.encounter_id}-v{item.version}.json")
    s.add(export)
    record(s, who, AuditAction.EXPORT, item, f"FHIR bundle v{item.version} {export.outbox_path}",
           now=now)
    return export


def _attest(s: Session, item: ReviewItem, who: Principal, document: dict[str, Any],
            attest: bool, acknowledged: Sequence[str]) -> tuple[str, list[str]]:
    """The attestation statement and the acknowledged check ids, or why not to sign."""
    if not attest:
        raise InvalidInput("confirm that you reviewed the note before signing")
    checks = signcheck.sign_checks(document, patient_linked=bool(item.patient_mrn))
    still = signcheck.blocking(checks, acknowledged)
    if still:
        extra: dict[str, Any] = {}
        if any(c.id == "pending-orders" for c in still):
            extra["orders"] = undecided_orders(document)
        raise SignBlocked("resolve or acknowledge before signing: "
                          + "; ".join(c.message for c in still),
                          checks=[c.to_dict() for c in checks],
                          blocking=[c.id for c in still], **extra)
    acked = signcheck.acknowledged_checks(checks, acknowledged)
    return (signcheck.attestation(who.name, editors_of(s, item), acked),
            [c.id for c in acked])


def act(s: Session, who: Principal, item_id: str, action: Action, now: datetime,
        comment: str = "", *, attest: bool = False,
        acknowledged: Sequence[str] = ()) -> Result:
    """claim | release | send | return | sign (edits go through :func:`edit`).

    Signing needs ``attest`` (the physician confirms the review) and the ids of the
    acknowledgeable sign checks raised in ``acknowledged``."""
    if action not in _AUDIT:
        raise InvalidInput(f"{action} is not an action here; save edits with the note endpoint")

    def attempt() -> Result:
        item, actor = item_for(s, who, item_id, lock=True)
        out = decide(facts_of(item), action, actor, now, _lease(s, item), comment)
        document = current_version(s, item).document
        detail = comment.strip() if action is Action.RETURN else f"v{item.version}"
        if action is Action.SIGN:
            statement, acked = _attest(s, item, who, document, attest, acknowledged)
            detail += f"; acknowledged: {', '.join(acked) or 'none'}"
        item.state, item.claimed_by, item.lease_expires_at = (
            out.state.value, out.claimed_by, out.lease_expires_at)
        item.updated_at = now
        if out.comment is not None:
            item.return_comment = out.comment
        export = None
        if action is Action.SEND:
            item.sent_at = now
        elif action is Action.SIGN:
            item.signed_at, item.signed_by = now, who.user_id
            item.signed_by_name, item.attestation = who.name, statement
            export = _finish(s, item, who, document, now, amended=False)
        record(s, who, _AUDIT[action], item, detail, now=now)
        events = [PipelineEvent.end(Stage.REVIEW, item.encounter_id, item=item.id,
                                    version=item.version)] if action is Action.SIGN else []
        return Result(item, [ItemChange.of(item, action.value, who.username, who.name)], export,
                      events=events)

    return _retrying(s, attempt)


def edit(s: Session, who: Principal, item_id: str, base_version: int,
         sections: dict[str, str], orders: Sequence[OrderChange], now: datetime,
         instructions: Sequence[InstructionChange] = (), reason: str = "") -> Result:
    """Save an edit as a new version (an amendment once signed: then ``reason`` is needed).
    """
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"a reason is at most {REASON_MAX:,} characters")

    def attempt() -> Result:
        item, actor = item_for(s, who, item_id, lock=True)
        action = Action.AMEND if ReviewState(item.state) in FINAL_STATES else Action.SAVE
        out = decide(facts_of(item), action, actor, now, _lease(s, item))
        latest = current_version(s, item)
        if base_version != item.version:
            raise VersionConflict(
                f"this draft was saved by {latest.author_name} as version {item.version} "
                f"after the version {base_version} you edited; nothing was overwritten",
                current_version=item.version, your_version=base_version,
                saved_by=latest.author_name)
        document = apply_edit(latest.document, sections, orders, instructions,
                              author=who.name)
        if action is Action.AMEND:
            if document == latest.document:  # nothing to amend: the note stays as signed
                return Result(item, [], saved=False)
            if not reason:
                raise InvalidInput("an amendment needs a reason")
            if undecided_orders(document):
                raise InvalidInput("accept or reject every order in an amendment")
        item.claimed_by, item.lease_expires_at = out.claimed_by, out.lease_expires_at
        item.state, item.updated_at = out.state.value, now
        if document == latest.document:
            return Result(item, [], saved=False)
        item.version += 1
        s.flush()  # the guarded UPDATE first: a lost race fails here, before the insert
        s.add(NoteVersion(item_id=item.id, number=item.version, author_id=who.user_id,
                          kind="amend" if action is Action.AMEND else "edit",
                          author_name=who.name, created_at=now, document=document,
                          reason=reason))
        changed = [k for k in sections if k in {x["key"] for x in latest.document["sections"]}]
        detail = f"v{item.version}: sections {','.join(changed) or '-'}; " + ", ".join(
            f"{o.id or 'new'} {'removed' if o.remove else o.decision}" for o in orders)
        if instructions:
            detail += "; instructions " + ", ".join(
                "new added" if i.id is None else f"{i.id} {'removed' if i.remove else 'edited'}"
                for i in instructions)
        if reason:
            detail += f"; reason: {reason}"
        record(s, who, AuditAction.AMEND if action is Action.AMEND else AuditAction.EDIT, item,
               detail, now=now)
        export = None
        if action is Action.AMEND:
            export = _finish(s, item, who, document, now, amended=True)
        return Result(item, [ItemChange.of(item, action.value, who.username, who.name)], export)

    return _retrying(s, attempt)
