"""Bad input: a clear LoomError subclass naming the culprit, and the store unchanged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

import pytest

from builders import Clock, local, make_loom, seed_organisation
from loomcore import (
    Absence,
    AlreadyRetractedError,
    BillingSettings,
    Cancellation,
    DayOutsideWindowError,
    DuplicateIdError,
    Enrolment,
    ExtraAttendance,
    Fortnightly,
    InvalidBillingInputError,
    InvalidDateRangeError,
    InvalidRecordError,
    InvalidWindowError,
    ItemChoice,
    Location,
    Loom,
    LoomError,
    MemoryStore,
    NoInstanceError,
    OneDayChange,
    Organisation,
    Participant,
    Program,
    ProgramChange,
    Record,
    Reschedule,
    Retraction,
    RRule,
    Staff,
    StaffLeave,
    StaffPin,
    Store,
    UnknownParticipantError,
    UnknownProgramError,
    UnknownRecordError,
    UnknownStaffError,
    UnknownVehicleError,
    UnknownVenueError,
    Vehicle,
    VehiclePin,
    Venue,
    Weekday,
    Weekly,
    describe,
    window_for,
)


@pytest.fixture
def loom(any_store: Store) -> Loom:
    loom = make_loom(Clock(local(2026, 10, 1)), weeks=4, store=any_store)
    loom.record(
        Enrolment(
            id="e-john", program_id="centre-wed", participant_id="john", start=date(2026, 1, 1)
        )
    )
    return loom


def snapshot(loom: Loom) -> tuple[object, ...]:
    s = loom.store
    return (
        s.revision(),
        s.records(),
        s.retractions(),
        s.planned_days(),
        s.window_weeks(),
        s.organisation(),
        len(s.audit_log()),
    )


WED = date(2026, 10, 7)
TUE = date(2026, 10, 6)
THU = date(2026, 10, 8)

# (call, expected error, attributes the error must carry)
BAD_CALLS: list[tuple[str, Callable[[Loom], object], type[LoomError], dict[str, object]]] = [
    ("window 1 week", lambda lm: lm.resize_window(1), InvalidWindowError, {"weeks": 1}),
    ("window 17 weeks", lambda lm: lm.resize_window(17), InvalidWindowError, {"weeks": 17}),
    ("window as text", lambda lm: lm.resize_window("4"), InvalidWindowError, {"weeks": "4"}),  # type: ignore[arg-type]
    (
        "unknown program",
        lambda lm: lm.record(Enrolment(program_id="nope", participant_id="john", start=WED)),
        UnknownProgramError,
        {"id": "nope"},
    ),
    (
        "unknown participant",
        lambda lm: lm.record(Enrolment(program_id="centre-wed", participant_id="zed", start=WED)),
        UnknownParticipantError,
        {"id": "zed"},
    ),
    (
        "unknown staff",
        lambda lm: lm.record(StaffPin(program_id="centre-wed", staff_id="ghost", start=WED)),
        UnknownStaffError,
        {"id": "ghost"},
    ),
    (
        "unknown vehicle",
        lambda lm: lm.record(VehiclePin(program_id="centre-wed", vehicle_id="van9", start=WED)),
        UnknownVehicleError,
        {"id": "van9"},
    ),
    (
        "unknown venue in a change",
        lambda lm: lm.record(ProgramChange(program_id="centre-wed", start=WED, venue_id="moon")),
        UnknownVenueError,
        {"id": "moon"},
    ),
    (
        "exception on a date with no instance",
        lambda lm: lm.record(Cancellation(program_id="centre-wed", date=TUE)),
        NoInstanceError,
        {"program_id": "centre-wed", "day": TUE},
    ),
    (
        "reschedule of a date with no instance",
        lambda lm: lm.record(
            Reschedule(program_id="centre-wed", date=TUE, to_date=date(2026, 10, 9))
        ),
        NoInstanceError,
        {"program_id": "centre-wed", "day": TUE},
    ),
    (
        "absence of someone not on the instance",
        lambda lm: lm.record(Absence(program_id="centre-wed", participant_id="sarah", date=WED)),
        InvalidRecordError,
        {"field": "participant_id"},
    ),
    (
        "extra attendance of someone already attending",
        lambda lm: lm.record(
            ExtraAttendance(program_id="centre-wed", participant_id="john", date=WED)
        ),
        InvalidRecordError,
        {"field": "participant_id"},
    ),
    (
        "duplicate record id",
        lambda lm: lm.record(
            Enrolment(id="e-john", program_id="sun-social", participant_id="john", start=WED)
        ),
        DuplicateIdError,
        {"id": "e-john"},
    ),
    ("retract unknown id", lambda lm: lm.retract("nope"), UnknownRecordError, {"id": "nope"}),
    (
        "instances of an unknown program",
        lambda lm: lm.instances(WED, WED, program_id="nope"),
        UnknownProgramError,
        {"id": "nope"},
    ),
    (
        "instances of an unknown participant",
        lambda lm: lm.instances(WED, WED, participant_id="nope"),
        UnknownParticipantError,
        {"id": "nope"},
    ),
    (
        "instances range backwards",
        lambda lm: lm.instances(WED, TUE),
        InvalidDateRangeError,
        {"start": WED, "end": TUE},
    ),
    (
        "regenerate a day after the window",
        lambda lm: lm.regenerate_day(date(2027, 1, 1)),
        DayOutsideWindowError,
        {"day": date(2027, 1, 1)},
    ),
    (
        "purge into the window",
        lambda lm: lm.purge(date(2026, 10, 5)),
        DayOutsideWindowError,
        {"day": date(2026, 10, 5)},
    ),
    (
        "intents of an unknown program",
        lambda lm: lm.intents(program_id="nope"),
        UnknownProgramError,
        {"id": "nope"},
    ),
    (
        "exceptions of an unknown participant",
        lambda lm: lm.one_offs(participant_id="nope"),
        UnknownParticipantError,
        {"id": "nope"},
    ),
    (
        "a naive now",
        lambda lm: lm.roll(datetime(2026, 10, 2, 0, 5)),
        InvalidRecordError,
        {},
    ),
    (
        "load with an id already stored",
        lambda lm: lm.load(
            seed_organisation(),
            [Enrolment(id="e-john", program_id="sun-social", participant_id="john", start=WED)],
        ),
        DuplicateIdError,
        {"id": "e-john"},
    ),
    (
        "drop a program that records name",
        lambda lm: lm.set_organisation(
            Organisation(
                venues=seed_organisation().venues,
                participants=seed_organisation().participants,
            )
        ),
        UnknownProgramError,
        {"id": "centre-wed"},
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "attrs"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_bad_call_raises_named_error_and_changes_nothing(
    loom: Loom, call: Callable[[Loom], object], error: type[LoomError], attrs: dict[str, object]
) -> None:
    before = snapshot(loom)
    with pytest.raises(error) as info:
        call(loom)
    for name, value in attrs.items():
        assert getattr(info.value, name) == value
    message = str(info.value)
    for name, value in attrs.items():
        if isinstance(value, date):
            assert value.isoformat() in message
        elif name != "field":  # the field is an attribute for hosts, not prose
            assert str(value) in message
    assert snapshot(loom) == before


def test_extra_attendance_of_someone_absent_that_day_is_refused(loom: Loom) -> None:
    loom.record(Absence(program_id="centre-wed", participant_id="john", date=WED))
    before = snapshot(loom)
    with pytest.raises(InvalidRecordError, match="retract it"):
        loom.record(ExtraAttendance(program_id="centre-wed", participant_id="john", date=WED))
    assert snapshot(loom) == before


def test_retracting_twice_is_refused(loom: Loom) -> None:
    loom.retract("e-john", by="ops")
    before = snapshot(loom)
    with pytest.raises(AlreadyRetractedError, match="e-john"):
        loom.retract("e-john")
    assert snapshot(loom) == before


def test_errors_also_subclass_the_builtin_they_resemble() -> None:
    assert issubclass(InvalidWindowError, ValueError)
    assert issubclass(UnknownProgramError, LookupError)
    assert issubclass(NoInstanceError, ValueError)
    assert issubclass(InvalidDateRangeError, ValueError)
    with pytest.raises(InvalidWindowError):
        window_for(date(2026, 10, 1), 17)


def _program(**kw: object) -> Program:
    fields: dict[str, object] = {
        "id": "p",
        "name": "P",
        "recurrence": Weekly(weekdays=["MO"]),
        "start_time": time(9),
        "end_time": time(15),
        "venue_id": "v",
        "active_from": date(2026, 1, 1),
    }
    fields.update(kw)
    return Program(**fields)  # type: ignore[arg-type]


# (description, builder, error, text the message must contain)
A_DATE_AS_TEXT: Any = "2026-10-07"  # what a caller who skipped parsing passes

BAD_VALUES: list[tuple[str, Callable[[], object], type[LoomError], str]] = [
    (
        "intent ends before it starts",
        lambda: Enrolment(id="e1", program_id="p", participant_id="a", start=WED, end=TUE),
        InvalidDateRangeError,
        "2026-10-07 > 2026-10-06",
    ),
    (
        "program ends before it starts",
        lambda: _program(end_time=time(8)),
        InvalidRecordError,
        "'p'",
    ),
    (
        "program active_until before active_from",
        lambda: _program(active_until=date(2025, 1, 1)),
        InvalidRecordError,
        "active_until",
    ),
    ("no weekdays", lambda: Weekly(weekdays=[]), InvalidRecordError, "weekday"),
    ("unknown weekday", lambda: Weekly(weekdays=["XX"]), InvalidRecordError, "'XX'"),
    ("a weekday's first letters", lambda: Weekly(weekdays=["frog"]), InvalidRecordError, "'frog'"),
    ("weekdays in one string", lambda: Weekly(weekdays=["MO,WE"]), InvalidRecordError, "'MO,WE'"),
    (
        "unknown week start",
        lambda: RRule(rule="FREQ=WEEKLY", dtstart=WED, wkst="XX"),
        InvalidRecordError,
        "'XX'",
    ),
    (
        "intent starting at a datetime",
        lambda: Enrolment(program_id="p", participant_id="a", start=datetime(2026, 10, 7, 9)),
        InvalidRecordError,
        "Enrolment.start must be a date",
    ),
    (
        "intent ending at a text",
        lambda: Enrolment(program_id="p", participant_id="a", start=WED, end=A_DATE_AS_TEXT),
        InvalidRecordError,
        "Enrolment.end must be a date",
    ),
    (
        "exception dated by a text",
        lambda: Absence(program_id="p", participant_id="a", date=A_DATE_AS_TEXT),
        InvalidRecordError,
        "Absence.date must be a date",
    ),
    (
        "program active from a datetime",
        lambda: _program(active_from=datetime(2026, 1, 1)),
        InvalidRecordError,
        "Program.active_from must be a date",
    ),
    (
        "fortnight week C",
        lambda: Fortnightly(weekdays=["MO"], anchor=WED, week="C"),
        InvalidRecordError,
        "'C'",
    ),
    (
        "bad RRULE",
        lambda: RRule(rule="FREQ=SOMETIMES", dtstart=WED),
        InvalidRecordError,
        "FREQ=SOMETIMES",
    ),
    (
        "RRULE UNTIL as a UTC time",
        lambda: RRule(rule="FREQ=WEEKLY;UNTIL=20260501T000000Z", dtstart=WED),
        InvalidRecordError,
        "UNTIL=20260501T000000Z must be a local date",
    ),
    (
        "RRULE with a prefix",
        lambda: RRule(rule="RRULE:FREQ=WEEKLY", dtstart=WED),
        InvalidRecordError,
        "prefix",
    ),
    (
        "NDIS number",
        lambda: Participant(id="a", name="A", ndis_number="12"),
        InvalidRecordError,
        "'a'",
    ),
    (
        "supervision weight not a number",
        lambda: Participant(id="a", name="A", supervision_weight="NaN"),
        InvalidRecordError,
        "supervision_weight must be a finite number",
    ),
    (
        "infinite supervision weight",
        lambda: Participant(id="a", name="A", supervision_weight="Infinity"),
        InvalidRecordError,
        "supervision_weight must be a finite number",
    ),
    (
        "hours a day as a word",
        lambda: Staff(id="s", name="S", max_hours_per_day="abc"),
        InvalidRecordError,
        "max_hours_per_day must be a finite number, got 'abc'",
    ),
    (
        "infinite cost per km",
        lambda: Vehicle(id="v", name="V", seats=4, cost_per_km="inf"),
        InvalidRecordError,
        "cost_per_km must be a finite number",
    ),
    (
        "negative cost per km",
        lambda: Vehicle(id="v", name="V", seats=4, cost_per_km="-0.50"),
        InvalidRecordError,
        "cost_per_km must not be negative",
    ),
    (
        "days of notice as text",
        lambda: BillingSettings(short_notice_days=A_DATE_AS_TEXT),
        InvalidBillingInputError,
        "short_notice_days must be a whole number of days",
    ),
    (
        "negative days of notice",
        lambda: BillingSettings(short_notice_days=-1),
        InvalidBillingInputError,
        "short_notice_days must be a whole number of days",
    ),
    (
        "group activity as text",
        lambda: ItemChoice(group_activity=A_DATE_AS_TEXT),
        InvalidBillingInputError,
        "group_activity must be True or False",
    ),
    (
        "negative capacity",
        lambda: Venue(id="v", name="V", capacity=-1),
        InvalidRecordError,
        "capacity",
    ),
    ("latitude", lambda: Location(lat=123, lon=0), InvalidRecordError, "123"),
    (
        "empty program change",
        lambda: ProgramChange(id="c1", program_id="p", start=WED),
        InvalidRecordError,
        "c1",
    ),
    (
        "empty one-day change",
        lambda: OneDayChange(id="c2", program_id="p", date=WED),
        InvalidRecordError,
        "c2",
    ),
    (
        "bad cancellation code",
        lambda: Absence(program_id="p", participant_id="a", date=WED, reason_code="XXXX"),
        InvalidRecordError,
        "XXXX",
    ),
    (
        "notified after the date",
        lambda: Absence(program_id="p", participant_id="a", date=TUE, notified_on=WED),
        InvalidRecordError,
        "2026-10-07",
    ),
    (
        "program at an unknown venue",
        lambda: Organisation(
            venues=[Venue(id="v", name="V", capacity=1)], programs=[_program(venue_id="elsewhere")]
        ),
        UnknownVenueError,
        "elsewhere",
    ),
    (
        "duplicate participant ids",
        lambda: Organisation(
            participants=[Participant(id="a", name="A"), Participant(id="a", name="B")]
        ),
        DuplicateIdError,
        "'a'",
    ),
    (
        "unknown timezone",
        lambda: Loom(MemoryStore(), timezone="Mars/Olympus"),
        InvalidRecordError,
        "Mars/Olympus",
    ),
]


@pytest.mark.parametrize(
    ("build", "error", "text"), [c[1:] for c in BAD_VALUES], ids=[c[0] for c in BAD_VALUES]
)
def test_bad_values_are_refused_when_built(
    build: Callable[[], object], error: type[LoomError], text: str
) -> None:
    with pytest.raises(error) as info:
        build()
    assert text in str(info.value)


def test_weekdays_are_taken_by_code_short_or_full_name_in_any_case() -> None:
    names = ["we", "Wed", "WEDNESDAY", " wednesday ", 2, Weekday.WE]
    assert {day for name in names for day in Weekly(weekdays=[name]).weekdays} == {Weekday.WE}
    assert RRule(rule="FREQ=WEEKLY;INTERVAL=2", dtstart=WED, wkst="sunday").wkst == Weekday.SU


def test_only_intents_and_exceptions_are_recorded(loom: Loom) -> None:
    before = loom.store.records()
    retraction = Retraction(target_id="whatever")
    with pytest.raises(InvalidRecordError, match="not Retraction: retract a record with"):
        loom.record(retraction)  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="not str"):
        loom.record("enrol sarah")  # type: ignore[arg-type]
    assert loom.store.records() == before


def test_an_organisation_takes_only_its_own_kinds_of_item(loom: Loom) -> None:
    with pytest.raises(InvalidRecordError, match="not str"):
        loom.store.organisation().with_item("x")  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="not Enrolment"):
        loom.upsert(Enrolment(program_id="centre-wed", participant_id="sarah", start=WED))  # type: ignore[arg-type]


def test_a_naive_clock_is_refused() -> None:
    from datetime import datetime

    loom = Loom(MemoryStore(), clock=lambda: datetime(2026, 10, 1))
    with pytest.raises(InvalidRecordError, match="timezone-aware"):
        loom.roll()


def test_a_newcomer_is_known_once_the_organisation_has_them(loom: Loom) -> None:
    # refused against the organisation as it was, then taken once it has them
    newcomer = Enrolment(program_id="centre-wed", participant_id="newbie", start=WED)
    with pytest.raises(UnknownParticipantError):
        loom.record(newcomer)
    org = loom.store.organisation()
    more = Participant(id="newbie", name="New Bie", ndis_number="430000999")
    loom.set_organisation(
        Organisation(
            name=org.name,
            venues=org.venues,
            participants=(*org.participants, more),
            staff=org.staff,
            vehicles=org.vehicles,
            programs=org.programs,
        )
    )
    taken = loom.record(newcomer)
    assert isinstance(taken, Enrolment)
    assert taken.participant_id == "newbie"
    with pytest.raises(UnknownParticipantError):  # and a stranger still is not
        loom.record(Enrolment(program_id="centre-wed", participant_id="stranger", start=WED))


@pytest.mark.parametrize(
    ("record", "line"),
    [
        (
            Enrolment(program_id="wed", participant_id="sarah", start=WED),
            "Enrolment wed sarah from 2026-10-07",
        ),
        (
            StaffLeave(staff_id="kim", start=WED, end=WED),
            "StaffLeave kim from 2026-10-07 to 2026-10-07",
        ),
        (Cancellation(program_id="wed", date=WED), "Cancellation wed on 2026-10-07"),
        (
            Reschedule(program_id="wed", date=WED, to_date=THU, venue_id="hall"),
            "Reschedule wed on 2026-10-07 to 2026-10-08 (venue_id=hall)",
        ),
    ],
    ids=["enrolment", "leave", "cancellation", "reschedule"],
)
def test_a_record_is_described_in_one_plain_line(record: Record, line: str) -> None:
    assert describe(record) == line
