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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import cached_property
from itertools import chain
from operator import itemgetter
from typing import Any, Final, Generic, TypeVar, overload
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
_V = TypeVar("_V")

#: The program id of :meth:`PlanInputs._memo` for results about a whole day.
DAY_WIDE = ""


@attrs.frozen
class Resolved:
    """An answer and the id of the intent that gave it (``""`` for the template)."""

    value: Any
    source: str


# One intent's answer to one question: (start, recorded_at, id, end, value).
# A plain tuple, not a class: a roll's inputs hold tens of thousands, and the
# cyclic collector stops walking a tuple of plain values (dates, ids, most
# answers) after its first look, where it walks every instance of a class.
_Entry = tuple[date, datetime, str, date | None, Any]
_START: Final = 0
_ID: Final = 2
_END: Final = 3
_VALUE: Final = 4
_order = itemgetter(0, 1, 2)  # start, recorded_at, id: the resolution order


# The entries answering one question, in resolution order, after their
# starts: (starts, entries). A plain tuple, as the entries are, for the collector.
_Timeline = tuple[tuple[date, ...], tuple[_Entry, ...]]


def _timeline(entries: list[_Entry]) -> _Timeline:
    entries.sort(key=_order)
    return tuple(e[_START] for e in entries), tuple(entries)


def _at(timeline: _Timeline, day: date) -> _Entry | None:
    """The entry that answers on ``day``: the last in order that covers it."""
    starts, entries = timeline
    i = bisect_right(starts, day)
    while i > 0:
        i -= 1
        e = entries[i]
        end = e[_END]
        if end is None or end >= day:
            return e
    return None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
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


class _Parts(tuple[tuple[Any, ...], ...]):
    """Records held in parts: a tuple of tuples, read as one.

    An edit's records join the last, smaller parts and the others are kept
    (see :func:`_with` and :meth:`PlanInputs.updated`), where one tuple of
    every record, copied for each edit, would be a container of thousands
    that the collector's young collections walk again, record by record. A
    record taken out of a large part is not copied out of it but named in
    ``gone`` and read past (see :func:`_without`). A type of its own, so
    that ``attrs.evolve`` hands the parts back to the converter as they are.
    """

    #: ids of records a part still holds that are no longer among the records
    gone: frozenset[str] = frozenset()

    def __new__(
        cls, parts: Iterable[tuple[Any, ...]] = (), gone: frozenset[str] = frozenset()
    ) -> _Parts:
        made = super().__new__(cls, parts)
        if gone:
            object.__setattr__(made, "gone", gone)
        return made

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"_Parts are immutable: cannot set {name!r}")


def _no_records() -> _Parts:
    return _Parts(((),))


def _intent_parts(items: Iterable[Intent]) -> _Parts:
    return items if isinstance(items, _Parts) else _Parts((tuple(items),))


def _one_off_parts(items: Iterable[OneOff]) -> _Parts:
    return items if isinstance(items, _Parts) else _Parts((tuple(items),))


def _joined(parts: _Parts) -> tuple[Any, ...]:
    """The records of ``parts`` as one tuple, those ``gone`` left out."""
    records = parts[0] if len(parts) == 1 else tuple(chain.from_iterable(parts))
    gone = parts.gone
    return tuple(r for r in records if r.id not in gone) if gone else records


def _folded(parts: _Parts) -> _Parts:
    """``parts`` as one part, naming nothing as gone (the same if they are so)."""
    return parts if len(parts) == 1 and not parts.gone else _Parts((_joined(parts),))


def _with(parts: _Parts, added: tuple[Intent | OneOff, ...]) -> _Parts:
    """``parts`` and ``added`` after them, as a binary counter adds: the
    last part is joined with what is added while it is no larger, so parts
    shrink from first to last. Added one record at a time (an edit), the
    parts after the first are as the bits of a counter: about log2 of
    their records in number, each record copied about as many times."""
    if not added:
        return parts
    gone = parts.gone
    if gone and any(r.id in gone for r in added):
        # an id taken out comes back: the record it named is taken out for real
        parts, gone = _folded(parts), frozenset()
    kept = list(parts)
    while kept and len(kept[-1]) <= len(added):
        added = kept.pop() + added
    kept.append(added)
    return _Parts(kept, gone)


