"""A demo organisation: a small Sydney provider, RABS, with a month of records.

Theory of operation
-------------------
:func:`demo_scenario` builds the same organisation for every ``today`` (one
``random.Random`` with a fixed seed picks the people) and dates its records
relative to ``today``: most enrolments started months ago, a few start inside
the first four weeks, and the one-date exceptions all fall inside them. Each
exception is placed by planning the day it names, so it always meets what
:meth:`loomcore.Loom.load` checks: its program has an instance that day, and
an absent participant is on it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from ._billing import BillingSettings, ItemChoice
from ._inputs import PlanInputs
from ._model import (
    Location,
    Organisation,
    Participant,
    Program,
    Staff,
    StaffingRule,
    Vehicle,
    Venue,
)
from ._plan import Instance, plan_day
from ._records import (
    Absence,
    Cancellation,
    Enrolment,
    ExtraAttendance,
    Intent,
    OneDayChange,
    OneOff,
    ProgramChange,
    StaffPin,
    VehiclePin,
    Withdrawal,
)
from ._recurrence import Fortnightly, Recurrence, RRule, Weekly
from ._scenario import Scenario, ScenarioSettings

__all__ = ["demo_scenario"]

_SEED = 20240701
_WEEK_A = date(2024, 1, 1)  # Week A of every fortnightly program is the week of 1 Jan 2024
# Outings are not centre-based: no Centre Capital Cost for them.
_OUTINGS = frozenset({"sat-outing", "first-sat"})

_SUBURBS: tuple[tuple[str, float, float], ...] = (
    ("Parramatta", -33.8150, 151.0011),
    ("Westmead", -33.8076, 150.9876),
    ("Harris Park", -33.8226, 151.0079),
    ("Granville", -33.8325, 151.0120),
    ("Merrylands", -33.8364, 150.9891),
    ("Guildford", -33.8530, 150.9870),
    ("Auburn", -33.8490, 151.0330),
    ("Blacktown", -33.7710, 150.9060),
    ("Seven Hills", -33.7740, 150.9360),
    ("Toongabbie", -33.7870, 150.9530),
    ("Wentworthville", -33.8070, 150.9720),
    ("Baulkham Hills", -33.7590, 150.9870),
    ("Castle Hill", -33.7300, 151.0040),
    ("Carlingford", -33.7820, 151.0480),
    ("Epping", -33.7730, 151.0820),
    ("Ermington", -33.8140, 151.0550),
    ("Mount Druitt", -33.7670, 150.8200),
    ("St Marys", -33.7620, 150.7740),
    ("Quakers Hill", -33.7340, 150.8850),
    ("Fairfield", -33.8720, 150.9560),
    ("Penrith", -33.7510, 150.6940),
)
_FIRST = (
    "Olivia", "Liam", "Mia", "Noah", "Ava", "Jack", "Chloe", "Ethan", "Zoe", "Lucas", "Aisha",
    "Mohammed", "Priya", "Arjun", "Mei", "Wei", "Hannah", "Thomas", "Grace", "Daniel", "Fatima",
    "Omar", "Sofia", "Luca", "Isla", "Kai", "Leila", "Sam", "Ruby", "James", "Amelia", "Oliver",
    "Charlotte", "William", "Emily", "Hamish", "Nikhil", "Yasmin", "Minh", "Tala", "Ben", "Jasmine",
)  # fmt: skip
_LAST = (
    "Nguyen", "Smith", "Tran", "Wilson", "Chen", "Patel", "Kelly", "Brown", "Singh", "Haddad",
    "Khoury", "Lee", "Martin", "Walker", "Taylor", "Ahmed", "Nasser", "Wong", "Campbell", "Murphy",
    "Rossi", "Papadopoulos", "Kim", "Le", "Fraser", "O'Brien",
)  # fmt: skip


def _at(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def _slug(*parts: str) -> str:
    return "-".join(p.lower().replace("'", "") for p in parts)


def _venues() -> tuple[Venue, ...]:
    def venue(id: str, name: str, capacity: int, lat: float, lon: float, address: str) -> Venue:
        loc = Location(lat=lat, lon=lon)
        return Venue(id=id, name=name, capacity=capacity, location=loc, address=address)

    return (
        venue("parramatta-hub", "RABS Parramatta Hub", 24, -33.8136, 151.0034,
              "Level 1, 40 Macquarie St, Parramatta NSW 2150"),
        venue("blacktown-centre", "Blacktown Community Centre", 16, -33.7688, 150.9063,
              "12 Flushcombe Rd, Blacktown NSW 2148"),
        venue("castle-hill-studio", "Castle Hill Creative Studio", 12, -33.7318, 151.0047,
              "3 Terminus St, Castle Hill NSW 2154"),
        venue("penrith-centre", "Penrith Activity Centre", 14, -33.7507, 150.6877,
              "88 Henry St, Penrith NSW 2750"),
    )  # fmt: skip


#: id, name, recurrence, hours, venue, transport. Recurrences read "weekly MO",
#: "fortnightly TU A" (weekday, week) or RRULE text.
_PROGRAMS: tuple[tuple[str, str, str, str, str, bool], ...] = (
    ("mon-art", "Monday Art & Craft", "weekly MO", "09:30-14:30", "hub", True),
    ("tue-life-skills", "Tuesday Life Skills", "weekly TU", "09:30-15:00", "blacktown", True),
    ("wed-cooking", "Wednesday Cooking Club", "weekly WE", "10:00-14:00", "hub", False),
    ("wed-evening", "Wednesday Evening Social", "weekly WE", "17:00-20:00", "blacktown", False),
    ("thu-music", "Thursday Music & Movement", "weekly TH", "09:30-14:30", "studio", True),
    ("fri-community", "Friday Community Access", "weekly FR", "09:00-15:00", "hub", True),
    ("sat-outing", "Saturday Outing", "weekly SA", "10:00-16:00", "hub", True),
    ("sun-social", "Sunday Social Club", "weekly SU", "11:00-15:00", "penrith", False),
    ("tech-week-a", "Tech Skills (Week A)", "fortnightly TU A", "10:00-14:00", "studio", False),
    ("garden-week-b", "Garden Club (Week B)", "fortnightly TH B", "09:30-13:30", "penrith", True),
    ("swim-week-a", "Swim & Splash (Week A)", "fortnightly FR A", "10:00-13:00", "penrith", False),
    ("first-sat", "First Saturday Adventure", "FREQ=MONTHLY;BYDAY=1SA", "09:00-17:00", "hub", True),
)  # fmt: skip
_VENUE_IDS = {
    "hub": "parramatta-hub",
    "blacktown": "blacktown-centre",
    "studio": "castle-hill-studio",
    "penrith": "penrith-centre",
}
_STAFFING = {
    "sat-outing": StaffingRule(participants_per_support=4),
    "first-sat": StaffingRule(weighted=True),
}


def _recurrence(spec: str, since: date) -> Recurrence:
    kind, _, rest = spec.partition(" ")
    if kind == "weekly":
        return Weekly(weekdays={rest})
    if kind == "fortnightly":
        day, week = rest.split()
        return Fortnightly(weekdays={day}, anchor=_WEEK_A, week=week)
    return RRule(rule=spec, dtstart=since)


def _programs(today: date) -> tuple[Program, ...]:
    since = date(today.year - 1, 1, 1)
    out = []
    for id, name, spec, hours, venue, transport in _PROGRAMS:
        start, end = (time.fromisoformat(t) for t in hours.split("-"))
        recurrence = _recurrence(spec, since)
        out.append(
            Program(
                id=id,
                name=name,
                recurrence=recurrence,
                start_time=start,
                end_time=end,
                venue_id=_VENUE_IDS[venue],
                staffing=_STAFFING.get(id, StaffingRule()),
                transport=transport,
                billing=BillingSettings(items=ItemChoice(centre_capital=id not in _OUTINGS)),
                active_from=since,
            )
        )
    return tuple(out)


def _participants(rng: random.Random) -> tuple[Participant, ...]:
    names: set[tuple[str, str]] = set()
    while len(names) < 60:
        names.add((rng.choice(_FIRST), rng.choice(_LAST)))
    numbers = rng.sample(range(10_000_000), 60)
    riders = set(rng.sample(range(60), 26))
    wheelchairs = set(rng.sample(sorted(riders), 4))
    heavier = dict.fromkeys(rng.sample(range(60), 6), Decimal("1.5")) | {7: Decimal(2)}
    people = []
    for i, (first, last) in enumerate(sorted(names)):
        _suburb, lat, lon = rng.choice(_SUBURBS)
        pickup = Location(
            lat=round(lat + rng.uniform(-0.008, 0.008), 4),
            lon=round(lon + rng.uniform(-0.008, 0.008), 4),
        )
        people.append(
            Participant(
                id=_slug(first, last),
                name=f"{first} {last}",
                ndis_number=f"43{numbers[i]:07d}",
                pickup=pickup,
                needs_transport=i in riders,
                wheelchair=i in wheelchairs,
                supervision_weight=heavier.get(i, Decimal(1)),
            )
        )
    return tuple(people)


def _staff(rng: random.Random) -> tuple[Staff, ...]:
    names: set[tuple[str, str]] = set()
    while len(names) < 15:
        names.add((rng.choice(_FIRST), rng.choice(_LAST)))
    return tuple(
        Staff(id=_slug(first, last), name=f"{first} {last}", lead_capable=i < 6, driver=i % 2 == 1)
        for i, (first, last) in enumerate(sorted(names))
    )


def _vehicles() -> tuple[Vehicle, ...]:
    depot = Location(lat=-33.8136, lon=151.0034)
    return (
        Vehicle(id="bus-1", name="Toyota HiAce Commuter (bus 1)", seats=12, depot=depot),
        Vehicle(id="bus-2", name="Toyota HiAce Commuter (bus 2)", seats=12, depot=depot),
        Vehicle(id="van-access", name="Wheelchair-accessible Ford Transit", seats=8,
                wheelchair_places=2, depot=depot),
        Vehicle(id="car-1", name="Kia Carnival", seats=8, depot=depot, kind="car"),
    )  # fmt: skip


def _enrolments(
    rng: random.Random, today: date, people: tuple[Participant, ...], programs: tuple[Program, ...]
) -> list[Enrolment]:
    out = []
    for i, person in enumerate(people):
        chosen = rng.sample(programs, rng.choice((1, 2, 2, 3)))
        for program in sorted(chosen, key=lambda p: p.id):
            if i % 12 == 5 and program is chosen[0]:  # a few start inside the window
                start = today + timedelta(days=rng.randint(3, 20))
            else:
                start = today - timedelta(days=rng.randint(14, 400))
            out.append(
                Enrolment(
                    id=f"enrol-{person.id}-{program.id}",
                    recorded_at=_at(min(start, today) - timedelta(days=rng.randint(1, 14))),
                    recorded_by="intake.coordinator",
                    program_id=program.id,
                    participant_id=person.id,
                    start=start,
                )
            )
    return out


def _next(today: date, weekday: int, after_days: int) -> date:
    day = today + timedelta(days=after_days)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def _changes(today: date, enrolments: list[Enrolment], lead: Staff) -> list[Intent]:
    later = _next(today, 2, 7)  # a Wednesday one to two weeks ahead
    leaving = next(e for e in enrolments if e.start < today)
    at, by = _at(today - timedelta(days=2)), "ops.manager"
    return [
        ProgramChange(
            id="cooking-an-hour-later",
            program_id="wed-cooking",
            start=later,
            start_time=time(11),
            end_time=time(15),
            note="kitchen booked in the morning; run an hour later",
            recorded_at=at,
            recorded_by=by,
        ),
        ProgramChange(
            id="cooking-back-to-usual",
            program_id="wed-cooking",
            start=later + timedelta(days=7),
            start_time=time(10),
            end_time=time(14),
            note="back to the usual hours",
            recorded_at=at,
            recorded_by=by,
        ),
        Withdrawal(
            id="withdraw-" + leaving.id.removeprefix("enrol-"),
            program_id=leaving.program_id,
            participant_id=leaving.participant_id,
            start=today + timedelta(days=12),
            note="moving interstate",
            recorded_at=at,
            recorded_by=by,
        ),
        StaffPin(
            id="pin-sat-outing-lead",
            program_id="sat-outing",
            staff_id=lead.id,
            start=today - timedelta(days=30),
            recorded_at=at,
            recorded_by=by,
        ),
        VehiclePin(
            id="pin-sat-outing-van",
            program_id="sat-outing",
            vehicle_id="van-access",
            start=today - timedelta(days=30),
            recorded_at=at,
            recorded_by=by,
        ),
    ]


def _instances(inputs: PlanInputs, today: date, first: int) -> Iterator[Instance]:
    """Scheduled instances with someone attending, from ``today + first`` to the 4th week's end."""
    for offset in range(first, 28):
        for instance in plan_day(inputs, today + timedelta(days=offset)).instances:
            if instance.attending:
                yield instance


