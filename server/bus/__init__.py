"""The message bus between server nodes and workers: live events, device hand-over.

- :class:`Bus` (``interface.py``): ``publish(channel, message)`` to the other
  nodes, ``subscribe(channel, consumer)`` to theirs; never blocks a publisher.
- :class:`InProcessBus` (``local.py``): one process alone (the default, no
  Redis), and two "nodes" in one test process on a shared :class:`LocalBroker`.
- :class:`RedisBus` (``redis_pubsub.py``): Redis pub/sub between machines.
- ``devices.py``: :class:`ConnectedDevices`, the device connections of the cluster
  (hand-over, relayed commands, presence kept by ``presence.py``).

Channels in use: ``review`` (review item changes, server/review/live.py),
``transcripts`` (live transcript events, server/transcripts/live.py),
``devices`` (device attached / commands, server/ingest/session.py) and
``stages`` (hand-offs between stages: ``audio-stored`` from server/ingest/handoff.py,
``job-posted`` from server/work/runner.py; wake-ups only: the audio and the jobs are
in the database).
"""

from __future__ import annotations

from server.bus.interface import Bus, BusStats, Consumer, Unsubscribe
from server.bus.local import InProcessBus, LocalBroker
from server.bus.redis_pubsub import RedisBus
from server.settings import Settings

__all__ = ["Bus", "BusStats", "Consumer", "InProcessBus", "LocalBroker", "RedisBus",
           "Unsubscribe", "make_bus"]


def make_bus(settings: Settings) -> Bus:
    """Redis pub/sub when ``redis_url`` is set, else a bus that keeps to this process.

    The caller (the composition root) awaits ``bus.start()`` on its event loop and
    ``bus.aclose()`` at shutdown.
    """
    if settings.redis_url:
        return RedisBus(settings.redis_url, settings.resolved_node_id,
                        settings.bus_channel_prefix, outbox_size=settings.bus_outbox)
    return InProcessBus(settings.resolved_node_id)
