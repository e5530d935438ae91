"""A realistic organisation at scale, for benchmarks: generated, then loaded into a store.

Usage (as a library; ``roll.py`` is the script that times it)::

    from scale_org import Sizes, generate, load_memory
    org = generate(Sizes().scaled(0.1), today=date(2026, 7, 6))
    store = load_memory(org)

Theory of operation
-------------------
One ``random.Random(seed)`` draws everything, in a fixed order, so the same
sizes, ``today`` and seed always give an equal organisation.

* Programs run weekly (four in five) or fortnightly on one weekday, Monday to
  Saturday, at one of ten venues; three in five have transport.
* Intents span ``years`` from a year before ``today``. A fifth are enrolments
  of a few months each, sized so that about ``per_program`` participants
  attend each program at any time; the rest are what operators record
  around them: temporary withdrawals (one to three weeks) of an enrolled
  participant, staff and vehicle pins, program changes (time or venue for a
  few weeks), staff leave and vehicle maintenance.
* Exceptions fall on dates their program runs: absences of a participant
  enrolled that day, one-day time changes and cancellations.
* Records are loaded straight into the store (as a data migration would),
  not through :meth:`loomcore.Loom.load`, whose per-record validation is not
  what is being measured. The generator keeps exceptions valid by
  construction.
"""

from __future__ import annotations

import random
import sys
import time as _time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import attrs

from loomcore import (
    Absence,
    Cancellation,
    Enrolment,
    Fortnightly,
    Intent,
    Location,
    MemoryStore,
    OneDayChange,
    OneOff,
    Organisation,
    Participant,
    Program,
    ProgramChange,
    Record,
    Staff,
    StaffLeave,
    StaffPin,
    Vehicle,
    VehicleMaintenance,
    VehiclePin,
    Venue,
    Weekly,
    Withdrawal,
)

__all__ = ["Generated", "Progress", "Sizes", "generate", "load_memory", "load_postgres"]

DEFAULT_TODAY = date(2026, 7, 6)  # a Monday
_WEEK_A = date(2024, 1, 1)
_CENTRE = (-33.8150, 151.0011)  # Parramatta

#: Share of intents by kind; enrolments come first and the rest refer to them.
_MIX = (
    ("withdrawal", 0.45),
    ("staff_pin", 0.10),
    ("program_change", 0.10),
    ("vehicle_pin", 0.05),
    ("staff_leave", 0.07),
    ("vehicle_maintenance", 0.03),
)
_ENROLMENT_SHARE = 0.20


@attrs.frozen(kw_only=True)
class Sizes:
    """How big the organisation is. Every size is an option of ``roll.py``."""

    programs: int = 150
    participants: int = 3_000
    staff: int = 300
    vehicles: int = 40
    venues: int = 10
    intents: int = 500_000
    exceptions: int = 50_000
    years: int = 10
    per_program: int = 14

    def scaled(self, factor: float) -> Sizes:
        """Every count times ``factor`` (at least a handful of each); years unchanged."""

        def n(value: int, least: int) -> int:
            return max(least, round(value * factor))

        return attrs.evolve(
            self,
            programs=n(self.programs, 3),
            participants=n(self.participants, 20),
            staff=n(self.staff, 8),
            vehicles=n(self.vehicles, 2),
            venues=n(self.venues, 2),
            intents=n(self.intents, 50),
            exceptions=n(self.exceptions, 5),
        )


@attrs.frozen(kw_only=True)
class Generated:
    """An organisation and its records, in the order they were recorded."""

    organisation: Organisation
    intents: tuple[Intent, ...]
    one_offs: tuple[OneOff, ...]
    today: date

    @property
    def records(self) -> tuple[Record, ...]:
        return (*self.intents, *self.one_offs)