def _exceptions(inputs: PlanInputs, today: date) -> list[OneOff]:
    used: set[str] = set()

    def pick(first: int, program_id: str | None = None) -> Instance:
        for instance in _instances(inputs, today, first):
            if instance.id not in used and program_id in (None, instance.program_id):
                used.add(instance.id)
                return instance
        raise AssertionError("the demo organisation always has an instance to use")

    away, no_show, moved = pick(6), pick(0), pick(8, "mon-art")
    extra, closed = pick(4, "thu-music"), pick(14, "sun-social")
    guest = next(p.id for p in inputs.organisation.participants if p.id not in extra.attending)
    at, by = _at(today - timedelta(days=1)), "ops.manager"
    return [
        Absence(
            id="absence-family-holiday",
            program_id=away.program_id,
            date=away.date,
            participant_id=away.attending[0],
            reason="family holiday",
            notified_on=away.date - timedelta(days=10),
            recorded_at=at,
            recorded_by=by,
        ),
        Absence(
            id="absence-no-show",
            program_id=no_show.program_id,
            date=no_show.date,
            participant_id=no_show.attending[-1],
            reason="did not attend; unwell",
            reason_code="NSDH",
            no_show=True,
            recorded_at=at,
            recorded_by=by,
        ),
        OneDayChange(
            id="art-at-blacktown",
            program_id="mon-art",
            date=moved.date,
            venue_id="blacktown-centre",
            note="hub floor being resurfaced",
            recorded_at=at,
            recorded_by=by,
        ),
        ExtraAttendance(
            id="music-guest",
            program_id="thu-music",
            date=extra.date,
            participant_id=guest,
            note="trying the group before enrolling",
            recorded_at=at,
            recorded_by=by,
        ),
        Cancellation(
            id="sunday-closed",
            program_id="sun-social",
            date=closed.date,
            reason="venue closed for maintenance",
            recorded_at=at,
            recorded_by=by,
        ),
    ]


def demo_scenario(today: date) -> Scenario:
    """RABS, a small Sydney provider, with records dated around ``today``.

    Twelve programs (weekday centre days, an evening social, a Saturday
    outing, a Sunday club, three Week A / Week B programs anchored on the
    week of 1 January 2024, and a first-Saturday-of-the-month adventure),
    four venues, sixty participants, fifteen staff and four vehicles. The
    organisation is the same for every ``today``; the records move with it
    and every exception falls in the four weeks from ``today``. Deterministic:
    the same ``today`` always gives an equal scenario.
    """
    rng = random.Random(_SEED)
    programs = _programs(today)
    organisation = Organisation(
        name="RABS (demo)",
        registration_number="4050000123",
        abn="51824753556",
        venues=_venues(),
        participants=_participants(rng),
        staff=_staff(rng),
        vehicles=_vehicles(),
        programs=programs,
    )
    enrolments = _enrolments(rng, today, organisation.participants, programs)
    intents = [*enrolments, *_changes(today, enrolments, organisation.staff[0])]
    inputs = PlanInputs(organisation=organisation, intents=intents)
    return Scenario(
        settings=ScenarioSettings(),
        organisation=organisation,
        intents=intents,
        exceptions=_exceptions(inputs, today),
    )
