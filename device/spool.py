"""The durable on-disk spool: nothing captured is lost before the server has it.

Layout under ``spool_dir``::

    .lock                          flock: one agent per spool
    <encounter-id>/                one directory per encounter
        encounter.json             metadata, replaced atomically (write, fsync, rename)
        acked                      highest seq the server acked (a hint; see below)
        seg-000000000000.seg       append-only segments (format: device.segments)
        seg-000000000100.seg
    .tmp-<encounter-id>/           a directory being created (removed on recovery)

``encounter.json``: ``{"encounter_id", "started_at_us", "source", "muted",
"ended", "last_seq", "ended_at_us", "consent", "discarded_through"}``
(``consent`` only once recorded; ``discarded_through`` only after a withdrawal).

Consent withdrawn in the room (:meth:`Spool.discard_audio`): every segment of the
encounter is deleted at once, so audio the server does not have yet never leaves
the device. Its sequence numbers stay taken: the reader hands each discarded seq
to the uplink as a one-sample silent placeholder (2 bytes instead of 3,200), so
the server's sequence stays whole, it acks the visit complete (storing nothing:
it was told of the withdrawal first) and the encounter leaves the spool.

Durability: every frame is written to the OS with one ``write()`` before it is
sent, so a crash of the agent loses nothing; segment data is fsynced by
:meth:`Spool.sync` (the agent calls it every second), on rotation, on
encounter end and on close, so a power cut loses at most about one second of
audio that the server does not already have. Metadata changes are fsynced
immediately.

Recovery (:meth:`Spool.open`) scans the last segment of every encounter (the
only one a crash can leave torn: a segment is fsynced before the next one is
created), truncates a torn or damaged tail, and derives the encounter's next
seq from the last intact record. Segments wholly acked are deleted as acks arrive; an encounter
directory is removed when the server acks it ``complete``. The acked seq on
disk is only a lower bound: on reconnect the server's own ack for each
``encounter-start`` says where to resume.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audio import AudioChunk
from .errors import SpoolError, SpoolFullError
from .fsutil import fsync_dir, read_int, read_json, write_all, write_atomic
from .segments import (
    SEGMENT_MAGIC,
    SegmentPolicy,
    admit,
    deletable_segments,
    encode_record,
    parse_segment_name,
    scan_segment,
    segment_name,
)
from .spoolreader import SpoolReader

__all__ = ["EncounterInfo", "Spool", "SpoolReader"]

log = logging.getLogger(__name__)

_META = "encounter.json"
_ACKED = "acked"


@dataclass(frozen=True, slots=True)
class EncounterInfo:
    """A snapshot of one spooled encounter."""

    encounter_id: str
    started_at_us: int
    source: str
    muted: bool
    next_seq: int
    acked: int
    ended: bool
    ended_at_us: int
    #: The patient's consent as recorded in the room (``ctl consent``): {"state", "method",
    #: "obtained_by", "at_us"}; None while nobody recorded it.
    consent: dict[str, Any] | None = None
    #: Frames up to this seq were deleted unsent (consent withdrawn); -1: none.
    discarded_through: int = -1

    @property
    def last_seq(self) -> int:
        return self.next_seq - 1


class _Encounter:
    """Mutable in-memory state of one encounter directory."""

    def __init__(self, directory: Path, meta: dict[str, Any]) -> None:
        self.dir = directory
        self.meta = meta
        self.segments: list[int] = []  # first seqs, ascending
        self.sizes: dict[int, int] = {}  # first seq -> bytes on disk
        self.next_seq = 0
        self.acked = -1
        self.acked_on_disk = -1
        self.fd: int | None = None
        self.dirty = False

    @property
    def id(self) -> str:
        return str(self.meta["encounter_id"])

    @property
    def ended(self) -> bool:
        return bool(self.meta.get("ended", False))

    @property
    def discarded_through(self) -> int:
        value = self.meta.get("discarded_through", -1)
        return value if isinstance(value, int) else -1

    def info(self) -> EncounterInfo:
        m = self.meta
        return EncounterInfo(
            encounter_id=self.id, started_at_us=int(m["started_at_us"]),
            source=str(m.get("source", "")), muted=bool(m.get("muted", False)),
            next_seq=self.next_seq, acked=self.acked, ended=self.ended,
            ended_at_us=int(m.get("ended_at_us", 0)),
            consent=dict(m["consent"]) if isinstance(m.get("consent"), dict) else None,
            discarded_through=self.discarded_through,
        )

    def open_size(self) -> int | None:
        return self.sizes[self.segments[-1]] if self.fd is not None else None

    def total(self) -> int:
        return sum(self.sizes.values())


class Spool:
    """Per-encounter append-only audio spool with ack-driven deletion."""

    def __init__(self, directory: Path, max_bytes: int, policy: SegmentPolicy) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.policy = policy
        self.used_bytes = 0
        self._encounters: dict[str, _Encounter] = {}
        self._lock_fd: int | None = None

    # ------------------------------------------------------------ open / close

    @classmethod
    def open(
        cls, directory: Path, max_bytes: int, policy: SegmentPolicy | None = None
    ) -> Spool:
        """Lock ``directory`` (creating it) and recover every encounter in it."""
        spool = cls(Path(directory), max_bytes, policy or SegmentPolicy())
        try:
            spool.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(spool.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise SpoolError(f"cannot use spool directory {directory}: {err.strerror}") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            raise SpoolError(
                f"spool {directory} is in use by another roomscribe-device process"
            ) from err
        spool._lock_fd = fd
        try:
            spool._recover()
        except OSError as err:
            spool.close()
            raise SpoolError(f"cannot recover spool {directory}: {err}") from err
        return spool

    def close(self) -> None:
        """fsync and close everything; release the lock."""
        for enc in self._encounters.values():
            self._close_segment(enc)
            self._persist_acked(enc)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def sync(self) -> None:
        """fsync every segment written since the last sync (the agent calls this each second)."""
        for enc in self._encounters.values():
            if enc.dirty and enc.fd is not None:
                os.fsync(enc.fd)
                enc.dirty = False

    # ------------------------------------------------------------------ views

    def encounters(self) -> list[EncounterInfo]:
        """Every spooled encounter, oldest first."""
        encs = sorted(self._encounters.values(), key=lambda e: (e.meta["started_at_us"], e.id))
        return [e.info() for e in encs]

    def get(self, encounter_id: str) -> EncounterInfo | None:
        enc = self._encounters.get(encounter_id)
        return enc.info() if enc else None

    # ---------------------------------------------------------------- writing

    def begin(self, encounter_id: str, started_at_us: int, source: str = "") -> EncounterInfo:
        """Create a new encounter (durably) before any of its audio is captured."""
        uuid.UUID(encounter_id)  # a directory name must never be a path
        if encounter_id in self._encounters:
            raise SpoolError(f"encounter {encounter_id} already exists")
        meta = {
            "encounter_id": encounter_id, "started_at_us": started_at_us, "source": source,
            "muted": False, "ended": False, "last_seq": None, "ended_at_us": 0,
        }
        tmp = self.directory / f".tmp-{encounter_id}"
        final = self.directory / encounter_id
        try:
            tmp.mkdir(mode=0o700)
            _write_meta(tmp / _META, meta)
            os.rename(tmp, final)
            fsync_dir(self.directory)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise SpoolError(f"cannot create encounter in spool: {err}") from err
        enc = _Encounter(final, meta)
        self._encounters[encounter_id] = enc
        return enc.info()

    def append(self, encounter_id: str, chunk: AudioChunk) -> int:
        """Write one frame; returns its seq. Raises :class:`SpoolFullError` when full.

        A refused frame does not consume a sequence number.
        """
        enc = self._live(encounter_id)
        if enc.discarded_through >= 0:
            raise SpoolError(f"encounter {encounter_id}: consent was withdrawn; no audio is "
                             "kept")
        record = encode_record(enc.next_seq, chunk.captured_at_us, chunk.pcm)
        if enc.fd is None and enc.segments and \
                not self.policy.should_rotate(enc.sizes[enc.segments[-1]], len(record)):
            # After recovery: keep appending to the last segment while it has room.
            enc.fd = self._open_append(enc.dir / segment_name(enc.segments[-1]))
        rotate = self.policy.should_rotate(enc.open_size(), len(record))
        need = len(record) + (len(SEGMENT_MAGIC) if rotate else 0)
        if not admit(self.used_bytes, need, self.max_bytes):
            raise SpoolFullError(
                f"spool full ({self.used_bytes} of {self.max_bytes} bytes); frame dropped"
            )
        if rotate:
            self._rotate(enc)
        assert enc.fd is not None
        seg = enc.segments[-1]
        try:
            write_all(enc.fd, record)
        except OSError as err:
            # Undo a partial write so the segment stays a clean run of records.
            with contextlib.suppress(OSError):
                os.ftruncate(enc.fd, enc.sizes[seg])
            cls = SpoolFullError if err.errno in (28, 122) else SpoolError  # ENOSPC, EDQUOT
            raise cls(f"cannot write to spool: {err.strerror}") from err
        enc.sizes[seg] += len(record)
        self.used_bytes += len(record)
        enc.dirty = True
        seq = enc.next_seq
        enc.next_seq += 1
        return seq

    def set_muted(self, encounter_id: str, muted: bool) -> None:
        enc = self._live(encounter_id)
        if enc.meta.get("muted") != muted:
            self._update_meta(enc, muted=muted)

    def set_consent(self, encounter_id: str, consent: dict[str, Any]) -> None:
        """Record the patient's consent (or its withdrawal) for a spooled encounter,
        durably: the uplink sends it after ``encounter-start`` on every connection."""
        enc = self._encounters.get(encounter_id)
        if enc is None:
            raise SpoolError(f"encounter {encounter_id} is not in the spool")
        self._update_meta(enc, consent=dict(consent))

    def discard_audio(self, encounter_id: str) -> int:
        """Consent was withdrawn: delete every frame of the encounter still on disk, now
        (durably), and take no more. Returns how many frames the server had not acked.

        The sequence numbers stay taken (see the module docstring): the uplink sends
        placeholders for them, never the audio."""
        enc = self._encounters.get(encounter_id)
        if enc is None:
            raise SpoolError(f"encounter {encounter_id} is not in the spool")
        unsent = max(enc.next_seq - 1 - max(enc.acked, enc.discarded_through), 0)
        self._close_segment(enc)
        self._update_meta(enc, discarded_through=enc.next_seq - 1)
        for first in enc.segments:
            try:
                os.unlink(enc.dir / segment_name(first))
            except FileNotFoundError:
                pass
            except OSError as err:
                raise SpoolError(f"cannot delete withdrawn audio of {encounter_id}: "
                                 f"{err.strerror}") from err
        with contextlib.suppress(OSError):
            fsync_dir(enc.dir)
        self.used_bytes -= enc.total()
        enc.segments, enc.sizes = [], {}
        return unsent

    def end(self, encounter_id: str, ended_at_us: int) -> EncounterInfo:
        """Mark the encounter ended: no more audio; ``last_seq`` is fixed."""
        enc = self._live(encounter_id)
        self._close_segment(enc)
        self._update_meta(enc, ended=True, last_seq=enc.next_seq - 1, ended_at_us=ended_at_us)
        return enc.info()

    def ack(self, encounter_id: str, seq: int) -> int:
        """The server durably holds every frame up to ``seq``; returns frames newly acked.

        Deletes segments that are now wholly acked. If the server is *ahead*
        of the spool (a power cut lost audio the server already had), the
        encounter's sequence jumps past it so no seq is ever reused.
        """
        enc = self._encounters.get(encounter_id)
        if enc is None or seq <= enc.acked:
            return 0
        newly = max(min(seq, enc.next_seq - 1) - enc.acked, 0)
        if seq >= enc.next_seq and not enc.ended:
            log.warning(
                "encounter %s: server acked seq %d but the spool only reached %d; "
                "continuing after the server's", encounter_id, seq, enc.next_seq - 1,
            )
            enc.next_seq = seq + 1
            self._rotate(enc)
        enc.acked = seq
        doomed = deletable_segments(enc.segments, seq)
        if doomed:
            for first in doomed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(enc.dir / segment_name(first))
                self.used_bytes -= enc.sizes.pop(first)
            enc.segments = enc.segments[len(doomed):]
            self._persist_acked(enc)
        return newly

    def remove(self, encounter_id: str) -> None:
        """Delete an encounter the server acked complete."""
        enc = self._encounters.pop(encounter_id, None)
        if enc is None:
            return
        self._close_segment(enc)
        self.used_bytes -= enc.total()
        shutil.rmtree(enc.dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            fsync_dir(self.directory)

    # ---------------------------------------------------------------- reading

    def reader(self, encounter_id: str, from_seq: int) -> SpoolReader:
        enc = self._encounters.get(encounter_id)
        if enc is None:
            raise SpoolError(f"no encounter {encounter_id} in the spool")
        return SpoolReader(enc, from_seq)

    # -------------------------------------------------------------- internals

    def _live(self, encounter_id: str) -> _Encounter:
        enc = self._encounters.get(encounter_id)
        if enc is None:
            raise SpoolError(f"no encounter {encounter_id} in the spool")
        if enc.ended:
            raise SpoolError(f"encounter {encounter_id} has ended")
        return enc

    def _open_append(self, path: Path) -> int:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)

    def _rotate(self, enc: _Encounter) -> None:
        self._close_segment(enc)
        first = enc.next_seq
        path = enc.dir / segment_name(first)
        if first in enc.sizes:  # an empty segment at this seq already exists
            self.used_bytes -= enc.sizes.pop(first)
            enc.segments.remove(first)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC,
                     0o600)
        try:
            write_all(fd, SEGMENT_MAGIC)
            fsync_dir(enc.dir)
        except OSError:
            os.close(fd)
            raise
        enc.fd = fd
        enc.segments.append(first)
        enc.sizes[first] = len(SEGMENT_MAGIC)
        self.used_bytes += len(SEGMENT_MAGIC)

    def _close_segment(self, enc: _Encounter) -> None:
        if enc.fd is not None:
            try:
                os.fsync(enc.fd)
            finally:
                os.close(enc.fd)
                enc.fd = None
                enc.dirty = False

    def _update_meta(self, enc: _Encounter, **changes: Any) -> None:
        meta = {**enc.meta, **changes}
        try:
            _write_meta(enc.dir / _META, meta)
        except OSError as err:
            raise SpoolError(f"cannot update encounter {enc.id}: {err}") from err
        enc.meta = meta

    def _persist_acked(self, enc: _Encounter) -> None:
        if enc.acked == enc.acked_on_disk or not enc.dir.exists():
            return
        try:
            tmp = enc.dir / f"{_ACKED}.tmp"
            tmp.write_text(str(enc.acked))
            os.replace(tmp, enc.dir / _ACKED)
            enc.acked_on_disk = enc.acked
        except OSError as err:  # a hint only; the server re-tells us on reconnect
            log.debug("cannot record ack for %s: %s", enc.id, err)

    def _recover(self) -> None:
        for entry in sorted(self.directory.iterdir()):
            if entry.name.startswith(".tmp-") and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)  # never got its first frame
                continue
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            enc = self._recover_encounter(entry)
            if enc is not None:
                self._encounters[enc.id] = enc
                self.used_bytes += enc.total()
        if self._encounters:
            log.info("spool: recovered %d encounter(s), %d bytes",
                     len(self._encounters), self.used_bytes)

    def _recover_encounter(self, directory: Path) -> _Encounter | None:
        segments = sorted(
            s for s in (parse_segment_name(p.name) for p in directory.iterdir()) if s is not None
        )
        meta = read_json(directory / _META)
        rebuilt = meta is None or "started_at_us" not in meta
        if meta is None or "started_at_us" not in meta:
            try:
                uuid.UUID(directory.name)
            except ValueError:
                log.warning("spool: ignoring %s (not an encounter directory)", directory)
                return None
            log.warning("spool: %s had no readable metadata; rebuilt it", directory)
            meta = {"encounter_id": directory.name, "started_at_us": 0, "source": "",
                    "muted": False, "ended": False, "last_seq": None, "ended_at_us": 0}
        enc = _Encounter(directory, meta)
        for i, first in enumerate(segments):
            path = directory / segment_name(first)
            enc.segments.append(first)
            if i < len(segments) - 1 and not (rebuilt and i == 0):
                # Closed segments were fsynced before the next one was created:
                # only the last can be torn. Not rereading them keeps a restart
                # mid-visit (when capture waits for this) fast.
                enc.sizes[first] = path.stat().st_size
                continue
            data = path.read_bytes()
            result = scan_segment(data, first)
            if rebuilt and i == 0 and result.first_captured_at_us is not None:
                meta["started_at_us"] = result.first_captured_at_us
            if result.torn(len(data)):
                log.warning("spool: truncating a torn write at the end of %s", path)
                with open(path, "r+b") as fh:
                    if result.valid_bytes == 0:  # not even the magic survived
                        fh.write(SEGMENT_MAGIC)
                        fh.truncate(len(SEGMENT_MAGIC))
                    else:
                        fh.truncate(result.valid_bytes)
                    os.fsync(fh.fileno())
            enc.sizes[first] = max(result.valid_bytes, len(SEGMENT_MAGIC))
            enc.next_seq = result.next_seq
        acked = read_int(directory / _ACKED)
        floor = segments[0] - 1 if segments else -1
        enc.acked = enc.acked_on_disk = max(acked if acked is not None else -1, floor)
        if not segments:
            enc.next_seq = enc.acked + 1
        if enc.discarded_through >= 0:
            # withdrawn: a segment written before the deletion could finish must not
            # survive a crash, and the discarded seqs stay taken
            for first in enc.segments:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(directory / segment_name(first))
            enc.segments, enc.sizes = [], {}
            enc.next_seq = max(enc.next_seq, enc.discarded_through + 1)
        if enc.ended:
            last = meta.get("last_seq")
            if isinstance(last, int) and last + 1 > enc.next_seq:
                log.error("spool: encounter %s lost frames %d..%d (storage damage)",
                          enc.id, enc.next_seq, last)
                enc.next_seq = last + 1
        if rebuilt:
            with contextlib.suppress(OSError):
                _write_meta(directory / _META, meta)
        return enc


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(meta).encode(), 0o600)
