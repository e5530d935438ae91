"""plan_day: how one day is planned, rule by rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import attrs
import pytest

from builders import Clock, local, seed_organisation
from loomcore import (
    Absence,
    Cancellation,
    Enrolment,
    ExtraAttendance,
    Fortnightly,
    Loom,
    OneDayChange,
    PlanInputs,
    ProgramChange,
    Record,
    Reschedule,
    StaffingRule,
    StaffPin,
    VehiclePin,
    Weekly,
    Withdrawal,
    _routing,
    has_instance,
    plan_day,
)
from loomcore._tables import keep

T0 = datetime(2026, 9, 1, tzinfo=UTC)
WED = date(2026, 10, 7)


def inputs(*records: Record) -> PlanInputs:
    stamped = [
        attrs.evolve(r, id=r.id or f"r{n}", recorded_at=r.recorded_at or T0 + timedelta(minutes=n))
        for n, r in enumerate(records)
    ]
    return PlanInputs(
        organisation=seed_organisation(),
        intents=[r for r in stamped if not hasattr(r, "date")],
        one_offs=[r for r in stamped if hasattr(r, "date")],  # type: ignore[misc]
    )


def enrol(
    *who: str, program: str = "centre-wed", start: date = date(2026, 1, 1)
) -> list[Enrolment]:
    return [
        Enrolment(id=f"e-{p}-{program}", program_id=program, participant_id=p, start=start)
        for p in who
    ]


def only(plan_inputs: PlanInputs, day: date, program: str = "centre-wed"):  # type: ignore[no-untyped-def]
    found = [i for i in plan_day(plan_inputs, day).instances if i.program_id == program]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("rule", "weights", "expected"),
    [
        (StaffingRule(), [], (0, 0)),
        (StaffingRule(), [1], (1, 1)),
        (StaffingRule(), [1] * 5, (1, 1)),
        (StaffingRule(), [1] * 6, (1, 2)),
        (StaffingRule(), [1] * 10, (1, 2)),
        (StaffingRule(), [1] * 11, (1, 3)),
        (StaffingRule(participants_per_support=4), [1] * 5, (1, 2)),
        (StaffingRule(leads=2), [1] * 3, (2, 1)),
        # weights count only when the rule says so
        (StaffingRule(weighted=True), ["2.5", "2.5", "0.5"], (1, 2)),
        (StaffingRule(weighted=False), ["2.5", "2.5", "0.5"], (1, 1)),
        (StaffingRule(weighted=True), ["2.5", "2.5"], (1, 1)),
    ],
)
def test_staffing_formula(
    rule: StaffingRule, weights: list[str], expected: tuple[int, int]
) -> None:
    load = sum((Decimal(w) for w in map(str, weights)), Decimal(0))
    assert rule.demand(len(weights), load) == expected


def test_a_program_runs_on_its_recurrence_with_local_times() -> None:
    plan = plan_day(inputs(*enrol("sarah")), WED)
    (inst,) = [i for i in plan.instances if i.program_id == "centre-wed"]
    assert inst.id == "centre-wed/2026-10-07"
    assert inst.start.isoformat() == "2026-10-07T09:00:00+11:00"
    assert inst.end.isoformat() == "2026-10-07T15:00:00+11:00"
    assert inst.attending == ("sarah",)
    assert inst.origin == "generated"
    assert (
        plan_day(inputs(*enrol("sarah")), WED + timedelta(days=1)).instances[0].program_id
        == "thu-weighted"
    )


def test_program_is_planned_only_while_active_unless_intents_say_otherwise() -> None:
    ended = ProgramChange(program_id="centre-wed", start=date(2026, 10, 10), runs=False)
    assert has_instance(inputs(ended), "centre-wed", WED)
    assert not has_instance(inputs(ended), "centre-wed", WED + timedelta(weeks=1))
    paused = ProgramChange(program_id="centre-wed", start=WED, end=WED, runs=False)
    assert not has_instance(inputs(paused), "centre-wed", WED)
    assert has_instance(inputs(paused), "centre-wed", WED + timedelta(weeks=1))


def test_change_of_weekday_moves_the_program_and_orphans_exceptions() -> None:
    to_thursday = ProgramChange(
        program_id="centre-wed", start=date(2026, 10, 10), recurrence=Weekly(weekdays=["TH"])
    )
    cancel = Cancellation(id="c1", program_id="centre-wed", date=date(2026, 10, 14))
    plan_inputs = inputs(*enrol("john"), cancel, to_thursday)
    assert not has_instance(plan_inputs, "centre-wed", date(2026, 10, 14))
    assert has_instance(plan_inputs, "centre-wed", date(2026, 10, 15))
    plan = plan_day(plan_inputs, date(2026, 10, 14))
    (warning,) = plan.warnings
    assert (warning.code, warning.record_id, warning.program_id) == (
        "orphaned-exception",
        "c1",
        "centre-wed",
    )
    assert "no instance on 2026-10-14" in warning.message


def test_fortnightly_week_b_program() -> None:
    org = seed_organisation()
    prog = attrs.evolve(
        org.programs[0], recurrence=Fortnightly(weekdays=["WE"], anchor=date(2026, 10, 5), week="B")
    )
    plan_inputs = PlanInputs(organisation=org.with_item(prog))
    assert not has_instance(plan_inputs, "centre-wed", WED)
    assert has_instance(plan_inputs, "centre-wed", WED + timedelta(weeks=1))


def test_cancelled_instance_stays_listed_with_no_staff() -> None:
    cancel = Cancellation(id="c1", program_id="centre-wed", date=WED, reason="flood")
    inst = only(inputs(*enrol("sarah", "john"), cancel), WED)
    assert inst.status == "cancelled"
    assert inst.cancelled
    assert inst.cancellation_reason == "flood"
    assert inst.attending == ()
    assert inst.staff_demand.total == 0
    assert {a.status for a in inst.allocations} == {"cancelled"}
    assert inst.origin == "exception"
    assert "c1" in inst.provenance
    assert [w.code for w in inst.warnings] == []


def test_absence_records_reason_and_clear_days_of_notice() -> None:
    absence = Absence(
        id="a1",
        program_id="centre-wed",
        participant_id="john",
        date=WED,
        reason="family",
        reason_code="NSDF",
        notified_on=date(2026, 9, 30),
    )
    inst = only(inputs(*enrol("john", "sarah"), absence), WED)
    john, sarah = inst.allocations[0], inst.allocations[1]
    assert (john.participant_id, john.status, john.reason_code) == ("john", "cancelled", "NSDF")
    assert john.notice_days == 6  # 1..6 Oct are the clear days
    assert john.provenance == ("a1", "e-john-centre-wed")
    assert (sarah.status, sarah.origin) == ("attending", "intent")
    assert inst.attending == ("sarah",)


@pytest.mark.parametrize(
    ("notified", "no_show", "clear_days"),
    [
        (date(2026, 9, 29), False, 7),
        (date(2026, 9, 30), False, 6),
        (WED, False, 0),
        (date(2026, 10, 6), False, 0),
        (None, True, 0),
    ],
)
def test_clear_days(notified: date | None, no_show: bool, clear_days: int) -> None:
    absence = Absence(
        program_id="x", participant_id="y", date=WED, notified_on=notified, no_show=no_show
    )
    assert absence.clear_days_notice() == clear_days


def test_one_day_change_and_extra_attendance_apply_on_their_date_only() -> None:
    change = OneDayChange(
        id="o1", program_id="centre-wed", date=WED, start_time=time(8), venue_id="small-room"
    )
    extra = ExtraAttendance(id="x1", program_id="centre-wed", participant_id="p01", date=WED)
    plan_inputs = inputs(*enrol("sarah"), change, extra)
    inst = only(plan_inputs, WED)
    assert (inst.start.time(), inst.end.time(), inst.venue_id) == (time(8), time(15), "small-room")
    assert inst.attending == ("p01", "sarah")
    assert inst.allocations[0].origin == "exception"
    assert inst.origin == "exception"
    assert {"o1", "x1"} <= set(inst.provenance)
    next_week = only(plan_inputs, WED + timedelta(weeks=1))
    assert (next_week.start.time(), next_week.venue_id, next_week.attending) == (
        time(9),
        "centre",
        ("sarah",),
    )


def test_reschedule_moves_the_instance_and_keeps_its_id() -> None:
    move = Reschedule(
        id="m1", program_id="centre-wed", date=WED, to_date=date(2026, 10, 9), start_time=time(10)
    )
    plan_inputs = inputs(*enrol("sarah"), move)
    assert [i.program_id for i in plan_day(plan_inputs, WED).instances] == []
    assert plan_day(plan_inputs, WED).warnings == ()
    inst = only(plan_inputs, date(2026, 10, 9))
    assert (inst.id, inst.date, inst.scheduled_date) == (
        "centre-wed/2026-10-07",
        date(2026, 10, 9),
        WED,
    )
    assert inst.start.isoformat() == "2026-10-09T10:00:00+11:00"
    assert inst.attending == ("sarah",)
    assert inst.origin == "exception"


def test_reschedule_of_a_date_that_is_no_longer_scheduled_is_orphaned_on_both_dates() -> None:
    move = Reschedule(id="m1", program_id="centre-wed", date=WED, to_date=date(2026, 10, 9))
    pause = ProgramChange(program_id="centre-wed", start=WED, end=WED, runs=False)
    plan_inputs = inputs(move, pause)
    for day in (WED, date(2026, 10, 9)):
        plan = plan_day(plan_inputs, day)
        assert [w.record_id for w in plan.warnings] == ["m1"]
        assert all(i.program_id != "centre-wed" for i in plan.instances)


def test_latest_of_two_one_day_changes_wins() -> None:
    first = OneDayChange(id="o1", program_id="centre-wed", date=WED, start_time=time(8))
    second = OneDayChange(id="o2", program_id="centre-wed", date=WED, start_time=time(11))
    assert only(inputs(first, second), WED).start.time() == time(11)
    # the helper stamps later arguments with later recorded_at: the later record wins
    assert only(inputs(second, first), WED).start.time() == time(8)


def test_withdrawal_and_absence_of_someone_not_enrolled_is_an_orphan_warning() -> None:
    leave = Withdrawal(program_id="centre-wed", participant_id="john", start=date(2026, 10, 1))
    absence = Absence(id="a1", program_id="centre-wed", participant_id="john", date=WED)
    plan = plan_day(inputs(*enrol("john", "sarah"), absence, leave), WED)
    assert [(w.code, w.participant_id) for w in plan.warnings] == [("orphaned-exception", "john")]
    assert "'john' is not on the instance" in plan.warnings[0].message


def test_capacity_and_empty_instance_warnings() -> None:
    crowd = enrol(*(f"p{i:02d}" for i in range(1, 8)), program="mon-art")
    monday = date(2026, 10, 5)
    inst = only(inputs(*crowd), monday, "mon-art")
    assert [w.code for w in inst.warnings] == ["venue-over-capacity"]
    assert "7 attending" in inst.warnings[0].message
    assert "holds 5" in inst.warnings[0].message
    assert inst.staff_demand.support == 2  # never blocked: demand grows instead
    empty = only(inputs(), monday, "mon-art")
    assert [w.code for w in empty.warnings] == ["empty-instance"]
    assert empty.staff_demand.total == 0


def test_pins_are_listed_and_colour_the_instance() -> None:
    pin = StaffPin(id="s1", program_id="centre-wed", staff_id="kim", start=WED)
    bus = VehiclePin(id="v1", program_id="centre-wed", vehicle_id="bus1", start=WED, end=WED)
    plan_inputs = inputs(*enrol("sarah"), pin, bus)
    inst = only(plan_inputs, WED)
    assert (inst.pinned_staff, inst.pinned_vehicles, inst.origin) == (("kim",), ("bus1",), "intent")
    assert {"s1", "v1"} <= set(inst.provenance)
    assert only(plan_inputs, WED + timedelta(weeks=1)).pinned_vehicles == ()


def test_weighted_staffing_and_transport_demand() -> None:
    org = seed_organisation()
    heavy = attrs.evolve(org.participants[0], supervision_weight=Decimal("3"))  # p01
    plan_inputs = PlanInputs(
        organisation=org.with_item(heavy),
        intents=[
            attrs.evolve(e, recorded_at=T0) for e in enrol("p01", "p02", program="thu-weighted")
        ],
    )
    inst = only(plan_inputs, date(2026, 10, 8), "thu-weighted")
    assert (inst.staff_demand.leads, inst.staff_demand.support) == (1, 1)  # load 4 / 4
    wed = PlanInputs(
        organisation=org,
        intents=[attrs.evolve(e, recorded_at=T0) for e in enrol("p02", "p03", "john", "sarah")],
    )
    assert only(wed, WED).transport_demand.riders == 2  # p02 and sarah need transport


def test_plan_is_sorted_and_repeatable() -> None:
    records = (*enrol("sarah"), *enrol("john", program="sat-adventure"))
    plan_inputs = inputs(*records)
    for day in (WED, date(2026, 10, 10)):
        first = plan_day(plan_inputs, day)
        _routing._forget()  # nothing remembered: the second plan is made afresh
        assert plan_day(inputs(*records), day) == first
    plan = plan_day(plan_inputs, WED)
    assert list(plan.instances) == sorted(plan.instances, key=lambda i: (i.start, i.program_id))


def test_times_from_different_records_that_cross_are_a_warning() -> None:
    later_end = ProgramChange(program_id="centre-wed", start=WED, end_time=time(8))
    inst = only(inputs(*enrol("sarah"), later_end), WED)
    assert inst.start == inst.end
    assert [w.code for w in inst.warnings] == ["invalid-times"]
    assert "ends 08:00, not after its start 09:00" in inst.warnings[0].message


def test_load_accepts_what_record_accepts_in_one_call() -> None:
    loom = Loom(clock=Clock(local(2026, 10, 1)))
    loom.load(
        seed_organisation(),
        [
            Enrolment(program_id="centre-wed", participant_id="sarah", start=WED),
            Absence(program_id="centre-wed", participant_id="sarah", date=WED),
            Reschedule(
                program_id="centre-wed", date=WED + timedelta(weeks=1), to_date=date(2026, 10, 16)
            ),
            # same start: the later one in the list counts as recorded later
            Enrolment(program_id="sun-social", participant_id="john", start=WED),
            Withdrawal(program_id="sun-social", participant_id="john", start=WED),
        ],
    )
    assert loom.instances(WED, WED)[0].allocations[0].status == "cancelled"
    assert loom.instances(date(2026, 10, 16), date(2026, 10, 16))[0].scheduled_date == date(
        2026, 10, 14
    )
    assert all("john" not in i.attending for i in loom.instances(WED, date(2026, 10, 28)))


def test_a_kept_table_is_emptied_when_full_then_keeps_the_new_value() -> None:
    table = {"a": 1, "b": 2}
    assert keep(table, "c", 3, most=3) == 3
    assert table == {"a": 1, "b": 2, "c": 3}
    assert keep(table, "d", 4, most=3) == 4
    assert table == {"d": 4}
