"""Hypothesis strategies for loomcore: the one place they live.

Everything is kept small on purpose (a handful of venues, people and
programs; dates in a ten-week range; short operation sequences) so the
property suite stays fast on a small machine while still reaching the
interesting corners: ties in ``recorded_at``, overlapping intents with and
without an end, one-offs that become orphaned, reschedules, DST days (the
date range spans the first Sunday of April 2026, when Sydney leaves daylight
saving).

Dates are drawn as offsets from :data:`BASE` so a failing example reads as
"day 12" rather than a random calendar date.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from hypothesis import strategies as st

from loomcore import (
    Absence,
    Cancellation,
    Enrolment,
    ExtraAttendance,
    Fortnightly,
    Intent,
    Location,
    OneDayChange,
    OneOff,
    Organisation,
    Participant,
    Program,
    ProgramChange,
    Record,
    Recurrence,
    Reschedule,
    RRule,
    Staff,
    StaffingRule,
    StaffLeave,
    StaffPin,
    StaffReturn,
    StaffSwap,
    StaffUnpin,
    Vehicle,
    VehicleMaintenance,
    VehiclePin,
    VehicleReturn,
    VehicleUnpin,
    Venue,
    Weekday,
    Weekly,
    Withdrawal,
)

SYDNEY = ZoneInfo("Australia/Sydney")

#: A Monday. The range below crosses 2026-04-05, when daylight saving ends.
BASE = date(2026, 3, 16)
#: Record dates fall in ``[BASE - LEAD_DAYS, BASE + SPAN_DAYS - 1]``.
LEAD_DAYS = 7
SPAN_DAYS = 70

#: The moment the service clock starts at: 10:00 local on ``BASE``.
START = datetime.combine(BASE, time(10, 0), tzinfo=SYDNEY).astimezone(UTC)

#: Ids that name nothing, to reach the service's "unknown id" errors.
GHOST = "ghost"


def day_at(offset: int) -> date:
    """``BASE`` plus ``offset`` days."""
    return BASE + timedelta(days=offset)


def days_in_range() -> list[date]:
    """Every date records may name, in order."""
    return [day_at(k) for k in range(-LEAD_DAYS, SPAN_DAYS)]


def dates() -> st.SearchStrategy[date]:
    """A date in the record range."""
    return st.integers(-LEAD_DAYS, SPAN_DAYS - 1).map(day_at)


# --------------------------------------------------------------------------- clock


class ManualClock:
    """A clock that only moves when told to. Returns aware UTC datetimes."""

    def __init__(self, now: datetime = START) -> None:
        if now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self.now = now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new instant."""
        self.now += delta
        return self.now

    def set(self, now: datetime) -> None:
        """Jump to ``now`` (aware)."""
        self.now = now.astimezone(UTC)


class IdCounter:
    """Deterministic record ids that sort in the order they were made."""

    def __init__(self, prefix: str = "r") -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n:04d}"


# --------------------------------------------------------------------------- reference data

_WEEKDAYS = list(Weekday)
_BYDAY = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def weekday_sets() -> st.SearchStrategy[frozenset[Weekday]]:
    """One to three weekdays."""
    return st.frozensets(st.sampled_from(_WEEKDAYS), min_size=1, max_size=3)


@st.composite
def rrules(draw: st.DrawFn) -> RRule:
    """A handful of RRULE shapes providers actually use."""
    day = draw(st.sampled_from(_BYDAY))
    text = draw(
        st.sampled_from(
            (
                f"FREQ=WEEKLY;INTERVAL=2;BYDAY={day}",
                f"FREQ=WEEKLY;BYDAY={day},{_BYDAY[(_BYDAY.index(day) + 2) % 7]}",
                "FREQ=MONTHLY;BYDAY=1SA",
                f"FREQ=MONTHLY;BYDAY=-1{day}",
                "FREQ=DAILY;INTERVAL=3",
            )
        )
    )
    dtstart = draw(st.integers(-28, 14).map(day_at))
    wkst = draw(st.sampled_from((Weekday.MO, Weekday.SU)))
    return RRule(rule=text, dtstart=dtstart, wkst=wkst)


def recurrences() -> st.SearchStrategy[Recurrence]:
    """Weekly, Fortnightly (Week A or B of an anchor) or an RRULE."""
    return st.one_of(
        st.builds(Weekly, weekdays=weekday_sets()),
        st.builds(
            Fortnightly,
            weekdays=weekday_sets(),
            anchor=st.integers(-21, 21).map(day_at),
            week=st.sampled_from(("A", "B")),
        ),
        rrules(),
    )


#: Start and end times, including ones that touch the DST changeover hours.
_TIME_PAIRS = (
    (time(9, 0), time(15, 0)),
    (time(10, 0), time(14, 30)),
    (time(1, 0), time(4, 0)),
    (time(2, 30), time(5, 0)),
    (time(17, 0), time(21, 0)),
    (time(0, 0), time(23, 45)),
)


