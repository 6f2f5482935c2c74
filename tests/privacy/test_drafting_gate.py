"""The drafting stage checks consent again: a visit whose consent was withdrawn (or never
recorded, where the clinic requires it) gets no draft."""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select

from nlp.pipeline import DraftWriter
from nlp.schema import DraftNote
from server.db import Database
from server.drafting import DraftingStage, DraftPorts
from server.ingest.handoff import EncounterInfo
from server.ingest.store import AudioStore, DeviceIdentity
from server.pipeline.ports import consent_allows, note_settings
from server.review.intake import submit_draft
from server.review.models import ReviewItem
from server.services import Services
from server.settings import Settings
from tests.review.world import make_transcript
from tests.support import enrol_device


class Writer:
    def __init__(self) -> None:
        self.drafts = 0

    def draft(self, transcript: Any, template: str | None = None,
              style: str | None = None) -> DraftNote:
        self.drafts += 1
        return DraftNote(transcript.encounter_id, "soap", ())


async def test_no_draft_without_consent(settings: Settings, db: Database) -> None:
    dev = enrol_device(db)
    device = DeviceIdentity(dev.device_id, dev.room_id)
    enc = str(uuid.uuid4())
    AudioStore(db).open_encounter(device, enc, 0)
    services = Services.build(settings.model_copy(update={"drafting": False}))
    writer = Writer()
    ports = DraftPorts(services.run_db,
                       partial(consent_allows, db, timedelta(minutes=settings.consent_grace_min)),
                       partial(note_settings, db, settings.note_templates),
                       partial(submit_draft, services))
    stage = DraftingStage(ports, Path("unused"), writer=cast(DraftWriter, writer))
    try:
        await stage(EncounterInfo(enc, dev.device_id, dev.room_id, 0), make_transcript(enc))
        assert writer.drafts == 0
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(ReviewItem)) == 0
    finally:
        stage.close()
        await services.aclose()
