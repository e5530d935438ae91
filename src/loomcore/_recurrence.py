"""Recurrence rules: on which dates a program runs.

Theory of operation
-------------------
A recurrence is a value object that answers one question, ``runs_on(day)``,
in constant time:

1. :class:`Weekly` – the weekday is in the set.
2. :class:`Fortnightly` – the weekday is in the set and the week of ``day``
   is the chosen week (A or B) of a two-week cycle. Week A is the Monday-to-
   Sunday week that contains ``anchor``; weeks alternate from there in both
   directions, so no week numbers are ever stored.
3. :class:`RRule` – any RFC 5545 RRULE text. dateutil is given an explicit
   ``dtstart`` and ``wkst`` so nothing depends on the clock or on its
   process-wide default. Occurrences are computed one calendar year at a
   time and memoised per (rule, year), so asking about many dates never
   replays the rule from its start each time. Only the rule's parameters are
   stored on the value object, never a live ``rrule``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import attrs
from dateutil import rrule as _rrule

from ._errors import InvalidRecordError

__all__ = ["Fortnightly", "RRule", "Recurrence", "Weekday", "Weekly"]


class Weekday(enum.IntEnum):
    """Days of the week, numbered as :meth:`datetime.date.weekday` does."""

    MO = 0
    TU = 1
    WE = 2
    TH = 3
    FR = 4
    SA = 5
    SU = 6


_WEEKDAY_NAMES = {
    name: day
    for day, full in zip(
        Weekday,
        ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"),
        strict=True,
    )
    for name in (day.name, full[:3], full)
}


def to_weekday(value: object, field: str = "weekdays") -> Weekday:
    """A weekday from a :class:`Weekday`, a name (``"WE"``, ``"Wed"`` or
    ``"wednesday"``, any case) or 0..6; raises :class:`InvalidRecordError`
    naming ``field``."""
    if isinstance(value, Weekday):
        return value
    if isinstance(value, str):
        day = _WEEKDAY_NAMES.get(value.strip().upper())
        if day is not None:
            return day
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return Weekday(value)
    raise InvalidRecordError(
        f"unknown weekday {value!r}: give MO..SU, a day's name or 0..6", field=field
    )


def _wkst(value: object) -> Weekday:
    return to_weekday(value, "wkst")


def check_date(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: ``value`` is a calendar date, not a datetime (``None``
    too where the field defaults to it)."""
    if value is None and attribute.default is None:
        return
    if isinstance(value, date) and not isinstance(value, datetime):
        return
    raise InvalidRecordError(
        f"{type(inst).__name__}.{attribute.name} must be a date, got {value!r}",
        record_id=str(getattr(inst, "id", "") or ""),
        field=attribute.name,
    )


def _weekdays(value: object) -> frozenset[Weekday]:
    if isinstance(value, str | int):
        value = (value,)
    return frozenset(to_weekday(v) for v in value)  # type: ignore[attr-defined]


def _not_empty(
    _inst: object, attribute: attrs.Attribute[frozenset[Weekday]], value: frozenset[Weekday]
) -> None:
    if not value:
        raise InvalidRecordError("at least one weekday is needed", field=attribute.name)


@attrs.frozen(kw_only=True)
class Weekly:
    """Every week on the given weekdays, e.g. ``Weekly(weekdays={Weekday.WE})``."""

    weekdays: frozenset[Weekday] = attrs.field(converter=_weekdays, validator=_not_empty)

    def runs_on(self, day: date) -> bool:
        """Whether the rule gives an occurrence on ``day``."""
        return day.weekday() in self.weekdays


@attrs.frozen(kw_only=True)
class Fortnightly:
    """Every other week: Week A / Week B.

    ``anchor`` is any date in a week that is Week A; ``week`` says whether
    this program runs in Week ``"A"`` or Week ``"B"``.
    """

    weekdays: frozenset[Weekday] = attrs.field(converter=_weekdays, validator=_not_empty)
    anchor: date = attrs.field(validator=check_date)
    week: str = attrs.field(default="A")

    @week.validator
    def _check_week(self, _a: attrs.Attribute[str], value: str) -> None:
        if value not in ("A", "B"):
            raise InvalidRecordError(f"week must be 'A' or 'B', got {value!r}", field="week")

    def week_of(self, day: date) -> str:
        """``"A"`` or ``"B"``: which week of the cycle ``day`` falls in."""
        anchor_monday = self.anchor - timedelta(days=self.anchor.weekday())
        weeks = (day - anchor_monday).days // 7
        return "A" if weeks % 2 == 0 else "B"

    def runs_on(self, day: date) -> bool:
        """Whether the rule gives an occurrence on ``day``."""
        return day.weekday() in self.weekdays and self.week_of(day) == self.week


@attrs.frozen(kw_only=True)
class RRule:
    """Any RFC 5545 recurrence rule, e.g. ``FREQ=MONTHLY;BYDAY=1SA``.

    ``rule`` is the RRULE value without the ``RRULE:`` prefix; ``dtstart`` is
    the first date the rule counts from; ``wkst`` the week start (it matters
    for weekly rules with an interval).
    """

    rule: str
    dtstart: date = attrs.field(validator=check_date)
    wkst: Weekday = attrs.field(default=Weekday.MO, converter=_wkst)

    def __attrs_post_init__(self) -> None:
        text = self.rule.strip()
        if text.upper().startswith("RRULE:"):
            raise InvalidRecordError("give the rule without the 'RRULE:' prefix", field="rule")
        if "DTSTART" in text.upper():
            raise InvalidRecordError("give dtstart as a field, not inside the rule", field="rule")
        until = [p for p in text.upper().split(";") if p.startswith("UNTIL=")]
        if until and not (len(until[0]) == 14 and until[0][6:].isdigit()):
            raise InvalidRecordError(
                f"{until[0]} must be a local date like UNTIL=20260501: rules count local dates",
                field="rule",
            )
        try:
            _build(self.rule, self.dtstart, int(self.wkst))
        except (ValueError, TypeError) as e:
            raise InvalidRecordError(f"invalid RRULE {self.rule!r}: {e}", field="rule") from e

    def runs_on(self, day: date) -> bool:
        """Whether the rule gives an occurrence on ``day``."""
        if day < self.dtstart:
            return False
        return day in _occurrences_in_year(self.rule, self.dtstart, int(self.wkst), day.year)


def _build(rule: str, dtstart: date, wkst: int) -> _rrule.rrule:
    start = datetime(dtstart.year, dtstart.month, dtstart.day)
    parsed = _rrule.rrulestr(rule, dtstart=start, cache=False)
    if not isinstance(parsed, _rrule.rrule):  # rrulestr may give an rruleset
        raise ValueError("only a single RRULE is supported")
    return parsed.replace(wkst=wkst)


@lru_cache(maxsize=4096)
def _occurrences_in_year(rule: str, dtstart: date, wkst: int, year: int) -> frozenset[date]:
    # A pure function of its arguments: the cache never changes an answer.
    built = _build(rule, dtstart, wkst)
    first = datetime(year, 1, 1)
    last = datetime(year, 12, 31, 23, 59, 59)
    return frozenset(d.date() for d in built.between(first, last, inc=True))


Recurrence = Weekly | Fortnightly | RRule
