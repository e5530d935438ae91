"""Planning one day: ``plan_day(inputs, day) -> DayPlan``.

Theory of operation
-------------------
For every program (in id order) the planner asks, by the one rule of
:mod:`loomcore._inputs`, how the program stands on the day: does it run, on
which recurrence, at what times, where, with which staffing rule. Then:

1. The program's *scheduled* instance exists when it runs on the day and its
   recurrence gives the day, unless a :class:`Reschedule` moves it away.
2. A *moved* instance lands on the day for each winning :class:`Reschedule`
   whose origin date had a scheduled instance; it is planned as the program
   stands on the day it lands on.
3. One-offs of the day win over intents: one-day changes of time or venue,
   cancellation of the whole instance, absences, extra attendance.
4. The roster is every participant whose enrolment question resolves to
   "yes", plus extra attendance; absences cancel single allocations.
5. Staff demand follows the program's :class:`StaffingRule`; transport demand
   counts riders and wheelchair riders.
6. Anything notable is a :class:`PlanWarning`, never an error. Every one-off
   that touches the day but shaped nothing is reported as orphaned.

Invariants
~~~~~~~~~~
1. The result depends on ``inputs`` and ``day`` only.
2. Everything in a :class:`DayPlan` is sorted, so equal inputs give equal,
   byte-identical plans.
3. Every instance and allocation names the records that shaped it
   (``provenance``) and its ``origin``: ``exception`` if a one-off applied,
   else ``intent`` if an intent applied, else ``generated``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import partial
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from ._billing import (
    BILLING_FLAGS,
    BillingLine,
    InvalidBillingInputError,
    price_attendance,
    transport_cost_per_rider,
)
from ._inputs import PlanInputs, remembered
from ._model import Program, StaffingRule
from ._prices import TRANSPORT_ITEM, NoPriceLimitError, PriceCatalogue, UnknownSupportItemError
from ._records import (
    Absence,
    Cancellation,
    ExtraAttendance,
    OneDayChange,
    OneOff,
    Reschedule,
    StaffSwap,
)
from ._recurrence import Recurrence
from ._staffing import Shift, assign_drivers, assign_staff, pin_ids
from ._tables import keep
from ._transport import BusRun, plan_bus_runs

__all__ = [
    "WARNING_CODES",
    "Allocation",
    "DayPlan",
    "Instance",
    "PlanWarning",
    "StaffDemand",
    "TransportDemand",
    "has_instance",
    "plan_day",
]

#: Every warning a plan can carry, with what it means. The docs are drawn
#: from this table.
WARNING_CODES: dict[str, str] = {
    "venue-over-capacity": "more participants attend than the venue holds",
    "empty-instance": "the instance runs with nobody attending; no staff are needed",
    "orphaned-exception": "an exception (one-off) no longer matches an instance or a participant",
    "dst-adjusted": "a local time does not exist on this day (clocks went forward); moved later",
    "unknown-reference": "a record names a venue or participant that is no longer known",
    "invalid-times": "the end time in force is not after the start time; planned with no length",
    "unfilled-shift": "no available worker for a shift the staffing rule demands",
    "pinned-staff-unavailable": "a pinned or swapped-in worker cannot work the instance",
    "no-driver": "no driver is free for a bus run",
    "seat-shortage": "a participant who needs transport has no seat on any run",
    "ride-too-long": "a participant's ride is longer than the limit",
    "no-pickup-location": "a participant who needs transport has no pickup location",
    "no-venue-location": "the venue has no location, so no bus runs can be planned",
    "billing-unavailable": "no billing lines: no price limit for the date (nor an earlier one "
    "to carry forward), an unknown item, or an extra item that cannot be priced (claimed in "
    "dollars, not price-limited)",
    **BILLING_FLAGS,
}


@attrs.frozen(kw_only=True, order=True)
class PlanWarning:
    """Something a planner should look at. Never a reason to refuse."""

    code: str
    message: str
    program_id: str = ""
    instance_id: str = ""
    participant_id: str = ""
    record_id: str = ""


# PlanWarning's own order (its fields in turn), without attrs' slower __lt__
_WARNING_ORDER = attrgetter(
    "code", "message", "program_id", "instance_id", "participant_id", "record_id"
)


def _in_order(warnings: Iterable[PlanWarning]) -> tuple[PlanWarning, ...]:
    return tuple(sorted(warnings, key=_WARNING_ORDER))


@attrs.frozen(kw_only=True)
class Allocation:
    """One participant on one instance.

    ``status`` is ``attending`` or ``cancelled``. For a cancelled attendance,
    ``reason``, ``reason_code``, ``notified_on``, ``notice_days`` (clear days)
    and ``no_show`` say how it was cancelled.
    """

    participant_id: str
    status: str
    origin: str
    provenance: tuple[str, ...]
    reason: str = ""
    reason_code: str = ""
    notified_on: date | None = None
    notice_days: int | None = None
    no_show: bool = False


@attrs.frozen(kw_only=True)
class StaffDemand:
    """Workers an instance needs by its staffing rule."""

    leads: int = 0
    support: int = 0

    @property
    def total(self) -> int:
        """Leads plus support workers."""
        return self.leads + self.support


@attrs.frozen(kw_only=True)
class TransportDemand:
    """Seats an instance needs on its bus runs (each way)."""

    riders: int = 0
    wheelchair_riders: int = 0


@attrs.frozen(kw_only=True)
class Instance:
    """A program's occurrence on one date, with everything planned for it.

    ``id`` is ``"<program id>/<scheduled date>"``; a rescheduled instance
    keeps the id of the date it was scheduled for. ``start`` and ``end`` are
    aware datetimes in the organisation's timezone.
    """

    id: str
    program_id: str
    program_name: str
    date: date
    scheduled_date: dt.date
    status: str
    start: datetime
    end: datetime
    venue_id: str
    origin: str
    provenance: tuple[str, ...]
    allocations: tuple[Allocation, ...]
    staff_demand: StaffDemand
    transport: bool
    transport_demand: TransportDemand
    pinned_staff: tuple[str, ...] = ()
    pinned_vehicles: tuple[str, ...] = ()
    cancellation_reason: str = ""
    warnings: tuple[PlanWarning, ...] = ()
    shifts: tuple[Shift, ...] = ()
    bus_runs: tuple[BusRun, ...] = ()
    billing_lines: tuple[BillingLine, ...] = ()

    @property
    def attending(self) -> tuple[str, ...]:
        """Ids of participants attending (none when the instance is cancelled)."""
        return tuple(a.participant_id for a in self.allocations if a.status == "attending")

    @property
    def cancelled(self) -> bool:
        """Whether the whole instance is cancelled."""
        return self.status == "cancelled"


@attrs.frozen(kw_only=True)
class DayPlan:
    """Every instance of one local date, plus day-level warnings."""

    date: date
    instances: tuple[Instance, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()

    def all_warnings(self) -> tuple[PlanWarning, ...]:
        """Day-level warnings and every instance's, sorted."""
        return _in_order((*self.warnings, *(w for i in self.instances for w in i.warnings)))


