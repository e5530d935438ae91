"""Quickstart: a small organisation, one enrolment, recorded and retracted.

Run it with ``python examples/quickstart.py``. The clock is fixed, so the
output is the same on every run and every machine.
"""

from __future__ import annotations

from datetime import date, datetime, time
from itertools import count
from zoneinfo import ZoneInfo

from loomcore import (
    Enrolment,
    Location,
    Loom,
    Organisation,
    Participant,
    Program,
    Staff,
    Vehicle,
    Venue,
    Weekly,
    describe,
)

SYDNEY = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 10, 1, 8, 0, tzinfo=SYDNEY)  # Thursday 1 October 2026, 8 am in Sydney


def build_organisation() -> Organisation:
    """A provider with one venue, three participants, two staff, one bus, two programs."""
    return Organisation(
        name="Harbour Day Programs",
        venues=[Venue(id="hall", name="Parramatta Community Hall", capacity=12)],
        participants=[
            Participant(id="sarah", name="Sarah"),
            Participant(id="john", name="John", needs_transport=True),
            Participant(id="priya", name="Priya", pickup=Location(lat=-33.81, lon=151.0)),
        ],
        staff=[
            Staff(id="kim", name="Kim", lead_capable=True, driver=True),
            Staff(id="lee", name="Lee"),
        ],
        vehicles=[Vehicle(id="bus-1", name="Bus 1", seats=10, wheelchair_places=1)],
        programs=[
            Program(
                id="centre-wed",
                name="Centre-Based Wednesdays",
                recurrence=Weekly(weekdays="WE"),
                start_time=time(9, 30),
                end_time=time(14, 30),
                venue_id="hall",
                active_from=date(2026, 1, 1),
            ),
            Program(
                id="sat-adventure",
                name="Saturday Adventure",
                recurrence=Weekly(weekdays="SA"),
                start_time=time(9),
                end_time=time(15),
                venue_id="hall",
                transport=True,
                active_from=date(2026, 1, 1),
            ),
        ],
    )


def show_instances(loom: Loom, participant_id: str) -> None:
    window = loom.window()
    found = loom.instances(window.start, window.end, participant_id=participant_id)
    if not found:
        print(f"  {participant_id} is on no instance in the window")
    for inst in found:
        demand = inst.staff_demand
        print(
            f"  {inst.date:%a %d %b}  {inst.start:%H:%M}–{inst.end:%H:%M}  {inst.program_name}"
            f"  attending: {', '.join(inst.attending)}"
            f"  staff: {demand.leads} lead + {demand.support} support"
        )


def main() -> None:
    ids = count(1)
    loom = Loom(clock=lambda: NOW, id_factory=lambda: f"rec-{next(ids):04d}")
    loom.load(
        build_organisation(),
        [Enrolment(program_id="sat-adventure", participant_id="john", start=date(2026, 1, 3))],
        weeks=4,
        by="setup",
    )

    window = loom.window()
    print(f"Today is {loom.today()}.")
    print(f"The {window.weeks}-week window is {window.start} → {window.end}")
    print(f"{len(loom.instances(window.start, window.end))} instances are planned in it")

    enrolment = loom.record(
        Enrolment(program_id="centre-wed", participant_id="sarah", start=date(2026, 10, 7)),
        by="maria",
    )
    print(f"\nRecorded {enrolment.id}: Sarah joins Centre-Based Wednesdays from 7 Oct 2026")
    print("Sarah's instances:")
    show_instances(loom, "sarah")

    retraction = loom.retract(enrolment.id, by="maria", reason="enrolled in the wrong program")
    print(f"\nRetracted {enrolment.id} ({retraction.reason}); Sarah's instances now:")
    show_instances(loom, "sarah")

    kept = loom.store.get_record(enrolment.id)
    print("\nThe record is kept, with its retraction:")
    print(
        f"  {kept.id}: {describe(kept)}, recorded by {kept.recorded_by}"
        f" at {kept.recorded_at:%Y-%m-%d %H:%M} UTC"
    )
    print(f"  {retraction.id}: retracted by {retraction.recorded_by}: {retraction.reason}")
    active = loom.intents(participant_id="sarah")
    every = loom.intents(participant_id="sarah", include_retracted=True)
    print(f"  Sarah's intents: {len(active)} active, {len(every)} in all")

    print("\nAudit log:")
    for entry in loom.audit_log():
        print(f"  {entry.at:%Y-%m-%d %H:%M} UTC  {entry.by:<6} {entry.action:<8} {entry.detail}")


if __name__ == "__main__":
    main()
