"""The bytes on the wire: ``{"node": ..., "src": ..., "body": {...}}`` as compact JSON.

``src`` is one bus instance's random id: a node ignores its own echoes by it
(two processes misconfigured with one ``node_id`` still receive each other).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Envelope", "decode", "encode"]


@dataclass(frozen=True, slots=True)
class Envelope:
    node: str
    src: str
    body: dict[str, Any]


def encode(node: str, src: str, body: dict[str, Any]) -> str:
    return json.dumps({"node": node, "src": src, "body": body}, separators=(",", ":"))


def decode(data: str | bytes) -> Envelope | None:
    """The envelope, or None for anything malformed (logged by the caller)."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(raw, dict):
        return None
    node, src, body = raw.get("node"), raw.get("src"), raw.get("body")
    if not isinstance(node, str) or not isinstance(src, str) or not isinstance(body, dict):
        return None
    return Envelope(node, src, body)
