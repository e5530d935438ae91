"""The rolling window and the times it rolls at. Pure date arithmetic.

The window for ``N`` weeks on local date ``today`` is
``[today, today + 7N - 1]`` inclusive: 4 weeks from 1 Oct is 1 Oct → 28 Oct.
``N`` is 2..16. The roll runs at 00:05 local time, the check at 09:00; both
are wall-clock times in the organisation's timezone, so they move with DST.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs

from ._errors import InvalidWindowError

__all__ = [
    "MAX_WEEKS",
    "MIN_WEEKS",
    "Window",
    "check_weeks",
    "days_between",
    "local_moment",
    "next_local_time",
    "window_for",
]

MIN_WEEKS = 2
MAX_WEEKS = 16


def check_weeks(weeks: object) -> int:
    """``weeks`` as an int, or :class:`InvalidWindowError` when it is not 2..16."""
    if (
        isinstance(weeks, bool)
        or not isinstance(weeks, int)
        or not (MIN_WEEKS <= weeks <= MAX_WEEKS)
    ):
        raise InvalidWindowError(weeks)
    return weeks


@attrs.frozen(kw_only=True)
class Window:
    """The dates kept planned: ``start`` to ``end`` inclusive."""

    start: date
    end: date
    weeks: int

    def days(self) -> Iterator[date]:
        """Every date of the window, in order."""
        return days_between(self.start, self.end)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end

    def __len__(self) -> int:
        return (self.end - self.start).days + 1


def days_between(start: date, end: date) -> Iterator[date]:
    """Every date from ``start`` to ``end`` inclusive."""
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


def window_for(today: date, weeks: int) -> Window:
    """The window of ``weeks`` weeks that starts on ``today``."""
    weeks = check_weeks(weeks)
    return Window(start=today, end=today + timedelta(days=7 * weeks - 1), weeks=weeks)


def local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant the local clock reads ``at`` on ``day``, in ``zone``: in a
    DST gap moved later by the gap, a repeated time at its first occurrence."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC).astimezone(zone)


def next_local_time(now: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first moment strictly after ``now`` when the local clock reads ``at``.

    On a day where ``at`` falls in a DST gap the moment is moved later by the
    gap; a repeated time is taken at its first occurrence. The result is an
    aware datetime in ``zone``.
    """
    # compared as instants: in the hour the clocks repeat, two times of
    # one zone compare by their clock faces, whichever came first
    after = now.timestamp()
    day = now.astimezone(zone).date()
    for _ in range(3):
        candidate = local_moment(day, at, zone)
        if candidate.timestamp() > after:
            return candidate
        day += timedelta(days=1)
    raise AssertionError("unreachable: a local time recurs within two days")  # pragma: no cover


def local_today(now: datetime, zone: ZoneInfo) -> date:
    """The local calendar date at the aware instant ``now``."""
    return now.astimezone(zone).date()
