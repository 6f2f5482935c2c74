"""``roomscribe retention``: apply the retention policy, delete on request, legal holds.

    roomscribe retention run [--dry-run] [--clinic ID]
    roomscribe retention delete ENCOUNTER --reason TEXT [--by NAME]
    roomscribe retention hold ENCOUNTER --reason TEXT | --clear
    roomscribe retention consent ENCOUNTER verbal|written|withdraw --by NAME
    roomscribe retention policy CLINIC [--consent-required on|off]
                                       [--audio-days N] [--transcript-days N|keep]
    roomscribe retention log [--encounter ID] [--limit N]

``run`` is meant for a daily timer (systemd ``roomscribe-retention.timer`` or cron,
see the README); the server itself deletes held audio when its grace period ends
(server/privacy/consent.py), ``run`` catches what a stopped server did not. Every
deletion prints and records what it deleted (``privacy_deletions`` + the audit log);
``--dry-run`` prints what would go and changes nothing. This CLI is the operator's (IT
on the server, acting for the clinic's privacy officer); it needs no login, so each
change names who asked (``--by``) in the audit log.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Clinic, Encounter, PrivacyDeletion, utcnow
from server.privacy.consent import consent_view, record_consent, withdraw_consent
from server.privacy.retention import DeletionReason, LegalHoldError, clinic_of, purge, run_retention
from server.review.audit import AuditAction, record
from server.review.clirun import USER_ERRORS, run_command
from server.settings import Settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roomscribe retention",
                                description="consent, legal hold and deleting patient data")
    sub = p.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="apply every clinic's retention policy once")
    run.add_argument("--dry-run", action="store_true", help="print what would go; change nothing")
    run.add_argument("--clinic", help="only this clinic")
    d = sub.add_parser("delete", help="delete one visit's audio, transcript and note on request")
    d.add_argument("encounter")
    d.add_argument("--reason", required=True)
    d.add_argument("--by", default="operator", help="who asked (for the audit log)")
    h = sub.add_parser("hold", help="set or clear a legal hold (blocks every deletion)")
    h.add_argument("encounter")
    g = h.add_mutually_exclusive_group(required=True)
    g.add_argument("--reason")
    g.add_argument("--clear", action="store_true")
    h.add_argument("--by", default="operator")
    c = sub.add_parser("consent", help="record or withdraw a visit's consent")
    c.add_argument("encounter")
    c.add_argument("what", choices=["verbal", "written", "withdraw"])
    c.add_argument("--by", required=True, help="who obtained it")
    pol = sub.add_parser("policy", help="show or change a clinic's privacy policy")
    pol.add_argument("clinic")
    pol.add_argument("--consent-required", choices=["on", "off"])
    pol.add_argument("--audio-days", type=int)
    pol.add_argument("--transcript-days", help="N days after signing, or keep")
    lg = sub.add_parser("log", help="what was deleted")
    lg.add_argument("--encounter")
    lg.add_argument("--limit", type=int, default=50)
    return p


def _encounter(s: Session, encounter_id: str) -> Encounter:
    enc = s.get(Encounter, encounter_id)
    if enc is None:
        raise KeyError(f"no encounter {encounter_id}")
    return enc


def _run(args: argparse.Namespace, s: Session, settings: Settings) -> Any:
    now = utcnow()
    if args.verb == "run":
        grace = timedelta(minutes=settings.consent_grace_min)
        done = run_retention(s, now, grace=grace, dry_run=args.dry_run, clinic_id=args.clinic,
                             max_hold=timedelta(minutes=settings.consent_hold_max_min))
        if args.dry_run:
            s.rollback()
        return {"dry_run": args.dry_run, "deleted": [p.as_dict() for p in done]}
    if args.verb == "delete":
        enc = _encounter(s, args.encounter)
        result = purge(s, enc, DeletionReason.REQUEST, audio=True, transcript=True, note=True,
                       actor=args.by, now=now, detail=f"on request: {args.reason}")
        return {"deleted": result.as_dict()}
    if args.verb == "hold":
        enc = _encounter(s, args.encounter)
        clinic = clinic_of(s, enc)
        enc.legal_hold = not args.clear
        enc.legal_hold_reason = "" if args.clear else args.reason
        record(s, None, AuditAction.LEGAL_HOLD, None,
               f"legal hold {'cleared' if args.clear else 'set'}: {args.reason or ''}",
               clinic_id=clinic.id if clinic else "", actor=args.by, encounter_id=enc.id)
        return consent_view(enc)
    if args.verb == "consent":
        if args.what == "withdraw":
            withdrawn = withdraw_consent(s, args.encounter, obtained_by=args.by, source="cli",
                                         now=now, actor=args.by)
            return {"consent": "withdrawn",
                    "deleted": withdrawn.as_dict() if withdrawn is not None else None}
        return consent_view(record_consent(s, args.encounter, method=args.what,
                                           obtained_by=args.by, source="cli", now=now))
    if args.verb == "policy":
        clinic = s.get(Clinic, args.clinic)
        if clinic is None:
            raise KeyError(f"no clinic {args.clinic}")
        changed = False
        if args.consent_required is not None:
            clinic.consent_required, changed = args.consent_required == "on", True
        if args.audio_days is not None:
            if args.audio_days < 0:
                raise ValueError("--audio-days must be 0 or more")
            clinic.audio_retention_days, changed = args.audio_days, True
        if args.transcript_days is not None:
            days = None if args.transcript_days == "keep" else int(args.transcript_days)
            if days is not None and days < 0:
                raise ValueError("--transcript-days must be 0 or more, or keep")
            clinic.transcript_retention_days, changed = days, True
        policy = {"clinic": clinic.id, "consent_required": clinic.consent_required,
                  "audio_retention_days": clinic.audio_retention_days,
                  "transcript_retention_days": clinic.transcript_retention_days}
        if changed:
            record(s, None, AuditAction.PRIVACY_POLICY, None, json.dumps(policy),
                   clinic_id=clinic.id, actor="cli")
        return policy
    stmt = select(PrivacyDeletion).order_by(PrivacyDeletion.id.desc()).limit(args.limit)
    if args.encounter:
        stmt = stmt.where(PrivacyDeletion.encounter_id == args.encounter)
    return [{"at": d.at, "clinic_id": d.clinic_id, "encounter_id": d.encounter_id,
             "reason": d.reason, "actor": d.actor, "audio_frames": d.audio_frames,
             "audio_bytes": d.audio_bytes, "transcript_segments": d.transcript_segments,
             "note_versions": d.note_versions} for d in s.scalars(stmt)]


def main(argv: list[str], settings: Settings) -> int:
    args = _parser().parse_args(argv)
    return run_command("roomscribe retention", settings, lambda s: _run(args, s, settings),
                       errors=(LegalHoldError, *USER_ERRORS))
