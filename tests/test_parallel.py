"""Days planned in worker processes are the days this process would plan."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from builders import Clock, local, seed_organisation
from loomcore import Absence, Enrolment, InvalidRecordError, Loom, MemoryStore, PlanInputs
from loomcore._parallel import MIN_DAYS_PER_WORKER, plan_days
from loomcore._plan import plan_day

START = date(2026, 10, 1)


def _inputs() -> PlanInputs:
    at = datetime(2026, 9, 1, tzinfo=UTC)
    return PlanInputs(
        organisation=seed_organisation(),
        intents=[
            Enrolment(
                id="e1",
                program_id="centre-wed",
                participant_id="john",
                start=START,
                recorded_at=at,
            )
        ],
        one_offs=[
            Absence(
                id="a1",
                program_id="centre-wed",
                date=date(2026, 10, 14),
                participant_id="sarah",
                notified_on=date(2026, 10, 1),
                recorded_at=at,
            )
        ],
    )


def test_plans_from_workers_equal_plans_made_here_in_date_order() -> None:
    inputs = _inputs()
    days = [START + timedelta(days=n) for n in range(6 * MIN_DAYS_PER_WORKER)]
    here = [plan_day(inputs, d) for d in days]
    assert list(plan_days(inputs, days, 3)) == here
    assert [p.date for p in plan_days(inputs, days, 2)] == days


def test_a_few_days_are_planned_here_and_closing_early_stops() -> None:
    inputs = _inputs()
    days = [START + timedelta(days=n) for n in range(3 * MIN_DAYS_PER_WORKER)]
    plans = plan_days(inputs, days, 2)
    first = next(plans)
    plans.close()  # the days not yet started are cancelled, the workers stop
    assert first == plan_day(inputs, days[0])
    assert list(plan_days(inputs, days[:3], 8)) == [plan_day(inputs, d) for d in days[:3]]


def test_a_loom_with_workers_plans_and_replans_the_window_as_one_without() -> None:
    looms = []
    for workers in (1, 2):
        clock = Clock(local(2026, 10, 1, 0, 5))
        loom = Loom(MemoryStore(), clock=clock, workers=workers)
        loom.load(seed_organisation(), weeks=8, by="setup")
        loom.record(Enrolment(id="e1", program_id="centre-wed", participant_id="john", start=START))
        clock.advance(days=9)
        loom.roll()
        looms.append(loom)
    one, two = looms
    assert one.window() == two.window()
    assert [one.day(d) for d in one.window().days()] == [two.day(d) for d in two.window().days()]


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_whole_number_from_one(workers: object) -> None:
    with pytest.raises(InvalidRecordError, match="workers"):
        Loom(MemoryStore(), workers=workers)  # type: ignore[arg-type]