# --------------------------------------------------------------------------- program state


@attrs.frozen
class _State:
    """How a program stands on one date, after the one rule."""

    runs: bool
    recurrence: Recurrence
    start_time: time
    end_time: time
    venue_id: str
    staffing: StaffingRule
    transport: bool
    sources: frozenset[str]
    # True when some intent makes a value differ from the template's: only
    # then is the instance coloured "intent" (a revert leaves it "generated").
    overridden: bool

    def scheduled(self, day: date) -> bool:
        return self.runs and self.recurrence.runs_on(day)


_FIELDS = ("recurrence", "start_time", "end_time", "venue_id", "staffing", "transport")


def _active(program: Program, day: date) -> bool:
    """Whether ``day`` is within the program's template dates."""
    return program.active_from <= day and (
        program.active_until is None or day <= program.active_until
    )


def _runs_on(inputs: PlanInputs, program: Program, day: date) -> bool:
    """``_state(inputs, program, day).scheduled(day)``, from the two answers it needs."""
    if not inputs.value(("field", program.id, "runs"), day, _active(program, day)):
        return False
    recurrence: Recurrence = inputs.value(
        ("field", program.id, "recurrence"), day, program.recurrence
    )
    return recurrence.runs_on(day)


def _state(inputs: PlanInputs, program: Program, day: date) -> _State:
    active = _active(program, day)
    values: dict[str, Any] = {}
    sources: set[str] = set()
    overridden = False
    runs = inputs.resolve(("field", program.id, "runs"), day, active)
    if runs.source:
        sources.add(runs.source)
        overridden = runs.value != active
    for name in _FIELDS:
        template = getattr(program, name)
        r = inputs.resolve(("field", program.id, name), day, template)
        values[name] = r.value
        if r.source:
            sources.add(r.source)
            overridden = overridden or r.value != template
    return _State(
        runs=bool(runs.value), sources=frozenset(sources), overridden=overridden, **values
    )


