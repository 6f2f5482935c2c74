"""Pure bookkeeping of one connection's stream: what is sent, acked, in flight.

No socket, no clock: the uplink tells it what it sent and what came back, and
asks it what to send next. One instance lives exactly as long as one
websocket connection; a reconnect starts from a fresh one and the server's
ack for each ``encounter-start``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["EncounterProgress", "SendState"]


@dataclass(slots=True)
class EncounterProgress:
    encounter_id: str
    announced: bool = False
    """``encounter-start`` sent on this connection."""
    resumed: bool = False
    """The server answered it with an ack: we know where to resume."""
    next_seq: int = 0
    """Next sequence number to send."""
    acked: int = -1
    end_sent: bool = False
    high_sent: int = -1
    inflight: deque[tuple[int, int]] = field(default_factory=deque)
    """(seq, bytes) sent and not yet acked, in send order."""
    rewind_from: int | None = None
    """Where the last rewind restarted from."""
    refused: bool = False
    """The server refused this encounter (start or end); skipped on this connection."""


class SendState:
    """Go-back-N sender state over a bounded window of unacked bytes."""

    def __init__(self, window_bytes: int) -> None:
        self.window_bytes = window_bytes
        self.inflight_bytes = 0
        self._progress: dict[str, EncounterProgress] = {}

    def progress(self, encounter_id: str) -> EncounterProgress:
        p = self._progress.get(encounter_id)
        if p is None:
            p = self._progress[encounter_id] = EncounterProgress(encounter_id)
        return p

    def window_open(self) -> bool:
        """Whether another frame may go out (always true with nothing in flight)."""
        return self.inflight_bytes < self.window_bytes

    def waiting_on_server(self) -> bool:
        """Something sent still needs an answer: frames, an encounter-start or -end."""
        return self.inflight_bytes > 0 or any(
            not p.refused and ((p.announced and not p.resumed) or p.end_sent)
            for p in self._progress.values())

    def on_announced(self, encounter_id: str) -> None:
        self.progress(encounter_id).announced = True

    def on_sent(self, encounter_id: str, seq: int, nbytes: int) -> None:
        p = self.progress(encounter_id)
        p.inflight.append((seq, nbytes))
        p.high_sent = max(p.high_sent, seq)
        p.next_seq = seq + 1
        self.inflight_bytes += nbytes

    def on_ack(self, encounter_id: str, seq: int) -> bool:
        """Returns True when the ack moved something forward."""
        p = self._progress.get(encounter_id)
        if p is None or not p.announced:
            return False
        moved = False
        if not p.resumed:
            # The answer to encounter-start: resume right after what the server has.
            p.resumed = True
            p.next_seq = seq + 1
            moved = True
        if seq > p.acked:
            p.acked = seq
            moved = True
        while p.inflight and p.inflight[0][0] <= seq:
            self.inflight_bytes -= p.inflight.popleft()[1]
        return moved

    def get(self, encounter_id: str) -> EncounterProgress | None:
        return self._progress.get(encounter_id)

    def on_error(self, encounter_id: str, seq: int | None) -> int | None:
        """An ``out-of-order`` / ``storage-unavailable`` error: go back and resend.

        ``seq`` is where the server wants the stream to resume (for
        out-of-order, its next expected seq; for a failed frame, that frame);
        without one, resume after the last ack. Returns the seq to resend from,
        or ``None`` when the error is stale: the server answers in order, so
        every frame sent before a rewind draws the same complaint again, and
        those must not restart the resend each time.
        """
        p = self._progress.get(encounter_id)
        if p is None or not p.resumed:
            return None
        target = p.acked + 1 if seq is None else seq
        target = max(p.acked + 1, min(target, p.high_sent + 1))
        if target == p.rewind_from:
            return None
        p.rewind_from = target
        p.next_seq = target
        p.end_sent = False  # the end goes out again after the resent frames
        keep = deque(item for item in p.inflight if item[0] < target)
        self.inflight_bytes -= sum(n for sq, n in p.inflight if sq >= target)
        p.inflight = keep
        return target

    def forget(self, encounter_id: str) -> None:
        p = self._progress.pop(encounter_id, None)
        if p is not None:
            self.inflight_bytes -= sum(n for _seq, n in p.inflight)
