"""Named staff shifts: rules, one table per rule, and week-to-week continuity."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loomcore import (
    Availability,
    Enrolment,
    Organisation,
    Participant,
    PlanInputs,
    Program,
    Record,
    Staff,
    StaffLeave,
    StaffPin,
    StaffReturn,
    StaffSwap,
    Venue,
    Weekly,
    plan_day,
)
from loomcore._staffing import assign_drivers, assign_staff

T0 = datetime(2026, 9, 1, tzinfo=UTC)
WED = date(2026, 10, 7)


def program(id: str, start: time, end: time, weekday: str = "WE") -> Program:
    return Program(
        id=id,
        name=id.title(),
        recurrence=Weekly(weekdays=[weekday]),
        start_time=start,
        end_time=end,
        venue_id="hall",
        active_from=date(2026, 1, 1),
    )


def org(staff: list[Staff], programs: list[Program] | None = None) -> Organisation:
    return Organisation(
        venues=[Venue(id="hall", name="Hall", capacity=50)],
        participants=[Participant(id=f"p{i:02d}", name=f"P{i}") for i in range(30)],
        staff=staff,
        programs=programs or [program("am", time(9), time(12)), program("pm", time(13), time(16))],
    )


def enrol(program_id: str, n: int, first: int = 0) -> list[Enrolment]:
    return [
        Enrolment(program_id=program_id, participant_id=f"p{i:02d}", start=date(2026, 1, 1))
        for i in range(first, first + n)
    ]


def plan(organisation: Organisation, *records: Record, day: date = WED):  # type: ignore[no-untyped-def]
    stamped = [
        attrs.evolve(r, id=r.id or f"r{n}", recorded_at=T0 + timedelta(seconds=n))
        for n, r in enumerate(records)
    ]
    inputs = PlanInputs(
        organisation=organisation,
        intents=[r for r in stamped if not hasattr(r, "date")],
        one_offs=[r for r in stamped if hasattr(r, "date")],  # type: ignore[misc]
    )
    return {i.program_id: i for i in plan_day(inputs, day).instances}


def crew(inst) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(s.role, s.staff_id) for s in inst.shifts]


LEADS = [Staff(id=f"lead{i}", name=f"Lead {i}", lead_capable=True) for i in range(3)]
SUPPORT = [Staff(id=f"sup{i}", name=f"Support {i}") for i in range(6)]


def test_every_slot_is_filled_by_the_staffing_rule() -> None:
    got = plan(org(LEADS + SUPPORT), *enrol("am", 7), *enrol("pm", 3, 10))
    assert [r for r, _ in crew(got["am"])] == ["lead", "support", "support"]
    assert [r for r, _ in crew(got["pm"])] == ["lead", "support"]
    for inst in got.values():
        assert all(s.filled for s in inst.shifts)
        assert inst.shifts[0].staff_id.startswith("lead")  # leads are lead-capable
        assert (inst.shifts[0].start, inst.shifts[0].end) == (inst.start, inst.end)


def test_nobody_is_double_booked_on_overlapping_instances() -> None:
    overlapping = [program("am", time(9), time(12)), program("mid", time(11), time(14))]
    got = plan(org(LEADS + SUPPORT, overlapping), *enrol("am", 5), *enrol("mid", 5, 10))
    am = {s for _, s in crew(got["am"])}
    mid = {s for _, s in crew(got["mid"])}
    assert am.isdisjoint(mid)


def test_one_person_can_work_two_instances_that_do_not_overlap() -> None:
    only_two = [LEADS[0], SUPPORT[0]]
    got = plan(org(only_two), *enrol("am", 3), *enrol("pm", 3, 10))
    assert crew(got["am"]) == crew(got["pm"]) == [("lead", "lead0"), ("support", "sup0")]


@pytest.mark.parametrize(
    ("staff", "expected_unfilled"),
    [
        ([SUPPORT[0], SUPPORT[1]], ["lead"]),  # no lead-capable worker
        ([LEADS[0]], ["support"]),  # a lead cannot do both
        ([], ["lead", "support"]),
    ],
)
def test_shortage_gives_unfilled_shifts_and_warnings(
    staff: list[Staff], expected_unfilled: list[str]
) -> None:
    got = plan(org(staff, [program("am", time(9), time(12))]), *enrol("am", 3))["am"]
    assert [s.role for s in got.shifts if not s.filled] == expected_unfilled
    codes = [w.code for w in got.warnings]
    assert codes.count("unfilled-shift") == len(expected_unfilled)


def test_leave_is_respected_and_ends_when_it_ends() -> None:
    one_lead = [LEADS[0], LEADS[1], SUPPORT[0]]
    organisation = org(one_lead, [program("am", time(9), time(12))])
    before = plan(organisation, *enrol("am", 3))["am"]
    lead = before.shifts[0].staff_id
    leave = StaffLeave(staff_id=lead, start=WED, end=WED)
    on_leave = plan(organisation, *enrol("am", 3), leave)["am"]
    assert lead not in {s for _, s in crew(on_leave)}
    week_later = plan(organisation, *enrol("am", 3), leave, day=WED + timedelta(weeks=1))["am"]
    assert week_later.shifts[0].staff_id == lead
    back = StaffReturn(staff_id=lead, start=WED)
    returned = plan(organisation, *enrol("am", 3), StaffLeave(staff_id=lead, start=WED), back)
    assert returned["am"].shifts[0].staff_id == lead


def test_weekly_availability_and_hours_cap() -> None:
    mornings_only = Staff(
        id="lead0",
        name="Lead",
        lead_capable=True,
        availability=[Availability(weekday="WE", start=time(8), end=time(12))],
    )
    short_days = Staff(id="lead1", name="Short", lead_capable=True, max_hours_per_day=Decimal(4))
    got = plan(org([mornings_only, short_days]), *enrol("am", 3), *enrol("pm", 3, 10))
    leads = {i: inst.shifts[0].staff_id for i, inst in got.items()}
    # lead0 cannot work the afternoon; lead1 can do only one 3-hour shift
    assert leads["pm"] == "lead1"
    assert leads["am"] == "lead0"


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2026, 10, 4), 3), (date(2027, 4, 4), 5), (date(2026, 10, 11), 4)],
    ids=["clocks forward", "clocks back", "a plain Sunday"],
)
def test_a_shift_lasts_its_real_time_and_the_cap_counts_it(day: date, hours: int) -> None:
    # 01:00-05:00 on the clock: an hour less when the clocks go forward at
    # 02:00, an hour more when they go back at 03:00
    capped = Staff(id="lead0", name="Capped", lead_capable=True, max_hours_per_day=Decimal("4.5"))
    night = program("night", time(1), time(5), weekday="SU")
    inst = plan(org([capped], [night]), *enrol("night", 2), day=day)["night"]
    lead = inst.shifts[0]
    assert (lead.role, lead.hours) == ("lead", hours)
    assert lead.staff_id == ("" if hours > 4.5 else "lead0")


def test_pins_win_and_swaps_apply_for_one_day() -> None:
    organisation = org(LEADS + SUPPORT, [program("am", time(9), time(12))])
    pin = StaffPin(id="pin-sup5", program_id="am", staff_id="sup5", start=date(2026, 1, 1))
    pinned = plan(organisation, *enrol("am", 3), pin)["am"]
    assert "sup5" in {s for _, s in crew(pinned)}
    # the shift names the pin that placed the worker
    assert next(s for s in pinned.shifts if s.staff_id == "sup5").provenance == ("pin-sup5",)
    swap = StaffSwap(program_id="am", date=WED, out_staff_id="sup5", in_staff_id="sup4")
    swapped = plan(organisation, *enrol("am", 3), pin, swap)["am"]
    people = {s for _, s in crew(swapped)}
    assert "sup4" in people
    assert next(s for s in swapped.shifts if s.staff_id == "sup4").provenance == ("r4",)
    assert "sup5" not in people
    assert swapped.origin == "exception"
    next_week = plan(organisation, *enrol("am", 3), pin, swap, day=WED + timedelta(weeks=1))["am"]
    assert "sup5" in {s for _, s in crew(next_week)}


def test_a_worker_pinned_again_by_another_intent_is_named_by_it() -> None:
    # the day's staffing is remembered: a pin replaced by another of the same
    # worker leaves the crew as it was, but the shift names the new pin
    organisation = org(LEADS + SUPPORT, [program("am", time(9), time(12))])
    first = StaffPin(id="pin-1", program_id="am", staff_id="sup5", start=WED, recorded_at=T0)
    second = attrs.evolve(first, id="pin-2")
    enrolled = [attrs.evolve(e, id=f"e{n}", recorded_at=T0) for n, e in enumerate(enrol("am", 3))]
    before = PlanInputs(organisation=organisation, intents=[*enrolled, first])
    plan_day(before, WED)
    after = before.updated(add=[second], remove=[first])
    inst = plan_day(after, WED).instances[0]
    assert next(s for s in inst.shifts if s.staff_id == "sup5").provenance == ("pin-2",)


def test_more_pins_than_demand_adds_shifts() -> None:
    organisation = org(LEADS + SUPPORT, [program("am", time(9), time(12))])
    pins = [StaffPin(program_id="am", staff_id=f"sup{i}", start=WED) for i in range(3)]
    got = plan(organisation, *enrol("am", 2), *pins)["am"]  # demand: 1 lead + 1 support
    assert sorted(s for r, s in crew(got) if r == "support") == ["sup0", "sup1", "sup2"]
    assert got.shifts[0].role == "lead"
    assert got.shifts[0].filled


def test_a_pinned_worker_on_leave_is_a_warning() -> None:
    organisation = org(LEADS + SUPPORT, [program("am", time(9), time(12))])
    pin = StaffPin(id="pin-sup0", program_id="am", staff_id="sup0", start=WED)
    got = plan(organisation, *enrol("am", 2), pin, StaffLeave(staff_id="sup0", start=WED))["am"]
    assert "sup0" not in {s for _, s in crew(got)}
    unavailable = [w for w in got.warnings if w.code == "pinned-staff-unavailable"]
    assert [w.record_id for w in unavailable] == ["pin-sup0"]
    assert all(s.filled for s in got.shifts)  # somebody else covers the slot


def test_the_same_people_work_the_same_program_week_after_week() -> None:
    organisation = org(LEADS + SUPPORT)
    records = [*enrol("am", 7), *enrol("pm", 3, 10)]
    weeks = [plan(organisation, *records, day=WED + timedelta(weeks=w)) for w in range(8)]
    for program_id in ("am", "pm"):
        crews = {tuple(crew(week[program_id])) for week in weeks}
        assert len(crews) == 1, crews
    # and different programs do not all draw the same people
    assert crew(weeks[0]["am"]) != crew(weeks[0]["pm"])


def test_cancelled_instances_need_no_staff() -> None:
    from loomcore import Cancellation

    organisation = org(LEADS + SUPPORT, [program("am", time(9), time(12))])
    got = plan(organisation, *enrol("am", 3), Cancellation(program_id="am", date=WED))["am"]
    assert got.shifts == ()


# --------------------------------------------------------------------------- properties

_TIMES = [(time(h), time(h + d)) for h in range(7, 15) for d in (2, 3, 5)]


@st.composite
def staffed_days(draw: st.DrawFn) -> tuple[Organisation, list[Record]]:
    staff = [
        Staff(
            id=f"s{i}",
            name=f"S{i}",
            lead_capable=draw(st.booleans()),
            driver=draw(st.booleans()),
            max_hours_per_day=draw(st.sampled_from([None, Decimal(4), Decimal(8)])),
        )
        for i in range(draw(st.integers(0, 7)))
    ]
    programs = [
        program(f"g{n}", *draw(st.sampled_from(_TIMES))) for n in range(draw(st.integers(1, 4)))
    ]
    records: list[Record] = []
    # bool(staff): with the list itself left of ``and``, mypy infers draw()'s type from it
    for n, prog in enumerate(programs):
        records += enrol(prog.id, draw(st.integers(0, 12)), first=n * 5)
        if bool(staff) and draw(st.booleans()):
            pinned = draw(st.sampled_from(staff)).id
            records.append(StaffPin(program_id=prog.id, staff_id=pinned, start=WED))
    if bool(staff) and draw(st.booleans()):
        away = draw(st.sampled_from(staff)).id
        records.append(StaffLeave(staff_id=away, start=WED, end=WED))
    return org(staff, programs), records


@settings(max_examples=60, deadline=None)
@given(staffed_days())
def test_shifts_never_break_the_rules(day: tuple[Organisation, list[Record]]) -> None:
    organisation, records = day
    got = plan(organisation, *records)
    assert got == plan(organisation, *records)  # deterministic
    people = {s.id: s for s in organisation.staff}
    on_leave = {r.staff_id for r in records if isinstance(r, StaffLeave)}
    worked: dict[str, list[tuple[datetime, datetime]]] = {}
    for inst in got.values():
        demand = inst.staff_demand
        roles = [s.role for s in inst.shifts if s.role != "driver"]
        assert roles.count("lead") == demand.leads
        assert roles.count("support") >= demand.support  # pins can add support shifts
        for s in inst.shifts:
            if not s.filled:
                assert "unfilled-shift" in [w.code for w in inst.warnings]
                continue
            assert s.staff_id not in on_leave
            assert s.role != "lead" or people[s.staff_id].lead_capable
            worked.setdefault(s.staff_id, []).append((s.start, s.end))
    for staff_id, spans in worked.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"{staff_id} is double-booked"
        cap = people[staff_id].max_hours_per_day
        hours = sum((e - s).total_seconds() for s, e in spans) / 3600
        assert cap is None or hours <= cap


def test_a_slot_ranks_each_pool_it_is_given_by_the_stable_rank() -> None:
    from loomcore._staffing import ranked, stable_rank

    slot = ("am", "support", 1)
    pool = tuple(Staff(id=f"s{i}", name=f"S{i}") for i in range(12))

    def expected(people: tuple[Staff, ...]) -> list[str]:
        return sorted((p.id for p in people), key=lambda i: stable_rank(*slot, i))

    assert [p.id for p in ranked(slot, pool)] == expected(pool)
    assert [p.id for p in ranked(slot, pool)] == expected(pool)  # remembered: the same
    fewer = pool[::3]  # another pool for the same slot: ranked afresh, not remembered
    assert [p.id for p in ranked(slot, fewer)] == expected(fewer)
    assert [p.id for p in ranked(slot, list(fewer))] == expected(fewer)


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.lists(st.one_of(st.text(max_size=6), st.integers(-5, 500)), max_size=4),
    ids=st.lists(st.text(min_size=1, max_size=6), max_size=12, unique=True),
)
def test_a_rank_order_is_the_order_of_the_stable_rank(
    prefix: list[str | int], ids: list[str]
) -> None:
    # the order is worked out from the prefix encoded once: the same digests
    from loomcore._staffing import _rank_order, stable_rank

    order = _rank_order.__wrapped__(tuple(prefix), tuple(ids))
    assert [ids[i] for i in order] == sorted(ids, key=lambda i: stable_rank(*prefix, i))


def test_a_day_staffed_again_keeps_the_very_shifts_of_instances_staffed_alike() -> None:
    # the morning needs one more support worker: the day is staffed again,
    # and the afternoon, staffed as before, keeps its very Shift objects
    # (compared at a glance downstream); the morning gets one shift more,
    # and each call's shifts are those of a call on inputs never used before
    organisation = org(LEADS + SUPPORT)
    records = [
        attrs.evolve(r, id=f"r{n}", recorded_at=T0 + timedelta(seconds=n))
        for n, r in enumerate([*enrol("am", 5), *enrol("pm", 3, 10)])
    ]

    def inputs() -> PlanInputs:
        return PlanInputs(organisation=organisation, intents=records)

    used = inputs()
    day = {i.program_id: i for i in plan_day(used, WED).instances}
    am, pm = day["am"], day["pm"]
    busier = attrs.evolve(am, staff_demand=attrs.evolve(am.staff_demand, support=2))
    first, _ = assign_staff(used, WED, [am, pm])
    again, _ = assign_staff(used, WED, [busier, pm])
    assert (first, again) == (
        assign_staff(inputs(), WED, [am, pm])[0],
        assign_staff(inputs(), WED, [busier, pm])[0],
    )
    assert len(again[am.id]) == len(first[am.id]) + 1
    assert all(a is b for a, b in zip(again[pm.id], first[pm.id], strict=True))


def test_drivers_assigned_again_keep_the_very_shifts_of_runs_driven_alike() -> None:
    # two instances' runs, driven by drivers from outside their crews: the
    # afternoon run moves an hour later, and the morning's driver shift,
    # the same as before, is the very same object; each call's answer is
    # that of a call on inputs never used before
    drivers = [Staff(id=f"drv{i}", name=f"Driver {i}", driver=True) for i in range(2)]
    organisation = org([*LEADS, *drivers])

    def run(id: str, instance: str, hour: int) -> SimpleNamespace:
        at = datetime(2026, 10, 7, hour, tzinfo=UTC)
        return SimpleNamespace(
            id=id, instance_id=instance, departs=at, arrives=at + timedelta(hours=1)
        )

    def inputs() -> PlanInputs:
        return PlanInputs(organisation=organisation)

    programs = {"am/1": "am", "pm/1": "pm"}
    before = [run("a", "am/1", 8), run("b", "pm/1", 12)]
    after = [run("a", "am/1", 8), run("b", "pm/1", 13)]
    used = inputs()
    first = assign_drivers(used, WED, before, {}, programs)
    again = assign_drivers(used, WED, after, {}, programs)
    assert first == assign_drivers(inputs(), WED, before, {}, programs)
    assert again == assign_drivers(inputs(), WED, after, {}, programs)
    assert again[1]["pm/1"] != first[1]["pm/1"]
    assert again[1]["am/1"][0] is first[1]["am/1"][0]
