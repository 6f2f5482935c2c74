"""A clinic's opening hours, e.g. ``"Mon-Fri 07:00-19:00, Sat 08:00-12:00"``.

Pure: ``is_open`` takes the moment and the clinic's IANA time zone. The hours are
read in the clinic's local time, so a device offline at 07:30 in Chicago counts as
"during clinic hours" whatever the server's zone is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ClinicHours", "HoursError"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class HoursError(ValueError):
    """A clinic-hours spec that does not parse."""


def _day(name: str) -> int:
    try:
        return _DAYS.index(name.strip().lower()[:3])
    except ValueError:
        raise HoursError(f"unknown day {name.strip()!r} (Mon..Sun)") from None


def _clock(text: str) -> time:
    try:
        hh, mm = text.strip().split(":")
        return time(int(hh), int(mm)) if hh.strip() != "24" else time.max
    except ValueError:
        raise HoursError(f"bad time {text.strip()!r} (HH:MM)") from None


@dataclass(frozen=True, slots=True)
class _Span:
    days: frozenset[int]
    opens: time
    closes: time


@dataclass(frozen=True, slots=True)
class ClinicHours:
    spans: tuple[_Span, ...]

    @classmethod
    def parse(cls, spec: str) -> ClinicHours:
        """Comma-separated ``<days> <HH:MM>-<HH:MM>``; days ``Mon``, ``Mon-Fri`` or
        ``Mon/Wed``; ``""`` = never open (every offline alert is an after-hours one)."""
        spans = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            try:
                days_text, hours_text = part.split(None, 1)
                open_text, close_text = hours_text.split("-")
            except ValueError:
                raise HoursError(f"{part!r}: expected e.g. 'Mon-Fri 07:00-19:00'") from None
            days: set[int] = set()
            for piece in days_text.split("/"):
                if "-" in piece:
                    first, last = (_day(d) for d in piece.split("-", 1))
                    days.update(range(first, last + 1) if first <= last
                                else [*range(first, 7), *range(0, last + 1)])
                else:
                    days.add(_day(piece))
            opens, closes = _clock(open_text), _clock(close_text)
            if closes <= opens:
                raise HoursError(f"{part!r}: closes before it opens")
            spans.append(_Span(frozenset(days), opens, closes))
        return cls(tuple(spans))

    def is_open(self, now: datetime, tz: str) -> bool:
        """Is ``now`` (timezone-aware) within the hours, read in zone ``tz``?"""
        try:
            zone = ZoneInfo(tz or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        local = now.astimezone(zone)
        t = local.time()
        return any(local.weekday() in s.days and s.opens <= t < s.closes for s in self.spans)