def _winning_moves_to(inputs: PlanInputs, program_id: str, day: date) -> list[Reschedule]:
    out = []
    for move in inputs.moves_to(program_id, day):
        if _winning_move_from(inputs, program_id, move.date) is move:
            out.append(move)
    return out


def _winning_move_from(inputs: PlanInputs, program_id: str, day: date) -> Reschedule | None:
    moves = [o for o in inputs.one_offs_for(program_id, day) if isinstance(o, Reschedule)]
    return moves[-1] if moves else None


def has_instance(inputs: PlanInputs, program_id: str, day: date) -> bool:
    """Whether the program has an instance taking place on ``day``.

    Used to refuse one-offs that name a date with no instance.
    """
    program = inputs.programs.get(program_id)
    if program is None:
        return False
    if _runs_on(inputs, program, day) and _winning_move_from(inputs, program_id, day) is None:
        return True
    return any(
        _runs_on(inputs, program, m.date) for m in _winning_moves_to(inputs, program_id, day)
    )


def is_scheduled(inputs: PlanInputs, program_id: str, day: date) -> bool:
    """Whether the program's recurrence and intents give it an instance on ``day``."""
    program = inputs.programs.get(program_id)
    return program is not None and _runs_on(inputs, program, day)


# --------------------------------------------------------------------------- planning


def plan_day(inputs: PlanInputs, day: date) -> DayPlan:
    """Plan every instance of ``day`` from ``inputs``. Pure and deterministic.

    The plan depends on the inputs and the date only: not on earlier plans,
    the order records arrived in, or the window. Warnings are data in the
    plan; nothing here raises for an expected planning outcome.
    """
    instances: list[Instance] = []
    applied: set[str] = set()
    # _remembered_instances, with what it remembers looked up here first:
    # most of a day's programs are answered from the memo, every day
    memos, key = inputs._memos or {}, ("instances", day)
    for program in inputs.organisation.programs:
        memo = memos.get(program.id)
        found = memo.get(key) if memo is not None else None
        made, used = found if found is not None else _remembered_instances(inputs, program, day)
        if made:
            instances += made
        if used:
            applied.update(used)
    warnings = [
        _orphan_warning(o, day, inputs)
        for o in inputs.one_offs_touching(day)
        if o.id not in applied
    ]
    instances.sort(key=lambda i: (i.start, i.program_id, i.id))
    instances = _with_resources(inputs, day, instances)
    if inputs.catalogue is not None:
        instances = [_remembered_billing(inputs, inputs.catalogue, day, i) for i in instances]
    return DayPlan(date=day, instances=tuple(instances), warnings=_in_order(warnings))


# What one program's records give on a day is remembered with the inputs,
# per program (PlanInputs._memo): after an edit only the days of the program
# it names are worked out again. Both memos below hold one entry per day or
# instance, so re-planning never makes them grow.


