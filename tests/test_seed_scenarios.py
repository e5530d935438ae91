"""The five scenarios of the seeds, end to end through the service.

Each uses a year in which the seeds' dates fall on the seeds' weekdays:
7 Oct 2026 is a Wednesday, 6 Nov 2027 a Saturday, 15/16 Dec 2029 a Saturday
and a Sunday, 20 and 27 Sep 2027 Mondays.
"""

from __future__ import annotations

from datetime import date, time, timedelta

from builders import Clock, local, make_loom
from loomcore import Absence, Enrolment, Loom, ProgramChange, Store, Withdrawal


def enrol_fillers(loom: Loom, program: str, count: int, start: date) -> None:
    for i in range(1, count + 1):
        loom.record(
            Enrolment(program_id=program, participant_id=f"p{i:02d}", start=start), by="setup"
        )


def attending(loom: Loom, program: str, start: date, end: date) -> dict[date, tuple[str, ...]]:
    return {i.date: i.attending for i in loom.instances(start, end, program_id=program)}


def test_sarah_joins_wednesdays_from_7_october(any_store: Store) -> None:
    clock = Clock(local(2026, 9, 24))
    loom = make_loom(clock, weeks=6, store=any_store)  # 24 Sep → 4 Nov 2026
    enrol_fillers(loom, "centre-wed", 5, date(2026, 1, 1))
    before = {i.date: i for i in loom.instances(date(2026, 9, 24), date(2026, 11, 4))}

    enrolment = loom.record(
        Enrolment(program_id="centre-wed", participant_id="sarah", start=date(2026, 10, 7)),
        by="ops",
    )

    wednesdays = attending(loom, "centre-wed", date(2026, 9, 24), date(2026, 11, 4))
    assert sorted(wednesdays) == [date(2026, 9, 30) + timedelta(weeks=w) for w in range(6)]
    for day, who in wednesdays.items():
        assert ("sarah" in who) == (day >= date(2026, 10, 7)), day
    for inst in loom.instances(date(2026, 10, 7), date(2026, 11, 4), program_id="centre-wed"):
        # staff and transport demand follow the new roster: 6 attending → 1 lead + 2 support
        assert (inst.staff_demand.leads, inst.staff_demand.support) == (1, 2)
        assert inst.transport_demand.riders == before[inst.date].transport_demand.riders + 1
        (sarah,) = [a for a in inst.allocations if a.participant_id == "sarah"]
        assert sarah.provenance == (enrolment.id,)
    assert loom.instances(date(2026, 9, 30), date(2026, 9, 30))[0].staff_demand.support == 1

    # staff and bus routes update: a second support worker is rostered and
    # Sarah is picked up and dropped off, by a driver, from 7 Oct only
    for inst in loom.instances(date(2026, 9, 30), date(2026, 11, 4), program_id="centre-wed"):
        joined = inst.date >= date(2026, 10, 7)
        assert [s.role for s in inst.shifts if s.role != "driver"] == (
            ["lead", "support", "support"] if joined else ["lead", "support"]
        )
        assert all(s.filled for s in inst.shifts)
        for direction in ("pickup", "dropoff"):
            runs = [r for r in inst.bus_runs if r.direction == direction]
            riders = sorted(p for r in runs for p in r.riders)
            expected = {"p02", "p04"} | ({"sarah"} if joined else set())
            assert riders == sorted(expected), (inst.date, direction)
            assert all(r.driver_id for r in runs)
        pickup = next(r for r in inst.bus_runs if r.direction == "pickup")
        assert pickup.arrives <= inst.start
        assert pickup.stops[-1].kind == "venue"

    # only Wednesdays from 7 Oct were re-planned; every other day is untouched
    for day, inst in before.items():
        if not (inst.program_id == "centre-wed" and day >= date(2026, 10, 7)):
            assert loom.day(day) is not None
            assert inst in loom.day(day).instances  # type: ignore[union-attr]

    # the intent holds as new dates roll into the window
    clock.set_local(2026, 12, 1, 0, 5)
    loom.roll()
    later = attending(loom, "centre-wed", date(2026, 12, 1), date(2027, 1, 11))
    assert later
    assert all("sarah" in who for who in later.values())


def test_john_cancels_saturday_adventure_on_6_november(any_store: Store) -> None:
    clock = Clock(local(2027, 10, 1))
    loom = make_loom(clock, weeks=6, store=any_store)  # 1 Oct → 11 Nov 2027
    enrol_fillers(loom, "sat-adventure", 5, date(2027, 1, 1))
    loom.record(
        Enrolment(program_id="sat-adventure", participant_id="john", start=date(2027, 1, 1))
    )

    absence = loom.record(
        Absence(
            program_id="sat-adventure",
            participant_id="john",
            date=date(2027, 11, 6),
            reason="unwell",
            reason_code="NSDH",
        ),
        by="ops",
    )

    for inst in loom.instances(date(2027, 10, 1), date(2027, 11, 11), program_id="sat-adventure"):
        john = next(a for a in inst.allocations if a.participant_id == "john")
        if inst.date == date(2027, 11, 6):
            assert (john.status, john.reason, john.reason_code) == ("cancelled", "unwell", "NSDH")
            assert john.notified_on == date(2027, 10, 1)
            assert john.notice_days == 35  # clear days between 1 Oct and 6 Nov
            assert absence.id in john.provenance
            assert inst.origin == "exception"
            assert "john" not in inst.attending
            assert inst.staff_demand.support == 1  # 5 attending instead of 6
        else:
            assert john.status == "attending"
            assert inst.staff_demand.support == 2
            assert inst.origin == "generated"


