"""Prometheus metrics of one server process (``GET /metrics``, server/routes/metrics.py).

Two kinds:

* **Counted as it happens** (module-level, one per process): audio ingested
  (:func:`audio_ingested`, from the device sessions) and draft latency
  (:func:`observe_draft_latency`, from the drafting stage).
* **Read at scrape time** (:class:`ServerCollector`, one per app): rooms streaming and
  devices connected to this node with the spool bytes each last reported, the
  transcription engine's real-time factor and backlog per room, review queue sizes and
  overdue items (SLA breaches) per clinic, and the bus's counters.

Labels carry room, device, clinic and node ids and review states only: never an
encounter id, a patient's name or anything else from a visit. In a cluster every node
serves its own ``/metrics`` (``node`` label); the review queue gauges come from the
shared database, so take them from one node (``max by (clinic, state)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from protocol import SUPPORTED_FORMAT
from server.models import utcnow
from server.review.lifecycle import FINAL_STATES, ReviewState
from server.review.models import ReviewItem

if TYPE_CHECKING:
    from server.services import Services

__all__ = ["AUDIO_SECONDS", "DRAFT_LATENCY", "PROCESS_REGISTRY", "ServerCollector",
           "audio_ingested", "observe_draft_latency", "render"]

log = logging.getLogger(__name__)

#: The metrics counted as they happen, for the whole process.
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)

AUDIO_SECONDS = Counter(
    "roomscribe_audio_ingested_seconds", "Seconds of device audio stored (new frames only).",
    ["room"], registry=PROCESS_REGISTRY)
DRAFT_LATENCY = Histogram(
    "roomscribe_draft_latency_seconds",
    "A visit's final transcript handed to drafting until its draft is in the review queue.",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600), registry=PROCESS_REGISTRY)

_OPEN_STATES = [s.value for s in ReviewState if s not in FINAL_STATES]


def audio_ingested(room_id: str, pcm_bytes: int) -> None:
    """``pcm_bytes`` of a room's audio were stored (called by the device session)."""
    if pcm_bytes > 0:
        AUDIO_SECONDS.labels(room=room_id).inc(pcm_bytes / SUPPORTED_FORMAT.bytes_per_second)


def observe_draft_latency(seconds: float) -> None:
    """A draft reached the review queue ``seconds`` after its transcript went to drafting
    (server/drafting.py ``DraftingStage.__call__``)."""
    DRAFT_LATENCY.observe(max(seconds, 0.0))


class ServerCollector(Collector):
    """What this node holds right now, read when Prometheus scrapes."""

    def __init__(self, services: Services, *,
                 now: Callable[[], datetime] = utcnow) -> None:
        self.services = services
        self._now = now

    def collect(self) -> Iterator[Metric]:
        yield from self._devices()
        yield from self._transcription()
        yield from self._bus()
        yield from self._review()

    def _devices(self) -> Iterator[Metric]:
        node = self.services.devices.node_id or "local"
        connected = GaugeMetricFamily("roomscribe_devices_connected",
                                      "Device connections this node holds.", labels=["node"])
        streaming = GaugeMetricFamily(
            "roomscribe_rooms_streaming",
            "Rooms whose device (held by this node) last reported listening.", labels=["node"])
        spool = GaugeMetricFamily(
            "roomscribe_device_spool_bytes",
            "Unsent audio in the device's spool, as it last reported.",
            labels=["room", "device"])
        held = self.services.devices.held()
        listening = 0
        for session in held:
            status = getattr(session, "last_status", None)
            if session.device is None or status is None:
                continue
            listening += status.state == "listening"
            spool.add_metric([session.device.room_id, session.device.device_id],
                             status.spool_bytes)
        connected.add_metric([node], len(held))
        streaming.add_metric([node], listening)
        yield from (connected, streaming, spool)

    def _transcription(self) -> Iterator[Metric]:
        stage = self.services.transcription
        if stage is None:
            return
        rtf = GaugeMetricFamily(
            "roomscribe_asr_real_time_factor",
            "Engine seconds per audio second of the visit being transcribed in the room.",
            labels=["room", "engine"])
        backlog = GaugeMetricFamily(
            "roomscribe_asr_backlog_seconds",
            "Audio read for the room but not yet decoded by its engine.",
            labels=["room", "engine"])
        active = GaugeMetricFamily("roomscribe_asr_rooms_active",
                                   "Rooms being transcribed by this node.")
        snapshot = stage.monitor.snapshot()
        for room in snapshot["rooms"]:
            labels = [str(room["room_id"]), str(room["engine"])]
            if room["rtf"] is not None:
                rtf.add_metric(labels, float(room["rtf"]))
            backlog.add_metric(labels, float(room["backlog_s"]))
        active.add_metric([], float(snapshot["active"]))
        behind = CounterMetricFamily(
            "roomscribe_asr_behind_events", "Times a room fell behind the threshold.")
        behind.add_metric([], float(snapshot["behind_events_total"]))
        yield from (rtf, backlog, active, behind)

    def _bus(self) -> Iterator[Metric]:
        stats = self.services.bus.stats
        node = self.services.bus.node_id or "local"
        for name, value, doc in (
                ("published", stats.published, "Messages handed to the bus."),
                ("sent", stats.sent, "Messages that reached the broker."),
                ("dropped", stats.dropped, "Messages lost (outbox full or bus down)."),
                ("received", stats.received, "Messages from other nodes."),
                ("reconnects", stats.reconnects, "Reconnections to the broker.")):
            metric = CounterMetricFamily(f"roomscribe_bus_{name}", doc, labels=["node"])
            metric.add_metric([node], float(value))
            yield metric

    def _review(self) -> Iterator[Metric]:
        items = GaugeMetricFamily("roomscribe_review_items",
                                  "Review items not yet signed, per clinic and state.",
                                  labels=["clinic", "state"])
        overdue = GaugeMetricFamily(
            "roomscribe_review_overdue",
            "Review items past their due time and not signed (SLA breaches now).",
            labels=["clinic"])
        now = self._now()
        try:
            with self.services.db.session() as s:
                by_state = s.execute(
                    select(ReviewItem.clinic_id, ReviewItem.state, func.count())
                    .where(ReviewItem.state.in_(_OPEN_STATES))
                    .group_by(ReviewItem.clinic_id, ReviewItem.state)).all()
                late = s.execute(
                    select(ReviewItem.clinic_id, func.count())
                    .where(ReviewItem.state.in_(_OPEN_STATES), ReviewItem.due_at <= now)
                    .group_by(ReviewItem.clinic_id)).all()
        except SQLAlchemyError:
            log.warning("metrics: review queue not readable now", exc_info=True)
            return
        for clinic, state, count in by_state:
            items.add_metric([clinic, state], count)
        for clinic, count in late:
            overdue.add_metric([clinic], count)
        yield from (items, overdue)


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format of the process metrics and ``registry``'s."""
    return generate_latest(PROCESS_REGISTRY) + generate_latest(registry)
