"""Typed pipeline events: a ``StrEnum`` of stages, ``<stage>-start`` / ``<stage>-end`` /
``error`` events (after Home Assistant's ``assist_pipeline``), and the live transcript
event types viewers receive.

Per encounter, in order (the snapshot in tests/server/test_services.py)::

    ingest-start            a device opened the visit (its audio is being stored)
    transcription-start     the transcription stage took the visit (after consent)
    ingest-end              every frame up to the device's last_seq is stored
    transcription-end       the transcript is stored, speaker labels final
    drafting-start          the drafting stage took the finished transcript
    drafting-end            the draft is in the review queue
    review-start            the review item exists (version 1, routed to a pool)
    review-end              a physician signed the draft (``item``, ``version``)
    error                   a stage failed: ``stage`` says which, ``data["message"]`` why

``ingest-end`` may come before or after ``transcription-start`` (a held visit). Events
are values: a stage calls its ``on_event`` callable (the composition root passes
:func:`log_event` or a recorder); nothing here imports the stages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["EventType", "LiveEvent", "OnEvent", "PipelineEvent", "Stage", "log_event",
           "parse_stages"]

log = logging.getLogger("server.pipeline")


class Stage(StrEnum):
    INGEST = "ingest"
    TRANSCRIPTION = "transcription"
    DRAFTING = "drafting"
    REVIEW = "review"


class EventType(StrEnum):
    INGEST_START = "ingest-start"
    INGEST_END = "ingest-end"
    TRANSCRIPTION_START = "transcription-start"
    TRANSCRIPTION_END = "transcription-end"
    DRAFTING_START = "drafting-start"
    DRAFTING_END = "drafting-end"
    REVIEW_START = "review-start"
    REVIEW_END = "review-end"
    ERROR = "error"

    @classmethod
    def start(cls, stage: Stage) -> EventType:
        return cls(f"{stage.value}-start")

    @classmethod
    def end(cls, stage: Stage) -> EventType:
        return cls(f"{stage.value}-end")


class LiveEvent(StrEnum):
    """The ``type`` of live transcript events sent to viewers (``/ws/transcripts``): the
    wire names clients already read, kept as they were."""

    TRANSCRIPTION_START = "transcription-start"
    PARTIAL = "partial"
    FINAL = "final"
    LAGGING = "lagging"
    TRANSCRIPT_COMPLETE = "transcript-complete"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class PipelineEvent:
    type: EventType
    stage: Stage
    encounter_id: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, stage: Stage, encounter_id: str, **data: Any) -> PipelineEvent:
        return cls(EventType.start(stage), stage, encounter_id, data)

    @classmethod
    def end(cls, stage: Stage, encounter_id: str, **data: Any) -> PipelineEvent:
        return cls(EventType.end(stage), stage, encounter_id, data)

    @classmethod
    def error(cls, stage: Stage, encounter_id: str, message: str, **data: Any
              ) -> PipelineEvent:
        return cls(EventType.ERROR, stage, encounter_id, {"message": message, **data})

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type.value, "stage": self.stage.value,
                "encounter_id": self.encounter_id, "data": dict(self.data)}


#: What a stage calls with each event (on the event loop or a worker thread; it must
#: return at once).
OnEvent = Callable[[PipelineEvent], None]


def log_event(event: PipelineEvent) -> None:
    """The default sink: one log line per event (errors as warnings)."""
    detail = " ".join(f"{k}={v}" for k, v in event.data.items())
    level = logging.WARNING if event.type is EventType.ERROR else logging.INFO
    log.log(level, "encounter %s: %s%s%s", event.encounter_id, event.type.value,
            f" ({event.stage.value})" if event.type is EventType.ERROR else "",
            f" {detail}" if detail else "")


def parse_stages(text: str | Iterable[str]) -> frozenset[Stage]:
    """``all`` | ``none`` | a comma list of the stages a process runs itself
    (``transcription,drafting``); ingest and review always run where the HTTP is."""
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text)]
    parts = [p for p in parts if p]
    if parts == ["all"]:
        return frozenset({Stage.TRANSCRIPTION, Stage.DRAFTING})
    if parts in ([], ["none"]):
        return frozenset()
    runnable = {Stage.TRANSCRIPTION.value, Stage.DRAFTING.value}
    unknown = [p for p in parts if p not in runnable]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}: choose all, none or "
                         f"a comma list of {', '.join(sorted(runnable))}")
    return frozenset(Stage(p) for p in parts)
