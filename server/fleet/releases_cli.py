"""``roomscribe agent-release``: make the release key, sign a wheel, publish and offer it.

    roomscribe agent-release keygen --out DIR        release-key.pem (private, 0600; keep
                                                     it off the server) + release-key.pub.pem
    roomscribe agent-release sign WHEEL --key PEM    writes WHEEL.sig (base64)
    roomscribe agent-release add WHEEL --signature SIG [--public-key PEM]
                                       [--offer [--clinic ID]]
    roomscribe agent-release offer VERSION [--clinic ID]
    roomscribe agent-release withdraw [--clinic ID]
    roomscribe agent-release list

``add`` / ``offer`` / ``withdraw`` change the database (audited, actor ``cli``); the
others only touch files. docs/agent-updates.md walks through it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.fleet import releases
from server.fleet.releases import AgentRelease, ReleaseError
from server.settings import Settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roomscribe agent-release",
                                description="signed agent releases for the room devices")
    sub = p.add_subparsers(dest="verb", required=True)
    keygen = sub.add_parser("keygen", help="make an Ed25519 release key pair")
    keygen.add_argument("--out", type=Path, required=True, help="directory for the two files")
    sign = sub.add_parser("sign", help="sign a wheel with the release key")
    sign.add_argument("wheel", type=Path)
    sign.add_argument("--key", type=Path, required=True, help="release-key.pem")
    sign.add_argument("--out", type=Path, help="default: WHEEL.sig")
    add = sub.add_parser("add", help="publish a signed wheel")
    add.add_argument("wheel", type=Path)
    add.add_argument("--signature", type=Path, required=True)
    add.add_argument("--public-key", type=Path, help="check the signature before storing")
    add.add_argument("--offer", action="store_true", help="offer it at once")
    add.add_argument("--clinic", default="", help="offer to this clinic only")
    offer = sub.add_parser("offer", help="offer a published release to the devices")
    offer.add_argument("version")
    offer.add_argument("--clinic", default="", help="default: every clinic")
    withdraw = sub.add_parser("withdraw", help="withdraw an offer")
    withdraw.add_argument("--clinic", default="", help="default: the every-clinic offer")
    sub.add_parser("list", help="releases and offers")
    return p


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ReleaseError(f"cannot read {path}: {err.strerror}") from err


def _keygen(out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    private, public = out / "release-key.pem", out / "release-key.pub.pem"
    if private.exists() or public.exists():
        raise ReleaseError(f"{private} or {public} exists already; not overwriting a key")
    pair = releases.keygen()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pair.private_pem)
    public.write_bytes(pair.public_pem)
    return {"private_key": str(private), "public_key": str(public),
            "next": "copy the public key to each device (update_public_key in room.toml); "
                    "keep the private key offline"}


def _db_verb(args: argparse.Namespace, s: Session) -> Any:
    if args.verb == "add":
        data = _read(args.wheel)
        sig = releases.parse_signature(_read(args.signature))
        public = _read(args.public_key) if args.public_key else None
        release = releases.add_release(s, args.wheel.name, data, sig, actor="cli",
                                       public_pem=public)
        if args.offer:
            releases.set_offer(s, release.version, clinic_id=args.clinic, actor="cli")
        return {**releases.release_summary(release), "offers": releases.offers(s)}
    if args.verb == "offer":
        releases.set_offer(s, args.version, clinic_id=args.clinic, actor="cli")
        return {"offers": releases.offers(s)}
    if args.verb == "withdraw":
        releases.set_offer(s, None, clinic_id=args.clinic, actor="cli")
        return {"offers": releases.offers(s)}
    rows = s.scalars(select(AgentRelease).order_by(AgentRelease.published_at))
    return {"releases": [releases.release_summary(r) for r in rows],
            "offers": releases.offers(s)}


def main(argv: list[str], settings: Settings) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.verb == "keygen":
            result: Any = _keygen(args.out)
        elif args.verb == "sign":
            sig = releases.sign(_read(args.wheel), _read(args.key))
            out = args.out or args.wheel.with_name(args.wheel.name + ".sig")
            out.write_text(base64.b64encode(sig).decode() + "\n")
            result = {"signature": str(out)}
        else:
            from server.cli import _with_session

            result = _with_session(settings, lambda s: _db_verb(args, s))
    except ReleaseError as err:
        print(f"roomscribe agent-release: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0
