"""Time window arithmetic and fast ISO 8601 (UTC, ``Z``) formatting of epoch seconds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

DAY = 86_400
EPOCH = dt.date(1970, 1, 1)


@lru_cache(maxsize=100_000)
def day_str(day: int) -> str:
    """``YYYY-MM-DD`` for a day number since 1970-01-01."""
    return (EPOCH + dt.timedelta(days=day)).isoformat()


_HMS = tuple(f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}." for s in range(DAY))
_MILLI = tuple(f"{m:03d}Z" for m in range(1000))


def iso_ms(ms: int) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-11-20T13:05:09.123Z``, for epoch milliseconds."""
    s, milli = divmod(ms, 1000)
    day, sec = divmod(s, DAY)
    return day_str(day) + _HMS[sec] + _MILLI[milli]


def iso_s(s: int) -> str:
    """ISO 8601 UTC without fractions, e.g. ``2026-11-20T13:05:09Z``, for epoch seconds."""
    day, sec = divmod(s, DAY)
    h, rem = divmod(sec, 3600)
    m, sec = divmod(rem, 60)
    return f"{day_str(day)}T{h:02d}:{m:02d}:{sec:02d}Z"


def monday_of_day(day: int) -> int:
    """Day number of the ISO week's Monday (1970-01-01 was a Thursday)."""
    return day - (day + 3) % 7


@dataclass(frozen=True)
class Window:
    """The ``days`` days ending at ``end_date`` (inclusive), as epoch seconds."""

    start: int
    end: int  # exclusive

    @classmethod
    def of(cls, end_date: dt.date, days: int) -> Window:
        """Window of ``days`` whole UTC days ending with ``end_date``."""
        last = (end_date - EPOCH).days
        return cls(start=(last - days + 1) * DAY, end=(last + 1) * DAY)

    @property
    def weeks(self) -> list[int]:
        """Monday day numbers of every ISO week touching the window, ascending."""
        first = monday_of_day(self.start // DAY)
        last = monday_of_day((self.end - 1) // DAY)
        return list(range(first, last + 1, 7))