def time_pairs() -> st.SearchStrategy[tuple[time, time]]:
    """A (start, end) pair with end after start."""
    fixed = st.sampled_from(_TIME_PAIRS)
    free = st.tuples(st.integers(0, 22), st.integers(1, 8), st.sampled_from((0, 15, 30, 45))).map(
        lambda t: (time(t[0], t[2]), time(min(t[0] + t[1], 23), t[2]))
    )
    return st.one_of(fixed, free)


def staffing_rules() -> st.SearchStrategy[StaffingRule]:
    """Leads 0..2, one support per 1..6, weighted or not."""
    return st.builds(
        StaffingRule,
        leads=st.integers(0, 2),
        participants_per_support=st.integers(1, 6),
        weighted=st.booleans(),
    )


_WEIGHTS = (Decimal(1), Decimal(1), Decimal("0.5"), Decimal("1.5"), Decimal(2), Decimal(3))


def _location() -> st.SearchStrategy[Location]:
    return st.builds(
        Location,
        lat=st.floats(-34.0, -33.6, allow_nan=False),
        lon=st.floats(150.7, 151.3, allow_nan=False),
    )


@st.composite
def organisations(draw: st.DrawFn) -> Organisation:
    """2-3 venues, 4-10 participants, 2-5 staff, 1-2 vehicles, 2-4 programs."""
    venues = [
        Venue(id=f"v{i}", name=f"Venue {i}", capacity=draw(st.integers(0, 6)))
        for i in range(1, draw(st.integers(2, 3)) + 1)
    ]
    participants = []
    for i in range(1, draw(st.integers(4, 10)) + 1):
        transport = draw(st.booleans())
        participants.append(
            Participant(
                id=f"p{i:02d}",
                name=f"Participant {i}",
                needs_transport=transport,
                wheelchair=transport and draw(st.booleans()),
                pickup=draw(_location()) if transport else None,
                supervision_weight=draw(st.sampled_from(_WEIGHTS)),
            )
        )
    staff = [
        Staff(
            id=f"s{i}",
            name=f"Staff {i}",
            lead_capable=draw(st.booleans()),
            driver=draw(st.booleans()),
        )
        for i in range(1, draw(st.integers(2, 5)) + 1)
    ]
    vehicles = [
        Vehicle(
            id=f"bus{i}",
            name=f"Bus {i}",
            seats=draw(st.integers(3, 12)),
            wheelchair_places=draw(st.integers(0, 2)),
        )
        for i in range(1, draw(st.integers(1, 2)) + 1)
    ]
    programs = []
    for i in range(1, draw(st.integers(2, 4)) + 1):
        start_time, end_time = draw(time_pairs())
        active_from = day_at(draw(st.integers(-40, 21)))
        until = draw(st.none() | st.integers(0, 70))
        programs.append(
            Program(
                id=f"prog{i}",
                name=f"Program {i}",
                recurrence=draw(recurrences()),
                start_time=start_time,
                end_time=end_time,
                venue_id=draw(st.sampled_from([v.id for v in venues])),
                staffing=draw(staffing_rules()),
                transport=draw(st.booleans()),
                active_from=active_from,
                active_until=None if until is None else active_from + timedelta(days=until),
            )
        )
    return Organisation(
        name="Harbour Supports",
        venues=venues,
        participants=participants,
        staff=staff,
        vehicles=vehicles,
        programs=programs,
    )


# --------------------------------------------------------------------------- records


def _weighted_ids(ids: Sequence[str], ghosts: bool) -> st.SearchStrategy[str]:
    real = st.sampled_from(list(ids))
    if not ghosts:
        return real
    # Mostly real ids; a ghost now and then reaches the unknown-id errors.
    return st.integers(0, 19).flatmap(lambda n: st.just(GHOST) if n == 0 else real)


@st.composite
def _span(draw: st.DrawFn) -> tuple[date, date | None]:
    start = draw(dates())
    length = draw(st.none() | st.integers(0, 28))
    return start, None if length is None else start + timedelta(days=length)