def _remembered_instances(
    inputs: PlanInputs, program: Program, day: date
) -> tuple[tuple[Instance, ...], Collection[str]]:
    """:func:`_program_instances` and the one-offs it applied, remembered by day."""
    memo = inputs._memo(program.id)
    key = ("instances", day)
    found = memo.get(key)
    if found is None:
        applied: set[str] = set()
        found = memo[key] = (
            tuple(_program_instances(inputs, program, day, applied)),
            # most programs do not run on most days: nothing applied is (),
            # a value the collector does not walk (an empty frozenset it does)
            frozenset(applied) if applied else (),
        )
    return found


def _remembered_billing(
    inputs: PlanInputs, catalogue: PriceCatalogue, day: date, inst: Instance
) -> Instance:
    """:func:`_billing` for the instance, remembered, and the instance billed.

    Billing reads, beyond the organisation and its own program's records
    (which keep the memo), only what :func:`_billed_asked` takes of the
    instance: an instance whose driver or other shifts changed bills as
    before. The very instance that came last time is answered at a glance.
    """
    memo = inputs._memo(inst.program_id)
    key = ("billed", day, inst.id)
    found = memo.get(key)
    if found is not None and found[0] is inst:
        return found[3]  # type: ignore[no-any-return]
    asked = _billed_asked(inst)
    if found is not None and found[1] == asked:
        lines, extra = found[2]
    else:
        lines, extra = _billing(inputs, catalogue, day, inst)
    billed = attrs.evolve(inst, billing_lines=lines, warnings=_in_order((*inst.warnings, *extra)))
    memo[key] = (inst, asked, (lines, extra), billed)
    return billed


def _billed_asked(inst: Instance) -> tuple[Any, ...]:
    """What billing reads of an instance: its times, status and who comes;
    how many leads and workers are rostered; the runs' vehicles, km and stops
    (whose riders share the costs)."""
    worked = [s.role for s in inst.shifts if s.role in ("lead", "support") and s.staff_id]
    return (
        inst.date,
        inst.start,
        inst.end,
        inst.status,
        inst.provenance,
        inst.allocations,
        len(worked),
        worked.count("lead"),
        [(r.vehicle_id, r.km, r.stops) for r in inst.bus_runs],
    )


def _program_instances(
    inputs: PlanInputs, program: Program, day: date, applied: set[str]
) -> list[Instance]:
    """The program's instances on ``day``: who comes, when and where; no resources yet.

    Adds to ``applied`` the ids of the one-offs that took effect.
    """
    instances: list[Instance] = []
    moves = _winning_moves_to(inputs, program.id, day)
    # most programs do not run on most days: two answers tell, not the
    # whole state
    if not moves and not _runs_on(inputs, program, day):
        return instances
    state = _state(inputs, program, day)
    if state.scheduled(day):
        moved_away = _winning_move_from(inputs, program.id, day)
        if moved_away is None:
            instances.append(_instance(inputs, program, state, day, day, None, applied))
        else:
            applied.add(moved_away.id)
    for move in moves:
        if _runs_on(inputs, program, move.date):
            instances.append(_instance(inputs, program, state, day, move.date, move, applied))
    return instances


def rosters(inputs: PlanInputs, program_id: str, day: date) -> list[Instance]:
    """The program's instances on ``day`` as :func:`plan_day` makes them, but
    without shifts, bus runs or billing: their allocations and status only.

    What checking an exception needs (who is on the instance), at the cost of
    one program instead of the whole day.
    """
    program = inputs.programs.get(program_id)
    return [] if program is None else list(_remembered_instances(inputs, program, day)[0])


