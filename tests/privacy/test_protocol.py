"""The ``consent`` event: round trip and validation (standard library only)."""

from __future__ import annotations

import uuid

import pytest

from protocol import Consent, ProtocolError, encode_event, parse_event

ENC = str(uuid.uuid4())


def test_consent_round_trips() -> None:
    body = Consent(ENC, "given", "verbal", "Dr Lee", 1_700_000_000_000_000)
    text = encode_event(body.to_event())
    assert parse_event(text) == body
    assert parse_event(encode_event(Consent(ENC, "withdrawn").to_event())) == \
        Consent(ENC, "withdrawn", "", "", 0)


@pytest.mark.parametrize("data, message", [
    ({"encounter_id": ENC, "state": "maybe"}, "given or withdrawn"),
    ({"encounter_id": ENC, "state": "given", "method": "nodded"}, "verbal or written"),
    ({"encounter_id": "nope", "state": "withdrawn"}, "UUID"),
    ({"encounter_id": ENC, "state": "given", "method": "verbal", "at_us": "soon"}, "int"),
])
def test_bad_consent_events_are_refused(data: dict[str, object], message: str) -> None:
    import json

    with pytest.raises(ProtocolError, match=message):
        parse_event(json.dumps({"type": "consent", "data": data}))
