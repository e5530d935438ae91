"""Planning days in worker processes: the same plans, and what they work out kept here."""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import pickle
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, NoReturn

import pytest

from builders import Clock, local, seed_organisation
from loomcore import (
    Enrolment,
    InvalidRecordError,
    Loom,
    MemoryStore,
    PlanInputs,
    StoredRecords,
    _parallel,
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


class Failing:
    """Inputs that fail in a helper at the first thing a plan reads of them:
    ``exit`` ends the helper's process, else an error is raised."""

    def __init__(self, exit: bool) -> None:
        self.exit = exit

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):  # asked by pickle, here and in the helper
            raise AttributeError(name)
        if self.exit:
            os._exit(3)
        raise ValueError(f"these inputs have no {name}")


def test_workers_plan_the_very_plans_of_one_process(helper_first: list[date]) -> None:
    records()
    _routing._forget()
    alone = [plan_day(inputs(), d) for d in DAYS]
    assert any(run for plan in alone for inst in plan.instances for run in inst.bus_runs)
    _routing._forget()
    assert list(plan_days(inputs(), DAYS, workers=2)) == alone
    assert helper_first  # some of those plans came from a helper
    assert list(plan_days(inputs(), DAYS)) == alone


def test_what_workers_work_out_is_remembered_here(
    monkeypatch: pytest.MonkeyPatch, helper_first: list[date]
) -> None:
    held = inputs()
    _routing._forget()  # all that is remembered below was worked out in the workers
    plans = list(plan_days(held, DAYS, workers=2))
    assert helper_first  # the days below include a helper's
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

    monkeypatch.setattr("loomcore._parallel._Helpers", no_workers)
    assert list(plan_days(held, DAYS[:7], workers=2)) == first


@pytest.mark.usefixtures("helper_first")
def test_closing_early_stops_the_workers() -> None:
    plans = plan_days(inputs(), DAYS, workers=2)
    first = next(plans)  # by then a helper has claimed the last day, and plans it
    plans.close()
    assert first.date == DAYS[0]
    assert not multiprocessing.active_children()


def test_workers_below_one_are_refused() -> None:
    with pytest.raises(InvalidRecordError, match="workers must be at least 1, got 0"):
        next(plan_days(inputs(), DAYS, workers=0))
    with pytest.raises(InvalidRecordError, match="workers must be at least 1, got 0"):
        Loom(workers=0)


def test_a_loom_with_workers_keeps_the_window_a_loom_without_would(
    helper_first: list[date],
) -> None:
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
    assert helper_first  # days of the loom with workers came from a helper


@pytest.mark.usefixtures("helper_first")
def test_this_process_plans_the_first_days_and_a_helper_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here: list[date] = []

    def counted(inputs: PlanInputs, day: date) -> Any:
        here.append(day)
        return plan_day(inputs, day)

    monkeypatch.setattr("loomcore._parallel.plan_day", counted)
    _routing._forget()
    alone = [plan_day(inputs(), d) for d in DAYS]
    here.clear()
    _routing._forget()
    assert list(plan_days(inputs(), DAYS, workers=2)) == alone
    # the helper starts with the last days; none is planned twice
    assert here == DAYS[: len(here)]
    assert 0 < len(here) < len(DAYS)


@pytest.mark.usefixtures("helper_first")
def test_days_given_twice_or_out_of_order_are_planned_each_time() -> None:
    days = [*DAYS[5:], *DAYS[-3:], *DAYS[:5], DAYS[7]]
    _routing._forget()
    alone = [plan_day(inputs(), d) for d in days]
    _routing._forget()
    assert list(plan_days(inputs(), days, workers=2)) == alone


def test_an_interruption_here_stops_the_helper_after_its_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(inputs: PlanInputs, day: date) -> NoReturn:
        raise KeyboardInterrupt

    monkeypatch.setattr("loomcore._parallel.plan_day", interrupted)
    with pytest.raises(KeyboardInterrupt):
        next(plan_days(inputs(), DAYS, workers=2))  # returns: the helper stopped
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("helper_first")
def test_an_error_in_a_helper_is_raised_here_when_its_day_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("loomcore._parallel._portable", lambda _: Failing(exit=False))
    planned: list[date] = []
    with pytest.raises(ValueError, match="these inputs have no") as raised:
        planned.extend(plan.date for plan in plan_days(inputs(), DAYS, workers=2))
    # this process planned the days before the helper's with the real inputs
    assert planned == DAYS[: len(planned)]
    assert planned
    notes = "\n".join(raised.value.__notes__)
    assert f"raised planning {DAYS[-1].isoformat()} in a helper process" in notes
    assert "Traceback" in notes
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("helper_first")
def test_a_helper_that_ends_without_its_plan_is_an_error_not_a_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("loomcore._parallel._portable", lambda _: Failing(exit=True))
    expected = f"exit codes 3\\) without sending the plan of {DAYS[-1].isoformat()}"
    with pytest.raises(RuntimeError, match=expected):
        list(plan_days(inputs(), DAYS, workers=2))
    assert not multiprocessing.active_children()


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


def test_a_roll_with_helpers_stopped_early_writes_the_first_days_and_stops_them(
    helper_first: list[date],
) -> None:
    stored = []
    for workers in (2, 1):
        _routing._forget()
        clock = Clock(local(2026, 10, 1))
        loom = Loom(MemoryStore(), clock=clock, id_factory=numbered(), workers=workers)
        loom.load(seed_organisation(), weeks=2)
        loom.store.set_window_weeks(8)  # six weeks of new days for the next roll
        asked = iter([False, False, False, True])
        entry = loom.roll(until=functools.partial(next, asked, True))
        assert (entry.status, entry.days_planned) == ("stopped", 3)
        assert not multiprocessing.active_children()
        assert len(loom.health().missing_days) == 6 * 7 - 3
        assert loom.roll().status == "ok"
        stored.append([(d.plan, d.revision) for d in loom.store.planned_days()])
    assert stored[0] == stored[1]
    assert len(stored[0]) == 8 * 7
    assert helper_first  # the second roll with helpers had some days planned there


def test_an_error_that_cannot_be_sent_from_a_helper_comes_as_a_runtime_error() -> None:
    class Unsendable(Exception):
        def __init__(self) -> None:
            super().__init__("planning failed")
            self.hook = lambda: None  # pickle cannot take it

    sent = _parallel._failure(Unsendable(), DAYS[3])
    error = pickle.loads(sent)
    assert type(error) is RuntimeError
    assert str(error) == "Unsendable: planning failed"
    assert f"raised planning {DAYS[3].isoformat()} in a helper process" in error.__notes__[0]
    assert "Unsendable" in error.__notes__[0]