def _with_resources(inputs: PlanInputs, day: date, instances: list[Instance]) -> list[Instance]:
    """Named shifts, bus runs and drivers across all of the day's instances.

    Each step is remembered for the day with what it read of the instances
    (the one entry kept per day is used again only when that is unchanged):
    an edit that changes who attends one instance re-plans that instance's
    bus runs and the drivers, not the shifts or the other instances' runs.
    An instance whose resources all came out the same comes out as the
    same object as last time.
    """
    memo = inputs._day_memo(day)
    staffed = _staff_asked(inputs, day, instances)
    shifts, staff_notes = remembered(
        memo, ("staff", day), staffed, lambda: assign_staff(inputs, day, instances)
    )
    runs, run_notes = plan_bus_runs(inputs, day, instances, inputs.transport)
    all_runs = [r for rs in runs.values() for r in rs]
    drivers, driver_shifts, driver_notes = remembered(
        memo,
        ("drivers", day),
        (staffed, [(r.id, r.departs, r.arrives) for r in all_runs]),
        lambda: assign_drivers(
            inputs, day, all_runs, shifts, {i.id: i.program_id for i in instances}
        ),
    )
    out = []
    for inst in instances:
        inst_runs = runs.get(inst.id, ())
        # what the instance comes out as depends on these alone: an
        # instance an edit did not touch comes out as the very same object
        # (which its billing, remembered next, sees at a glance)
        asked = (
            inst,
            shifts.get(inst.id, ()),
            driver_shifts.get(inst.id, ()),
            inst_runs,
            tuple(drivers.get(r.id, "") for r in inst_runs),
            staff_notes.get(inst.id, ()),
            driver_notes.get(inst.id, ()),
            run_notes.get(inst.id, ()),
        )
        out.append(
            remembered(memo, ("resourced", day, inst.id), asked, partial(_resourced, *asked))
        )
    return out


def _resourced(
    inst: Instance,
    shifts: tuple[Shift, ...],
    driver_shifts: tuple[Shift, ...],
    runs: tuple[BusRun, ...],
    drivers: tuple[str, ...],
    staff_notes: Iterable[tuple[str, str, str]],
    driver_notes: Iterable[tuple[str, str, str]],
    run_notes: Iterable[tuple[str, str, str]],
) -> Instance:
    """``inst`` with its shifts, its runs with their ``drivers`` and the notes as warnings."""
    extra = [
        *_as_warnings(inst, "record_id", (*staff_notes, *driver_notes)),
        *_as_warnings(inst, "participant_id", run_notes),
    ]
    return attrs.evolve(
        inst,
        shifts=(*shifts, *driver_shifts),
        bus_runs=tuple(attrs.evolve(r, driver_id=d) for r, d in zip(runs, drivers, strict=True)),
        warnings=_in_order((*inst.warnings, *extra)),
    )


def _as_warnings(
    inst: Instance, about: str, notes: Iterable[tuple[str, str, str]]
) -> list[PlanWarning]:
    """Each ``(code, message, id)`` note as a warning on ``inst``, the id as its ``about`` field."""
    return [
        PlanWarning(
            code=code,
            message=message,
            program_id=inst.program_id,
            instance_id=inst.id,
            **{about: subject},
        )
        for code, message, subject in notes
    ]


def _staff_asked(inputs: PlanInputs, day: date, instances: list[Instance]) -> list[Any]:
    """What :func:`assign_staff` reads of the day's instances and one-offs
    (beyond the organisation and leave): the swaps whole, not their ids,
    since what-ifs may give one id to different swaps; the pins with the
    ids of the intents that pin (a shift names its pin)."""
    return [
        (
            i.id,
            i.program_id,
            i.start,
            i.end,
            i.staff_demand,
            i.pinned_staff,
            pin_ids(inputs, i.program_id, day, i.pinned_staff),
            [o for o in inputs.one_offs_for(i.program_id, day) if isinstance(o, StaffSwap)],
        )
        for i in instances
        if i.status != "cancelled"
    ]