def test_cancellation_beyond_the_window_is_honoured_when_its_date_rolls_in(
    any_store: Store,
) -> None:
    clock = Clock(local(2027, 10, 1))
    loom = make_loom(clock, weeks=2, store=any_store)
    loom.record(
        Enrolment(program_id="sat-adventure", participant_id="john", start=date(2027, 1, 1))
    )
    loom.record(Absence(program_id="sat-adventure", participant_id="john", date=date(2027, 12, 18)))
    assert loom.instances(date(2027, 12, 18), date(2027, 12, 18)) == []

    clock.set_local(2027, 12, 10, 0, 5)
    loom.roll()
    (inst,) = loom.instances(date(2027, 12, 18), date(2027, 12, 18), program_id="sat-adventure")
    assert inst.allocations[0].status == "cancelled"


def test_john_leaves_saturdays_and_joins_sundays_the_next_day(any_store: Store) -> None:
    clock = Clock(local(2029, 12, 1))
    loom = make_loom(clock, weeks=6, store=any_store)  # 1 Dec 2029 → 11 Jan 2030
    loom.record(
        Enrolment(program_id="sat-adventure", participant_id="john", start=date(2029, 1, 1))
    )

    loom.record(
        Withdrawal(program_id="sat-adventure", participant_id="john", start=date(2029, 12, 15))
    )
    loom.record(Enrolment(program_id="sun-social", participant_id="john", start=date(2029, 12, 16)))

    saturdays = attending(loom, "sat-adventure", date(2029, 12, 1), date(2030, 1, 11))
    sundays = attending(loom, "sun-social", date(2029, 12, 1), date(2030, 1, 11))
    assert len(saturdays) == 6
    assert len(sundays) == 6
    assert {d for d, who in saturdays.items() if "john" in who} == {
        date(2029, 12, 1),
        date(2029, 12, 8),
    }
    assert {d for d, who in sundays.items() if "john" in who} == {
        date(2029, 12, 16),
        date(2029, 12, 23),
        date(2029, 12, 30),
        date(2030, 1, 6),
    }


def test_one_hour_later_from_20_september_then_revert_from_27_september(any_store: Store) -> None:
    clock = Clock(local(2027, 9, 13))
    loom = make_loom(clock, weeks=6, store=any_store)  # 13 Sep → 24 Oct 2027
    enrol_fillers(loom, "mon-art", 3, date(2027, 1, 1))

    change = loom.record(
        ProgramChange(
            program_id="mon-art",
            start=date(2027, 9, 20),
            start_time=time(11),
            end_time=time(15),
        )
    )
    revert = loom.record(
        ProgramChange(
            program_id="mon-art",
            start=date(2027, 9, 27),
            start_time=time(10),
            end_time=time(14),
        )
    )

    mondays = loom.instances(date(2027, 9, 13), date(2027, 10, 24), program_id="mon-art")
    times = {i.date: (i.start.time(), i.end.time()) for i in mondays}
    assert len(times) == 6
    for day, (start, end) in times.items():
        expected = (time(11), time(15)) if day == date(2027, 9, 20) else (time(10), time(14))
        assert (start, end) == expected, day
    by_day = {i.date: i for i in mondays}
    assert by_day[date(2027, 9, 20)].origin == "intent"
    assert by_day[date(2027, 9, 20)].provenance == (change.id,)
    # the revert is named in provenance, but the instance looks like the template again
    assert by_day[date(2027, 9, 27)].provenance == (revert.id,)
    assert by_day[date(2027, 9, 27)].origin == "generated"
    assert by_day[date(2027, 9, 13)].provenance == ()
    # DST starts on 3 Oct 2027: the wall-clock time stays 10:00, the offset moves
    assert by_day[date(2027, 9, 27)].start.utcoffset() == timedelta(hours=10)
    assert by_day[date(2027, 10, 4)].start.utcoffset() == timedelta(hours=11)


def test_window_16_to_2_to_16_weeks_gives_identical_instances(any_store: Store) -> None:
    clock = Clock(local(2026, 9, 24))
    loom = make_loom(clock, weeks=16, store=any_store)
    enrol_fillers(loom, "centre-wed", 7, date(2026, 1, 1))
    enrol_fillers(loom, "sat-adventure", 4, date(2026, 1, 1))
    loom.record(Enrolment(program_id="centre-wed", participant_id="sarah", start=date(2026, 10, 7)))
    loom.record(
        Absence(
            program_id="centre-wed", participant_id="p03", date=date(2026, 12, 16), no_show=True
        )
    )
    window = loom.window()
    assert (window.start, window.end) == (date(2026, 9, 24), date(2027, 1, 13))
    full = [d.plan for d in loom.store.planned_days()]
    records = loom.store.records()
    assert len(full) == 16 * 7

    loom.resize_window(2)
    assert [d.date for d in loom.store.planned_days()] == [
        date(2026, 9, 24) + timedelta(days=i) for i in range(14)
    ]
    assert loom.store.records() == records

    loom.resize_window(16)
    assert [d.plan for d in loom.store.planned_days()] == full
