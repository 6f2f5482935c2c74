"""At server start: transcribe again the encounters whose transcription a stop interrupted."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from server.ingest.handoff import EncounterInfo

if TYPE_CHECKING:
    from server.services import Services

__all__ = ["resume_unfinished"]

log = logging.getLogger(__name__)


async def resume_unfinished(services: Services) -> int:
    """Hand each interrupted encounter to the stage again (it replays from the first frame)."""
    if services.transcription is None:
        return 0
    encounters = await services.run_db(services.transcripts.unfinished)
    for enc in encounters:
        log.info("encounter %s: transcription was interrupted; starting it again", enc.id)
        services.handoff.encounter_opened(
            EncounterInfo(enc.id, enc.device_id, enc.room_id, enc.started_at_us))
    return len(encounters)
