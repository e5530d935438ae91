"""What if? Compare a hypothetical change against the current plans.

An analyst's question: "If the four people on the waiting list join
Centre-Based Wednesdays from 14 October, and Saturday Adventure takes the
long weekend of 24 October off, how does staff demand change over the
window?"

The current plans are left alone: the records are copied into a second,
in-memory ``Loom``, the hypothetical change is recorded there, and both are
planned with ``Loom.preview`` and compared day by day. Run it with
``python examples/what_if.py``; the clock is fixed, so the output is the same
on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from itertools import count
from zoneinfo import ZoneInfo

from loomcore import (
    Absence,
    Cancellation,
    DayPlan,
    Enrolment,
    Loom,
    MemoryStore,
    Organisation,
    Participant,
    Program,
    ProgramChange,
    Record,
    Venue,
    Weekly,
)

SYDNEY = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 10, 1, 8, 0, tzinfo=SYDNEY)  # Thursday 1 October 2026, 8 am in Sydney

REGULARS = ["ava", "ben", "chloe", "dev", "ella", "finn", "grace", "hamish", "isla"]
WAITING_LIST = ["jack", "kiara", "liam", "mia"]
ADVENTURERS = ["noah", "olivia", "pat", "quinn", "ruby", "sam", "tess"]


def organisation() -> Organisation:
    everyone = REGULARS + WAITING_LIST + ADVENTURERS
    return Organisation(
        name="Harbour Day Programs",
        venues=[
            Venue(id="hall", name="Parramatta Community Hall", capacity=12),
            Venue(id="depot", name="Bus depot (outings leave from here)", capacity=30),
        ],
        participants=[Participant(id=p, name=p.title(), needs_transport=True) for p in everyone],
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
                venue_id="depot",
                transport=True,
                active_from=date(2026, 1, 1),
            ),
        ],
    )


def records() -> list[Record]:
    out: list[Record] = [
        Enrolment(program_id="centre-wed", participant_id=p, start=date(2026, 2, 4))
        for p in REGULARS
    ]
    out += [
        Enrolment(program_id="sat-adventure", participant_id=p, start=date(2026, 2, 7))
        for p in ADVENTURERS
    ]
    return out


def baseline_loom() -> Loom:
    """The provider's live service, as a host app would hold it."""
    ids = count(1)
    loom = Loom(clock=lambda: NOW, id_factory=lambda: f"live-{next(ids):04d}")
    loom.load(organisation(), records(), weeks=4, by="setup")
    loom.record(Absence(program_id="centre-wed", participant_id="ava", date=date(2026, 10, 21)))
    loom.record(Cancellation(program_id="sat-adventure", date=date(2026, 10, 10), reason="storm"))
    return loom


def copy_into_memory(source: Loom, clock: Callable[[], datetime]) -> Loom:
    """A second Loom holding exactly the source's organisation, records and retractions."""
    store = MemoryStore()
    store.set_organisation(source.store.organisation())
    for record in source.store.records():
        store.add_record(record)
    for retraction in source.store.retractions():
        store.add_retraction(retraction)
    store.set_window_weeks(source.window_size())
    ids = count(1)
    copy = Loom(store, timezone=source.timezone, clock=clock, id_factory=lambda: f"wi-{next(ids)}")
    copy.roll(by="what-if")
    return copy


def staff_by_day(plans: list[DayPlan]) -> dict[date, tuple[int, int]]:
    """(leads, support) needed per day, over every instance of the day."""
    return {
        plan.date: (
            sum(i.staff_demand.leads for i in plan.instances),
            sum(i.staff_demand.support for i in plan.instances),
        )
        for plan in plans
    }


def main() -> None:
    live = baseline_loom()
    what_if = copy_into_memory(live, clock=lambda: NOW)

    for person in WAITING_LIST:
        what_if.record(
            Enrolment(program_id="centre-wed", participant_id=person, start=date(2026, 10, 14)),
            by="analyst",
        )
    what_if.record(
        ProgramChange(
            program_id="sat-adventure",
            start=date(2026, 10, 24),
            end=date(2026, 10, 24),
            runs=False,
            note="long weekend",
        ),
        by="analyst",
    )

    window = live.window()
    baseline_plans = live.preview(window.start, window.end)
    what_if_plans = what_if.preview(window.start, window.end)
    before, after = staff_by_day(baseline_plans), staff_by_day(what_if_plans)

    print(f"Window {window.start} → {window.end}: staff needed (leads + support)")
    print(f"{'date':<16}{'baseline':>10}{'what-if':>10}{'change':>8}")
    for day in window.days():
        (b_lead, b_support), (w_lead, w_support) = before[day], after[day]
        change = (w_lead + w_support) - (b_lead + b_support)
        if change:
            was, will = f"{b_lead} + {b_support}", f"{w_lead} + {w_support}"
            print(f"{day:%a %Y-%m-%d}  {was:>10}{will:>10}{change:>+8}")
    total_before = sum(sum(v) for v in before.values())
    total_after = sum(sum(v) for v in after.values())
    print(
        f"Shifts over the window: {total_before} → {total_after} ({total_after - total_before:+d})"
    )

    old = {(p.date, w) for p in baseline_plans for w in p.all_warnings()}
    new = [(p.date, w) for p in what_if_plans for w in p.all_warnings() if (p.date, w) not in old]
    print(f"\nWarnings only in the what-if ({len(new)}):")
    for day, warning in new:
        print(f"  {day}  {warning.code}: {warning.message}")

    # The live service is untouched by the analysis.
    assert len(live.intents()) == len(records())
    intents, one_offs = len(live.intents()), len(live.one_offs())
    print(f"\nLive records unchanged: {intents} intents, {one_offs} one-offs")


if __name__ == "__main__":
    main()