def _without(parts: _Parts, gone: set[str]) -> _Parts:
    """``parts`` less the records whose ids are in ``gone``. A small part
    that holds one is copied without it; one taken out of a large part
    (every id read and thousands of records copied, for one retraction)
    is named in ``_Parts.gone`` instead, until those are many: then every
    part is copied once without them."""
    copied: set[str] = set()
    kept = []
    for part in parts:
        if len(part) <= _COPIED_AT_MOST and any(r.id in gone for r in part):
            copied.update(r.id for r in part if r.id in gone)
            part = tuple(r for r in part if r.id not in gone)
        if part:
            kept.append(part)
    hidden = parts.gone | (gone - copied)
    left = _Parts(kept or [()], hidden)
    return _folded(left) if len(hidden) > _HIDDEN_AT_MOST else left


# a part of more records than this is read past rather than copied to take
# one out, for up to this many records taken out
_COPIED_AT_MOST = 4096
_HIDDEN_AT_MOST = 4096


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
    _intent_parts: _Parts = attrs.field(
        factory=_no_records, converter=_intent_parts, alias="intents"
    )
    _one_off_parts: _Parts = attrs.field(
        factory=_no_records, converter=_one_off_parts, alias="one_offs"
    )

    def __attrs_post_init__(self) -> None:
        _zone(self.timezone)
        _check_ids((*self.intents, *self.one_offs))

    @property
    def intents(self) -> tuple[Intent, ...]:
        """The active intents, as one tuple: in the order given, then as added."""
        return self._read("_intent_parts")

    @property
    def one_offs(self) -> tuple[OneOff, ...]:
        """The active one-offs, as one tuple: in the order given, then as added."""
        return self._read("_one_off_parts")

    def _read(self, name: str) -> tuple[Any, ...]:
        """The records of the parts held as ``name``, folded into one part
        for the next reading (one assignment: safe for readers in threads)."""
        parts: _Parts = getattr(self, name)
        folded = _folded(parts)
        if folded is not parts:
            object.__setattr__(self, name, folded)
        return folded[0]

    def __repr__(self) -> str:
        fields = ("organisation", "timezone", "transport", "catalogue", "holidays")
        shown = [f"{name}={getattr(self, name)!r}" for name in (*fields, "intents", "one_offs")]
        return f"PlanInputs({', '.join(shown)})"

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

    # Built on first use (see _intent_index and _one_off_index below) and
    # carried over, updated, by ``updated``; never part of equality or repr.
    _intents_built: _IntentIndex | None = attrs.field(default=None, init=False, repr=False)
    _one_offs_built: _OneOffIndex | None = attrs.field(default=None, init=False, repr=False)

    # What the planner remembers of each program (see ``loomcore._plan``):
    # results that depend on the organisation and on that program's records
    # covering one day. ``updated`` carries it over but for the days the
    # changed records can change, so one edit re-plans one program's
    # instances, not every one, and the window moving on keeps its days.
    # Results about a whole day, across programs (vehicles in service, bus
    # runs, shifts), go in the memo of DAY_WIDE: no program, like leave and
    # maintenance, whose changes drop its days. That memo holds one
    # dictionary per day (see _day_memo), so dropping a few days copies a
    # table of days, not the thousands of entries of every day.
    _memos: dict[str, dict[Any, Any]] | None = attrs.field(default=None, init=False, repr=False)

    def _memo(self, program_id: str) -> dict[Any, Any]:
        """A dictionary for results of one program on one day.

        Keys are ``(kind, day, ...)``; a value may depend on the
        organisation and on the program's records that cover ``day`` (by
        :meth:`resolve` and the one-off lookups on that day), nothing else.
        Kept with these inputs and, by :meth:`updated`, with the copies
        made from them, less the days a changed record of the program can
        change (see :func:`_kept_memos`). For :data:`DAY_WIDE` it is the
        table of :meth:`_day_memo`'s dictionaries, by day.
        """
        memos = self._memos
        if memos is None:
            memos = {}
            object.__setattr__(self, "_memos", memos)
        found = memos.get(program_id)
        if found is None:
            found = memos[program_id] = {}
        return found

    def _day_memo(self, day: date) -> dict[Any, Any]:
        """A dictionary for results across programs on ``day``.

        Keys are ``(kind, day, ...)``, as in :meth:`_memo`. Each entry
        keeps, beside its value, everything it read of the day's instances
        and one-offs, and is used again only when that is equal; a change
        to leave or maintenance drops the days it covers. Shared, day by
        day, with the inputs this was updated from while neither changes
        that day's records.
        """
        days = self._memo(DAY_WIDE)
        found = days.get(day)
        if found is None:
            found = days.setdefault(day, {})  # one dictionary a day, whichever thread makes it
        return found  # type: ignore[no-any-return]

    def _carry_memos(self, other: PlanInputs, start: date, end: date) -> None:
        """Take what ``other`` remembers of the days in ``[start, end]``.

        For inputs that hold, for each of those days, the same records as
        ``other`` does, and the same organisation and settings (the service
        reloading the same revision over other dates): what was worked out
        for such a day holds for both. Anything else is left alone.
        """
        memos = other._memos
        # the organisation and settings, each compared by identity first
        if memos is None or self._memos is not None or self._settings() != other._settings():
            return
        kept = {
            p: {k: v for k, v in dict(memo).items() if start <= _day_of(p, k) <= end}
            for p, memo in list(memos.items())
        }
        object.__setattr__(self, "_memos", kept)

    def _settings(self) -> tuple[object, ...]:
        return (self.organisation, self.timezone, self.transport, self.catalogue, self.holidays)

    _ids_built: _Ids | None = attrs.field(default=None, init=False, repr=False)

    @property
    def _ids(self) -> _Ids:
        """The ids of every record here (built on first use, carried over by ``updated``)."""
        built = self._ids_built
        if built is None:
            built = _Ids(frozenset(r.id for r in (*self.intents, *self.one_offs)))
            object.__setattr__(self, "_ids_built", built)
        return built

    @property
    def _intent_index(self) -> _IntentIndex:
        built = self._intents_built
        if built is None:
            built = _IntentIndex.build(self.intents)
            object.__setattr__(self, "_intents_built", built)
        return built

    @property
    def _one_off_index(self) -> _OneOffIndex:
        built = self._one_offs_built
        if built is None:
            built = _OneOffIndex.build(self.one_offs)
            object.__setattr__(self, "_one_offs_built", built)
        return built

    def updated(
        self,
        add: Iterable[Intent | OneOff] = (),
        remove: Iterable[Intent | OneOff] = (),
    ) -> PlanInputs:
        """A copy with the records ``add`` added and the records ``remove`` taken out.

        Records are matched by id, within their kind (an intent in
        ``remove`` takes out the intent of its id). The copy equals
        ``PlanInputs`` built from the new set of records, but the indexes
        this one has built already are updated for the records that
        changed, not rebuilt from scratch: the way to apply one edit to a
        large set of records (the service does this after each
        :meth:`Loom.record`), or to try what-ifs one record at a time.
        Raises :class:`DuplicateIdError` when a record in ``add`` has the id
        of a record already here (and not removed), and
        :class:`InvalidRecordError` when one in ``remove`` is not here or
        one in ``add`` lacks its id or ``recorded_at``.
        """
        add, remove = tuple(add), tuple(remove)
        out = self._with_records(add, remove)
        if self._memos is not None:
            kept = _kept_memos(self._memos, (*add, *remove), self.reschedules)
            object.__setattr__(out, "_memos", kept)
        return out

    def _extended(self, add: Sequence[Intent | OneOff], after: date) -> PlanInputs:
        """``updated(add=add)``, for inputs that hold the records of every
        day up to ``after``: what they remember is shared with the copy, not
        copied, when they have planned no day after that one and every
        record added begins after it (so changes no day planned) and names
        no program with a reschedule (which can carry a later day's records
        onto an earlier one). The service's inputs moving on to the window's
        new day, every night: dozens of programs' memos are not copied.
        Otherwise what they remember is copied as :meth:`updated` copies it.
        """
        add = tuple(add)
        out = self._with_records(add, ())
        memos = self._memos
        if memos is not None:
            # every day planned has its dictionary in the day-wide table
            planned_later = any(day > after for day in memos.get(DAY_WIDE, ()))
            if planned_later or not all(
                _begins_after(r, after) and not self.reschedules(r.program_id) for r in add
            ):
                memos = _kept_memos(memos, add, self.reschedules)
            object.__setattr__(out, "_memos", memos)
        return out

    def _with_records(
        self, add: tuple[Intent | OneOff, ...], remove: tuple[Intent | OneOff, ...]
    ) -> PlanInputs:
        """A copy with the records changed and the indexes updated; nothing remembered."""
        gone = {r.id for r in remove}
        ids = self._ids
        missing = sorted(i for i in gone if i not in ids)
        if missing:
            raise InvalidRecordError(
                f"record {missing[0]!r} is not among these inputs", record_id=missing[0]
            )
        _check_ids(add)
        for r in add:
            if r.id in ids and r.id not in gone:
                raise DuplicateIdError("record", r.id)
        # records are matched by id: a small part is copied only if it holds
        # one to take out (see _without), and what is added joins only the
        # last, smaller parts
        intents, one_offs = self._intent_parts, self._one_off_parts
        if gone:
            # each kind's parts lose the ids of its kind only (as its index does)
            gone_intents = {r.id for r in remove if isinstance(r, Intent)}
            gone_one_offs = gone - gone_intents
            intents = _without(intents, gone_intents) if gone_intents else intents
            one_offs = _without(one_offs, gone_one_offs) if gone_one_offs else one_offs
        new_intents = tuple(r for r in add if isinstance(r, Intent))
        new_one_offs = tuple(r for r in add if isinstance(r, OneOff))
        out = attrs.evolve(self, intents=(), one_offs=())
        # attrs.evolve checked everything but the records; set them unchecked
        object.__setattr__(out, "_intent_parts", _with(intents, new_intents))
        object.__setattr__(out, "_one_off_parts", _with(one_offs, new_one_offs))
        object.__setattr__(out, "_ids_built", ids.changed({r.id for r in add}, gone))
        # the same organisation and timezone: the lookups made from them hold
        for name in _LOOKUPS:
            try:
                made = PlanInputs.__dict__[name].__get__(self, PlanInputs)
            except AttributeError:  # not made yet
                continue
            object.__setattr__(out, name, made)
        old_intents = [r for r in remove if isinstance(r, Intent)]
        old_one_offs = [r for r in remove if isinstance(r, OneOff)]
        if self._intents_built is not None:
            built = self._intents_built.updated(new_intents, old_intents)
            object.__setattr__(out, "_intents_built", built)
        if self._one_offs_built is not None:
            made = self._one_offs_built.updated(new_one_offs, old_one_offs)
            object.__setattr__(out, "_one_offs_built", made)
        return out

    def resolve(self, key: Key, day: date, default: Any) -> Resolved:
        """Answer ``key`` on ``day`` by the one rule, or ``default`` from the template."""
        timeline = self._intent_index.timelines.get(key)
        entry = _at(timeline, day) if timeline is not None else None
        if entry is None:
            return Resolved(default, "")
        return Resolved(entry[_VALUE], entry[_ID])

    def value(self, key: Key, day: date, default: Any) -> Any:
        """``resolve(key, day, default).value``, without the intent's id."""
        timeline = self._intent_index.timelines.get(key)
        if timeline is None:
            return default
        entry = _at(timeline, day)
        return default if entry is None else entry[_VALUE]

    def named_on(self, kind: str, program_id: str, day: date) -> list[tuple[str, str]]:
        """Each subject of :meth:`subjects` whose answer on ``day`` is true
        (enrolled, pinned, on leave), with the id of the intent that says so."""
        # the planner's hottest loop (a roll asks about 160,000 subjects):
        # each subject comes with its timeline, and _at is written out in it
        out = []
        for subject, (starts, entries) in self._intent_index.named.get((kind, program_id), ()):
            i = bisect_right(starts, day)
            while i:
                i -= 1
                entry = entries[i]
                end = entry[_END]
                if end is None or end >= day:
                    if entry[_VALUE]:
                        out.append((subject, entry[_ID]))
                    break
        return out

    def subjects(self, kind: str, program_id: str) -> tuple[str, ...]:
        """Ids that any intent of ``kind`` ("enrolled", "staff", "vehicle") names for a program."""
        return tuple(name for name, _ in self._intent_index.named.get((kind, program_id), ()))

    def one_offs_for(self, program_id: str, day: date) -> tuple[OneOff, ...]:
        """One-offs of a program dated ``day``, in resolution order (oldest first)."""
        return self._one_off_index.on.get((program_id, day), ())

    def moves_to(self, program_id: str, day: date) -> tuple[Reschedule, ...]:
        """Reschedules that move an instance of the program onto ``day``."""
        return self._one_off_index.moves_to.get((program_id, day), ())

    def reschedules(self, program_id: str) -> tuple[Reschedule, ...]:
        """Every active reschedule of a program."""
        return self._one_off_index.reschedules.get(program_id, ())

    def one_offs_touching(self, day: date) -> tuple[OneOff, ...]:
        """Every one-off whose plan-changing dates include ``day``."""
        return self._one_off_index.days.get(day, ())


