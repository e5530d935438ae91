"""Planning days in worker processes: the same plans, and what they work out kept here."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest

from builders import Clock, local, seed_organisation
from loomcore import (
    Enrolment,
    InvalidRecordError,
    Loom,
    MemoryStore,
    PlanInputs,
    StoredRecords,
    _routing,
    plan_day,
    plan_days,
    shipped_catalogue,
)

START = date(2026, 10, 5)
DAYS = [START + timedelta(days=n) for n in range(21)]
CATALOGUE = shipped_catalogue()


def numbered() -> Callable[[], str]:
    return map(str, itertools.count(1)).__next__


@functools.cache
def records() -> StoredRecords:
    """The seed organisation's programs, each with every participant enrolled."""
    org = seed_organisation()
    loom = Loom(MemoryStore(), clock=Clock(local(2026, 10, 1)), id_factory=numbered())
    enrolments = [
        Enrolment(program_id=program.id, participant_id=person.id, start=date(2026, 9, 1))
        for program in org.programs
        for person in org.participants
    ]
    loom.load(org, enrolments, weeks=2)
    return loom.store.load_records(DAYS[0], DAYS[-1])


def inputs() -> PlanInputs:
    """New inputs (nothing remembered) over the same records, billed."""
    return PlanInputs(
        organisation=seed_organisation(),
        catalogue=CATALOGUE,
        intents=records().intents,
        one_offs=records().one_offs,
    )


def test_workers_plan_the_very_plans_of_one_process() -> None:
    records()
    _routing._forget()
    alone = [plan_day(inputs(), d) for d in DAYS]
    assert any(run for plan in alone for inst in plan.instances for run in inst.bus_runs)
    _routing._forget()
    assert list(plan_days(inputs(), DAYS, workers=2)) == alone
    assert list(plan_days(inputs(), DAYS)) == alone


def test_what_workers_work_out_is_remembered_here(monkeypatch: pytest.MonkeyPatch) -> None:
    held = inputs()
    _routing._forget()  # all that is remembered below was worked out in the workers
    plans = list(plan_days(held, DAYS, workers=2))
    assert len(_routing._SEARCHES) > 0
    assert held._memos  # each day's instances and billing, by program

    def no_new_search(*args: Any) -> None:
        raise AssertionError("a route search was run again")

    def no_new_instances(*args: Any) -> None:
        raise AssertionError("a program's instances were worked out again")

    monkeypatch.setattr(_routing, "_Problem", no_new_search)
    monkeypatch.setattr("loomcore._plan._program_instances", no_new_instances)
    assert [plan_day(held, d) for d in DAYS] == plans


def test_days_planned_before_are_planned_here(monkeypatch: pytest.MonkeyPatch) -> None:
    held = inputs()
    first = [plan_day(held, d) for d in DAYS[:7]]

    def no_workers(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("worker processes were started")

    monkeypatch.setattr("loomcore._parallel.ProcessPoolExecutor", no_workers)
    assert list(plan_days(held, DAYS[:7], workers=2)) == first


def test_closing_early_stops_the_workers() -> None:
    plans = plan_days(inputs(), DAYS, workers=2)
    first = next(plans)
    plans.close()
    assert first.date == DAYS[0]


def test_workers_below_one_are_refused() -> None:
    with pytest.raises(InvalidRecordError, match="workers must be at least 1, got 0"):
        next(plan_days(inputs(), DAYS, workers=0))
    with pytest.raises(InvalidRecordError, match="workers must be at least 1, got 0"):
        Loom(workers=0)


def test_a_loom_with_workers_keeps_the_window_a_loom_without_would() -> None:
    stored = []
    for workers in (1, 2):
        _routing._forget()
        clock = Clock(local(2026, 10, 1))
        loom = Loom(MemoryStore(), clock=clock, id_factory=numbered(), workers=workers)
        loom.load(seed_organisation(), weeks=4)
        loom.record(Enrolment(program_id="centre-wed", participant_id="sarah", start=START))
        clock.set_local(2026, 10, 20, 0, 5)
        loom.roll()
        loom.resize_window(2)
        loom.resize_window(6)
        stored.append([(d.plan, d.revision) for d in loom.store.planned_days()])
    assert stored[0] == stored[1]
    assert len(stored[0]) >= 6 * 7


def test_this_process_plans_the_first_days_and_a_helper_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here: list[date] = []

    def counted(inputs: PlanInputs, day: date) -> Any:
        here.append(day)
        return plan_day(inputs, day)

    monkeypatch.setattr("loomcore._parallel.plan_day", counted)
    plans = list(plan_days(inputs(), DAYS, workers=2))
    assert [p.date for p in plans] == DAYS
    # the helper starts with the last days, so some always come from it
    assert here == DAYS[: len(here)]
    assert 0 < len(here) < len(DAYS)


def test_a_helper_never_waits_for_inputs_that_will_not_come(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    submit = ProcessPoolExecutor.submit
    submitted: list[object] = []

    def cut_short(self: ProcessPoolExecutor, fn: Any, *args: Any) -> Any:
        if len(submitted) == 3:  # a helper has started by now
            raise KeyboardInterrupt
        submitted.append(args)
        return submit(self, fn, *args)

    monkeypatch.setattr(ProcessPoolExecutor, "submit", cut_short)
    with pytest.raises(KeyboardInterrupt):
        next(plan_days(inputs(), DAYS, workers=2))  # returns: the helper was told to stop


def test_inputs_that_cannot_be_packed_fail_with_their_own_error_alone(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def unpackable(_: PlanInputs) -> PlanInputs:
        raise TypeError("cannot pack these inputs")

    monkeypatch.setattr("loomcore._parallel._portable", unpackable)
    with pytest.raises(TypeError, match="cannot pack these inputs"):
        list(plan_days(inputs(), DAYS, workers=2))
    # the helper was told to stop, and did without a traceback of its own
    assert "Traceback" not in capfd.readouterr().err