def _billing(
    inputs: PlanInputs, catalogue: PriceCatalogue, day: date, inst: Instance
) -> tuple[tuple[BillingLine, ...], list[PlanWarning]]:
    """The instance's billing lines, and warnings for their flags."""
    program = inputs.programs[inst.program_id]
    worked = [s for s in inst.shifts if s.filled and s.role in ("lead", "support")]
    items = {}
    for a in inst.allocations:
        choice = inputs.value(("items", inst.program_id, a.participant_id), day, None)
        if choice is not None:
            items[a.participant_id] = choice
    try:
        transport_costs, provisional_km = _transport_costs(inputs, catalogue, day, inst)
        lines = price_attendance(
            inst,
            catalogue=catalogue,
            holidays=inputs.holidays,
            ndis_numbers={
                a.participant_id: _ndis(inputs, a.participant_id) for a in inst.allocations
            },
            workers=len(worked),
            leads=sum(1 for s in worked if s.role == "lead"),
            settings=program.billing,
            participant_items=items,
            transport_costs=transport_costs,
            transport_provisional=provisional_km,
        )
    except (NoPriceLimitError, UnknownSupportItemError, InvalidBillingInputError) as e:
        # planning goes on whatever the billing data lacks: the instance says why
        return (), [_warning(inst, "billing-unavailable", f"{inst.id}: not billed: {e}")]
    flags = sorted({f for line in lines for f in line.flags})
    return lines, [_warning(inst, f, f"{inst.id}: {BILLING_FLAGS[f]}") for f in flags]


def _ndis(inputs: PlanInputs, participant_id: str) -> str:
    person = inputs.participants.get(participant_id)
    return person.ndis_number if person else ""


def _warning(inst: Instance, code: str, message: str) -> PlanWarning:
    return PlanWarning(code=code, message=message, program_id=inst.program_id, instance_id=inst.id)


def _transport_costs(
    inputs: PlanInputs, catalogue: PriceCatalogue, day: date, inst: Instance
) -> tuple[dict[str, Decimal], bool]:
    """Each rider's share of the vehicle costs of the instance's runs, in
    dollars; and whether a per-km limit was carried forward from an earlier
    year (none published for the day yet: the costs are provisional)."""
    costs: dict[str, Decimal] = {}
    provisional = False
    for run in inst.bus_runs:
        vehicle = inputs.vehicles.get(run.vehicle_id)
        if vehicle is None or not run.riders:
            continue
        found = catalogue.latest_km_rate_limit(vehicle.kind, day)
        if found is None:
            raise NoPriceLimitError(TRANSPORT_ITEM, day, f"km-{vehicle.kind}")
        provisional = provisional or not found.covers(day)
        limit = found.limit
        rate = limit if vehicle.cost_per_km is None else min(vehicle.cost_per_km, limit)
        share = transport_cost_per_rider(Decimal(str(run.km)), rate, len(run.riders))
        for rider in run.riders:
            costs[rider] = costs.get(rider, Decimal(0)) + share
    return costs, provisional


def _orphan_warning(o: OneOff, day: date, inputs: PlanInputs) -> PlanWarning:
    who = getattr(o, "participant_id", "")
    if isinstance(o, Reschedule) and o.date == day:
        what = f"the instance of {o.date.isoformat()} it moves is not scheduled"
    elif isinstance(o, Reschedule):
        what = f"it moves an instance of {o.date.isoformat()} that is not scheduled"
    elif who and has_instance(inputs, o.program_id, day):
        what = f"participant {who!r} is not on the instance"
    else:
        what = f"program {o.program_id!r} has no instance on {day.isoformat()}"
    return PlanWarning(
        code="orphaned-exception",
        message=f"{type(o).__name__} {o.id!r} does not apply: {what}",
        program_id=o.program_id,
        participant_id=who,
        record_id=o.id,
    )


def _local(day: date, t: time, zone: ZoneInfo) -> tuple[datetime, bool]:
    """Aware local datetime; a time in a DST gap moves later by the gap, and
    a time that happens twice is its first occurrence, whatever ``t.fold``
    says. (Two datetimes of one zone compare by wall time alone, so a plan
    whose times differed only in ``fold`` would compare equal to another
    and could be taken for it by what the planner remembers.)"""
    naive = datetime.combine(day, t).replace(fold=0)
    aware = naive.replace(tzinfo=zone)
    back = aware.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != naive:
        return back, True
    return aware, False