#: PlanInputs' lookups made from its organisation and timezone (cached
#: properties, each in a slot of its own), carried over by ``updated``.
_LOOKUPS = ("zone", "programs", "venues", "participants", "staff", "vehicles")


def remembered(memo: dict[Any, Any], key: Any, asked: Any, make: Callable[[], _V]) -> _V:
    """``make()``, kept in ``memo`` under ``key`` with ``asked`` (what it
    reads beyond the memo's own records) and made again only when
    ``asked`` is no longer equal: one entry per key, replaced, never added to."""
    found = memo.get(key)
    if found is None or not (found[0] is asked or found[0] == asked):
        found = memo[key] = (asked, make())
    return found[1]


def _kept_memos(
    memos: dict[str, dict[Any, Any]],
    changed: Iterable[Intent | OneOff],
    reschedules: Callable[[str], tuple[Reschedule, ...]],
) -> dict[str, dict[Any, Any]]:
    """The memos (per program, and :data:`DAY_WIDE`'s), less what ``changed``
    records can change.

    An intent changes its program's days from its start to its end (an
    intent answers only on the days it covers); a one-off, the dates it
    names. A program with a reschedule loses every day: a moved instance is
    planned from its origin date's records, on another day.
    """
    spans: dict[str, list[tuple[date, date | None]]] = defaultdict(list)
    on: dict[str, set[date]] = defaultdict(set)
    every: set[str] = set()
    for r in changed:
        p = r.program_id
        if p not in memos or p in every:
            continue
        if isinstance(r, Reschedule) or reschedules(p):
            every.add(p)
        elif isinstance(r, Intent):
            spans[p].append((r.start, r.end))
        else:
            on[p].update(r.dates())
    kept = {}
    # list() and dict() copy in one step: another thread may be planning
    # with the inputs updated, adding to these very dictionaries
    for p, memo in list(memos.items()):
        if p in every:
            continue
        covered, days = spans.get(p, ()), on.get(p, ())
        if not covered and not days:
            kept[p] = memo
            continue
        # the first day any span covers, and the last (date.max: open-ended)
        first = min((start for start, _ in covered), default=date.max)
        last = max((end or date.max for _, end in covered), default=date.min)
        kept[p] = {
            k: v
            for k, v in dict(memo).items()
            if not (
                (d := _day_of(p, k)) in days
                or (first <= d <= last and any(_covers(span, d) for span in covered))
            )
        }
    return kept


