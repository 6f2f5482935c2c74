"""``roomscribe nlp``: draft a note from a dialogue or a transcript.

    roomscribe nlp draft FILE [--format json|text] [--template soap|aci|FILE.toml]
                              [--style concise|detailed|verbatim] [--models DIR]
    roomscribe nlp orders FILE [--format json|mediqa-oe] [--models DIR]

FILE is an ACI-BENCH style dialogue (one turn a line, ``[doctor]`` /
``[patient]``) or a transcript JSON from ``roomscribe transcribe``. ``text``
prints the note with each sentence's evidence (segment ids and seconds) and the
orders; ``json`` prints ``DraftNote.to_dict()``.

``orders`` prints only the orders: ``json`` as ``OrderIntent.to_dict()`` (name as
said, generic, code, reason, evidence), ``mediqa-oe`` as the MEDIQA-OE 2025 list
(``order_type``, ``description``, ``reason``, ``provenance``), scoreable with the
official scorer. Provenance is turn ids numbered from 1: write a dialogue one
SIMORD turn a line and segment k is turn k+1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from nlp.assemble import STYLES
from nlp.errors import NlpError
from nlp.schema import DraftNote, Evidence, OrderIntent

__all__ = ["format_text", "main"]


def _ev(evidence: Sequence[Evidence]) -> str:
    return "; ".join(f"seg {','.join(map(str, e.segment_ids))} @ {e.start_s:.1f}–{e.end_s:.1f}s"
                     for e in evidence)


def _order_line(o: OrderIntent) -> str:
    details = [f"{k}={getattr(o, k)}" for k in ("dose", "unit", "route", "frequency",
                                               "duration", "body_site", "laterality",
                                               "specialty", "interval", "reason", "code",
                                               "verify") if getattr(o, k)]
    return (f"- [{o.status}] {o.kind}: {o.name}" + (f" ({', '.join(details)})" if details
                                                     else "") + f"  [{_ev(o.evidence)}]")


def format_text(note: DraftNote) -> str:
    out: list[str] = []
    for section in note.sections:
        if not section.sentences:
            continue
        out.append(section.title)
        out += [f"  {s.text}  [{_ev(s.evidence)}]" for s in section.sentences]
        out.append("")
    out.append("ORDERS")
    out += [_order_line(o) for o in note.orders] or ["  (none)"]
    return "\n".join(out)


def main(argv: Sequence[str], settings: object = None) -> int:
    p = argparse.ArgumentParser(prog="roomscribe nlp", description="clinical NLP")
    sub = p.add_subparsers(dest="verb", required=True)
    draft = sub.add_parser("draft", help="draft a note from a dialogue or transcript")
    draft.add_argument("file", type=Path)
    draft.add_argument("--format", choices=["json", "text"], default="text")
    draft.add_argument("--template", default="soap", help="soap | aci | a TOML template file")
    draft.add_argument("--style", choices=STYLES, default="concise",
                       help="concise (note phrasing, repeats left out; the default), detailed "
                            "(note phrasing, every sentence) or verbatim (spoken sentences)")
    draft.add_argument("--models", type=Path, default=None,
                       help="models directory (default: settings.models_dir or models/)")
    orders = sub.add_parser("orders", help="only the orders of a dialogue or transcript")
    orders.add_argument("file", type=Path)
    orders.add_argument("--format", choices=["json", "mediqa-oe"], default="json")
    orders.add_argument("--models", type=Path, default=None,
                        help="models directory (default: settings.models_dir or models/)")
    args = p.parse_args(list(argv))
    models = args.models or Path(getattr(settings, "models_dir", Path("models")))
    try:
        from nlp.dialogue import load_transcript
        from nlp.pipeline import DraftWriter

        transcript = load_transcript(args.file)
        if args.verb == "orders":
            from nlp.simord import to_mediqa

            found = DraftWriter.load(models).orders(transcript)
            print(json.dumps(to_mediqa(found) if args.format == "mediqa-oe"
                             else [o.to_dict() for o in found], indent=2))
            return 0
        writer = DraftWriter.load(models, template=args.template)
        note = writer.draft(transcript, style=args.style)
    except NlpError as err:
        print(f"roomscribe: {err}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(note.to_dict(), indent=2))
    else:
        print(format_text(note))
    return 0
