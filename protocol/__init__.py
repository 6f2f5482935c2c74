"""RoomScribe wire protocol between a room device and the server.

Standard library only: the device agent on a Raspberry Pi imports this module
and nothing heavy comes with it.

Two kinds of websocket message travel on ``/ws/device``:

* **Text frames** carry one JSON event: ``{"type": "<type>", "data": {...}}``.
  Each event type is a small dataclass below with ``to_event()``,
  ``from_event()`` and ``is_type()`` (the shape of rhasspy/wyoming).
* **Binary frames** carry audio, never base64 inside JSON. A binary frame is a
  fixed header (:data:`AUDIO_HEADER`) followed by raw PCM (16 kHz mono s16le)::

      offset size  field
      0      4     magic  b"RSA1"
      4      1     header version (1)
      5      1     reserved (0)
      6      16    encounter id (UUID bytes)
      22     8     sequence number, uint64, per encounter, from 0, no holes
      30     8     capture time, int64 microseconds since the Unix epoch
      38     ...   PCM payload (whole samples; at most MAX_AUDIO_PAYLOAD bytes)

Event flow (→ device to server, ← server to device)::

    → hello            device_id, token, room_id, agent_version, audio format
    ← ready            server_version, max_audio_payload  (or close 4401/4415)
    → encounter-start  encounter_id (made on the device), started_at_us
    ← ack              encounter_id, seq = highest contiguous seq stored (-1: none)
    → audio × N        binary frames
    ← ack              after each durable write; complete=true once the end is in
    → encounter-end    encounter_id, last_seq, ended_at_us
    → ping / ← pong    liveness, any time after ready
    ← command          start | stop | mute | unmute  (from the web UI)
    → status           listening | idle | muted, spool bytes, counters, health (input
                       level, disk, clock, uptime; at least every log_interval_s)
    → consent          encounter_id, state given | withdrawn, method, obtained_by, at_us
                       (sent after encounter-start, again on reconnect; a withdrawal
                       deletes the visit's audio on the server, whose later frames are
                       acked and not stored)
    ← consent-withdrawn  encounter_id, by, at_us: consent was withdrawn on the server (web
                       UI / API); the device deletes that visit's unsent audio from its
                       spool (capture stops if it is the visit in progress). Sent when it
                       happens and again, before the ack, for every encounter-start of a
                       withdrawn visit (a device that was offline learns it on reconnect).
                       An older agent logs it as an unknown event and goes on.
    ← diagnostics-request  request: IT asked for a diagnostic bundle (admin API)
    → diagnostics      request, bundle {agent_version, state, config without the token,
                       counters, status, log: recent agent log lines (never audio)}
    ← config-change    request, changes {key: value}: settings to change live
    → config-result    request, ok, applied {key: value}, error (why it was refused)
                       (an older agent ignores both requests; the server's caller gets
                       "no answer". An older server answers the replies with error
                       malformed-event, which the agent logs.)
    ← error            code + message; the connection stays open unless closed

Numbers: every integer is a signed 64-bit value; sequence numbers (``seq``,
``last_seq``) are at most :data:`MAX_SEQ` (``last_seq`` may be -1), times in
microseconds since the epoch (``started_at_us``, ``ended_at_us``,
``captured_at_us``) are 0..:data:`MAX_TIME_US` (the end of year 9999), counts
are >= 0. A value outside its range gets ``error`` ``out-of-range`` and is not
used (the event or frame is dropped; the connection stays open). Encounter ids
are canonical lowercase UUIDs (``str(uuid.uuid4())``); others are
``malformed-event``.

On reconnect the device sends ``encounter-start`` again for every encounter
still in its spool; the ``ack`` it gets back tells it where to resume.
"""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import asdict, dataclass, field, fields
from enum import IntEnum, StrEnum
from typing import Any, ClassVar, Self

