"""Named staff shifts for every instance of a day: ``assign_staff``.

Theory of operation
-------------------
Staff are assigned across all of a day's instances at once, so nobody is
double-booked. The demand of each instance comes from its staffing rule
(``Instance.staff_demand``): lead slots and support slots.

1. *Forced staff first.* A one-day :class:`StaffSwap` puts its
   ``in_staff_id`` on the instance and keeps its ``out_staff_id`` off it;
   pinned staff (:class:`StaffPin` intents) come next. A forced person takes
   the lead slot when lead-capable, else a support slot; when there are more
   forced people than slots, the instance gets extra support shifts (pins
   win, demand grows). A forced person who cannot work (leave, availability,
   another shift, hours) is reported with ``pinned-staff-unavailable``.
2. *Leads, then support.* Every open lead slot of the day is filled before
   any support slot, because lead-capable staff are scarcer.
3. *Stable preferences.* For each (program, role, slot) every staff member
   has a fixed rank: a hash of those four values. The first eligible person
   in rank order gets the slot. Ranks do not depend on the date, so when
   nothing changed the same people work the same program week after week
   (continuity of care), and different programs prefer different people,
   which spreads hours.
4. *Eligibility.* Not on leave (:class:`StaffLeave` by the one rule), inside
   the weekly availability, no overlap with another of their shifts that
   day, and within ``max_hours_per_day``.
5. *Never refuse.* A slot nobody can fill is an explicit shift with an
   empty ``staff_id`` and an ``unfilled-shift`` warning.

The result depends only on the inputs and the date.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache, partial
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from ._inputs import DAY_WIDE, PlanInputs, remembered
from ._model import Staff
from ._records import StaffSwap
from ._tables import keep

if TYPE_CHECKING:  # typing only: _plan imports this module
    from ._plan import Instance

__all__ = ["Shift", "assign_drivers", "assign_staff", "pin_ids", "ranked", "stable_rank"]


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


_T = TypeVar("_T", bound=_Identified)
_V = TypeVar("_V")

_HOUR = Decimal(3600)


@attrs.frozen(kw_only=True, order=True)
class Shift:
    """One worker's slot on one instance.

    ``role`` is ``lead``, ``support`` or ``driver``; ``staff_id`` is empty
    when nobody could be found (the shift is unfilled). ``provenance`` names
    the pin or swap that placed the worker, if any.
    """

    instance_id: str
    role: str
    position: int
    staff_id: str
    start: datetime
    end: datetime
    provenance: tuple[str, ...] = ()

    @property
    def filled(self) -> bool:
        """Whether somebody works this shift."""
        return bool(self.staff_id)

    @property
    def hours(self) -> Decimal:
        """The length of the shift in hours of real time (a DST day's
        shift across the change is an hour shorter or longer than its
        clock times say)."""
        return Decimal(_seconds(self.start, self.end)) / _HOUR


def _seconds(start: datetime, end: datetime) -> float:
    """Real seconds from ``start`` to ``end`` (aware datetimes of one zone
    subtract as clock times: converting one to UTC makes it real time)."""
    return (end.astimezone(UTC) - start).total_seconds()


@attrs.define
class _Slot:
    instance_id: str
    program_id: str
    role: str
    position: int
    start: datetime
    end: datetime
    staff_id: str = ""
    provenance: tuple[str, ...] = ()


class _Book:
    """Who works when on the day: overlaps and hours."""

    def __init__(self, inputs: PlanInputs, day: date) -> None:
        self.busy: dict[str, list[tuple[datetime, datetime]]] = {}
        self._on_leave = _on_leave(inputs, day)
        self._weekday = day.weekday()

    def can_work(self, person: Staff, start: datetime, end: datetime) -> bool:
        if person.id in self._on_leave:
            return False
        if person.availability and not person.available(self._weekday, start.time(), end.time()):
            return False
        shifts = self.busy.get(person.id, ())
        for s, e in shifts:  # a loop, not any(): asked thousands of times a day
            if s < end and start < e:
                return False
        if person.max_hours_per_day is not None:
            worked = sum(_seconds(s, e) for s, e in shifts)
            total = Decimal(worked + _seconds(start, end)) / _HOUR
            if total > person.max_hours_per_day:
                return False
        return True

    def take(self, staff_id: str, start: datetime, end: datetime) -> None:
        self.busy.setdefault(staff_id, []).append((start, end))


def _on_leave(inputs: PlanInputs, day: date) -> frozenset[str]:
    """Ids of the staff on leave on ``day``, remembered for the day (leave
    records belong to no program: a change to them drops the day-wide memo's
    days from its start)."""
    return remembered(
        inputs._day_memo(day),
        ("leave", day),
        (),  # reads nothing beyond the records the memo is kept with
        lambda: frozenset(sid for sid, _ in inputs.named_on("leave", DAY_WIDE, day)),
    )


def stable_rank(*parts: object) -> bytes:
    """A fixed, date-independent preference key: the hash of ``parts``.

    Sorting candidates by it gives every (program, slot) its own order of
    people or vehicles, the same week after week.
    """
    *prefix, last = parts or ("",)
    return hashlib.sha256(_rank_head(prefix) + str(last).encode()).digest()


def _rank_head(prefix: Iterable[object]) -> bytes:
    """How :func:`stable_rank`'s text begins for parts starting with
    ``prefix``: each part, then the unit separator (encoded once for a pool)."""
    return "".join(str(part) + "\x1f" for part in prefix).encode()


def ranked(prefix: tuple[str | int, ...], pool: Sequence[_T]) -> Sequence[_T]:
    """``pool`` sorted by ``stable_rank(*prefix, item.id)``: one slot's order of preference.

    The same slot ranks the same pool every day, so the order is hashed and
    sorted once and remembered, keyed by the ids (whose hashes Python keeps);
    the ranked pool itself is remembered too while ``pool`` is the very same
    object (an organisation's tuple of staff or vehicles), so asking again
    costs a lookup, not a pass over the pool. The result must not be changed.
    """
    return _kept_with(
        _RANKED,
        (prefix, id(pool)),
        pool,
        lambda: tuple(pool[i] for i in _rank_order(prefix, tuple(p.id for p in pool))),
    )


def _kept_with(
    cache: dict[Any, tuple[Any, _V]], key: Any, pool: object, make: Callable[[], _V]
) -> _V:
    """``make()``, kept in ``cache`` under ``key`` while ``pool`` (what it is
    made from, whose id is in ``key``) is the very same object. Held with its
    entry, ``pool`` stays alive, so no other object can come to have its id."""
    found = cache.get(key)
    if found is not None and found[0] is pool:
        return found[1]
    return keep(cache, key, (pool, make()), _MOST_KEPT)[1]


#: Ranked pools by (prefix, id of the pool), drivers by the id of the staff
#: they came from, and each ranked pool's places by its id: see _kept_with.
_RANKED: dict[tuple[tuple[str | int, ...], int], tuple[Any, tuple[Any, ...]]] = {}
_DRIVERS: dict[int, tuple[Any, tuple[Staff, ...]]] = {}
_PLACES: dict[int, tuple[Any, dict[str, int]]] = {}
_MOST_KEPT = 8192


@lru_cache(maxsize=8192)
def _rank_order(prefix: tuple[str | int, ...], ids: tuple[str, ...]) -> tuple[int, ...]:
    """The indexes of ``ids`` in order of ``stable_rank(*prefix, id)``: the
    same digests, with the prefix joined and encoded once for the pool
    (a full roll ranks a few hundred pools of a few hundred ids each)."""
    head = _rank_head(prefix)
    sha256 = hashlib.sha256
    keys = [sha256(head + i.encode()).digest() for i in ids]
    return tuple(sorted(range(len(ids)), key=keys.__getitem__))


def assign_staff(
    inputs: PlanInputs, day: date, instances: Sequence[Instance]
) -> tuple[dict[str, tuple[Shift, ...]], dict[str, list[tuple[str, str, str]]]]:
    """Shifts for each instance of ``day``, and warnings by instance id.

    ``instances`` are the day's planned instances (anything with ``id``,
    ``program_id``, ``start``, ``end``, ``status``, ``staff_demand`` and
    ``pinned_staff``). Returns ``(shifts by instance id, warnings by
    instance id)``; each warning is ``(code, message, record id)``.
    """
    book = _Book(inputs, day)
    staff = inputs.organisation.staff
    slots: dict[str, list[_Slot]] = {}
    warnings: dict[str, list[tuple[str, str, str]]] = {}
    order = sorted((i for i in instances if i.status != "cancelled"), key=lambda i: (i.start, i.id))
    excluded: dict[str, set[str]] = {}
    for inst in order:
        slots[inst.id] = _demand_slots(inst)
        swaps = _day_swaps(inputs, day, inst.program_id)
        excluded[inst.id] = _swapped_out(swaps)
        warnings[inst.id] = _place_forced(inputs, day, inst, slots[inst.id], book, swaps)
    for role in ("lead", "support"):
        for inst in order:
            out = excluded[inst.id]
            for slot in slots[inst.id]:
                if slot.role == role and not slot.staff_id:
                    _fill(slot, staff, book, out)
    shifts: dict[str, tuple[Shift, ...]] = {}
    memo = inputs._day_memo(day)
    for inst in order:
        for slot in slots[inst.id]:
            if not slot.staff_id:
                warnings[inst.id].append(
                    (
                        "unfilled-shift",
                        f"{inst.id}: no {slot.role} worker available for shift {slot.position}",
                        "",
                    )
                )
        # an instance's shifts as they came last time, when they are the
        # same: a day staffed again mostly staffs its instances as before,
        # and the very same shifts compare at a glance where it is asked
        # whether an instance's resources changed
        made = tuple(
            (s.role, s.position, s.staff_id, s.start, s.end, s.provenance) for s in slots[inst.id]
        )
        shifts[inst.id] = remembered(
            memo, ("shifts", day, inst.id), made, partial(_shifts, inst.id, made)
        )
    return shifts, warnings


#: A shift's fields but its instance: role, position, staff id, start, end, provenance.
_Made = tuple[str, int, str, datetime, datetime, tuple[str, ...]]


def _shifts(instance_id: str, made: tuple[_Made, ...]) -> tuple[Shift, ...]:
    """The shifts of ``made``, on the instance ``instance_id``."""
    return tuple(
        Shift(
            instance_id=instance_id,
            role=role,
            position=position,
            staff_id=staff_id,
            start=start,
            end=end,
            provenance=provenance,
        )
        for role, position, staff_id, start, end, provenance in made
    )


def _demand_slots(inst: Instance) -> list[_Slot]:
    roles = ["lead"] * inst.staff_demand.leads + ["support"] * inst.staff_demand.support
    return [
        _Slot(inst.id, inst.program_id, role, n, inst.start, inst.end)
        for n, role in enumerate(roles)
    ]


def _day_swaps(inputs: PlanInputs, day: date, program_id: str) -> list[StaffSwap]:
    return [o for o in inputs.one_offs_for(program_id, day) if isinstance(o, StaffSwap)]


def pin_ids(
    inputs: PlanInputs, program_id: str, day: date, staff_ids: tuple[str, ...]
) -> tuple[str, ...]:
    """The id of the intent pinning each of ``staff_ids`` to the program on
    ``day``; remembered with the program's results of the day (asked for
    every pinned instance each time the day is planned)."""
    if not staff_ids:
        return ()
    memo = inputs._memo(program_id)
    key = ("pins", day, staff_ids)
    found: tuple[str, ...] | None = memo.get(key)
    if found is None:
        found = memo[key] = tuple(
            inputs.resolve(("staff", program_id, sid), day, False).source for sid in staff_ids
        )
    return found


def _swapped_out(swaps: Iterable[StaffSwap]) -> set[str]:
    """Who the day's ``swaps`` keep off the instance."""
    return {s.out_staff_id for s in swaps if s.out_staff_id}


