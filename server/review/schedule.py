"""The clinic's schedule: which patient is due in which room, and when.

    rows = parse_schedule(text, rooms={"exam-1"}, zone=ZoneInfo("America/Chicago"),
                          today=date(2026, 3, 2))                 # pure; all problems at once
    counts = import_schedule(session, "north-clinic", text)       # upsert, audited
    appointment = match_appointment(candidates, visit_start)      # pure; None when unsure

A schedule is a CSV file exported from the scheduling system, with a header::

    room,start,duration_min,name,dob,mrn,reason,consent,consent_by
    exam-1,2026-03-02 09:30,20,Maria Lopez,1961-04-12,A-1001,chest tightness,written,Front desk

``start`` is the local time in the clinic's time zone (``Clinic.timezone``, an
IANA name) as ``YYYY-MM-DD HH:MM`` (or with a ``T``); ``dob`` is
``YYYY-MM-DD``; ``duration_min`` (default 20) and ``reason`` may be left
empty or out. ``consent`` is the patient's consent to recording as the
clinic took it before the visit (at check-in, or a signed form on file):
``verbal``, ``written``, or empty (none on file: the room or a physician
records it); ``consent_by`` says who took it (default "the clinic's
schedule"). A visit linked to an appointment with consent on file is
recorded as consented (source ``schedule``, audited; see
:mod:`server.privacy.scheduled`). Both columns may be left out. Every row is
checked before anything is stored: a file with bad rows is refused whole,
with every problem and its line number. An appointment is known by (clinic,
room, start, MRN): importing the same file again changes nothing, and a
corrected name, birth date, length, reason or consent updates the
appointment in place.

A visit belongs to the appointment of its room whose window — from 15 minutes
before the start to 30 minutes after the booked end — holds the visit's
start; of several, the nearest start wins, and two equally near mean nobody
can tell, so the visit stays unlinked for a reviewer to pick.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Clinic, Room, utcnow
from server.review import audit
from server.review.auth import Principal
from server.review.errors import Forbidden, InvalidInput, NotFound
from server.review.models import Appointment

__all__ = [
    "COLUMNS",
    "CONSENT_METHODS",
    "DEFAULT_DURATION_MIN",
    "ImportCounts",
    "ScheduleRow",
    "clinic_zone",
    "import_schedule",
    "local_day",
    "match_appointment",
    "parse_schedule",
    "set_timezone",
    "valid_dob",
    "zone_named",
]

COLUMNS = ("room", "start", "duration_min", "name", "dob", "mrn", "reason", "consent",
           "consent_by")
#: What the ``consent`` column may say (empty: none on file).
CONSENT_METHODS = ("verbal", "written")
REQUIRED = frozenset({"room", "start", "name", "dob", "mrn"})
DEFAULT_DURATION_MIN = 20
MAX_DURATION_MIN = 24 * 60
EARLY = timedelta(minutes=15)  # a visit may start this long before its slot
LATE = timedelta(minutes=30)  # ... or end this long after it
_START = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    line: int
    room_id: str
    starts_at: datetime  # UTC
    duration_min: int
    name: str
    dob: str
    mrn: str
    reason: str
    consent: str = ""  # verbal | written | "" (none on file)
    consent_by: str = ""

    @property
    def key(self) -> tuple[str, datetime, str]:
        return (self.room_id, self.starts_at, self.mrn)


@dataclass(frozen=True, slots=True)
class ImportCounts:
    imported: int  # new appointments
    updated: int  # known appointments whose name, birth date, length or reason changed
    unchanged: int


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (e.g. "America/Chicago"), or InvalidInput."""
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}: use an IANA name such as "
                           "'America/Chicago', 'Europe/Berlin' or 'UTC'") from None


def clinic_zone(s: Session, clinic_id: str) -> ZoneInfo:
    clinic = s.get(Clinic, clinic_id)
    try:
        return ZoneInfo(clinic.timezone if clinic and clinic.timezone else "UTC")
    except (ZoneInfoNotFoundError, ValueError):  # set outside the API: fall back, don't fail
        return ZoneInfo("UTC")


def _administered(s: Session, clinic_id: str, clinics: Collection[str] | None) -> Clinic:
    if clinics is not None and clinic_id not in clinics:
        raise Forbidden(f"you do not administer clinic {clinic_id!r}")
    clinic = s.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"no clinic {clinic_id!r}")
    return clinic


