"""NDIS day and time-of-day bands, and the public holidays that decide them.

Decide the day first, then the time: a public holiday (of the state where
the support is delivered: New South Wales) beats a weekend day; Saturday and
Sunday; then on a weekday, daytime (starts at or after 06:00, ends by
20:00), evening (starts at or after 20:00, ends by midnight) or night
(crosses midnight or starts before 06:00). A support that spans bands is
billed at the highest band it touches.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Protocol

import attrs

from ._errors import LoomError

__all__ = [
    "Band",
    "HolidayCalendar",
    "InvalidBillingInputError",
    "NswPublicHolidays",
    "band_between",
    "band_of",
    "nsw_public_holidays",
]


class InvalidBillingInputError(LoomError, ValueError):
    """A pricing function was given something it cannot price.

    ``field`` names the argument or attribute at fault.
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        self.field = field
        super().__init__(message)


_MIDNIGHT = time(0)
_DAYTIME_STARTS = time(6)
_EVENING_STARTS = time(20)


class Band(StrEnum):
    """NDIS day and time-of-day bands, from lowest to highest."""

    WEEKDAY_DAYTIME = "weekday-daytime"
    WEEKDAY_EVENING = "weekday-evening"
    WEEKDAY_NIGHT = "weekday-night"
    SATURDAY = "saturday"
    SUNDAY = "sunday"
    PUBLIC_HOLIDAY = "public-holiday"


_RANK = {band: n for n, band in enumerate(Band)}


# --------------------------------------------------------------------------- holidays


class HolidayCalendar(Protocol):
    """Public holidays: anything that answers ``day in calendar``.

    A ``frozenset`` of dates (from :func:`nsw_public_holidays`) is the one to
    pass: built once, fast, and never changes behind the planner's back.
    """

    def __contains__(self, day: object, /) -> bool: ...


def nsw_public_holidays(years: Iterable[int]) -> frozenset[date]:
    """New South Wales public holidays of ``years``, substitute days included.

    Built from ``holidays.country_holidays("AU", subdiv="NSW")`` with the
    public category only: the August bank holiday is not a public holiday.
    Call it once (it is slow next to a set lookup) and pass the set in.
    """
    import holidays  # imported here: `import loomcore` stays light

    wanted = sorted({int(y) for y in years})
    if not wanted:
        return frozenset()
    calendar = holidays.country_holidays(
        "AU", subdiv="NSW", years=wanted, categories=(holidays.PUBLIC,)
    )
    return frozenset(d for d in calendar if d.year in wanted)


@lru_cache(maxsize=256)
def _nsw_year(year: int) -> frozenset[date]:
    # a pure function of the year: the cache never changes an answer
    return nsw_public_holidays((year,))


@attrs.frozen
class NswPublicHolidays:
    """New South Wales public holidays of any year, computed when first asked.

    The default calendar of :class:`loomcore.PlanInputs`: ``day in
    NswPublicHolidays()`` works for every year without building a set first.
    """

    def __contains__(self, day: object, /) -> bool:
        return isinstance(day, date) and day in _nsw_year(day.year)


# --------------------------------------------------------------------------- bands


def _fixed_band(day: date, holidays: HolidayCalendar) -> Band | None:
    if day in holidays:
        return Band.PUBLIC_HOLIDAY
    return {5: Band.SATURDAY, 6: Band.SUNDAY}.get(day.weekday())


def _band_within(day: date, start: time, end: time | None, holidays: HolidayCalendar) -> Band:
    """The band of ``[start, end]`` on ``day``; ``end=None`` runs to midnight."""
    fixed = _fixed_band(day, holidays)
    if fixed is not None:
        return fixed
    if start < _DAYTIME_STARTS:
        return Band.WEEKDAY_NIGHT
    if start >= _EVENING_STARTS or end is None or end > _EVENING_STARTS:
        return Band.WEEKDAY_EVENING
    return Band.WEEKDAY_DAYTIME


def _band_span(begin: datetime, finish: datetime, holidays: HolidayCalendar) -> Band:
    """The highest band of each day's part of ``[begin, finish]`` (naive wall times)."""
    if finish < begin:
        raise InvalidBillingInputError(
            f"a support cannot end ({finish.isoformat()}) before it starts ({begin.isoformat()})",
            field="end",
        )
    bands = []
    day = begin.date()
    while True:
        start = begin.time() if day == begin.date() else _MIDNIGHT
        if finish.date() == day:
            bands.append(_band_within(day, start, finish.time(), holidays))
            break
        bands.append(_band_within(day, start, None, holidays))
        day += timedelta(days=1)
        if finish == datetime.combine(day, _MIDNIGHT):
            break  # ends at midnight: "ends by midnight", not into the next day
    return max(bands, key=_RANK.__getitem__)


def band_of(day: date, start: time, end: time, holidays: HolidayCalendar) -> Band:
    """The band of a support on local ``day`` from ``start`` to ``end`` (wall-clock times).

    The day is decided first, then the time: a public holiday (beats a
    weekend day), Saturday, Sunday; on a weekday, daytime when it starts at or
    after 06:00 and ends by 20:00, evening when it starts at or after 20:00 and
    ends by midnight, night when it starts before 06:00 or crosses midnight.
    A support that spans bands is in the higher band for all of it (daytime
    into evening is evening; Friday night into Saturday is Saturday).

    An ``end`` at or before ``start`` is on the next day (``00:00`` is the
    midnight that ends ``day``); ``end == start`` is a support of no length.
    """
    begin = datetime.combine(day, start)
    finish = datetime.combine(day if end >= start else day + timedelta(days=1), end)
    return _band_span(begin, finish, holidays)


def band_between(start: datetime, end: datetime, holidays: HolidayCalendar) -> Band:
    """The band of a support from ``start`` to ``end``, aware datetimes in the
    timezone where it is delivered (as :class:`~loomcore.Instance` carries them).

    Bands follow local wall-clock times, so pass datetimes in the local zone.
    """
    return _band_span(start.replace(tzinfo=None), end.replace(tzinfo=None), holidays)
