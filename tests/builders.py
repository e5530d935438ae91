"""Shared test builders: a controllable clock and a small organisation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from loomcore import (
    Enrolment,
    Location,
    Loom,
    MemoryStore,
    Organisation,
    Participant,
    PlanInputs,
    Program,
    Record,
    Staff,
    StaffingRule,
    Store,
    Vehicle,
    Venue,
    Weekly,
    plan_day,
)

SYDNEY = ZoneInfo("Australia/Sydney")


class Clock:
    """A clock the test moves by hand. Always returns aware UTC datetimes."""

    def __init__(self, local: datetime) -> None:
        self.now = local.replace(tzinfo=SYDNEY).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set_local(self, y: int, m: int, d: int, hh: int = 0, mm: int = 30) -> datetime:
        self.now = datetime(y, m, d, hh, mm, tzinfo=SYDNEY).astimezone(UTC)
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 30) -> datetime:
    """An aware datetime at a Sydney wall-clock time."""
    return datetime(y, m, d, hh, mm, tzinfo=SYDNEY)


def weekly(
    id: str, weekday: str, start: time, end: time, venue: str = "centre", **kw: object
) -> Program:
    return Program(
        id=id,
        name=id.replace("-", " ").title(),
        recurrence=Weekly(weekdays=[weekday]),
        start_time=start,
        end_time=end,
        venue_id=venue,
        active_from=date(2020, 1, 1),
        **kw,  # type: ignore[arg-type]
    )


def seed_organisation() -> Organisation:
    """The programs and people of the seeds' scenarios, plus a few others."""
    fillers = [
        Participant(
            id=f"p{i:02d}",
            name=f"Participant {i}",
            ndis_number=f"43{i:07d}",
            needs_transport=i % 2 == 0,
            pickup=Location(lat=-33.80 - i / 100, lon=151.00 + i / 100),
        )
        for i in range(1, 13)
    ]
    return Organisation(
        name="RABS",
        venues=[
            Venue(
                id="centre", name="Centre", capacity=20, location=Location(lat=-33.815, lon=151.003)
            ),
            Venue(
                id="small-room",
                name="Small room",
                capacity=5,
                location=Location(lat=-33.82, lon=151.01),
            ),
        ],
        participants=[
            Participant(
                id="sarah",
                name="Sarah",
                ndis_number="431111111",
                needs_transport=True,
                pickup=Location(lat=-33.87, lon=151.21),
            ),
            Participant(id="john", name="John", ndis_number="432222222", wheelchair=True),
            *fillers,
        ],
        staff=[
            Staff(id="kim", name="Kim", lead_capable=True, driver=True),
            Staff(id="lee", name="Lee", driver=True),
            Staff(id="amy", name="Amy", lead_capable=True),
            Staff(id="dee", name="Dee", lead_capable=True, driver=True),
            *(Staff(id=n.lower(), name=n) for n in ("Ben", "Cal", "Eve", "Fox", "Gus", "Hal")),
        ],
        vehicles=[
            Vehicle(
                id="bus1",
                name="Bus 1",
                seats=10,
                wheelchair_places=1,
                depot=Location(lat=-33.83, lon=151.0),
            ),
            Vehicle(
                id="van2",
                name="Van 2",
                seats=5,
                wheelchair_places=0,
                depot=Location(lat=-33.83, lon=151.0),
            ),
        ],
        programs=[
            weekly("centre-wed", "WE", time(9), time(15), transport=True),
            weekly("sat-adventure", "SA", time(10), time(16), transport=True),
            weekly("sun-social", "SU", time(10), time(15)),
            weekly("mon-art", "MO", time(10), time(14), venue="small-room"),
            weekly(
                "thu-weighted",
                "TH",
                time(9),
                time(12),
                staffing=StaffingRule(participants_per_support=4, weighted=True),
            ),
        ],
    )


def make_loom(
    clock: Clock, weeks: int = 6, store: Store | None = None, records: Sequence[Record] = ()
) -> Loom:
    loom = Loom(store if store is not None else MemoryStore(), clock=clock)
    loom.load(seed_organisation(), records, weeks=weeks, by="setup")
    return loom


def enrolments(start: date) -> list[Record]:
    """Eight participants (half of them riding the bus) in the two programs with transport."""
    return [
        Enrolment(program_id=program, participant_id=f"p{i:02d}", start=start)
        for program in ("centre-wed", "sat-adventure")
        for i in range(1, 9)
    ]


def assert_window_from_scratch(loom: Loom, now: datetime | None = None) -> None:
    """At ``now`` (default: the loom's clock) the window is healthy, every day
    of it is stored, and each equals the plan made afresh from the store's
    records: new inputs, nothing the loom remembers."""
    health = loom.health(now)
    assert (health.status, health.missing_days, health.stale_days) == ("ok", (), ())
    window = health.window
    records = loom.store.load_records(date.min, date.max)
    inputs = PlanInputs(
        organisation=loom.store.organisation(),
        timezone=loom.timezone,
        transport=loom.transport,
        catalogue=loom.catalogue,
        intents=records.intents,
        one_offs=records.one_offs,
    )
    stored = {p.date: p.plan for p in loom.store.planned_days(window.start, window.end)}
    assert sorted(stored) == list(window.days())
    for day in window.days():
        assert stored[day] == plan_day(inputs, day), day