def set_timezone(s: Session, clinic_id: str, name: str, *, who: Principal | None = None,
                 actor: str = "", clinics: Collection[str] | None = None) -> str:
    """Set the clinic's time zone (checked; audited). ``clinics``: those the caller
    administers (None: all)."""
    clinic = _administered(s, clinic_id, clinics)
    zone_named(name)
    if clinic.timezone != name:
        audit.record(s, who, audit.AuditAction.SCHEDULE, clinic_id=clinic_id, actor=actor,
                     detail=f"time zone {clinic.timezone} -> {name}")
        clinic.timezone = name
    return name


def valid_dob(text: str, today: date) -> str | None:
    """Why ``text`` is not a birth date (None: it is one)."""
    if not _DATE.match(text):
        return f"birth date {text!r} is not YYYY-MM-DD"
    try:
        born = date.fromisoformat(text)
    except ValueError:
        return f"birth date {text!r} is not a date"
    if born > today:
        return f"birth date {text} is in the future"
    if born.year < 1880:
        return f"birth date {text} is too long ago"
    return None


def _local_start(text: str, zone: ZoneInfo) -> tuple[datetime | None, str | None]:
    """``text`` (local wall time) as UTC, or why not."""
    if not _START.match(text):
        return None, f"start {text!r} is not 'YYYY-MM-DD HH:MM'"
    try:
        wall = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return None, f"start {text!r} is not a date and time"
    at = wall.replace(tzinfo=zone).astimezone(UTC)
    if at.astimezone(zone).replace(tzinfo=None) != wall:
        return None, f"start {text} does not exist in {zone.key} (the clocks change then)"
    return at, None


def _row(line: int, raw: dict[str, str], rooms: Collection[str], zone: ZoneInfo,
         today: date) -> tuple[ScheduleRow | None, list[str]]:
    get = {k: (raw.get(k) or "").strip() for k in COLUMNS}
    problems = []
    if not get["room"]:
        problems.append("room is empty")
    elif get["room"] not in rooms:
        problems.append(f"room {get['room']!r} is not a room of this clinic")
    starts_at, why = _local_start(get["start"], zone)
    if why:
        problems.append(why)
    duration = DEFAULT_DURATION_MIN
    if get["duration_min"]:
        try:
            duration = int(get["duration_min"])
            if not 1 <= duration <= MAX_DURATION_MIN:
                raise ValueError
        except ValueError:
            problems.append(f"duration_min {get['duration_min']!r} is not a number of minutes "
                            f"from 1 to {MAX_DURATION_MIN}")
    if not get["name"]:
        problems.append("name is empty")
    elif len(get["name"]) > 200:
        problems.append("name is longer than 200 characters")
    if not get["mrn"]:
        problems.append("mrn is empty")
    elif len(get["mrn"]) > 64:
        problems.append("mrn is longer than 64 characters")
    if why := valid_dob(get["dob"], today):
        problems.append(why)
    consent = get["consent"].lower()
    if consent and consent not in CONSENT_METHODS:
        problems.append(f"consent {get['consent']!r} is not verbal, written or empty")
    if len(get["consent_by"]) > 200:
        problems.append("consent_by is longer than 200 characters")
    elif get["consent_by"] and not consent:
        problems.append("consent_by is given but consent is empty")
    if problems or starts_at is None:
        return None, problems
    return ScheduleRow(line, get["room"], starts_at, duration, get["name"], get["dob"],
                       get["mrn"], get["reason"], consent, get["consent_by"]), []