def _begins_after(record: Intent | OneOff, day: date) -> bool:
    """Whether ``record`` changes nothing on or before ``day``: an intent
    starting later, or a one-off (other than a reschedule) on later dates."""
    if isinstance(record, Intent):
        return record.start > day
    return not isinstance(record, Reschedule) and min(record.dates()) > day


def _day_of(program_id: str, key: Any) -> date:
    """The day of an entry of ``program_id``'s memo: its key's second item,
    or, in the table of days of :data:`DAY_WIDE`, the key itself."""
    return key if program_id == DAY_WIDE else key[1]  # type: ignore[no-any-return]


def _covers(span: tuple[date, date | None], day: date) -> bool:
    start, end = span
    return start <= day and (end is None or day <= end)


class _Ids:
    """A set of record ids: one shared with the inputs this was updated from,
    plus the ids added and taken out since, folded in once they are many.

    So :meth:`PlanInputs.updated` never copies a set of half a million ids
    for one edit, and the inputs it came from keep theirs unchanged.
    """

    __slots__ = ("added", "base", "gone")

    _FOLD_AT = 4096

    def __init__(
        self,
        base: frozenset[str],
        added: frozenset[str] = frozenset(),
        gone: frozenset[str] = frozenset(),
    ) -> None:
        self.base, self.added, self.gone = base, added, gone

    def __contains__(self, record_id: object) -> bool:
        return record_id in self.added or (record_id in self.base and record_id not in self.gone)

    def changed(self, add: set[str], remove: set[str]) -> _Ids:
        """These ids with ``remove`` taken out, then ``add`` put in."""
        added = (self.added - remove) | add
        gone = (self.gone | (remove & self.base)) - add
        if len(added) + len(gone) > self._FOLD_AT:
            return _Ids((self.base - gone) | added)
        return _Ids(self.base, frozenset(added), frozenset(gone))


