"""``roomscribe review``: users, roles, pools, routing, and the queue from a shell.

    roomscribe review user add USERNAME --clinic ID --role physician|partner|admin
                                        [--name "Dr A. Jones"] [--password-stdin]
    roomscribe review user list | user password USERNAME [--password-stdin]  (alias: passwd)
    roomscribe review user disable USERNAME | user enable USERNAME
    roomscribe review user token USERNAME --name NAME        (API token, shown once)
    roomscribe review user token list USERNAME | user token revoke USERNAME --id N|--name NAME
    roomscribe review member add USERNAME --clinic ID --role ROLE
    roomscribe review member remove USERNAME --clinic ID
    roomscribe review pool add --clinic ID NAME [--id SLUG] [--suite S] [--specialty S]
                               [--turnaround-h 24] [--target-pct 90] [--lease-min 30]
    roomscribe review pool list | pool member add|remove POOL USERNAME
    roomscribe review rule add --pool ID [--priority N] [--room ID] [--room-prefix P]
                               [--template soap|aci]
    roomscribe review room-physician ROOM USERNAME
    roomscribe review draft import ENCOUNTER_ID DRAFT.json [--transcript T.json]
    roomscribe review schedule-import FILE.csv --clinic ID   (appointments; see schedule.py)
    roomscribe review queue --as USERNAME [--all]
    roomscribe review audit [--clinic ID] [--action A] [--item ID] [--limit N]
    roomscribe review outbox flush                    (write FHIR exports missing from the outbox)

Without ``--password-stdin`` a random password is generated and printed once.
A new password, and disabling a user, end every session and API token of theirs.
Every change is audited (actor ``cli``). Whoever runs this holds the database, so
it may choose a physician's or partner's password (the admin API may not).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nlp.schema import DraftNote, Transcript
from server.models import utcnow
from server.review import audit, directory, fhir, schedule
from server.review.auth import create_user_token, load_principal
from server.review.clirun import run_command
from server.review.intake import receive_draft
from server.review.lifecycle import ReviewState
from server.review.models import FhirExport, Membership, Pool, PoolMember, User
from server.review.queue import list_queue
from server.settings import Settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roomscribe review", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)

    user = sub.add_parser("user").add_subparsers(dest="verb", required=True)
    add = user.add_parser("add")
    add.add_argument("username")
    add.add_argument("--clinic", required=True)
    add.add_argument("--role", required=True, choices=["physician", "partner", "admin"])
    add.add_argument("--name", default="")
    add.add_argument("--password-stdin", action="store_true")
    user.add_parser("list")
    passwd = user.add_parser("password", aliases=["passwd"])
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    user.add_parser("disable", help="no more logins; sessions and tokens end").add_argument(
        "username")
    user.add_parser("enable").add_argument("username")
    token = user.add_parser("token", help="USERNAME --name N (new) | list USERNAME | "
                            "revoke USERNAME --id N|--name N")
    token.add_argument("words", nargs="+", metavar="[list|revoke] USERNAME")
    token.add_argument("--name")
    token.add_argument("--id", type=int)

    member = sub.add_parser("member").add_subparsers(dest="verb", required=True)
    madd = member.add_parser("add")
    madd.add_argument("username")
    madd.add_argument("--clinic", required=True)
    madd.add_argument("--role", required=True, choices=["physician", "partner", "admin"])
    mremove = member.add_parser("remove")
    mremove.add_argument("username")
    mremove.add_argument("--clinic", required=True)

    pool = sub.add_parser("pool").add_subparsers(dest="verb", required=True)
    padd = pool.add_parser("add")
    padd.add_argument("name")
    padd.add_argument("--clinic", required=True)
    padd.add_argument("--id")
    padd.add_argument("--suite", default="")
    padd.add_argument("--specialty", default="")
    padd.add_argument("--turnaround-h", type=float, default=24.0)
    padd.add_argument("--target-pct", type=float, default=90.0)
    padd.add_argument("--lease-min", type=float, default=30.0)
    pool.add_parser("list")
    pmember = pool.add_parser("member")
    pmember.add_argument("action", choices=["add", "remove"])
    pmember.add_argument("pool")
    pmember.add_argument("username")

    rule = sub.add_parser("rule").add_subparsers(dest="verb", required=True)
    radd = rule.add_parser("add")
    radd.add_argument("--pool", required=True)
    radd.add_argument("--priority", type=int, default=100)
    radd.add_argument("--room", default="")
    radd.add_argument("--room-prefix", default="")
    radd.add_argument("--template", default="")

    rp = sub.add_parser("room-physician")
    rp.add_argument("room")
    rp.add_argument("username")

    draft = sub.add_parser("draft").add_subparsers(dest="verb", required=True)
    dimport = draft.add_parser("import", help="put a DraftNote JSON in the queue")
    dimport.add_argument("encounter_id")
    dimport.add_argument("draft", type=Path)
    dimport.add_argument("--transcript", type=Path)

    sched = sub.add_parser("schedule-import",
                           help="import the clinic's appointments from a CSV file")
    sched.add_argument("file", type=Path)
    sched.add_argument("--clinic", required=True)

    queue = sub.add_parser("queue")
    queue.add_argument("--as", dest="as_user", required=True)
    queue.add_argument("--all", action="store_true", help="signed notes too")

    aud = sub.add_parser("audit")
    aud.add_argument("--clinic")
    aud.add_argument("--action")
    aud.add_argument("--item")
    aud.add_argument("--limit", type=int, default=50)

    outbox = sub.add_parser("outbox").add_subparsers(dest="verb", required=True)
    outbox.add_parser("flush")
    return p


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return secrets.token_urlsafe(12), True


def _user_row(s: Session, u: User) -> dict[str, Any]:
    roles = {m.clinic_id: m.role
             for m in s.scalars(select(Membership).where(Membership.user_id == u.id))}
    return {"username": u.username, "name": u.display_name, "roles": roles,
            "disabled": u.disabled_at is not None}


_CLI = "cli"  # the audit log's actor for changes made here


def _token(args: argparse.Namespace, s: Session) -> Any:
    words = args.words
    if len(words) == 2 and words[0] == "list":
        return [{"id": t.id, "name": t.name, "created_at": t.created_at,
                 "revoked_at": t.revoked_at} for t in directory.list_tokens(s, words[1])]
    if len(words) == 2 and words[0] == "revoke":
        rows = directory.revoke_token(s, words[1], args.id, args.name or "", actor=_CLI)
        return [{"id": t.id, "name": t.name, "revoked_at": t.revoked_at} for t in rows]
    if len(words) == 1 and args.name:
        u = directory.get_user(s, words[0])
        return {"username": u.username, "name": args.name,
                "token": create_user_token(s, u.id, args.name)}
    raise ValueError("user token USERNAME --name NAME | token list USERNAME | "
                     "token revoke USERNAME --id N|--name NAME")


def _run(args: argparse.Namespace, s: Session, settings: Settings) -> Any:
    verb = getattr(args, "verb", None)
    match (args.what, "password" if verb == "passwd" else verb):
        case ("user", "add"):
            password, generated = _password(args)
            u = directory.add_user(s, args.username, password, args.clinic, args.role, args.name,
                                   actor=_CLI, chosen=not generated)
            out = _user_row(s, u)
            if generated:
                out["password"] = password
            return out
        case ("user", "list"):
            return [_user_row(s, u) for u in s.scalars(select(User).order_by(User.username))]
        case ("user", "password"):
            password, generated = _password(args)
            directory.set_password(s, args.username, password, actor=_CLI)
            return {"username": args.username} | ({"password": password} if generated else {})
        case ("user", "disable"):
            return _user_row(s, directory.disable_user(s, args.username, actor=_CLI))
        case ("user", "enable"):
            return _user_row(s, directory.enable_user(s, args.username, actor=_CLI))
        case ("user", "token"):
            return _token(args, s)
        case ("member", "add"):
            m = directory.add_membership(s, args.username, args.clinic, args.role, actor=_CLI)
            return {"username": args.username, "clinic_id": m.clinic_id, "role": m.role}
        case ("member", "remove"):
            directory.remove_membership(s, args.username, args.clinic, actor=_CLI)
            return {"username": args.username, "removed_from": args.clinic}
        case ("pool", "add"):
            p = directory.add_pool(s, args.clinic, args.name, suite=args.suite,
                                   specialty=args.specialty, turnaround_h=args.turnaround_h,
                                   target_pct=args.target_pct, lease_min=args.lease_min,
                                   pool_id=args.id, actor=_CLI)
            return {"id": p.id, "clinic_id": p.clinic_id, "name": p.name}
        case ("pool", "list"):
            return [{"id": p.id, "clinic_id": p.clinic_id, "name": p.name,
                     "turnaround_h": p.turnaround_h, "target_pct": p.target_pct,
                     "members": list(s.scalars(select(User.username).join(
                         PoolMember, PoolMember.user_id == User.id)
                         .where(PoolMember.pool_id == p.id)))}
                    for p in s.scalars(select(Pool).order_by(Pool.id))]
        case ("pool", "member"):
            if args.action == "add":
                directory.add_pool_member(s, args.pool, args.username, actor=_CLI)
            else:
                directory.remove_pool_member(s, args.pool, args.username, actor=_CLI)
            return {"pool": args.pool, args.action: args.username}
        case ("rule", "add"):
            r = directory.add_routing_rule(s, args.pool, priority=args.priority,
                                           room_id=args.room, room_prefix=args.room_prefix,
                                           template=args.template, actor=_CLI)
            return {"id": r.id, "pool_id": r.pool_id, "priority": r.priority}
        case ("room-physician", _):
            directory.assign_room_physician(s, args.room, args.username, actor=_CLI)
            return {"room_id": args.room, "physician": args.username}
        case ("draft", "import"):
            draft = DraftNote.from_dict(json.loads(args.draft.read_text()))
            transcript = (Transcript.from_dict(json.loads(args.transcript.read_text()))
                          if args.transcript else None)
            item = receive_draft(s, args.encounter_id, draft, transcript)
            return {"item_id": item.id, "pool_id": item.pool_id, "state": item.state}
        case ("schedule-import", _):
            counts = schedule.import_schedule(s, args.clinic,
                                              args.file.read_text(encoding="utf-8-sig"),
                                              actor="cli")
            return {"clinic_id": args.clinic, "imported": counts.imported,
                    "updated": counts.updated, "unchanged": counts.unchanged}
        case ("queue", _):
            who = load_principal(s, directory.get_user(s, args.as_user), "cli")
            states = set(ReviewState) if args.all else None
            return [{"item_id": e.item_id, "room": e.room_id, "pool": e.pool_id,
                     "state": e.state, "claimed_by": e.claimed_by, "due_at": e.due_at,
                     "overdue": e.overdue, "patient": e.patient_name, "mrn": e.patient_mrn}
                    for e in list_queue(s, who, utcnow(), states=states)]
        case ("audit", _):
            return [{"at": e.at, "actor": e.actor, "action": e.action, "clinic": e.clinic_id,
                     "item": e.item_id, "detail": e.detail}
                    for e in audit.query(s, clinics=[args.clinic] if args.clinic else None,
                                         action=args.action, item_id=args.item,
                                         limit=args.limit)]
        case ("outbox", "flush"):
            written = []
            for export in s.scalars(select(FhirExport).order_by(FhirExport.id)):
                if not (settings.fhir_outbox / export.outbox_path).exists():
                    fhir.write_outbox(settings.fhir_outbox, export.outbox_path, export.bundle)
                    written.append(export.outbox_path)
            return {"outbox": str(settings.fhir_outbox), "written": written}
    raise AssertionError(f"unhandled: {args}")


def main(argv: list[str], settings: Settings) -> int:
    args = _parser().parse_args(argv)
    return run_command("roomscribe review", settings, lambda s: _run(args, s, settings))