class Progress:
    """A one-line progress report on stderr (nothing when ``quiet``)."""

    def __init__(self, label: str, total: int, *, quiet: bool = False) -> None:
        self.label, self.total, self.quiet = label, max(total, 1), quiet
        self.done = 0
        self._started = _time.perf_counter()
        self._shown = -1.0

    def step(self, n: int = 1) -> None:
        self.done += n
        now = _time.perf_counter()
        if not self.quiet and (now - self._shown > 0.5 or self.done >= self.total):
            self._shown = now
            pct = 100 * self.done / self.total
            sys.stderr.write(
                f"\r{self.label}: {self.done:,}/{self.total:,} ({pct:5.1f} %) "
                f"{now - self._started:6.1f} s"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if not self.quiet:
            self.done = self.total - 1
            self.step()
            sys.stderr.write("\n")


def _near(rng: random.Random, km: float) -> Location:
    lat = _CENTRE[0] + rng.uniform(-km, km) / 111.0
    lon = _CENTRE[1] + rng.uniform(-km, km) / 93.0
    return Location(lat=round(lat, 5), lon=round(lon, 5))


def _at(d: date, rng: random.Random) -> datetime:
    return datetime.combine(d, time(8), tzinfo=UTC) + timedelta(seconds=rng.randrange(36_000))


def _organisation(sizes: Sizes, rng: random.Random, since: date) -> Organisation:
    venues = tuple(
        Venue(
            id=f"venue-{n:02d}",
            name=f"Centre {n}",
            capacity=rng.choice((16, 20, 24, 30)),
            location=_near(rng, 15),
        )
        for n in range(sizes.venues)
    )
    participants = tuple(
        Participant(
            id=f"p{n:05d}",
            name=f"Participant {n}",
            ndis_number=f"43{n:07d}",
            pickup=_near(rng, 20),
            needs_transport=rng.random() < 0.4,
            wheelchair=rng.random() < 0.05,
        )
        for n in range(sizes.participants)
    )
    staff = tuple(
        Staff(id=f"s{n:04d}", name=f"Staff {n}", lead_capable=n % 3 == 0, driver=n % 2 == 1)
        for n in range(sizes.staff)
    )
    vehicles = tuple(
        Vehicle(
            id=f"v{n:03d}",
            name=f"Vehicle {n}",
            seats=rng.choice((8, 11, 12)),
            wheelchair_places=1 if n % 4 == 0 else 0,
            depot=_near(rng, 5),
        )
        for n in range(sizes.vehicles)
    )
    programs = []
    for n in range(sizes.programs):
        weekday = n % 6  # Monday to Saturday
        recurrence: Weekly | Fortnightly = (
            Weekly(weekdays={weekday})
            if n % 5
            else Fortnightly(weekdays={weekday}, anchor=_WEEK_A, week="AB"[n % 2])
        )
        begin = rng.choice((time(9), time(9, 30), time(10), time(13)))
        hours = rng.choice((3, 4, 5))
        programs.append(
            Program(
                id=f"prog-{n:03d}",
                name=f"Program {n}",
                recurrence=recurrence,
                start_time=begin,
                end_time=time(begin.hour + hours, begin.minute),
                venue_id=venues[n % len(venues)].id,
                transport=rng.random() < 0.6,
                active_from=since,
            )
        )
    return Organisation(
        name="Scale benchmark",
        registration_number="4050000123",
        abn="51824753556",
        venues=venues,
        participants=participants,
        staff=staff,
        vehicles=vehicles,
        programs=tuple(programs),
    )


def _run_day(program: Program, day: date) -> date:
    """The first day on or after ``day`` when ``program`` runs."""
    while not program.recurrence.runs_on(day):
        day += timedelta(days=1)
    return day


def _enrolments(
    sizes: Sizes, rng: random.Random, org: Organisation, since: date, span: int
) -> Iterator[Enrolment]:
    count = max(len(org.programs), round(sizes.intents * _ENROLMENT_SHARE))
    per_program = count / len(org.programs)
    length = max(14, min(730, round(sizes.per_program * span / per_program)))
    for n in range(count):
        program = org.programs[n % len(org.programs)]
        start = since + timedelta(days=rng.randrange(span))
        end = start + timedelta(days=rng.randint(length // 2, length * 3 // 2))
        who = org.participants[rng.randrange(len(org.participants))]
        yield Enrolment(
            id=f"enrol-{n:07d}",
            program_id=program.id,
            participant_id=who.id,
            start=start,
            end=end,
            recorded_at=_at(start - timedelta(days=rng.randint(1, 30)), rng),
            recorded_by="intake",
        )


def _other_intent(
    kind: str, n: int, rng: random.Random, org: Organisation, enrolments: Sequence[Enrolment]
) -> Intent:
    e = enrolments[rng.randrange(len(enrolments))]
    assert e.end is not None
    start = e.start + timedelta(days=rng.randrange(max(1, (e.end - e.start).days)))
    common: dict[str, Any] = {
        "id": f"{kind.replace('_', '-')}-{n:07d}",
        "recorded_at": _at(start - timedelta(days=rng.randint(1, 60)), rng),
        "recorded_by": "ops",
        "start": start,
    }
    if kind == "withdrawal":
        end = start + timedelta(days=rng.randint(7, 21))
        return Withdrawal(
            program_id=e.program_id, participant_id=e.participant_id, end=end, **common
        )
    if kind == "staff_pin":
        staff = org.staff[rng.randrange(len(org.staff))]
        end = start + timedelta(days=rng.randint(28, 180))
        return StaffPin(program_id=e.program_id, staff_id=staff.id, end=end, **common)
    if kind == "vehicle_pin":
        vehicle = org.vehicles[rng.randrange(len(org.vehicles))]
        end = start + timedelta(days=rng.randint(28, 180))
        return VehiclePin(program_id=e.program_id, vehicle_id=vehicle.id, end=end, **common)
    if kind == "program_change":
        end = start + timedelta(days=rng.randint(7, 42))
        if rng.random() < 0.7:
            hour = rng.choice((9, 10, 11))
            return ProgramChange(
                program_id=e.program_id,
                start_time=time(hour),
                end_time=time(hour + 3),
                end=end,
                **common,
            )
        venue = org.venues[rng.randrange(len(org.venues))]
        return ProgramChange(program_id=e.program_id, venue_id=venue.id, end=end, **common)
    if kind == "staff_leave":
        staff = org.staff[rng.randrange(len(org.staff))]
        end = start + timedelta(days=rng.randint(1, 10))
        return StaffLeave(staff_id=staff.id, end=end, **common)
    vehicle = org.vehicles[rng.randrange(len(org.vehicles))]
    end = start + timedelta(days=rng.randint(1, 5))
    return VehicleMaintenance(vehicle_id=vehicle.id, end=end, **common)


def _one_off(
    n: int, rng: random.Random, programs: dict[str, Program], enrolments: Sequence[Enrolment]
) -> OneOff:
    e = enrolments[rng.randrange(len(enrolments))]
    assert e.end is not None
    program = programs[e.program_id]
    day = _run_day(program, e.start + timedelta(days=rng.randrange(max(1, (e.end - e.start).days))))
    recorded = _at(day - timedelta(days=rng.randint(1, 20)), rng)
    draw = rng.random()
    if draw < 0.7 and day <= e.end:
        return Absence(
            id=f"absence-{n:06d}",
            program_id=program.id,
            date=day,
            participant_id=e.participant_id,
            reason="unwell",
            notified_on=recorded.date(),
            recorded_at=recorded,
            recorded_by="ops",
        )
    if draw < 0.9:
        hour = rng.choice((9, 10, 11))
        return OneDayChange(
            id=f"change-{n:06d}",
            program_id=program.id,
            date=day,
            start_time=time(hour),
            end_time=time(hour + 3),
            recorded_at=recorded,
            recorded_by="ops",
        )
    return Cancellation(
        id=f"cancel-{n:06d}",
        program_id=program.id,
        date=day,
        reason="venue closed",
        recorded_at=recorded,
        recorded_by="ops",
    )


def generate(
    sizes: Sizes | None = None,
    *,
    today: date = DEFAULT_TODAY,
    seed: int = 0,
    quiet: bool = True,
) -> Generated:
    """The organisation and its records for ``sizes``: deterministic for a seed and ``today``."""
    sizes = sizes or Sizes()
    rng = random.Random(seed)
    since = today - timedelta(days=365)
    span = 365 * (sizes.years + 1)
    org = _organisation(sizes, rng, since)
    progress = Progress("generating", sizes.intents + sizes.exceptions, quiet=quiet)
    enrolments = []
    for e in _enrolments(sizes, rng, org, since, span):
        enrolments.append(e)
        progress.step()
    intents: list[Intent] = list(enrolments)
    others = sizes.intents - len(enrolments)
    weights = [w for _, w in _MIX]
    kinds = rng.choices([k for k, _ in _MIX], weights=weights, k=max(0, others))
    for n, kind in enumerate(kinds):
        intents.append(_other_intent(kind, n, rng, org, enrolments))
        progress.step()
    programs = {p.id: p for p in org.programs}
    one_offs = []
    for n in range(sizes.exceptions):
        one_offs.append(_one_off(n, rng, programs, enrolments))
        progress.step()
    progress.close()
    return Generated(
        organisation=org, intents=tuple(intents), one_offs=tuple(one_offs), today=today
    )


def load_memory(generated: Generated, *, quiet: bool = True) -> MemoryStore:
    """A :class:`MemoryStore` holding the organisation and every record."""
    store = MemoryStore()
    store.set_organisation(generated.organisation)
    records = generated.records
    progress = Progress("loading memory store", len(records), quiet=quiet)
    for r in records:
        store.add_record(r)
        progress.step()
    progress.close()
    return store


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for n in range(0, len(items), size):
        yield items[n : n + size]


def load_postgres(generated: Generated, store: Any, *, quiet: bool = True) -> None:
    """Write the organisation and every record into an empty ``PostgresStore``.

    The organisation goes through the store; records are inserted in bulk
    with their change rows (revisions 2, 3, … in list order), which leaves
    the database exactly as ``add_record`` one by one would, in a fraction
    of the time.
    """
    from sqlalchemy import insert

    from loomcore._serial import converter
    from loomcore_pg._store import _CHANGES, _EXCEPTIONS, _INTENTS, _exception_row, _intent_row

    first = store.set_organisation(generated.organisation) + 1
    records = generated.records
    progress = Progress("loading postgres", len(records), quiet=quiet)
    for offset, batch in zip(range(0, len(records), 5_000), _batches(records, 5_000), strict=True):
        changes, intents, exceptions = [], [], []
        for n, r in enumerate(batch):
            revision = first + offset + n
            data = converter.unstructure(r, Record)
            changes.append(
                {"revision": revision, "kind": "record", "record_id": r.id, "own_id": r.id}
            )
            if isinstance(r, Intent):
                intents.append(_intent_row(r, data, revision))
            else:
                exceptions.append(_exception_row(r, data, revision))
        with store.engine.begin() as conn:
            conn.execute(insert(_CHANGES), changes)
            if intents:
                conn.execute(insert(_INTENTS), intents)
            if exceptions:
                conn.execute(insert(_EXCEPTIONS), exceptions)
        progress.step(len(batch))
    progress.close()
