"""Services wires the stages after ingest from settings, and only from settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.drafting import DraftingStage
from server.ingest.handoff import LoggingStage
from server.services import Services
from server.settings import Settings


@pytest.fixture
def whisper_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"asr_engine": "whisper",
                                       "models_dir": Path("models").resolve()})


async def test_configured_transcription_hands_transcripts_to_drafting(
        whisper_settings: Settings) -> None:
    services = Services.build(whisper_settings)
    try:
        assert services.transcription is not None
        assert isinstance(services.drafting, DraftingStage)
        assert services.transcription.next_stage is services.drafting
        assert services.transcription.labeler == services.drafting.label_speakers
        assert services.transcription.watcher == services.drafting.transcript_grew
        assert services.drafting.threads == 1
    finally:
        await services.aclose()
    no_prepare = Services.build(whisper_settings.model_copy(update={"draft_prepare_every_s": 0}))
    try:
        assert no_prepare.drafting is not None and no_prepare.transcription is not None
        assert no_prepare.transcription.watcher is None
    finally:
        await no_prepare.aclose()


async def test_drafting_off_or_a_given_stage_leaves_the_chain_alone(
        whisper_settings: Settings) -> None:
    off = Services.build(whisper_settings.model_copy(update={"drafting": False}))
    given = Services.build(whisper_settings, stage=LoggingStage())
    try:
        assert off.transcription is not None and off.drafting is None
        assert given.transcription is None and given.drafting is None
    finally:
        await off.aclose()
        await given.aclose()