__all__ = [
    "AUDIO_HEADER",
    "AUDIO_MAGIC",
    "MAX_AUDIO_PAYLOAD",
    "MAX_EVENT_BYTES",
    "MAX_REQUEST_ID",
    "MAX_SEQ",
    "MAX_TIME_US",
    "PROTOCOL_VERSION",
    "SUPPORTED_FORMAT",
    "Ack",
    "AudioFormat",
    "AudioFrame",
    "CloseCode",
    "Command",
    "CommandAction",
    "ConfigChange",
    "ConfigResult",
    "Consent",
    "ConsentChange",
    "ConsentWithdrawn",
    "Diagnostics",
    "DiagnosticsRequest",
    "EncounterEnd",
    "EncounterStart",
    "ErrorCode",
    "ErrorEvent",
    "Event",
    "Hello",
    "Ping",
    "Pong",
    "ProtocolError",
    "Ready",
    "Status",
    "decode_event",
    "encode_event",
    "is_canonical_uuid",
    "parse_event",
]

PROTOCOL_VERSION = 1
AUDIO_MAGIC = b"RSA1"
AUDIO_HEADER = struct.Struct("!4sBx16sQq")
#: Largest PCM payload one binary frame may carry: 1 s of 16 kHz mono s16le.
MAX_AUDIO_PAYLOAD = 32_000
#: Largest JSON text frame accepted.
MAX_EVENT_BYTES = 16_384
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Largest sequence number: seq + 1 and sums of them still fit a signed 64-bit column.
MAX_SEQ = 2**62 - 1
#: Latest capture time, microseconds since the epoch: 9999-12-31T23:59:59.999999Z.
MAX_TIME_US = 253_402_300_799_999_999


class CloseCode(IntEnum):
    """Websocket close codes the server uses (4000-4999 are application codes)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009  # frame larger than the transport limit
    PROTOCOL = 4400  # first message not a valid hello, or garbage before hello
    UNAUTHORIZED = 4401  # missing / wrong token, unknown or revoked device
    HELLO_TIMEOUT = 4408  # no hello within the server's hello timeout
    REPLACED = 4409  # the same device connected again; this connection is old
    UNSUPPORTED_FORMAT = 4415  # audio format other than SUPPORTED_FORMAT
    SERVER_ERROR = 4500  # the server cannot store audio right now (database down)


class ErrorCode(StrEnum):
    """``error`` event codes. The connection stays open after each of these."""

    MALFORMED_EVENT = "malformed-event"  # text frame not a JSON event we know
    MALFORMED_FRAME = "malformed-frame"  # binary frame with a bad header/payload
    FRAME_TOO_LARGE = "frame-too-large"  # payload above max_audio_payload
    UNKNOWN_ENCOUNTER = "unknown-encounter"  # audio before encounter-start
    OUT_OF_ORDER = "out-of-order"  # seq beyond the next expected one; resend from ack
    ENCOUNTER_CLOSED = "encounter-closed"  # audio beyond an encounter's last_seq
    STORAGE_UNAVAILABLE = "storage-unavailable"  # not stored; will not be acked
    OUT_OF_RANGE = "out-of-range"  # a number outside its range (see Numbers); dropped


class ProtocolError(ValueError):
    """A message that does not follow this protocol."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class AudioFormat:
    rate: int = 16_000
    width: int = 2  # bytes per sample
    channels: int = 1
    encoding: str = "s16le"

    @property
    def bytes_per_second(self) -> int:
        return self.rate * self.width * self.channels

    @property
    def bytes_per_sample(self) -> int:
        return self.width * self.channels


SUPPORTED_FORMAT = AudioFormat()