def _place_forced(
    inputs: PlanInputs,
    day: date,
    inst: Instance,
    slots: list[_Slot],
    book: _Book,
    swaps: list[StaffSwap],
) -> list[tuple[str, str, str]]:
    """Put the instance's swapped-in and pinned staff (``swaps`` are the
    program's swaps of the day) into ``slots``, each shift naming the swap
    or pin that placed it; warnings, naming it too, for those who cannot
    work."""
    out = _swapped_out(swaps)
    forced: list[tuple[str, str]] = [(s.in_staff_id, s.id) for s in swaps]
    pins = pin_ids(inputs, inst.program_id, day, inst.pinned_staff)
    forced += [
        (sid, pin) for sid, pin in zip(inst.pinned_staff, pins, strict=True) if sid not in out
    ]
    warnings: list[tuple[str, str, str]] = []
    placed: set[str] = set()
    for staff_id, record_id in forced:
        if staff_id in placed:
            continue
        person = inputs.staff.get(staff_id)
        if person is None or not book.can_work(person, inst.start, inst.end):
            warnings.append(
                (
                    "pinned-staff-unavailable",
                    f"{inst.id}: {staff_id!r} is pinned but cannot work "
                    f"{inst.start.time().isoformat('minutes')}–{inst.end.time().isoformat('minutes')}",
                    record_id,
                )
            )
            continue
        slot = _open_slot(slots, person)
        if slot is None:  # more forced staff than demand: pins win, demand grows
            slot = _Slot(inst.id, inst.program_id, "support", len(slots), inst.start, inst.end)
            slots.append(slot)
        slot.staff_id = staff_id
        slot.provenance = (record_id,) if record_id else ()
        book.take(staff_id, inst.start, inst.end)
        placed.add(staff_id)
    return warnings