@st.composite
def program_changes(draw: st.DrawFn, org: Organisation, program_id: str) -> dict[str, Any]:
    """A random, non-empty subset of the fields a :class:`ProgramChange` can set."""
    fields: dict[str, Any] = {}
    names = draw(
        st.lists(
            st.sampled_from(
                ("times", "start_time", "venue_id", "recurrence", "staffing", "transport", "runs")
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    for name in names:
        if name == "times":
            fields["start_time"], fields["end_time"] = draw(time_pairs())
        elif name == "start_time":
            if "end_time" not in fields:  # keep a drawn (start, end) pair whole
                fields["start_time"] = draw(time_pairs())[0]
        elif name == "venue_id":
            fields["venue_id"] = draw(_weighted_ids([v.id for v in org.venues], ghosts=True))
        elif name == "recurrence":
            fields["recurrence"] = draw(recurrences())
        elif name == "staffing":
            fields["staffing"] = draw(staffing_rules())
        elif name == "transport":
            fields["transport"] = draw(st.booleans())
        else:
            fields["runs"] = draw(st.booleans())
    return fields


@st.composite
def intents(draw: st.DrawFn, org: Organisation, *, ghosts: bool = True) -> Intent:
    """Enrolment, Withdrawal, ProgramChange, Staff/Vehicle (un)pin, leave and
    maintenance (and their returns), ids left empty."""
    program_id = draw(_weighted_ids([p.id for p in org.programs], ghosts))
    start, end = draw(_span())
    common: dict[str, Any] = {"program_id": program_id, "start": start, "end": end}
    kind = draw(
        st.sampled_from(
            (
                Enrolment,
                Enrolment,
                Enrolment,
                Withdrawal,
                Withdrawal,
                ProgramChange,
                ProgramChange,
                StaffPin,
                StaffUnpin,
                VehiclePin,
                VehicleUnpin,
                StaffLeave,
                StaffReturn,
                VehicleMaintenance,
                VehicleReturn,
            )
        )
    )
    if kind in (StaffLeave, StaffReturn):  # about a person, not a program
        sid = draw(_weighted_ids([s.id for s in org.staff], ghosts))
        return kind(staff_id=sid, start=start, end=end)
    if kind in (VehicleMaintenance, VehicleReturn):  # about a vehicle, not a program
        vid = draw(_weighted_ids([v.id for v in org.vehicles], ghosts))
        return kind(vehicle_id=vid, start=start, end=end)
    if kind in (Enrolment, Withdrawal):
        pid = draw(_weighted_ids([p.id for p in org.participants], ghosts))
        return kind(participant_id=pid, **common)
    if kind is ProgramChange:
        return ProgramChange(**common, **draw(program_changes(org, program_id)))
    if kind in (StaffPin, StaffUnpin):
        sid = draw(_weighted_ids([s.id for s in org.staff], ghosts))
        return kind(staff_id=sid, **common)
    vid = draw(_weighted_ids([v.id for v in org.vehicles], ghosts))
    return kind(vehicle_id=vid, **common)  # type: ignore[no-any-return]


def template_dates(program: Program) -> list[date]:
    """Dates in range on which the program's template (no intents) runs."""
    return [
        d
        for d in days_in_range()
        if program.active_from <= d
        and (program.active_until is None or d <= program.active_until)
        and program.recurrence.runs_on(d)
    ]


@st.composite
def one_off_dates(draw: st.DrawFn, org: Organisation, program_id: str) -> date:
    """Mostly a date the program's template runs on (so the one-off is accepted)."""
    program = next((p for p in org.programs if p.id == program_id), None)
    runs = template_dates(program) if program is not None else []
    if runs and draw(st.integers(0, 3)) > 0:
        return draw(st.sampled_from(runs))
    return draw(dates())


@st.composite
def one_offs(draw: st.DrawFn, org: Organisation, *, ghosts: bool = True) -> OneOff:
    """Cancellation, Absence, OneDayChange, ExtraAttendance, Reschedule or
    StaffSwap, ids left empty."""
    program_id = draw(_weighted_ids([p.id for p in org.programs], ghosts))
    day = draw(one_off_dates(org, program_id))
    kind = draw(
        st.sampled_from(
            (Cancellation, Absence, Absence, OneDayChange, ExtraAttendance, Reschedule, StaffSwap)
        )
    )
    participants = [p.id for p in org.participants]
    if kind is StaffSwap:
        staff = [s.id for s in org.staff]
        in_staff = draw(_weighted_ids(staff, ghosts))
        out_staff = draw(st.just("") | st.sampled_from(staff).filter(lambda s: s != in_staff))
        return StaffSwap(
            program_id=program_id, date=day, in_staff_id=in_staff, out_staff_id=out_staff
        )
    if kind is Cancellation:
        return Cancellation(
            program_id=program_id, date=day, reason=draw(st.sampled_from(("", "rain")))
        )
    if kind is Absence:
        no_show = draw(st.booleans())
        notice = None if no_show else draw(st.none() | st.integers(0, 10))
        return Absence(
            program_id=program_id,
            date=day,
            participant_id=draw(_weighted_ids(participants, ghosts)),
            reason_code=draw(st.sampled_from(("NSDH", "NSDF", "NSDT", "NSDO"))),
            no_show=no_show,
            notified_on=None if notice is None else day - timedelta(days=notice),
        )
    if kind is ExtraAttendance:
        return ExtraAttendance(
            program_id=program_id,
            date=day,
            participant_id=draw(_weighted_ids(participants, ghosts)),
        )
    times = draw(st.none() | time_pairs())
    venue = draw(st.none() | _weighted_ids([v.id for v in org.venues], ghosts))
    if kind is OneDayChange:
        if times is None and venue is None:
            times = draw(time_pairs())
        return OneDayChange(
            program_id=program_id,
            date=day,
            start_time=None if times is None else times[0],
            end_time=None if times is None else times[1],
            venue_id=venue,
        )
    to_date = draw(dates().filter(lambda d: d != day))
    return Reschedule(
        program_id=program_id,
        date=day,
        to_date=to_date,
        start_time=None if times is None else times[0],
        end_time=None if times is None else times[1],
        venue_id=venue,
    )


def records(org: Organisation, *, ghosts: bool = True) -> st.SearchStrategy[Record]:
    """An intent or a one-off (intents a little more often)."""
    return st.one_of(intents(org, ghosts=ghosts), one_offs(org, ghosts=ghosts))


@st.composite
def enrolments(draw: st.DrawFn, org: Organisation) -> list[Enrolment]:
    """Open enrolments from before ``BASE``: a roster for absences to act on."""
    pairs = draw(
        st.lists(
            st.tuples(
                st.sampled_from([p.id for p in org.programs]),
                st.sampled_from([p.id for p in org.participants]),
            ),
            min_size=1,
            max_size=8,
            unique=True,
        )
    )
    return [
        Enrolment(program_id=prog, participant_id=pid, start=day_at(-LEAD_DAYS))
        for prog, pid in pairs
    ]


# --------------------------------------------------------------------------- planning inputs

#: A few instants records are stamped with, close together so ties happen.
RECORDED_AT = tuple(START + timedelta(minutes=m) for m in (0, 0, 1, 5, 60))


@st.composite
def stamped_records(draw: st.DrawFn, org: Organisation, max_size: int = 14) -> list[Record]:
    """Records as a store holds them: unique ids and ``recorded_at``, ties included."""
    raw = draw(st.lists(records(org), max_size=max_size))
    # Ids are shuffled against drawing order so id order is not recording order.
    order = draw(st.permutations(range(len(raw))))
    return [
        attrs.evolve(
            r,
            id=f"x{order[i]:02d}",
            recorded_at=draw(st.sampled_from(RECORDED_AT)),
            recorded_by="hypothesis",
        )
        for i, r in enumerate(raw)
    ]


@st.composite
def scenarios(draw: st.DrawFn, max_records: int = 14) -> tuple[Organisation, list[Record]]:
    """An organisation and records stamped as if stored (orphans and ghosts allowed)."""
    org = draw(organisations())
    return org, draw(stamped_records(org, max_records))


# --------------------------------------------------------------------------- service operations


@attrs.frozen
class RecordOp:
    """``loom.record(record)``."""

    record: Record


@attrs.frozen
class RetractOp:
    """``loom.retract(ids[pick % len(ids)])`` over every id recorded so far (or a ghost)."""

    pick: int


@attrs.frozen
class ResizeOp:
    """``loom.resize_window(weeks)``; 0, 1 and 17 are invalid on purpose."""

    weeks: int


@attrs.frozen
class AdvanceOp:
    """Move the clock forward by ``days`` (and ``hours``), then roll when ``roll``."""

    days: int
    hours: int = 0
    roll: bool = True


Op = RecordOp | RetractOp | ResizeOp | AdvanceOp


def window_sizes() -> st.SearchStrategy[int]:
    """Mostly a valid window size (2..16, small ones more often), sometimes not."""
    return st.sampled_from((0, 1, 17, 2, 3, 4, 5, 16)) | st.integers(2, 16)


def operations(org: Organisation) -> st.SearchStrategy[Op]:
    """One service operation; recording is the most common."""
    record = records(org).map(RecordOp)
    retract = st.integers(0, 50).map(RetractOp)
    resize = window_sizes().map(ResizeOp)
    advance = st.builds(
        AdvanceOp,
        days=st.integers(0, 3),
        hours=st.sampled_from((0, 0, 7, 15)),
        roll=st.booleans(),
    )
    # Weighted by repetition: about half the operations record something.
    choices: tuple[st.SearchStrategy[Op], ...] = (
        record,
        record,
        record,
        record,
        retract,
        resize,
        advance,
        advance,
    )
    return st.sampled_from(choices).flatmap(lambda s: s)


@st.composite
def service_runs(
    draw: st.DrawFn, max_ops: int = 12
) -> tuple[Organisation, list[Enrolment], list[Op]]:
    """An organisation, a starting roster, and a sequence of operations on the service."""
    org = draw(organisations())
    return org, draw(enrolments(org)), draw(st.lists(operations(org), min_size=1, max_size=max_ops))
