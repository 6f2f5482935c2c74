"""The pipeline's vocabulary: its stages and the events they emit (server/pipeline/events.py).

    ingest ──▶ transcription ──▶ drafting ──▶ review

Each stage emits ``<stage>-start`` and ``<stage>-end`` (or ``error``) per encounter,
as Home Assistant's assist pipeline does; ``server/services.py`` builds the stages
and hands each the callables it needs, ``server/work`` carries the hand-offs between
processes.
"""

from server.pipeline.events import (
    EventType,
    LiveEvent,
    OnEvent,
    PipelineEvent,
    Stage,
    log_event,
    parse_stages,
)

__all__ = ["EventType", "LiveEvent", "OnEvent", "PipelineEvent", "Stage", "log_event",
           "parse_stages"]