# --------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Event:
    """A JSON event as it travels: a type and a small body."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


def encode_event(event: Event) -> str:
    return json.dumps({"type": event.type, "data": event.data}, separators=(",", ":"))


def decode_event(text: str | bytes) -> Event:
    """Parse a text frame into an :class:`Event` or raise :class:`ProtocolError`."""
    if len(text) > MAX_EVENT_BYTES:
        raise ProtocolError(ErrorCode.MALFORMED_EVENT, f"event larger than {MAX_EVENT_BYTES} bytes")
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise ProtocolError(ErrorCode.MALFORMED_EVENT, f"not JSON: {err}") from err
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ProtocolError(ErrorCode.MALFORMED_EVENT, 'an event is {"type": str, "data": {}}')
    data = obj.get("data", {})
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.MALFORMED_EVENT, "event data must be an object")
    return Event(obj["type"], data)


class _Body:
    """Mixin for the typed event bodies: to_event / from_event / is_type."""

    TYPE: ClassVar[str]
    #: Allowed (lowest, highest) per integer field; any other int field: int64.
    RANGES: ClassVar[dict[str, tuple[int, int]]] = {}

    def to_event(self) -> Event:
        return Event(self.TYPE, asdict(self))  # type: ignore[call-overload]

    @classmethod
    def is_type(cls, event_type: str) -> bool:
        return event_type == cls.TYPE

    @classmethod
    def from_event(cls, event: Event) -> Self:
        if event.type != cls.TYPE:
            raise ProtocolError(ErrorCode.MALFORMED_EVENT, f"expected {cls.TYPE}, got {event.type}")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in event.data:
                kwargs[f.name] = event.data[f.name]
        try:
            obj = cls(**kwargs)
        except TypeError as err:
            raise ProtocolError(ErrorCode.MALFORMED_EVENT, f"{cls.TYPE}: {err}") from err
        obj._validate()
        return obj

    def _validate(self) -> None:
        """Type checks on fields; raise ProtocolError on a bad value."""
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            expected = _FIELD_TYPES.get(str(f.type))
            if expected is not None and not isinstance(value, expected):
                raise ProtocolError(
                    ErrorCode.MALFORMED_EVENT, f"{self.TYPE}.{f.name} must be {f.type}"
                )
            if expected is int and isinstance(value, bool):
                raise ProtocolError(ErrorCode.MALFORMED_EVENT, f"{self.TYPE}.{f.name} must be int")
            if isinstance(value, int) and not isinstance(value, bool):
                lo, hi = self.RANGES.get(f.name, (INT64_MIN, INT64_MAX))
                _check_range(f"{self.TYPE}.{f.name}", value, lo, hi)
            elif isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, int) and not isinstance(item, bool):
                        _check_range(f"{self.TYPE}.{f.name}.{key}", item, INT64_MIN, INT64_MAX)


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise ProtocolError(ErrorCode.OUT_OF_RANGE, f"{name} must be in {lo}..{hi}")


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "bool": bool,
    "float": (int, float),
    "dict[str, Any]": dict,
    "dict[str, int]": dict,
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
}


def is_canonical_uuid(value: str) -> bool:
    """True for a UUID in its one canonical spelling: lowercase 8-4-4-4-12 hex (what
    ``str(uuid.uuid4())`` gives and what the binary audio header decodes to)."""
    try:
        return len(value) == 36 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _check_uuid(event_type: str, value: str) -> None:
    if not is_canonical_uuid(value):
        raise ProtocolError(
            ErrorCode.MALFORMED_EVENT,
            f"{event_type}.encounter_id must be a canonical lowercase UUID "
            "(8-4-4-4-12 hex digits)",
        )


@dataclass(frozen=True, slots=True)
class Hello(_Body):
    TYPE: ClassVar[str] = "hello"
    device_id: str
    token: str
    room_id: str = ""
    agent_version: str = ""
    protocol: int = PROTOCOL_VERSION
    audio: dict[str, Any] = field(default_factory=lambda: asdict(SUPPORTED_FORMAT))

    def audio_format(self) -> AudioFormat:
        try:
            return AudioFormat(**self.audio)
        except TypeError as err:
            raise ProtocolError(ErrorCode.MALFORMED_EVENT, f"hello.audio: {err}") from err


@dataclass(frozen=True, slots=True)
class Ready(_Body):
    TYPE: ClassVar[str] = "ready"
    server_version: str
    max_audio_payload: int = MAX_AUDIO_PAYLOAD
    ping_interval_s: float = 10.0


@dataclass(frozen=True, slots=True)
class EncounterStart(_Body):
    TYPE: ClassVar[str] = "encounter-start"
    RANGES: ClassVar[dict[str, tuple[int, int]]] = {"started_at_us": (0, MAX_TIME_US)}
    encounter_id: str
    started_at_us: int = 0

    def _validate(self) -> None:
        _Body._validate(self)
        _check_uuid(self.TYPE, self.encounter_id)


@dataclass(frozen=True, slots=True)
class EncounterEnd(_Body):
    TYPE: ClassVar[str] = "encounter-end"
    RANGES: ClassVar[dict[str, tuple[int, int]]] = {"last_seq": (-1, MAX_SEQ),
                                                    "ended_at_us": (0, MAX_TIME_US)}
    encounter_id: str
    last_seq: int  # -1 for an encounter with no audio
    ended_at_us: int = 0

    def _validate(self) -> None:
        _Body._validate(self)
        _check_uuid(self.TYPE, self.encounter_id)


@dataclass(frozen=True, slots=True)
class Ack(_Body):
    TYPE: ClassVar[str] = "ack"
    encounter_id: str
    seq: int  # highest contiguous sequence number durably stored; -1 for none
    complete: bool = False  # the end is in and every frame up to last_seq is stored


@dataclass(frozen=True, slots=True)
class ErrorEvent(_Body):
    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    encounter_id: str | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Ping(_Body):
    TYPE: ClassVar[str] = "ping"
    id: int = 0


@dataclass(frozen=True, slots=True)
class Pong(_Body):
    TYPE: ClassVar[str] = "pong"
    id: int = 0


class CommandAction(StrEnum):
    START = "start"
    STOP = "stop"
    MUTE = "mute"
    UNMUTE = "unmute"


@dataclass(frozen=True, slots=True)
class Command(_Body):
    TYPE: ClassVar[str] = "command"
    action: str

    def _validate(self) -> None:
        _Body._validate(self)
        if self.action not in CommandAction._value2member_map_:
            raise ProtocolError(ErrorCode.MALFORMED_EVENT, f"unknown command {self.action!r}")


@dataclass(frozen=True, slots=True)
class Status(_Body):
    TYPE: ClassVar[str] = "status"
    RANGES: ClassVar[dict[str, tuple[int, int]]] = {"spool_bytes": (0, INT64_MAX)}
    state: str  # listening | idle | muted
    encounter_id: str | None = None
    spool_bytes: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    #: Device health for the fleet page (device/stats.py ``health_fields``): agent_version,
    #: uptime_s, sent_at_us (clock offset), spool_max_bytes, oldest_unacked_s,
    #: input_rms_dbfs / input_peak_dbfs (last minute), disk_free_bytes / disk_total_bytes,
    #: cpu_temp_c; each optional (an older agent sends none).
    health: dict[str, Any] = field(default_factory=dict)


class ConsentChange(StrEnum):
    GIVEN = "given"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Consent(_Body):
    """The patient's consent to this visit's recording, as recorded in the room."""

    TYPE: ClassVar[str] = "consent"
    encounter_id: str
    state: str  # ConsentChange
    method: str = ""  # verbal | written (given); "" for a withdrawal
    obtained_by: str = ""  # who obtained (or took the withdrawal), as typed in the room
    at_us: int = 0

    def _validate(self) -> None:
        _Body._validate(self)
        _check_uuid(self.TYPE, self.encounter_id)
        if self.state not in ConsentChange._value2member_map_:
            raise ProtocolError(ErrorCode.MALFORMED_EVENT,
                                "consent.state must be given or withdrawn")
        if self.state == ConsentChange.GIVEN and self.method not in ("verbal", "written"):
            raise ProtocolError(ErrorCode.MALFORMED_EVENT,
                                "consent.method must be verbal or written")


@dataclass(frozen=True, slots=True)
class ConsentWithdrawn(_Body):
    """Server → device: the visit's consent was withdrawn on the server; the device deletes
    what it still holds of the visit's audio, unsent (and stops capturing it)."""

    TYPE: ClassVar[str] = "consent-withdrawn"
    RANGES: ClassVar[dict[str, tuple[int, int]]] = {"at_us": (0, MAX_TIME_US)}
    encounter_id: str
    by: str = ""  # who took the withdrawal (a name, never patient data)
    at_us: int = 0

    def _validate(self) -> None:
        _Body._validate(self)
        _check_uuid(self.TYPE, self.encounter_id)