_K = TypeVar("_K")
_D = TypeVar("_D")
_ABSENT: Any = object()


class _Layered(Generic[_K, _V]):
    """A dictionary read as a few changes over one shared with the index it
    was updated from: what one edit changes in a table of thousands of
    entries, without copying the table (a fresh copy costs its copying and
    is then walked by the cyclic collector's young collections until it is
    old). The changes are folded into a new table once they are many.

    Read-only: :meth:`changed` gives a new one. Pickles as one plain table.
    """

    __slots__ = ("base", "over")

    _FOLD_AT = 512

    def __init__(self, base: dict[_K, _V], over: dict[_K, Any] | None = None) -> None:
        self.base = base
        # key -> new value, or _ABSENT for a key taken out
        self.over: dict[_K, Any] = over or {}

    @overload
    def get(self, key: _K) -> _V | None: ...

    @overload
    def get(self, key: _K, default: _D) -> _V | _D: ...

    def get(self, key: _K, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        over = self.over
        if over and key in over:
            found = over[key]
            return default if found is _ABSENT else found
        return self.base.get(key, default)

    def __contains__(self, key: object) -> bool:
        over = self.over
        if over and key in over:
            return over[key] is not _ABSENT
        return key in self.base

    def changed(self, new: Mapping[_K, Any]) -> _Layered[_K, _V]:
        """These entries with ``new``'s put in (a value of ``_ABSENT`` takes its key out)."""
        over = {**self.over, **new}
        if len(over) > self._FOLD_AT:
            return _Layered(self._folded(over))
        return _Layered(self.base, over)

    def folded(self) -> dict[_K, _V]:
        """Every entry, as one plain dictionary (a copy)."""
        return self._folded(self.over)

    def _folded(self, over: Mapping[_K, Any]) -> dict[_K, _V]:
        table = dict(self.base)
        for key, value in over.items():
            if value is _ABSENT:
                table.pop(key, None)
            else:
                table[key] = value
        return table

    def __reduce__(self) -> tuple[Any, ...]:
        # _ABSENT is this process's own object: another one gets the table plain
        return (_Layered, (self.folded(),))


def _record_order(r: Intent | OneOff) -> tuple[datetime, str]:
    return (r.recorded_at or _EPOCH, r.id)


def _entries(intent: Intent) -> Iterator[tuple[Key, _Entry]]:
    at = intent.recorded_at or _EPOCH
    for key, value in answers(intent):
        yield key, (intent.start, at, intent.id, intent.end, value)


class _IntentIndex:
    """Timelines by question, and the subjects each (kind, program) names,
    in order, each with its timeline (what :meth:`PlanInputs.named_on` reads).

    Never changed once built: :meth:`updated` gives a new index that shares
    these tables, with only the timelines of the questions the changed
    records answer (and the subjects they name) replaced (see :class:`_Layered`).
    """

    __slots__ = ("named", "timelines")

    def __init__(
        self,
        timelines: _Layered[Key, _Timeline],
        named: _Layered[tuple[str, str], tuple[tuple[str, _Timeline], ...]],
    ) -> None:
        self.timelines = timelines
        self.named = named

    @classmethod
    def build(cls, intents: Iterable[Intent]) -> _IntentIndex:
        grouped: dict[Key, list[_Entry]] = defaultdict(list)
        for intent in intents:
            for key, entry in _entries(intent):
                grouped[key].append(entry)
        timelines = {k: _timeline(v) for k, v in grouped.items()}
        # (kind, program) -> (subject, timeline) by subject id, for "who is
        # enrolled", "who is pinned"
        named: dict[tuple[str, str], list[tuple[str, _Timeline]]] = defaultdict(list)
        for (kind, program, subject), timeline in timelines.items():
            if kind != "field":
                named[(kind, program)].append((subject, timeline))
        ordered = {k: tuple(sorted(v, key=itemgetter(0))) for k, v in named.items()}
        return cls(_Layered(timelines), _Layered(ordered))

    def updated(self, add: Sequence[Intent], remove: Sequence[Intent]) -> _IntentIndex:
        if not add and not remove:
            return self
        timelines = self.timelines
        gone = {r.id for r in remove}
        changed: dict[Key, list[_Entry]] = {}
        for key, _ in (pair for r in remove for pair in answers(r)):
            if key not in changed:
                old = timelines.get(key)
                changed[key] = [e for e in old[1] if e[_ID] not in gone] if old else []
        for r in add:
            for key, entry in _entries(r):
                if key not in changed:
                    old = timelines.get(key)
                    changed[key] = list(old[1]) if old else []
                changed[key].append(entry)
        new_timelines: dict[Key, Any] = {}
        retimed: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
        for key, entries in changed.items():
            kind, program, subject = key
            new_timelines[key] = _timeline(entries) if entries else _ABSENT
            if kind != "field":
                retimed[(kind, program)][subject] = new_timelines[key]
        new_named: dict[tuple[str, str], Any] = {}
        for pair, retimings in retimed.items():
            pairs = dict(self.named.get(pair, ()))
            for subject, timeline in retimings.items():
                if timeline is _ABSENT:
                    pairs.pop(subject, None)
                else:
                    pairs[subject] = timeline
            new_named[pair] = tuple(sorted(pairs.items(), key=itemgetter(0))) or _ABSENT
        return _IntentIndex(timelines.changed(new_timelines), self.named.changed(new_named))


class _OneOffIndex:
    """One-offs by (program, date), by (program, moved-to date), reschedules
    by program, and one-offs by every date they can change; each in record order.

    Never changed once built: :meth:`updated` gives a new index that shares
    these tables, with only the entries the changed one-offs are in replaced.
    """

    __slots__ = ("days", "moves_to", "on", "reschedules")

    def __init__(self, tables: Mapping[str, _Layered[Any, tuple[Any, ...]]]) -> None:
        self.on: _Layered[tuple[str, date], tuple[OneOff, ...]] = tables["on"]
        self.moves_to: _Layered[tuple[str, date], tuple[Reschedule, ...]] = tables["moves_to"]
        self.reschedules: _Layered[str, tuple[Reschedule, ...]] = tables["reschedules"]
        self.days: _Layered[date, tuple[OneOff, ...]] = tables["days"]

    @staticmethod
    def _places(o: OneOff) -> Iterator[tuple[str, Any]]:
        """Which of the four tables ``o`` is in, and under which key."""
        yield "on", (o.program_id, o.date)
        if isinstance(o, Reschedule):
            yield "moves_to", (o.program_id, o.to_date)
            yield "reschedules", o.program_id
        for d in o.dates():
            yield "days", d

    @classmethod
    def build(cls, one_offs: Iterable[OneOff]) -> _OneOffIndex:
        grouped: dict[str, dict[Any, list[OneOff]]] = {
            name: defaultdict(list) for name in cls.__slots__
        }
        for o in one_offs:
            for name, key in cls._places(o):
                grouped[name][key].append(o)
        made = {
            name: _Layered({k: tuple(sorted(v, key=_record_order)) for k, v in table.items()})
            for name, table in grouped.items()
        }
        return cls(made)

    def updated(self, add: Sequence[OneOff], remove: Sequence[OneOff]) -> _OneOffIndex:
        if not add and not remove:
            return self
        # the new entries of each table; _ABSENT for a key taken out
        new: dict[str, dict[Any, Any]] = {name: {} for name in self.__slots__}

        def now(name: str, key: Any) -> tuple[Any, ...]:
            if key in new[name]:
                found = new[name][key]
                return () if found is _ABSENT else found
            table: _Layered[Any, tuple[Any, ...]] = getattr(self, name)
            return table.get(key, ())

        gone = {r.id for r in remove}
        for o in remove:
            for name, key in self._places(o):
                kept = tuple(x for x in now(name, key) if x.id not in gone)
                new[name][key] = kept if kept else _ABSENT
        for o in add:
            for name, key in self._places(o):
                new[name][key] = tuple(sorted((*now(name, key), o), key=_record_order))
        return _OneOffIndex(
            {name: getattr(self, name).changed(new[name]) for name in self.__slots__}
        )
