"""RoomScribe device agent: capture exam-room audio, spool it, stream it.

The agent runs on a small computer in each exam room. Every captured frame is
written to an on-disk spool before it is sent and deleted only once the server
has acknowledged it, so nothing is lost when the network, the server or the
agent itself drops mid-visit.

Modules, edge to core::

    cli        argparse entry point; builds the settings, runs the agent
    settings   the frozen AgentSettings (one TOML file per room + CLI flags)
    enroll     one-time enrolment over HTTPS: token file + room TOML
    agent      wires source → spool → uplink; the room's commands
    room       pure state machine: idle ↔ listening ↔ muted
    control    local unix-socket control endpoint (one JSON line per request)
    capture    microphone input through PyAudio (imported lazily, only here)
    wavsource  a WAV file as the room's audio (demos, tests, IT checks)
    audio      AudioChunk and the AudioSource protocol
    spool      durable per-encounter spool on disk
    spoolreader  reads a spooled encounter back, in order
    segments   pure spool pieces: record codec, rotation, retention, admission
    fsutil     atomic, durable small-file writes
    uplink     websocket session: hello, resume, stream, acks, pings
    sendstate  pure bookkeeping of what is in flight on one connection
    backoff    pure reconnect back-off (full jitter) and log throttling
    update     pure agent-update state machine, maintenance window (docs/agent-updates.md)
    update_run / update_fetch / update_verify / update_install / update_guard
               its driver, HTTP client, signature check, side-by-side install, crash guard
    stats      the counters logged and reported by ``status``
    errors     the error tree
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["__version__"]

try:
    __version__ = metadata.version("roomscribe")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"
