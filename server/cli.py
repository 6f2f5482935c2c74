"""``roomscribe``: run the server and administer rooms and devices.

    roomscribe serve [--host H] [--port P] [--ssl-certfile F --ssl-keyfile F]
    roomscribe worker [--stages transcription,drafting]   (server/work/worker.py; no HTTP)
    roomscribe db upgrade | db backup FILE | db restore FILE [--force]   (server/backup.py)
    roomscribe admin clinic add NAME | clinic list
    roomscribe admin room add --clinic ID NAME [--id SLUG] | room list
    roomscribe admin device add --room ID [--name N]      (prints a one-time enrolment code)
    roomscribe admin device code DEVICE_ID | device revoke DEVICE_ID | device list
    roomscribe admin apikey create --name N | apikey list | apikey revoke ID|NAME
    roomscribe transcribe FILE.wav [--engine ...]        (server/asr/cli.py)
    roomscribe models fetch|list|build ...                (server/modelstore/cli.py)
    roomscribe nlp draft FILE [--format json|text]       (nlp/cli.py)
    roomscribe review ...                                 (server/review/cli.py)
    roomscribe retention run|delete|hold|consent|policy   (server/privacy/cli.py)
    roomscribe agent-release keygen|sign|add|offer|withdraw|list  (server/fleet/releases_cli.py)

Each of the last ones is owned by its module: this parser hands it the rest of
the command line, and the module's ``main(argv) -> int`` parses it.

Settings come from ``ROOMSCRIBE_*`` variables (see server/settings.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from server import __version__, registry
from server.datadir import private_umask
from server.db import Database
from server.migrate import upgrade
from server.models import Clinic, Device, Room
from server.settings import Settings
from server.webheaders import RedactSecrets

__all__ = ["main"]

#: Transport limit for one websocket message; larger frames close the socket (1009).
WS_MAX_MESSAGE = 1 << 20


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from server.main import create_app

    overrides: dict[str, Any] = {k: v for k, v in {
        "host": args.host, "port": args.port, "ssl_certfile": args.ssl_certfile,
        "ssl_keyfile": args.ssl_keyfile}.items() if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)
    private_umask()  # the database, its WAL and the outbox files: 0600 (server/datadir.py)
    logging.getLogger("uvicorn.access").addFilter(RedactSecrets())  # no token in a log line
    app = create_app(settings)
    # h11 with a header-read timeout (server/httpprotocol.py): no slowloris
    from server.httpprotocol import header_timeout_protocol

    uvicorn.run(app, host=settings.host, port=settings.port, ws_max_size=WS_MAX_MESSAGE,
                ssl_certfile=settings.ssl_certfile, ssl_keyfile=settings.ssl_keyfile,
                log_level=args.log_level.lower(),
                http=header_timeout_protocol(settings.http_header_timeout_s))
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from server.pipeline.events import parse_stages
    from server.work.worker import run_worker

    try:
        stages = parse_stages(args.stages)
    except ValueError as err:
        print(f"roomscribe worker: {err}", file=sys.stderr)
        return 2
    private_umask()
    return run_worker(settings, stages)


def _with_session(settings: Settings, fn: Callable[[Session], Any]) -> Any:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        upgrade(db)
        with db.session() as session:
            return fn(session)
    finally:
        db.dispose()


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _admin(args: argparse.Namespace, settings: Settings) -> int:
    ttl = timedelta(hours=settings.enrolment_code_ttl_h)

    def run(s: Session) -> Any:
        match (args.what, args.verb):
            case ("clinic", "add"):
                c = registry.create_clinic(s, args.name)
                return {"id": c.id, "name": c.name}
            case ("clinic", "list"):
                return [{"id": c.id, "name": c.name} for c in s.scalars(select(Clinic))]
            case ("room", "add"):
                r = registry.create_room(s, args.clinic, args.name, args.id)
                return {"id": r.id, "clinic_id": r.clinic_id, "name": r.name}
            case ("room", "list"):
                return [{"id": r.id, "clinic_id": r.clinic_id, "name": r.name}
                        for r in s.scalars(select(Room))]
            case ("device", "add"):
                d = registry.create_device(s, args.room, args.name)
                code = registry.issue_enrolment_code(s, d.id, ttl)
                return {"device_id": d.id, "room_id": d.room_id, "enrolment_code": code,
                        "expires_at": d.enrolment_expires_at}
            case ("device", "code"):
                from server.fleet import actions  # audited as the API and the rooms page

                issued = actions.issue_code(s, args.device_id, ttl, actions.Actor("cli"))
                return {"device_id": args.device_id, "enrolment_code": issued.code}
            case ("device", "revoke"):
                from server.fleet import actions

                d = actions.revoke(s, args.device_id, actions.Actor("cli"))
                return {"device_id": d.id, "revoked_at": d.revoked_at}
            case ("device", "list"):
                return [{"id": d.id, "room_id": d.room_id, "enrolled": d.enrolled_at is not None,
                         "revoked": d.revoked_at is not None, "last_seen_at": d.last_seen_at,
                         "agent_version": d.agent_version} for d in s.scalars(select(Device))]
            case ("apikey", "create"):
                return {"name": args.name, "api_key": registry.create_api_key(s, args.name)}
            case ("apikey", "list"):
                return [{"id": k.id, "name": k.name, "role": k.role, "created_at": k.created_at,
                         "revoked_at": k.revoked_at} for k in registry.list_api_keys(s)]
            case ("apikey", "revoke"):
                from server.review import audit

                k = registry.revoke_api_key(s, int(args.key) if args.key.isdigit() else args.key)
                audit.record(s, None, audit.AuditAction.API_KEY_REVOKE, actor="cli",
                             detail=f"api key {k.id} ({k.name}): active -> revoked")
                return {"id": k.id, "name": k.name, "revoked_at": k.revoked_at}
        raise AssertionError(f"unhandled admin command {args.what} {args.verb}")

    try:
        _print(_with_session(settings, run))
    except registry.RegistryError as err:
        print(f"roomscribe: {err}", file=sys.stderr)
        return 1
    return 0


def _db(args: argparse.Namespace, settings: Settings) -> int:
    if args.verb in ("backup", "restore"):
        from server import backup

        if args.file is None:
            print(f"roomscribe db {args.verb}: give the backup FILE", file=sys.stderr)
            return 2
        try:
            if args.verb == "backup":
                report = backup.backup(settings.resolved_database_url, args.file)
            else:
                report = backup.restore(settings.resolved_database_url, args.file,
                                        force=args.force)
        except backup.BackupError as err:
            print(f"roomscribe db {args.verb}: {err}", file=sys.stderr)
            return 1
        _print(report.__dict__)
        return 0
    _with_session(settings, lambda s: None)
    print(f"database at head: {Database(settings.resolved_database_url).engine.url}")
    return 0


#: Subcommands whose own module parses the rest of the command line.
DELEGATED = {
    "transcribe": ("server.asr.cli", "transcribe speech to JSON (same path as live audio)"),
    "models": ("server.modelstore.cli", "fetch, list and build models"),
    "nlp": ("nlp.cli", "clinical NLP: draft a note from a dialogue or transcript"),
    "review": ("server.review.cli", "users, pools and the review queue"),
    "demo": ("server.lab.demo", "the main job: a room's visit to a draft in the queue"),
    "retention": ("server.privacy.cli", "consent, legal hold and deleting patient data"),
    "agent-release": ("server.fleet.releases_cli",
                      "signed device agent releases: keygen, sign, add, offer"),
}


def _delegate(args: argparse.Namespace, settings: Settings) -> int:
    import importlib

    module = importlib.import_module(DELEGATED[args.command][0])
    return int(module.main(args.rest, settings))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roomscribe", description="RoomScribe server and admin")
    p.add_argument("--version", action="version", version=f"roomscribe {__version__}")
    p.add_argument("--log-level", help="default: INFO for serve, WARNING otherwise")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--ssl-certfile")
    serve.add_argument("--ssl-keyfile")
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="run pipeline stages from the queue, no HTTP")
    worker.add_argument("--stages", default="transcription,drafting",
                        help="comma list of transcription, drafting (default: both)")
    worker.set_defaults(func=_worker)

    db = sub.add_parser("db", help="database schema, backup and restore")
    db.add_argument("verb", choices=["upgrade", "backup", "restore"])
    db.add_argument("file", nargs="?", type=Path, help="backup file (backup / restore)")
    db.add_argument("--force", action="store_true", help="restore: replace the database")
    db.set_defaults(func=_db)

    admin = sub.add_parser("admin", help="clinics, rooms, devices, API keys")
    asub = admin.add_subparsers(dest="what", required=True)
    clinic = asub.add_parser("clinic").add_subparsers(dest="verb", required=True)
    clinic.add_parser("add").add_argument("name")
    clinic.add_parser("list")
    room = asub.add_parser("room").add_subparsers(dest="verb", required=True)
    room_add = room.add_parser("add")
    room_add.add_argument("--clinic", required=True)
    room_add.add_argument("--id")
    room_add.add_argument("name")
    room.add_parser("list")
    device = asub.add_parser("device").add_subparsers(dest="verb", required=True)
    device_add = device.add_parser("add", help="register a device; prints its enrolment code")
    device_add.add_argument("--room", required=True)
    device_add.add_argument("--name", default="")
    device.add_parser("code", help="issue a new one-time enrolment code").add_argument("device_id")
    device.add_parser("revoke").add_argument("device_id")
    device.add_parser("list")
    apikey = asub.add_parser("apikey").add_subparsers(dest="verb", required=True)
    apikey.add_parser("create").add_argument("--name", required=True)
    apikey.add_parser("list")
    apikey.add_parser("revoke", help="revoke an IT API key by id or name").add_argument("key")
    admin.set_defaults(func=_admin)

    for name, (_module, help_text) in DELEGATED.items():
        delegated = sub.add_parser(name, help=help_text, add_help=False)
        delegated.add_argument("rest", nargs=argparse.REMAINDER)
        delegated.set_defaults(func=_delegate)
    return p


def _split_delegated(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Split off a delegated subcommand's own arguments (argparse's REMAINDER drops a
    leading option such as ``--help``, so the split is made here)."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--log-level":
            i += 2
            continue
        if token.startswith("-"):
            i += 1
            continue
        if token in DELEGATED:
            return argv[: i + 1], argv[i + 1:]
        break
    return argv, None


def main(argv: Sequence[str] | None = None) -> int:
    head, rest = _split_delegated(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(head)
    if rest is not None:
        args.rest = rest
    args.log_level = (args.log_level or ("INFO" if args.command in ("serve", "worker")
                                         else "WARNING")).upper()
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as err:
        print(f"roomscribe: invalid settings:\n{err}", file=sys.stderr)
        return 2
    return int(args.func(args, settings))


if __name__ == "__main__":
    sys.exit(main())