#: Longest request id of a server → device request (``diagnostics-request``, ``config-change``).
MAX_REQUEST_ID = 64


def _check_request(event_type: str, request: str) -> None:
    if not 0 < len(request) <= MAX_REQUEST_ID:
        raise ProtocolError(ErrorCode.MALFORMED_EVENT,
                            f"{event_type}.request must be 1..{MAX_REQUEST_ID} characters")


@dataclass(frozen=True, slots=True)
class DiagnosticsRequest(_Body):
    """Server → device: send a diagnostic bundle (answered with :class:`Diagnostics`)."""

    TYPE: ClassVar[str] = "diagnostics-request"
    request: str

    def _validate(self) -> None:
        _Body._validate(self)
        _check_request(self.TYPE, self.request)


@dataclass(frozen=True, slots=True)
class Diagnostics(_Body):
    """Device → server: the bundle asked for (it fits one text frame: the device trims
    the oldest log lines)."""

    TYPE: ClassVar[str] = "diagnostics"
    request: str
    bundle: dict[str, Any] = field(default_factory=dict)

    def _validate(self) -> None:
        _Body._validate(self)
        _check_request(self.TYPE, self.request)


@dataclass(frozen=True, slots=True)
class ConfigChange(_Body):
    """Server → device: change these settings now (answered with :class:`ConfigResult`)."""

    TYPE: ClassVar[str] = "config-change"
    request: str
    changes: dict[str, Any] = field(default_factory=dict)

    def _validate(self) -> None:
        _Body._validate(self)
        _check_request(self.TYPE, self.request)