def _instance(
    inputs: PlanInputs,
    program: Program,
    state: _State,
    day: date,
    scheduled: date,
    move: Reschedule | None,
    applied: set[str],
) -> Instance:
    instance_id = f"{program.id}/{scheduled.isoformat()}"
    sources = set(state.sources)
    exceptions: set[str] = set()
    warnings: list[PlanWarning] = []
    start_time, end_time, venue_id = state.start_time, state.end_time, state.venue_id
    one_offs = inputs.one_offs_for(program.id, day)
    for change in (move, *(o for o in one_offs if isinstance(o, OneDayChange))):
        if change is None:
            continue
        exceptions.add(change.id)
        start_time = change.start_time or start_time
        end_time = change.end_time or end_time
        venue_id = change.venue_id or venue_id
    cancellations = [o for o in one_offs if isinstance(o, Cancellation)]
    exceptions.update(c.id for c in cancellations)
    exceptions.update(o.id for o in one_offs if isinstance(o, StaffSwap))

    allocations, roster_exceptions, roster_warnings = _roster(
        inputs, program.id, day, one_offs, cancellations
    )
    exceptions |= roster_exceptions
    warnings += roster_warnings
    applied |= exceptions

    start, moved_start = _local(day, start_time, inputs.zone)
    end, moved_end = _local(day, end_time, inputs.zone)
    if end <= start:
        # times from different records (or a DST gap) can cross: warn, never invert
        warnings.append(
            PlanWarning(
                code="invalid-times",
                message=f"{instance_id}: ends {end_time.isoformat('minutes')}, not after its "
                f"start {start_time.isoformat('minutes')}; planned with no length",
                program_id=program.id,
                instance_id=instance_id,
            )
        )
        end = start
    if moved_start or moved_end:
        warnings.append(
            PlanWarning(
                code="dst-adjusted",
                message=f"{instance_id}: local time does not exist on {day.isoformat()}; "
                f"runs {start.time().isoformat('minutes')}–{end.time().isoformat('minutes')}",
                program_id=program.id,
                instance_id=instance_id,
            )
        )
    attending = [a for a in allocations if a.status == "attending"]
    load = sum(
        (inputs.participants[a.participant_id].supervision_weight for a in attending), Decimal(0)
    )
    leads, support = state.staffing.demand(len(attending), load)
    riders = [inputs.participants[a.participant_id] for a in attending]
    transport = (
        TransportDemand(
            riders=sum(1 for p in riders if p.needs_transport),
            wheelchair_riders=sum(1 for p in riders if p.needs_transport and p.wheelchair),
        )
        if state.transport
        else TransportDemand()
    )
    pinned_staff = _pinned(inputs, "staff", program.id, day, sources)
    pinned_vehicles = _pinned(inputs, "vehicle", program.id, day, sources)
    warnings += _capacity_warnings(inputs, program, instance_id, venue_id, len(attending))
    if not attending and not cancellations:
        warnings.append(
            PlanWarning(
                code="empty-instance",
                message=f"{instance_id}: nobody is attending",
                program_id=program.id,
                instance_id=instance_id,
            )
        )
    overridden = state.overridden or bool(pinned_staff or pinned_vehicles)
    origin = "exception" if exceptions else ("intent" if overridden else "generated")
    return Instance(
        id=instance_id,
        program_id=program.id,
        program_name=program.name,
        date=day,
        scheduled_date=scheduled,
        status="cancelled" if cancellations else "scheduled",
        start=start,
        end=end,
        venue_id=venue_id,
        origin=origin,
        provenance=tuple(sorted(sources | exceptions)),
        allocations=tuple(allocations),
        staff_demand=StaffDemand(leads=leads, support=support),
        transport=state.transport,
        transport_demand=transport,
        pinned_staff=pinned_staff,
        pinned_vehicles=pinned_vehicles,
        cancellation_reason=cancellations[-1].reason if cancellations else "",
        warnings=_in_order(warnings),
    )