def parse_schedule(text: str, *, rooms: Collection[str], zone: ZoneInfo,
                   today: date) -> list[ScheduleRow]:
    """Every row of a schedule CSV, checked; InvalidInput listing every problem as
    ``line N: …`` (also in its ``problems``) if any row is bad."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as err:
        raise InvalidInput(f"line 1: {err}", problems=[f"line 1: {err}"]) from None
    if not header:
        raise InvalidInput("the schedule is empty: it needs the header "
                           + ",".join(COLUMNS), problems=["line 1: no header"])
    missing = sorted(REQUIRED - set(header))
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        why = (f"missing {', '.join(missing)}; " if missing else "") + (
            f"unknown {', '.join(unknown)}; " if unknown else "")
        raise InvalidInput(f"line 1: the header must be {','.join(COLUMNS)} "
                           f"({why or 'a column named twice; '}duration_min, reason, consent "
                           "and consent_by may be left out)",
                           problems=[f"line 1: {why or 'repeated column'}"])
    rows: list[ScheduleRow] = []
    problems: list[str] = []
    seen: dict[tuple[str, datetime, str], int] = {}
    try:
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):  # a blank line, or only commas
                continue
            if len(fields) > len(header):
                problems.append(f"line {line}: more fields than the header has")
                continue
            row, faults = _row(line, dict(zip(header, fields, strict=False)), rooms, zone,
                               today)
            problems.extend(f"line {line}: {f}" for f in faults)
            if row is None:
                continue
            if row.key in seen:
                problems.append(f"line {line}: the same room, start and mrn as line "
                                f"{seen[row.key]}")
                continue
            seen[row.key] = line
            rows.append(row)
    except csv.Error as err:
        problems.append(f"line {reader.line_num}: {err}")
    if problems:
        raise InvalidInput(f"the schedule has {len(problems)} problem"
                           f"{'s' if len(problems) > 1 else ''}; nothing was imported: "
                           + "; ".join(problems), problems=problems)
    return rows


def import_schedule(s: Session, clinic_id: str, text: str, *, who: Principal | None = None,
                    actor: str = "", clinics: Collection[str] | None = None,
                    now: datetime | None = None) -> ImportCounts:
    """Check and store a schedule CSV for ``clinic_id`` (all or nothing; audited)."""
    _administered(s, clinic_id, clinics)
    zone = clinic_zone(s, clinic_id)
    now = now or utcnow()
    rooms = set(s.scalars(select(Room.id).where(Room.clinic_id == clinic_id)))
    rows = parse_schedule(text, rooms=rooms, zone=zone, today=now.astimezone(zone).date())
    if not rows:
        return ImportCounts(0, 0, 0)
    known = {(a.room_id, a.starts_at.astimezone(UTC), a.patient_mrn): a
             for a in s.scalars(select(Appointment).where(
                 Appointment.clinic_id == clinic_id,
                 Appointment.starts_at >= min(r.starts_at for r in rows),
                 Appointment.starts_at <= max(r.starts_at for r in rows)))}
    imported = updated = 0
    for row in rows:
        old = known.get(row.key)
        if old is None:
            s.add(Appointment(clinic_id=clinic_id, room_id=row.room_id,
                              starts_at=row.starts_at, duration_min=row.duration_min,
                              patient_name=row.name, patient_dob=row.dob,
                              patient_mrn=row.mrn, reason=row.reason, created_at=now,
                              consent_method=row.consent, consent_by=row.consent_by))
            imported += 1
            continue
        fresh = (row.name, row.dob, row.duration_min, row.reason, row.consent, row.consent_by)
        if (old.patient_name, old.patient_dob, old.duration_min, old.reason,
                old.consent_method, old.consent_by) != fresh:
            (old.patient_name, old.patient_dob, old.duration_min, old.reason,
             old.consent_method, old.consent_by) = fresh
            updated += 1
    counts = ImportCounts(imported, updated, len(rows) - imported - updated)
    audit.record(s, who, audit.AuditAction.SCHEDULE, clinic_id=clinic_id, actor=actor,
                 detail=f"schedule imported: {counts.imported} new, {counts.updated} updated, "
                        f"{counts.unchanged} unchanged", now=now)
    s.flush()
    return counts


def local_day(at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC bounds [start, end) of the local calendar day ``at`` falls on in ``zone``."""
    day = at.astimezone(zone).date()
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    after = day + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def match_appointment(candidates: Sequence[Appointment],
                      visit_start: datetime) -> Appointment | None:
    """The appointment whose window holds ``visit_start``: the nearest start wins; none, or
    two equally near, is None."""
    inside = []
    for a in candidates:
        starts = a.starts_at.astimezone(UTC)
        if starts - EARLY <= visit_start <= starts + timedelta(minutes=a.duration_min) + LATE:
            inside.append((abs(visit_start - starts), a))
    if not inside:
        return None
    inside.sort(key=lambda pair: pair[0])
    if len(inside) > 1 and inside[0][0] == inside[1][0]:
        return None
    return inside[0][1]