@dataclass(frozen=True, slots=True)
class ConfigResult(_Body):
    """Device → server: the change was applied (all of it) or refused (none of it)."""

    TYPE: ClassVar[str] = "config-result"
    request: str
    ok: bool
    applied: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def _validate(self) -> None:
        _Body._validate(self)
        _check_request(self.TYPE, self.request)


_BODIES: dict[str, type[_Body]] = {
    cls.TYPE: cls
    for cls in (Hello, Ready, EncounterStart, EncounterEnd, Ack, ErrorEvent, Ping, Pong, Command,
                Status, Consent, ConsentWithdrawn, DiagnosticsRequest, Diagnostics,
                ConfigChange, ConfigResult)
}


def parse_event(text: str | bytes) -> _Body:
    """Decode a text frame into its typed body, or raise :class:`ProtocolError`."""
    event = decode_event(text)
    body_type = _BODIES.get(event.type)
    if body_type is None:
        raise ProtocolError(ErrorCode.MALFORMED_EVENT, f"unknown event type {event.type!r}")
    return body_type.from_event(event)


# ---------------------------------------------------------------------- audio


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One binary audio frame: where it belongs, when it was captured, the PCM."""

    encounter_id: str
    seq: int
    captured_at_us: int
    pcm: bytes

    def to_bytes(self) -> bytes:
        header = AUDIO_HEADER.pack(
            AUDIO_MAGIC, PROTOCOL_VERSION, uuid.UUID(self.encounter_id).bytes, self.seq,
            self.captured_at_us,
        )
        return header + self.pcm

    @classmethod
    def from_bytes(
        cls, frame: bytes, *, max_payload: int = MAX_AUDIO_PAYLOAD,
        audio_format: AudioFormat = SUPPORTED_FORMAT,
    ) -> AudioFrame:
        if len(frame) < AUDIO_HEADER.size:
            raise ProtocolError(ErrorCode.MALFORMED_FRAME, "binary frame shorter than its header")
        magic, version, enc, seq, captured = AUDIO_HEADER.unpack_from(frame)
        if magic != AUDIO_MAGIC or version != PROTOCOL_VERSION:
            raise ProtocolError(ErrorCode.MALFORMED_FRAME, "bad magic or header version")
        pcm = frame[AUDIO_HEADER.size:]
        if len(pcm) > max_payload:
            raise ProtocolError(
                ErrorCode.FRAME_TOO_LARGE, f"payload {len(pcm)} bytes > {max_payload}"
            )
        if not pcm or len(pcm) % audio_format.bytes_per_sample:
            raise ProtocolError(ErrorCode.MALFORMED_FRAME, "payload is not whole samples")
        _check_range("audio.seq", seq, 0, MAX_SEQ)
        _check_range("audio.captured_at_us", captured, 0, MAX_TIME_US)
        return cls(str(uuid.UUID(bytes=enc)), seq, captured, pcm)