def _pinned(
    inputs: PlanInputs, kind: str, program_id: str, day: date, sources: set[str]
) -> tuple[str, ...]:
    named = inputs.named_on(kind, program_id, day)
    sources.update(source for _, source in named)
    return tuple(subject for subject, _ in named)


def _capacity_warnings(
    inputs: PlanInputs, program: Program, instance_id: str, venue_id: str, attending: int
) -> Iterable[PlanWarning]:
    venue = inputs.venues.get(venue_id)
    if venue is None:
        yield PlanWarning(
            code="unknown-reference",
            message=f"{instance_id}: venue {venue_id!r} is not known",
            program_id=program.id,
            instance_id=instance_id,
        )
    elif attending > venue.capacity:
        yield PlanWarning(
            code="venue-over-capacity",
            message=f"{instance_id}: {attending} attending, venue {venue_id!r} holds "
            f"{venue.capacity}",
            program_id=program.id,
            instance_id=instance_id,
        )


def _roster(
    inputs: PlanInputs,
    program_id: str,
    day: date,
    one_offs: tuple[OneOff, ...],
    cancellations: list[Cancellation],
) -> tuple[list[Allocation], set[str], list[PlanWarning]]:
    """Allocations (sorted by participant), one-offs applied, warnings."""
    provenance = {pid: [source] for pid, source in inputs.named_on("enrolled", program_id, day)}
    extra: set[str] = set()
    absences: dict[str, Absence] = {}
    for o in one_offs:  # oldest first, so the latest absence per person wins
        if isinstance(o, ExtraAttendance):
            provenance.setdefault(o.participant_id, []).append(o.id)
            extra.add(o.id)
        elif isinstance(o, Absence):
            absences[o.participant_id] = o
    applied = set(extra)
    warnings: list[PlanWarning] = []
    allocations: list[Allocation] = []
    for pid in sorted(provenance):
        if pid not in inputs.participants:
            warnings.append(
                PlanWarning(
                    code="unknown-reference",
                    message=f"participant {pid!r} is enrolled in {program_id!r} but not known",
                    program_id=program_id,
                    participant_id=pid,
                )
            )
            continue
        allocations.append(
            _allocation(pid, provenance[pid], absences.get(pid), cancellations, extra)
        )
        if pid in absences:
            applied.add(absences[pid].id)
    return allocations, applied, warnings


def _allocation(
    pid: str,
    sources: list[str],
    absence: Absence | None,
    cancellations: list[Cancellation],
    extra: set[str],
) -> Allocation:
    exception_ids = [s for s in sources if s in extra]
    if absence is not None:
        return Allocation(
            participant_id=pid,
            status="cancelled",
            origin="exception",
            provenance=tuple(sorted({*sources, absence.id})),
            reason=absence.reason,
            reason_code=absence.reason_code,
            notified_on=absence.notified_on,
            notice_days=absence.clear_days_notice(),
            no_show=absence.no_show,
        )
    if cancellations:
        c = cancellations[-1]
        return Allocation(
            participant_id=pid,
            status="cancelled",
            origin="exception",
            provenance=tuple(sorted({*sources, *(x.id for x in cancellations)})),
            reason=c.reason or "instance cancelled",
        )
    origin = "exception" if exception_ids and len(exception_ids) == len(sources) else "intent"
    # the same attendance comes back week after week: one object for it
    key = (pid, origin, *sources)
    found = _ATTENDING.get(key)
    if found is None:
        made = Allocation(
            participant_id=pid,
            status="attending",
            origin=origin,
            provenance=tuple(sorted(set(sources))),
        )
        found = keep(_ATTENDING, key, made, _MOST_ATTENDING)
    return found


_ATTENDING: dict[tuple[str, ...], Allocation] = {}
_MOST_ATTENDING = 16384
