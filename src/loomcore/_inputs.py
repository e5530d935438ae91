"""The planning inputs and the one rule that resolves intents.

Theory of operation
-------------------
:class:`PlanInputs` is an immutable view of everything a day's plan depends
on: the organisation (reference data), the timezone, and the active
(unretracted) intents and one-offs. It builds, once, an index of *timelines*:
for every question an intent can answer (see :func:`loomcore._records.answers`)
the entries that answer it, sorted by ``(start, recorded_at, id)``.

The one rule (:meth:`PlanInputs.resolve`): the answer to a question on a date
comes from the covering entry with the latest ``start``, ties broken by the
later ``recorded_at`` (then the larger id, so the result never depends on the
order in which records arrived); if no entry covers the date, the template's
value. Because entries are sorted by exactly that key, the answer is the
last covering entry at or before the date: a binary search, then a short walk
back past entries that ended earlier.

Invariants
~~~~~~~~~~
1. Resolution depends only on the set of records, never on their order.
2. Resolution on a date reads only records that cover that date.
3. One-offs are indexed by (program, date) and (program, moved-to date).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from ._billing import HolidayCalendar, NswPublicHolidays
from ._errors import DuplicateIdError, InvalidRecordError
from ._model import Organisation, Participant, Program, Staff, Vehicle, Venue
from ._prices import PriceCatalogue
from ._records import Intent, Key, OneOff, Reschedule, answers
from ._routing import GreatCircleTravel, Travel

__all__ = ["PlanInputs", "Resolved", "TransportSettings"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@attrs.frozen
class Resolved:
    """An answer and the id of the intent that gave it (``""`` for the template)."""

    value: Any
    source: str


@attrs.frozen
class _Entry:
    start: date
    recorded_at: datetime
    id: str
    end: date | None
    value: Any


class _Timeline:
    """The entries answering one question, in resolution order."""

    __slots__ = ("entries", "starts")

    def __init__(self, entries: list[_Entry]) -> None:
        entries.sort(key=lambda e: (e.start, e.recorded_at, e.id))
        self.entries = entries
        self.starts = [e.start for e in entries]

    def at(self, day: date) -> _Entry | None:
        i = bisect_right(self.starts, day)
        entries = self.entries
        while i > 0:
            i -= 1
            e = entries[i]
            if e.end is None or e.end >= day:
                return e
        return None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRecordError(f"unknown timezone {name!r}", field="timezone") from None


def _check_ids(records: Iterable[Intent | OneOff]) -> None:
    seen: set[str] = set()
    for r in records:
        if not r.id or r.recorded_at is None:
            raise InvalidRecordError(
                f"{type(r).__name__} has no id or recorded_at; record it through Loom.record "
                "or give both",
                record_id=r.id,
            )
        if r.id in seen:
            raise DuplicateIdError("record", r.id)
        seen.add(r.id)


@attrs.frozen(kw_only=True)
class TransportSettings:
    """How bus runs are planned.

    ``max_ride_minutes``: longest ride for one participant (default 60).
    ``stop_minutes``: time spent at each home. ``arrive_before_minutes``:
    pickup runs reach the venue this long before the start.
    ``depart_after_minutes``: drop-off runs leave this long after the end.
    ``travel``: distances and times between two locations (great-circle with
    a road factor by default; plug in a road network here).
    """

    max_ride_minutes: float = 60.0
    stop_minutes: float = 2.0
    arrive_before_minutes: float = 10.0
    depart_after_minutes: float = 5.0
    travel: Travel = attrs.field(factory=GreatCircleTravel)


def _intent_tuple(items: Iterable[Intent]) -> tuple[Intent, ...]:
    return tuple(items)


def _one_off_tuple(items: Iterable[OneOff]) -> tuple[OneOff, ...]:
    return tuple(items)


@attrs.frozen(kw_only=True, eq=False)
class PlanInputs:
    """Everything :func:`loomcore.plan_day` reads, as one immutable value.

    ``intents`` and ``one_offs`` are the *active* records (retracted ones
    left out) and must carry ids and ``recorded_at``. Their order does not
    matter. The service builds it from ``store.load_records(start, end)``;
    analysts build it directly for what-if plans.

    ``catalogue`` holds the NDIS price limits; without one, plans carry no
    billing lines (:func:`loomcore.shipped_catalogue` is the shipped data,
    read once by the caller). ``holidays`` are the public holidays that set
    billing bands (New South Wales by default).
    """

    organisation: Organisation
    timezone: str = "Australia/Sydney"
    transport: TransportSettings = attrs.field(factory=lambda: TransportSettings())
    catalogue: PriceCatalogue | None = None
    holidays: HolidayCalendar = attrs.field(factory=NswPublicHolidays)
    intents: tuple[Intent, ...] = attrs.field(default=(), converter=_intent_tuple)
    one_offs: tuple[OneOff, ...] = attrs.field(default=(), converter=_one_off_tuple)

    def __attrs_post_init__(self) -> None:
        _zone(self.timezone)
        _check_ids((*self.intents, *self.one_offs))

    # ------------------------------------------------------------------ lookups

    @cached_property
    def zone(self) -> ZoneInfo:
        """The organisation's timezone."""
        return _zone(self.timezone)

    @cached_property
    def programs(self) -> Mapping[str, Program]:
        """Programs by id."""
        return {p.id: p for p in self.organisation.programs}

    @cached_property
    def venues(self) -> Mapping[str, Venue]:
        """Venues by id."""
        return {v.id: v for v in self.organisation.venues}

    @cached_property
    def participants(self) -> Mapping[str, Participant]:
        """Participants by id."""
        return {p.id: p for p in self.organisation.participants}

    @cached_property
    def staff(self) -> Mapping[str, Staff]:
        """Staff by id."""
        return {s.id: s for s in self.organisation.staff}

    @cached_property
    def vehicles(self) -> Mapping[str, Vehicle]:
        """Vehicles by id."""
        return {v.id: v for v in self.organisation.vehicles}

    # ------------------------------------------------------------------ index

    @cached_property
    def _timelines(self) -> dict[Key, _Timeline]:
        grouped: dict[Key, list[_Entry]] = defaultdict(list)
        for intent in self.intents:
            at = intent.recorded_at or _EPOCH
            for key, value in answers(intent):
                grouped[key].append(_Entry(intent.start, at, intent.id, intent.end, value))
        return {k: _Timeline(v) for k, v in grouped.items()}

    @cached_property
    def _subjects(self) -> dict[tuple[str, str], tuple[str, ...]]:
        # (kind, program) -> sorted subject ids, for "who is enrolled", "who is pinned"
        out: dict[tuple[str, str], set[str]] = defaultdict(set)
        for kind, program, subject in self._timelines:
            if kind != "field":
                out[(kind, program)].add(subject)
        return {k: tuple(sorted(v)) for k, v in out.items()}

    @cached_property
    def _one_offs_on(self) -> dict[tuple[str, date], tuple[OneOff, ...]]:
        out: dict[tuple[str, date], list[OneOff]] = defaultdict(list)
        for o in self.one_offs:
            out[(o.program_id, o.date)].append(o)
        return {k: tuple(sorted(v, key=_record_order)) for k, v in out.items()}

    @cached_property
    def _moves_to(self) -> dict[tuple[str, date], tuple[Reschedule, ...]]:
        out: dict[tuple[str, date], list[Reschedule]] = defaultdict(list)
        for o in self.one_offs:
            if isinstance(o, Reschedule):
                out[(o.program_id, o.to_date)].append(o)
        return {k: tuple(sorted(v, key=_record_order)) for k, v in out.items()}

    @cached_property
    def _reschedules(self) -> dict[str, tuple[Reschedule, ...]]:
        out: dict[str, list[Reschedule]] = defaultdict(list)
        for o in self.one_offs:
            if isinstance(o, Reschedule):
                out[o.program_id].append(o)
        return {k: tuple(sorted(v, key=_record_order)) for k, v in out.items()}

    @cached_property
    def _one_off_days(self) -> dict[date, tuple[OneOff, ...]]:
        out: dict[date, list[OneOff]] = defaultdict(list)
        for o in self.one_offs:
            for d in o.dates():
                out[d].append(o)
        return {k: tuple(sorted(v, key=_record_order)) for k, v in out.items()}

    def resolve(self, key: Key, day: date, default: Any) -> Resolved:
        """Answer ``key`` on ``day`` by the one rule, or ``default`` from the template."""
        timeline = self._timelines.get(key)
        entry = timeline.at(day) if timeline is not None else None
        if entry is None:
            return Resolved(default, "")
        return Resolved(entry.value, entry.id)

    def subjects(self, kind: str, program_id: str) -> tuple[str, ...]:
        """Ids that any intent of ``kind`` ("enrolled", "staff", "vehicle") names for a program."""
        return self._subjects.get((kind, program_id), ())

    def one_offs_for(self, program_id: str, day: date) -> tuple[OneOff, ...]:
        """One-offs of a program dated ``day``, in resolution order (oldest first)."""
        return self._one_offs_on.get((program_id, day), ())

    def moves_to(self, program_id: str, day: date) -> tuple[Reschedule, ...]:
        """Reschedules that move an instance of the program onto ``day``."""
        return self._moves_to.get((program_id, day), ())

    def reschedules(self, program_id: str) -> tuple[Reschedule, ...]:
        """Every active reschedule of a program."""
        return self._reschedules.get(program_id, ())

    def one_offs_touching(self, day: date) -> tuple[OneOff, ...]:
        """Every one-off whose plan-changing dates include ``day``."""
        return self._one_off_days.get(day, ())


def _record_order(r: Intent | OneOff) -> tuple[datetime, str]:
    return (r.recorded_at or _EPOCH, r.id)
