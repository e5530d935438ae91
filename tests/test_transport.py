"""Vehicles, bus runs and drivers inside plan_day."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Generator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loomcore import (
    Availability,
    BusRun,
    Enrolment,
    Instance,
    Location,
    NoPriceLimitError,
    Organisation,
    Participant,
    PlanInputs,
    Program,
    Record,
    Staff,
    StaffPin,
    TransportSettings,
    Vehicle,
    VehicleMaintenance,
    VehiclePin,
    Venue,
    Weekly,
    Withdrawal,
    _routing,
    _transport,
    plan_day,
    shipped_catalogue,
)

T0 = datetime(2026, 9, 1, tzinfo=UTC)
WED = date(2026, 10, 7)
HALL = Location(lat=-33.815, lon=151.003)
DEPOT = Location(lat=-33.83, lon=151.0)


def home(i: int) -> Location:
    return Location(lat=-33.78 - (i % 7) / 100, lon=150.95 + (i % 5) / 50)


def program(id: str, start: time, end: time) -> Program:
    return Program(
        id=id,
        name=id,
        recurrence=Weekly(weekdays=["WE"]),
        start_time=start,
        end_time=end,
        venue_id="hall",
        transport=True,
        active_from=date(2026, 1, 1),
    )


def org(
    vehicles: list[Vehicle],
    staff: list[Staff] | None = None,
    programs: list[Program] | None = None,
    wheelchair: frozenset[int] = frozenset(),
) -> Organisation:
    return Organisation(
        venues=[Venue(id="hall", name="Hall", capacity=60, location=HALL)],
        participants=[
            Participant(
                id=f"p{i:02d}",
                name=f"P{i}",
                needs_transport=True,
                wheelchair=i in wheelchair,
                pickup=home(i),
            )
            for i in range(30)
        ],
        staff=staff
        if staff is not None
        else [Staff(id=f"s{i}", name=f"S{i}", lead_capable=i < 3, driver=True) for i in range(9)],
        vehicles=vehicles,
        programs=programs or [program("am", time(10), time(14))],
    )


def bus(id: str, seats: int = 11, wheelchair_places: int = 1) -> Vehicle:
    return Vehicle(id=id, name=id, seats=seats, wheelchair_places=wheelchair_places, depot=DEPOT)


def day_plan(organisation: Organisation, *records: Record, day: date = WED):  # type: ignore[no-untyped-def]
    stamped = [
        attrs.evolve(r, id=r.id or f"r{n}", recorded_at=T0 + timedelta(seconds=n))
        for n, r in enumerate(records)
    ]
    inputs = PlanInputs(organisation=organisation, intents=stamped)  # type: ignore[arg-type]
    return plan_day(inputs, day)


def enrol(program_id: str, people: range) -> list[Enrolment]:
    return [
        Enrolment(program_id=program_id, participant_id=f"p{i:02d}", start=date(2026, 1, 1))
        for i in people
    ]


def test_runs_carry_every_rider_with_times_and_seats() -> None:
    plan = day_plan(org([bus("b1"), bus("b2")]), *enrol("am", range(12)))
    (inst,) = plan.instances
    for direction in ("pickup", "dropoff"):
        runs = [r for r in inst.bus_runs if r.direction == direction]
        assert sorted(p for r in runs for p in r.riders) == [f"p{i:02d}" for i in range(12)]
        for run in runs:
            assert len(run.riders) <= 10  # 11 seats, one for the driver
            times = [s.at for s in run.stops]
            assert times == sorted(times)
            assert run.driver_id
    pickups = [r for r in inst.bus_runs if r.direction == "pickup"]
    assert all(r.arrives == inst.start - timedelta(minutes=10) for r in pickups)
    assert all(r.stops[0].kind == "depot" and r.stops[-1].kind == "venue" for r in pickups)
    dropoffs = [r for r in inst.bus_runs if r.direction == "dropoff"]
    assert all(r.departs == inst.end + timedelta(minutes=5) for r in dropoffs)
    assert [w.code for w in inst.warnings] == []


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [
        (date(2026, 10, 4), time(3, 5), time(5)),  # clocks went forward at 02:00
        (date(2027, 4, 4), time(3, 10), time(4, 30)),  # back at 03:00: 02:00-03:00 twice
    ],
    ids=["forward", "back"],
)
def test_runs_on_a_day_the_clocks_change_keep_real_time(day: date, start: time, end: time) -> None:
    sunday = attrs.evolve(program("am", start, end), recurrence=Weekly(weekdays=["SU"]))
    plan = day_plan(org([bus("b1")], programs=[sunday]), *enrol("am", range(6)), day=day)
    (inst,) = plan.instances

    def real(t: datetime) -> datetime:
        return t.astimezone(UTC)

    for run in inst.bus_runs:
        times = [real(s.at) for s in run.stops]
        assert times == sorted(times)
        # every stop is at a clock time that exists, and reads back as itself
        assert all(s.at.astimezone(UTC).astimezone(s.at.tzinfo) == s.at for s in run.stops)
        if run.direction == "pickup":
            assert real(inst.start) - real(run.arrives) == timedelta(minutes=10)
        else:
            assert real(run.departs) - real(inst.end) == timedelta(minutes=5)
        legs = [b - a for a, b in itertools.pairwise(times)]
        assert all(timedelta(0) < leg < timedelta(minutes=45) for leg in legs)
    assert {r.direction for r in inst.bus_runs} == {"pickup", "dropoff"}


def test_transport_in_a_year_without_published_limits_is_billed_provisionally() -> None:
    # the shipped catalogue has no per-km limits for 2027-28: the latest
    # earlier ones are carried forward and the lines flagged, as for prices
    later = date(2027, 7, 7)  # a Wednesday
    stamped = [
        attrs.evolve(r, id=f"r{n}", recorded_at=T0) for n, r in enumerate(enrol("am", range(6)))
    ]
    catalogue = shipped_catalogue()
    with pytest.raises(NoPriceLimitError):
        catalogue.km_rate_limit("bus", later)
    carried = catalogue.latest_km_rate_limit("bus", later)
    assert carried is not None
    assert not carried.covers(later)
    inputs = PlanInputs(organisation=org([bus("b1")]), catalogue=catalogue, intents=stamped)
    (inst,) = plan_day(inputs, later).instances
    rides = [line for line in inst.billing_lines if line.item_number == "04_591_0136_6_1"]
    riders = {p for run in inst.bus_runs for p in run.riders}
    assert {line.participant_id for line in rides} == riders
    assert all("provisional-price" in line.flags for line in rides)
    assert "provisional-price" in [w.code for w in inst.warnings]
    assert "billing-unavailable" not in [w.code for w in inst.warnings]


def test_drop_off_runs_are_the_pickup_runs_backwards_from_one_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    searches: list[int] = []
    solving = _routing._solving

    def counted(p: _routing._Problem) -> Generator[_routing.Plan, None, _routing._Search]:
        searches.append(p.n)
        return solving(p)

    monkeypatch.setattr(_routing, "_solving", counted)
    _routing._forget()
    (inst,) = day_plan(org([bus("b1"), bus("b2")]), *enrol("am", range(14))).instances
    assert searches == [14]  # the default travel model is symmetric: one search each way
    pickups = {r.vehicle_id: r.riders for r in inst.bus_runs if r.direction == "pickup"}
    dropoffs = {r.vehicle_id: r.riders for r in inst.bus_runs if r.direction == "dropoff"}
    assert pickups == {v: riders[::-1] for v, riders in dropoffs.items()}
    _routing._forget()


def test_wheelchair_riders_need_wheelchair_places() -> None:
    organisation = org(
        [bus("b1", wheelchair_places=0), bus("b2", seats=4, wheelchair_places=2)],
        wheelchair=frozenset({0, 1}),
    )
    (inst,) = day_plan(organisation, *enrol("am", range(4))).instances
    for run in inst.bus_runs:
        if {"p00", "p01"} & set(run.riders):
            assert run.vehicle_id == "b2"


def test_not_enough_seats_is_a_warning_naming_who_is_left() -> None:
    (inst,) = day_plan(org([bus("b1", seats=4)]), *enrol("am", range(5))).instances
    carried = {p for r in inst.bus_runs if r.direction == "pickup" for p in r.riders}
    left = {w.participant_id for w in inst.warnings if w.code == "seat-shortage"}
    assert len(carried) == 3
    assert left == {f"p{i:02d}" for i in range(5)} - carried


def test_a_vehicle_serves_two_instances_when_times_allow() -> None:
    programs = [program("am", time(9), time(11)), program("pm", time(14), time(16))]
    plan = day_plan(
        org([bus("b1")], programs=programs), *enrol("am", range(4)), *enrol("pm", range(4, 8))
    )
    used = {r.vehicle_id for i in plan.instances for r in i.bus_runs}
    assert used == {"b1"}
    assert all(not i.warnings for i in plan.instances)


def test_overlapping_instances_need_different_vehicles() -> None:
    programs = [program("am", time(9), time(12)), program("am2", time(9), time(12))]
    plan = day_plan(
        org([bus("b1"), bus("b2")], programs=programs),
        *enrol("am", range(4)),
        *enrol("am2", range(4, 8)),
    )
    vehicles = [{r.vehicle_id for r in i.bus_runs} for i in plan.instances]
    assert vehicles[0].isdisjoint(vehicles[1])


def test_maintenance_and_pins_choose_the_vehicle() -> None:
    organisation = org([bus("b1"), bus("b2")])
    pinned = day_plan(
        organisation,
        *enrol("am", range(3)),
        VehiclePin(program_id="am", vehicle_id="b2", start=WED),
    )
    assert {r.vehicle_id for r in pinned.instances[0].bus_runs} == {"b2"}
    serviced = day_plan(
        organisation,
        *enrol("am", range(3)),
        VehiclePin(program_id="am", vehicle_id="b2", start=WED),
        VehicleMaintenance(vehicle_id="b2", start=WED, end=WED),
    )
    assert {r.vehicle_id for r in serviced.instances[0].bus_runs} == {"b1"}


def test_drivers_come_from_the_crew_first_then_an_extra_shift() -> None:
    crew_drives = day_plan(org([bus("b1")]), *enrol("am", range(3)))
    (inst,) = crew_drives.instances
    crew = {s.staff_id for s in inst.shifts if s.role != "driver"}
    assert {r.driver_id for r in inst.bus_runs} <= crew
    assert [s for s in inst.shifts if s.role == "driver"] == []

    # the only driver can drive before and after, but not work the instance
    around = [
        Availability(weekday="WE", start=time(7), end=time(10)),
        Availability(weekday="WE", start=time(14), end=time(17)),
    ]
    non_drivers = [
        Staff(id="lead", name="L", lead_capable=True),
        Staff(id="sup", name="S"),
        Staff(id="drv", name="D", driver=True, availability=around),
    ]
    (inst,) = day_plan(org([bus("b1")], staff=non_drivers), *enrol("am", range(3))).instances
    assert {r.driver_id for r in inst.bus_runs} == {"drv"}
    driving = [s for s in inst.shifts if s.role == "driver"]
    assert [(s.staff_id, s.start, s.end) for s in driving] == [
        ("drv", r.departs, r.arrives) for r in inst.bus_runs
    ]


def test_an_extra_driver_is_the_programs_first_free_driver_in_stable_order() -> None:
    from loomcore._staffing import stable_rank

    around = [
        Availability(weekday="WE", start=time(7), end=time(10)),
        Availability(weekday="WE", start=time(14), end=time(17)),
    ]
    crew = [Staff(id="lead", name="L", lead_capable=True), Staff(id="sup", name="S")]
    # free around the instance, as the drivers are, but not drivers
    others = [Staff(id=f"x{i}", name=f"X{i}", availability=around) for i in range(6)]
    drivers = [Staff(id=f"d{i}", name=f"D{i}", driver=True, availability=around) for i in range(6)]
    staff = [*crew, *others[:3], *drivers[:3], *others[3:], *drivers[3:]]
    (inst,) = day_plan(org([bus("b1")], staff=staff), *enrol("am", range(3))).instances
    first = min((d.id for d in drivers), key=lambda i: stable_rank("am", "driver", 0, i))
    assert {r.driver_id for r in inst.bus_runs} == {first}


def test_no_driver_is_a_warning() -> None:
    nobody_drives = [Staff(id="lead", name="L", lead_capable=True), Staff(id="sup", name="S")]
    (inst,) = day_plan(org([bus("b1")], staff=nobody_drives), *enrol("am", range(3))).instances
    assert inst.bus_runs
    assert all(r.driver_id == "" for r in inst.bus_runs)
    assert [w.code for w in inst.warnings].count("no-driver") == 2


def test_riders_without_a_pickup_location_are_named() -> None:
    organisation = org([bus("b1")])
    nowhere = attrs.evolve(organisation.participants[0], pickup=None)
    (inst,) = day_plan(organisation.with_item(nowhere), *enrol("am", range(3))).instances
    assert [(w.code, w.participant_id) for w in inst.warnings] == [("no-pickup-location", "p00")]
    assert "p00" not in {p for r in inst.bus_runs for p in r.riders}


@settings(max_examples=40, deadline=None)
@given(
    riders=st.integers(min_value=0, max_value=25),
    fleet=st.lists(st.tuples(st.integers(2, 12), st.integers(0, 2)), min_size=0, max_size=3),
    wheelchair=st.frozensets(st.integers(0, 24), max_size=4),
)
def test_every_rider_is_carried_once_each_way_or_named(
    riders: int, fleet: list[tuple[int, int]], wheelchair: frozenset[int]
) -> None:
    vehicles = [bus(f"b{n}", seats=s, wheelchair_places=w) for n, (s, w) in enumerate(fleet)]
    organisation = org(vehicles, wheelchair=wheelchair)
    plan = day_plan(organisation, *enrol("am", range(riders)))
    assert plan == day_plan(organisation, *enrol("am", range(riders)))  # deterministic
    (inst,) = plan.instances
    named = {w.participant_id for w in inst.warnings if w.code == "seat-shortage"}
    for direction in ("pickup", "dropoff"):
        carried = [p for r in inst.bus_runs if r.direction == direction for p in r.riders]
        assert len(carried) == len(set(carried))  # nobody twice
        assert set(carried) | named == set(inst.attending)
        assert not set(carried) & named or direction == "dropoff"
    for run in inst.bus_runs:
        vehicle = next(v for v in vehicles if v.id == run.vehicle_id)
        wc = sum(1 for p in run.riders if organisation.participants[int(p[1:])].wheelchair)
        assert wc <= vehicle.wheelchair_places
        assert len(run.riders) - wc <= vehicle.seats - 1


def _near_hall(km_north: float) -> Location:
    return Location(lat=HALL.lat + km_north / 111.32, lon=HALL.lon)


def _riders_at(places: dict[int, Location]) -> Organisation:
    base = org([bus("b1"), bus("b2"), bus("b3")])
    people = [
        attrs.evolve(p, pickup=places[i]) for i, p in enumerate(base.participants) if i in places
    ]
    return attrs.evolve(base, participants=people)


def test_a_vehicle_is_added_while_a_ride_is_over_the_limit_for_a_rider_it_can_help() -> None:
    # two riders 15 km north and two 15 km south of the hall, each within the
    # hour's limit on their own; on one bus the first ones ride well over it
    places = {0: _near_hall(15), 1: _near_hall(15.5), 2: _near_hall(-15), 3: _near_hall(-15.5)}
    (inst,) = day_plan(_riders_at(places), *enrol("am", range(4))).instances
    pickups = [r for r in inst.bus_runs if r.direction == "pickup"]
    assert len(pickups) == 2
    assert sorted(sorted(r.riders) for r in pickups) == [["p00", "p01"], ["p02", "p03"]]
    assert "ride-too-long" not in [w.code for w in inst.warnings]


def test_no_vehicle_is_added_for_a_rider_beyond_the_limit_of_the_venue() -> None:
    # 45 km away: over the hour on any bus, so one more bus would not help
    places = {0: _near_hall(45), 1: _near_hall(1)}
    (inst,) = day_plan(_riders_at(places), *enrol("am", range(2))).instances
    pickups = [r for r in inst.bus_runs if r.direction == "pickup"]
    assert len({r.vehicle_id for r in pickups}) == 1
    assert [(w.code, w.participant_id) for w in inst.warnings] == [("ride-too-long", "p00")]


R = TypeVar("R", bound=Record)


def _stamped(records: Sequence[R], first: int = 0) -> list[R]:
    return [
        attrs.evolve(r, id=f"r{first + n}", recorded_at=T0 + timedelta(seconds=first + n))
        for n, r in enumerate(records)
    ]


@pytest.mark.parametrize("joining", [0, 1])
def test_a_re_plan_gives_an_instance_the_vehicle_another_no_longer_needs(joining: int) -> None:
    # am takes both buses for its five riders; am2, starting later, finds none left
    programs = [program("am", time(9), time(12)), program("am2", time(9, 30), time(12))]
    organisation = org([bus("b1", seats=4), bus("b2", seats=4)], programs=programs)
    records = _stamped([*enrol("am", range(5)), *enrol("am2", range(10, 13))])
    before = PlanInputs(organisation=organisation, intents=records)
    (_, am2) = plan_day(before, WED).instances
    assert {w.code for w in am2.warnings} == {"seat-shortage"}
    # two of am's riders leave (and am2's riders stay or one joins): b2 is free for am2
    leaving = [
        Withdrawal(program_id="am", participant_id=f"p{i:02d}", start=date(2026, 10, 1))
        for i in (3, 4)
    ]
    change = _stamped([*leaving, *enrol("am2", range(13, 13 + joining))], first=len(records))
    after = plan_day(before.updated(add=change), WED)
    scratch = PlanInputs(organisation=organisation, intents=[*records, *change])
    assert after == plan_day(scratch, WED)
    (_, am2) = after.instances
    assert {r.vehicle_id for r in am2.bus_runs} == {"b2"}


def test_a_re_plan_gives_an_untouched_instance_the_driver_another_run_leaves_it() -> None:
    """Enrolling a rider on ``a`` moves its pickup before ``b``'s, so ``a``
    borrows the driver of ``b``'s crew that both programs prefer: ``b``
    keeps its runs, to the minute, and its shifts, but another of its crew
    drives, re-planned as planned afresh."""
    staff = [
        Staff(id="c0", name="C0", lead_capable=True),
        Staff(id="c1", name="C1"),
        Staff(id="c2", name="C2", lead_capable=True, driver=True),
        Staff(id="c3", name="C3", driver=True),
    ]
    organisation = org(
        [bus("b1"), bus("b2")],
        staff=staff,
        programs=[program("a", time(10), time(14)), program("b", time(10), time(14))],
    )
    crews = [("a", "c0"), ("a", "c1"), ("b", "c2"), ("b", "c3")]
    before: list[Record] = [
        StaffPin(program_id=p, staff_id=s, start=date(2026, 1, 1)) for p, s in crews
    ]
    before += [*enrol("a", range(1, 2)), *enrol("b", range(10, 13))]
    stamped = [
        attrs.evolve(r, id=f"r{n}", recorded_at=T0 + timedelta(seconds=n))
        for n, r in enumerate([*before, *enrol("a", range(0, 1))])
    ]
    first = PlanInputs(organisation=organisation, intents=stamped[: len(before)])  # type: ignore[arg-type]
    was = {i.program_id: i for i in plan_day(first, WED).instances}
    again = plan_day(first.updated(add=stamped[len(before) :]), WED)
    fresh = plan_day(PlanInputs(organisation=organisation, intents=stamped), WED)  # type: ignore[arg-type]
    now = {i.program_id: i for i in fresh.instances}

    def pickup(inst: Instance) -> BusRun:
        return next(r for r in inst.bus_runs if r.direction == "pickup")

    assert pickup(was["a"]).departs > pickup(was["b"]).departs
    assert pickup(now["a"]).departs < pickup(now["b"]).departs
    assert (pickup(was["b"]).driver_id, pickup(now["b"]).driver_id) == ("c3", "c2")
    assert now["b"].shifts == was["b"].shifts
    assert [attrs.evolve(r, driver_id="") for r in now["b"].bus_runs] == [
        attrs.evolve(r, driver_id="") for r in was["b"].bus_runs
    ]
    assert again == fresh


def test_a_re_plan_looks_for_free_vehicles_only_from_the_first_changed_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a day's instances begin as they did, each unchanged, the fleet
    stands as it stood: their runs are kept without asking which vehicles
    are free. Enrolling a rider on the last instance asks for it alone."""
    programs = [program(p, time(h), time(h + 3)) for p, h in (("a", 8), ("b", 9), ("c", 10))]
    organisation = org([bus("b1", seats=4), bus("b2", seats=4)], programs=programs)
    records = _stamped(
        [*enrol("a", range(3)), *enrol("b", range(10, 13)), *enrol("c", range(20, 23))]
    )
    before = PlanInputs(organisation=organisation, intents=records)
    plan_day(before, WED)
    asked: list[str] = []
    free_vehicles = _transport._free_vehicles

    def spy(inputs: PlanInputs, inst: Instance, *rest: object) -> object:
        asked.append(inst.program_id)
        return free_vehicles(inputs, inst, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(_transport, "_free_vehicles", spy)
    change = _stamped(enrol("c", range(23, 24)), first=len(records))
    after = plan_day(before.updated(add=change), WED)
    assert asked == ["c"]
    scratch = PlanInputs(organisation=organisation, intents=[*records, *change])
    assert after == plan_day(scratch, WED)
    # the first instance changed: every instance after it looks again
    asked.clear()
    change = _stamped(enrol("a", range(3, 4)), first=len(records) + 1)
    plan_day(before.updated(add=change), WED)
    assert asked == ["a", "b", "c"]


def test_a_fleet_surely_short_for_ride_limits_grows_without_a_first_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Riders spread far apart on one bus: the bound tells that someone is
    over the limit, so a vehicle is added without asking the router for a
    first answer, and the runs are those the first answers would give."""
    organisation = org([bus("b1"), bus("b2"), bus("b3"), bus("b4")])
    # homes 4.4 km apart, on a grid from the hall out
    spread = [
        attrs.evolve(
            p, pickup=Location(lat=HALL.lat + (i % 4 - 1.5) / 25, lon=HALL.lon + i // 4 / 25)
        )
        for i, p in enumerate(organisation.participants)
    ]
    organisation = attrs.evolve(organisation, participants=spread)
    records = _stamped(enrol("am", range(8)))
    transport = TransportSettings(max_ride_minutes=25)
    asked: list[int] = []
    rough = _transport._rough

    def spy(direction: str, riders: object, vehicles: list[Vehicle], *rest: object) -> object:
        asked.append(len(vehicles))
        return rough(direction, riders, vehicles, *rest)  # type: ignore[arg-type]

    def planned() -> object:
        inputs = PlanInputs(organisation=organisation, intents=records, transport=transport)
        return plan_day(inputs, WED)

    monkeypatch.setattr(_transport, "_rough", spy)
    quick = planned()
    skipped = list(asked)
    asked.clear()
    monkeypatch.setattr(_transport, "_surely_helped", lambda *args: False)
    assert planned() == quick
    assert len(skipped) < len(asked)
    assert 1 in asked  # without the bound, one bus was asked about
    assert 1 not in skipped  # with it, one bus was surely too few


def test_a_vehicle_pinned_after_planning_takes_the_runs_as_planned_afresh() -> None:
    organisation = org([bus("b1"), bus("b2")])
    records = _stamped(enrol("am", range(3)))
    before = PlanInputs(organisation=organisation, intents=records)
    (inst,) = plan_day(before, WED).instances
    other = "b2" if inst.bus_runs[0].vehicle_id == "b1" else "b1"
    pin = _stamped(
        [VehiclePin(program_id="am", vehicle_id=other, start=date(2026, 1, 1))], first=len(records)
    )
    after = plan_day(before.updated(add=pin), WED)
    scratch = PlanInputs(organisation=organisation, intents=[*records, *pin])
    assert after == plan_day(scratch, WED)
    assert {r.vehicle_id for r in after.instances[0].bus_runs} == {other}


def test_runs_kept_for_one_inputs_are_not_taken_from_anothers_plan_of_the_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inputs updated from others share the day's memo. A thread planning
    the first inputs, paused after its first booking while the updated
    inputs plan the day, must not keep a run made for the other fleet."""
    programs = [program("a", time(8), time(11)), program("c", time(9), time(12))]
    organisation = org([bus("x", seats=5), bus("y", seats=5), bus("z", seats=5)], programs=programs)
    records = _stamped([*enrol("a", range(0, 4)), *enrol("c", range(4, 8))])
    first = PlanInputs(organisation=organisation, intents=records)
    planned = plan_day(first, WED)
    leaving = [
        Withdrawal(program_id="a", participant_id=f"p{i:02d}", start=date(2026, 1, 1))
        for i in range(4)
    ]
    later = first.updated(add=_stamped(leaving, first=100))
    go, paused = threading.Event(), threading.Event()
    book = _transport._Fleet.book

    def slow_book(fleet: object, *args: object) -> None:
        if threading.current_thread().name == "first" and not paused.is_set():
            paused.set()
            go.wait(10)
        book(fleet, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_transport._Fleet, "book", slow_book)
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(plan_day(first, WED)), name="first")
    thread.start()
    assert paused.wait(10)
    plan_day(later, WED)
    go.set()
    thread.join(10)
    assert out == [planned]