def _open_slot(slots: Sequence[_Slot], person: Staff) -> _Slot | None:
    """The first open lead slot for a lead-capable person, else the first
    open support slot (none: the instance needs one more)."""
    if person.lead_capable:
        for s in slots:
            if s.role == "lead" and not s.staff_id:
                return s
    for s in slots:
        if s.role == "support" and not s.staff_id:
            return s
    return None


def _fill(slot: _Slot, staff: Sequence[Staff], book: _Book, excluded: set[str]) -> None:
    for person in ranked((slot.program_id, slot.role, slot.position), staff):
        if person.id in excluded or (slot.role == "lead" and not person.lead_capable):
            continue
        if book.can_work(person, slot.start, slot.end):
            slot.staff_id = person.id
            book.take(person.id, slot.start, slot.end)
            return


class _Run(Protocol):
    """What assign_drivers reads of a bus run; :class:`BusRun` has it all."""

    @property
    def id(self) -> str: ...

    @property
    def instance_id(self) -> str: ...

    @property
    def departs(self) -> datetime: ...

    @property
    def arrives(self) -> datetime: ...


def assign_drivers(
    inputs: PlanInputs,
    day: date,
    runs: Sequence[_Run],
    shifts: dict[str, tuple[Shift, ...]],
    program_of: dict[str, str],
) -> tuple[dict[str, str], dict[str, tuple[Shift, ...]], dict[str, list[tuple[str, str, str]]]]:
    """A driver for every bus run of the day.

    The instance's own workers drive first (those who can drive and are
    free for the run), then any other driver, who gets an extra ``driver``
    shift. Returns ``(driver id by run id, extra shifts by instance id,
    warnings by instance id)``; a run nobody can drive gets ``no-driver``.
    """
    book = _Book(inputs, day)
    for instance_shifts in shifts.values():
        for s in instance_shifts:
            if s.staff_id:
                book.take(s.staff_id, s.start, s.end)
    drivers = _drivers(inputs.organisation.staff)
    chosen: dict[str, str] = {}
    extra: dict[str, list[_Made]] = {}
    notes: dict[str, list[tuple[str, str, str]]] = {}
    for run in sorted(runs, key=lambda r: (r.departs, r.id)):
        program = program_of[run.instance_id]
        crew = {s.staff_id for s in shifts.get(run.instance_id, ()) if s.staff_id}
        # the program's order of drivers, the instance's own crew first
        order = ranked((program, "driver", 0), drivers)
        place = _places(order)
        own = [order[i] for i in sorted(place[sid] for sid in crew if sid in place)]
        others = (p for p in order if p.id not in crew)
        person = next(
            (p for p in chain(own, others) if book.can_work(p, run.departs, run.arrives)), None
        )
        if person is None:
            notes.setdefault(run.instance_id, []).append(
                ("no-driver", f"{run.id}: no driver free {_span(run)}", "")
            )
            continue
        chosen[run.id] = person.id
        book.take(person.id, run.departs, run.arrives)
        if person.id not in crew:
            mine = extra.setdefault(run.instance_id, [])
            position = len(shifts.get(run.instance_id, ())) + len(mine)
            mine.append(("driver", position, person.id, run.departs, run.arrives, ()))
    # each instance's driver shifts as they came last time, when the same
    # (as assign_staff keeps the other shifts)
    memo = inputs._day_memo(day)
    made: dict[str, tuple[Shift, ...]] = {}
    for instance_id, fields in extra.items():
        asked = tuple(fields)
        made[instance_id] = remembered(
            memo, ("driver shifts", day, instance_id), asked, partial(_shifts, instance_id, asked)
        )
    return chosen, made, notes


def _places(order: Sequence[Staff]) -> dict[str, int]:
    """Each person's place in ``order`` (a ranked pool), by id; kept while
    ``order`` is the very same object, as :func:`ranked` keeps it."""
    return _kept_with(_PLACES, id(order), order, lambda: {p.id: i for i, p in enumerate(order)})


def _drivers(staff: tuple[Staff, ...]) -> tuple[Staff, ...]:
    """The staff who drive, in the order given; kept while ``staff`` is the
    very same tuple (an organisation's), so that ranking them is remembered."""
    return _kept_with(_DRIVERS, id(staff), staff, lambda: tuple(p for p in staff if p.driver))


def _span(run: _Run) -> str:
    return f"{run.departs.time().isoformat('minutes')}–{run.arrives.time().isoformat('minutes')}"
