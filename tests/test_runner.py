"""The runner: its pure schedule as tables, then its loop on a fake clock.

The fake clock moves only when the runner sleeps, so simulated days pass
without real waiting. Every loop is bounded by ``until`` and by a cap on
the number of sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time as real_time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NoReturn

import pytest

from builders import SYDNEY, Clock, assert_window_from_scratch, enrolments, make_loom
from loomcore import (
    InvalidRecordError,
    Loom,
    MemoryStore,
    PlannedDay,
    RollEntry,
    StoreUnavailableError,
)
from loomcore._cli import main
from loomcore._runner import (
    RollSchedule,
    Runner,
    RunnerAction,
    RunnerAlert,
    RunnerState,
    describe_roll,
    next_action,
)

SCHEDULE = RollSchedule()


def fail_on_alert(alert: RunnerAlert) -> NoReturn:
    """An alert hook for runs that must raise none: fails the test with the alert."""
    pytest.fail(f"unexpected runner alert: {alert}")


def at(m: int, d: int, hh: int, mm: int, y: int = 2026) -> datetime:
    """An aware Sydney wall-clock time."""
    return datetime(y, m, d, hh, mm, tzinfo=SYDNEY)


def day(m: int, d: int, y: int = 2026) -> date:
    return date(y, m, d)


def done(rolled: date | None, verified: date | None) -> RunnerState:
    return RunnerState(started=True, rolled_for=rolled, verified_for=verified)


def failing(failed_at: datetime, failures: int = 1, **kw: Any) -> RunnerState:
    return RunnerState(
        started=True, failures=failures, failed_at=failed_at, failing_since=failed_at, **kw
    )


# --------------------------------------------------------------------------- the pure decision

# (case, now, state, kind, due at, UTC offset of the due time in hours)
NEXT_ACTION_CASES = [
    ("a new runner reads health at once", at(10, 3, 23, 50), RunnerState(),
     "start", at(10, 3, 23, 50), 10),
    ("before the roll", at(10, 3, 23, 50), done(day(10, 3), day(10, 3)),
     "roll", at(10, 4, 0, 5), 10),
    ("the roll is due on the minute", at(10, 4, 0, 5), done(day(10, 3), day(10, 3)),
     "roll", at(10, 4, 0, 5), 10),
    ("after the roll, the check", at(10, 4, 0, 6), done(day(10, 4), day(10, 3)),
     "verify", at(10, 4, 9, 0), 11),
    ("after the check, tomorrow's roll", at(10, 4, 9, 1), done(day(10, 4), day(10, 4)),
     "roll", at(10, 5, 0, 5), 11),
    ("missed nights coalesce into one roll, due at the latest",
     at(10, 7, 10, 0), done(day(10, 3), day(10, 3)), "roll", at(10, 7, 0, 5), 11),
    ("a missed check alone", at(10, 7, 10, 0), done(day(10, 7), day(10, 6)),
     "verify", at(10, 7, 9, 0), 11),
    ("an overdue roll goes before an earlier overdue check",
     at(10, 7, 3, 0), done(day(10, 5), day(10, 5)), "roll", at(10, 7, 0, 5), 11),
    ("a pending retry comes first", at(10, 4, 0, 6), failing(at(10, 4, 0, 5)),
     "retry", at(10, 4, 0, 15), 10),
    ("a retry across the DST change is ten real minutes",
     at(10, 4, 2, 0) - timedelta(minutes=5), failing(at(10, 4, 1, 55)),
     "retry", at(10, 4, 3, 5), 11),
    ("an overdue retry is due at once", at(10, 4, 9, 0), failing(at(10, 4, 0, 5), 3),
     "retry", at(10, 4, 0, 15), 10),
    ("a failed start retries as a roll", at(10, 4, 0, 6),
     RunnerState(failures=1, failed_at=at(10, 4, 0, 5)), "retry", at(10, 4, 0, 15), 10),
    ("the clock went back: a date already rolled is not rolled again",
     at(10, 4, 0, 4), done(day(10, 4), day(10, 4)), "roll", at(10, 5, 0, 5), 11),
    ("the night clocks go forward: 00:05 is still standard time",
     at(10, 3, 12, 0), done(day(10, 3), day(10, 3)), "roll", at(10, 4, 0, 5), 10),
    ("the day after: daylight time", at(10, 4, 12, 0), done(day(10, 4), day(10, 4)),
     "roll", at(10, 5, 0, 5), 11),
    ("the night clocks go back: 00:05 is still daylight time",
     at(4, 4, 12, 0), done(day(4, 4), day(4, 4)), "roll", at(4, 5, 0, 5), 11),
    ("the day after: standard time", at(4, 5, 12, 0), done(day(4, 5), day(4, 5)),
     "roll", at(4, 6, 0, 5), 10),
    ("the check on the day clocks go back", at(4, 5, 0, 10), done(day(4, 5), day(4, 4)),
     "verify", at(4, 5, 9, 0), 10),
]  # fmt: skip


@pytest.mark.parametrize(
    ("now", "state", "kind", "due", "offset"),
    [case[1:] for case in NEXT_ACTION_CASES],
    ids=[case[0] for case in NEXT_ACTION_CASES],
)
def test_next_action(
    now: datetime, state: RunnerState, kind: str, due: datetime, offset: int
) -> None:
    action = next_action(now.astimezone(UTC), state, SCHEDULE)
    assert (action.kind, action.at) == (kind, due)
    assert action.at.utcoffset() == timedelta(hours=offset)
    assert action.is_due(now) == (due <= now)
    # in UTC: between two datetimes of one zone, Python subtracts wall-clock times
    assert action.delay(now) == max(due.astimezone(UTC) - now.astimezone(UTC), timedelta(0))


def test_next_action_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_action(datetime(2026, 10, 4), done(day(10, 3), day(10, 3)), SCHEDULE)


# A roll time inside the hour that is skipped or repeated by DST.
GAP_CASES = [
    ("skipped 02:30 moves later by the gap", at(10, 3, 12, 0), at(10, 4, 3, 30), 11),
    ("repeated 02:30 is taken at its first occurrence", at(4, 4, 12, 0), at(4, 5, 2, 30), 11),
]


@pytest.mark.parametrize(
    ("now", "due", "offset"), [c[1:] for c in GAP_CASES], ids=[c[0] for c in GAP_CASES]
)
def test_a_roll_time_in_a_dst_gap_or_fold(now: datetime, due: datetime, offset: int) -> None:
    schedule = RollSchedule(roll_at=time(2, 30))
    rolled = now.date()
    action = next_action(now, done(rolled, rolled), schedule)
    assert action.kind == "roll"
    assert action.at == due
    assert action.at.utcoffset() == timedelta(hours=offset)


# (case, state before, when it succeeded, rolled_for after, verified_for after)
SUCCEEDED_CASES = [
    ("the nightly roll", done(day(10, 3), day(10, 3)), at(10, 4, 0, 5), day(10, 4), day(10, 3)),
    ("the check", done(day(10, 4), day(10, 3)), at(10, 4, 9, 0), day(10, 4), day(10, 4)),
    ("a late roll counts as the day's check", done(day(10, 3), day(10, 3)),
     at(10, 7, 10, 0), day(10, 7), day(10, 7)),
    ("a roll before 00:05 belongs to the day before", RunnerState(),
     at(10, 4, 0, 1), day(10, 3), day(10, 3)),
    ("dates never move back with the clock", done(day(10, 9), day(10, 9)),
     at(10, 4, 12, 0), day(10, 9), day(10, 9)),
    ("a recovery clears the failures", failing(at(10, 4, 0, 5), 2),
     at(10, 4, 0, 25), day(10, 4), day(10, 3)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("before", "now", "rolled", "verified"),
    [c[1:] for c in SUCCEEDED_CASES],
    ids=[c[0] for c in SUCCEEDED_CASES],
)
def test_state_after_success(
    before: RunnerState, now: datetime, rolled: date, verified: date
) -> None:
    after = before.succeeded(now, SCHEDULE)
    assert after == RunnerState(started=True, rolled_for=rolled, verified_for=verified)


def test_state_after_failures_counts_them_and_keeps_the_first() -> None:
    state = done(day(10, 3), day(10, 3)).failed(at(10, 4, 0, 5), "StoreUnavailableError: gone")
    state = state.failed(at(10, 4, 0, 15), "StoreUnavailableError: still gone")
    assert state.failures == 2
    assert state.failing_since == at(10, 4, 0, 5)
    assert state.failed_at == at(10, 4, 0, 15)
    assert state.last_error == "StoreUnavailableError: still gone"
    assert state.retry_at(SCHEDULE) == at(10, 4, 0, 25)
    assert state.rolled_for == day(10, 3)


def test_state_from_health(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(at(10, 3, 23, 50).replace(tzinfo=None))
    loom = make_loom(clock, weeks=2)
    ok = RunnerState.from_health(loom.health(), SCHEDULE)
    assert ok == done(day(10, 3), day(10, 3))
    late = RunnerState.from_health(loom.health(at(10, 4, 0, 5)), SCHEDULE)
    assert late == done(None, day(10, 3))
    assert next_action(at(10, 4, 0, 5), late, SCHEDULE).kind == "roll"

    def broken(*args: Any, **kw: Any) -> bool:
        raise StoreUnavailableError("database unavailable")

    monkeypatch.setattr(loom.store, "put_day", broken)
    with pytest.raises(StoreUnavailableError):
        loom.roll(at(10, 4, 0, 5))
    failed = RunnerState.from_health(loom.health(at(10, 4, 0, 6)), SCHEDULE)
    assert failed.failures == 1
    assert failed.last_error == "StoreUnavailableError: database unavailable"
    assert failed.retry_at(SCHEDULE) == loom.health(at(10, 4, 0, 6)).retry_at


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="retry_after"):
        RollSchedule(retry_after=timedelta(0))
    with pytest.raises(InvalidRecordError, match="unknown timezone 'Nowhere/Land'"):
        RollSchedule(timezone="Nowhere/Land")
    with pytest.raises(InvalidRecordError, match="roll_at must be a local time of day"):
        RollSchedule(roll_at="00:05")  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="verify_at must be a local time of day"):
        Loom(verify_at=datetime(2026, 10, 4, 9))  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="timezone-aware"):
        next_action(datetime(2026, 10, 4), RunnerState(), RollSchedule())
    with pytest.raises(ValueError, match="failed_at"):
        RunnerState(failures=1)
    with pytest.raises(ValueError, match="'kind' must be in"):
        RunnerAction(kind="dance", at=at(10, 4, 0, 5))


# --------------------------------------------------------------------------- the loop


class FlakyStore(MemoryStore):
    """A memory store whose writes of one day, or whose reads, fail while told to."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_day: date | None = None
        self.fail_times = 0
        self.down = False

    def put_day(self, day: PlannedDay) -> bool:
        if day.date == self.fail_day and self.fail_times > 0:
            self.fail_times -= 1
            raise StoreUnavailableError("database connection lost")
        return super().put_day(day)

    def planned_days(self, start: date | None = None, end: date | None = None) -> Any:
        if self.down:
            raise StoreUnavailableError("database unavailable")
        return super().planned_days(start, end)

    def day_revisions(self, start: date | None = None, end: date | None = None) -> Any:
        if self.down:
            raise StoreUnavailableError("database unavailable")
        return super().day_revisions(start, end)


class Sim:
    """A loom on a fake clock that moves only when the runner sleeps."""

    def __init__(self, start: datetime, weeks: int = 2, store: MemoryStore | None = None) -> None:
        self.clock = Clock(start.replace(tzinfo=None))
        self.store = store if store is not None else MemoryStore()
        self.loom = make_loom(
            self.clock, weeks=weeks, store=self.store, records=enrolments(start.date())
        )
        self.alerts: list[RunnerAlert] = []
        self.sleeps = 0
        self.on_sleep: Callable[[], None] | None = None

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        assert self.sleeps < 50_000, "the runner never stopped"
        assert seconds > 0
        self.clock.advance(seconds=seconds)
        if self.on_sleep is not None:
            self.on_sleep()

    def runner(self, **kw: Any) -> Runner:
        kw.setdefault("alert", self.alerts.append)
        return Runner(self.loom, sleep=self.sleep, **kw)

    def rolls(self, *triggers: str) -> list[RollEntry]:
        return [e for e in self.loom.roll_log() if not triggers or e.trigger in triggers]


def local_times(entries: list[RollEntry]) -> list[datetime]:
    return [e.started_at.astimezone(SYDNEY) for e in entries]


@pytest.mark.parametrize(
    ("start", "end"),
    [(at(4, 2, 12, 0), at(4, 8, 12, 0)), (at(10, 1, 12, 0), at(10, 7, 12, 0))],
    ids=["clocks go back on 5 April", "clocks go forward on 4 October"],
)
@pytest.mark.parametrize("roll_at", [time(0, 5), time(2, 30)], ids=["00:05", "02:30"])
def test_one_roll_and_one_check_per_local_day_across_dst(
    start: datetime, end: datetime, roll_at: time, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = Sim(start)
    sim.loom.roll_at = roll_at
    checks: list[datetime] = []
    real_verify = sim.loom.verify

    def verify(now: datetime | None = None, **kw: Any) -> Any:
        checks.append((now or sim.loom.now()).astimezone(SYDNEY))
        return real_verify(now, **kw)

    monkeypatch.setattr(sim.loom, "verify", verify)
    sim.runner().run(until=end)

    rolls = local_times(sim.rolls("roll"))
    days = [start.date() + timedelta(days=n) for n in range(1, 7)]
    assert [t.date() for t in rolls] == days  # never twice, never skipped
    expected = [datetime.combine(d, roll_at, tzinfo=SYDNEY) for d in days]
    # a skipped time moves later by the gap; a repeated one is taken at its first occurrence
    assert rolls == [e.astimezone(UTC).astimezone(SYDNEY) for e in expected]
    assert [e.days_planned for e in sim.rolls()] == [1] * 6
    assert [t.date() for t in checks] == days[:-1] + [days[-1]] * (end.hour >= 9)
    assert {t.time() for t in checks} == {time(9, 0)}
    assert sim.alerts == []
    assert_window_from_scratch(sim.loom, end)


def test_a_store_failing_mid_roll_leaves_no_half_day_retries_and_recovers() -> None:
    store = FlakyStore()
    sim = Sim(at(10, 7, 23, 0), store=store)
    store.delete_days(day(10, 18), None)  # three days for the runner's first roll
    victim = day(10, 19)
    store.fail_day, store.fail_times = victim, 2
    seen: list[tuple[RunnerAlert, list[date]]] = []

    def alert(a: RunnerAlert) -> None:
        seen.append((a, [p.date for p in store.planned_days(day(10, 18), None)]))

    sim.clock.set_local(2026, 10, 7, 23, 50)
    runner = sim.runner(alert=alert)
    runner.run(until=at(10, 8, 1, 0))

    alerts = [a for a, _ in seen]
    assert [(a.kind, a.action, a.attempt) for a in alerts] == [
        ("failure", "roll", 1),
        ("failure", "retry", 2),
        ("recovery", "retry", 3),
    ]
    assert [a.at for a in alerts] == [at(10, 7, 23, 50), at(10, 8, 0, 0), at(10, 8, 0, 10)]
    assert [a.next_retry_at for a in alerts] == [at(10, 8, 0, 0), at(10, 8, 0, 10), None]
    assert isinstance(alerts[0].exception, StoreUnavailableError)
    assert alerts[1].error == "StoreUnavailableError: database connection lost"
    assert alerts[2].failing_since == at(10, 7, 23, 50)
    # at each failure: the day before the victim is whole, the victim is not there at all
    assert [days for _, days in seen[:2]] == [[day(10, 18)], [day(10, 18)]]
    log = sim.rolls()
    assert [(e.trigger, e.status, e.days_planned) for e in log] == [
        ("roll", "failed", 0),
        ("retry", "failed", 0),
        ("retry", "ok", 3),  # after midnight: 8 Oct's new day too, so no 00:05 roll
    ]
    assert runner.state.failures == 0
    assert_window_from_scratch(sim.loom, at(10, 8, 1, 0))


def test_the_clock_jumping_three_days_forward_gives_one_catch_up_roll() -> None:
    sim = Sim(at(10, 3, 23, 50))
    jumped: list[datetime] = []

    def machine_sleeps() -> None:
        if not jumped and sim.clock.now >= at(10, 4, 1, 0):
            sim.clock.advance(days=3)
            jumped.append(sim.clock.now)

    sim.on_sleep = machine_sleeps
    sim.runner().run(until=at(10, 8, 12, 0))
    log = sim.rolls()
    assert [(t, e.days_planned) for t, e in zip(local_times(log), log, strict=True)] == [
        (at(10, 4, 0, 5), 1),
        (jumped[0], 3),  # one roll at the first wake-up plans the three missed days
        (at(10, 8, 0, 5), 1),
    ]
    assert_window_from_scratch(sim.loom, at(10, 8, 12, 0))


def test_two_runners_at_once_make_one_roll(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(at(10, 3, 23, 50).replace(tzinfo=None))
    store = MemoryStore()
    make_loom(clock, weeks=2, store=store)
    alerts: list[RunnerAlert] = []
    runners = [
        Runner(Loom(store, clock=clock), name=f"roller-{n}", alert=alerts.append) for n in (1, 2)
    ]
    for r in runners:
        assert r.run_pending().kind == "roll"
    clock.set_local(2026, 10, 4, 0, 5)
    # the roll that takes the lock first holds it until the other has asked
    # for it, and a while longer: a lock that let both in would be caught
    asking = itertools.count(1)
    both_asked = threading.Event()
    holding: list[str] = []
    most_holding = 0
    roll_lock = store.roll_lock

    @contextmanager
    def watched() -> Iterator[None]:
        nonlocal most_holding
        if next(asking) == 2:
            both_asked.set()
        with roll_lock():
            holding.append(threading.current_thread().name)
            most_holding = max(most_holding, len(holding))
            try:
                assert both_asked.wait(timeout=10), "the other runner never asked for the lock"
                real_time.sleep(0.2)
                yield
            finally:
                holding.pop()

    monkeypatch.setattr(store, "roll_lock", watched)
    threads = [threading.Thread(target=r.run_pending) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    monkeypatch.undo()
    assert most_holding == 1
    assert alerts == []
    log = store.roll_log()
    assert {e.status for e in log} == {"ok"}
    assert sorted((e.by, e.days_planned) for e in log) in (
        [("roller-1", 0), ("roller-2", 1)],
        [("roller-1", 1), ("roller-2", 0)],
    )
    # three more nights, both runners stepping minute by minute: one planning roll a night
    for _ in range(3 * 24 * 60):
        clock.advance(minutes=1)
        for r in runners:
            r.run_pending()
    per_night = Counter(e.today for e in store.roll_log() if e.days_planned)
    assert per_night == {day(10, d): 1 for d in (4, 5, 6, 7)}
    assert Counter((e.today, e.by) for e in store.roll_log()).most_common(1)[0][1] == 1


def test_an_alert_hook_that_raises_does_not_stop_the_runner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    sim = Sim(at(10, 3, 23, 50), store=store)
    store.fail_day, store.fail_times = day(10, 17), 1

    def bad_hook(alert: RunnerAlert) -> None:
        raise RuntimeError("the pager is down")

    with caplog.at_level(logging.ERROR, logger="loomcore.runner"):
        sim.runner(alert=bad_hook).run(until=at(10, 4, 1, 0))
    assert [(e.status, e.trigger) for e in sim.rolls()] == [("failed", "roll"), ("ok", "retry")]
    raised = [r for r in caplog.records if "alert hook raised" in r.getMessage()]
    assert len(raised) == 2  # the failure and the recovery
    assert raised[0].exc_info is not None


def test_the_default_alert_logs_failure_and_recovery(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore()
    sim = Sim(at(10, 3, 23, 50), store=store)
    store.fail_day, store.fail_times = day(10, 17), 1
    runner = Runner(sim.loom, sleep=sim.sleep)
    with caplog.at_level(logging.INFO, logger="loomcore.runner"):
        runner.run(until=at(10, 4, 1, 0))
    alerts = [
        (r.levelname, r.getMessage()) for r in caplog.records if "loomcore " in r.getMessage()
    ]
    assert alerts == [
        (
            "ERROR",
            "loomcore roll failed (attempt 1): StoreUnavailableError: database connection "
            "lost; next try at 2026-10-04T00:15:00+10:00",
        ),
        (
            "WARNING",
            "loomcore recovered: retry succeeded at attempt 2 (failing since "
            "2026-10-04T00:05:00+10:00; last error: StoreUnavailableError: database "
            "connection lost)",
        ),
    ]
    failure = next(r for r in caplog.records if r.levelname == "ERROR")
    assert failure.exc_info is not None
    assert any("retry ok: 1 day planned" in r.getMessage() for r in caplog.records)


def test_status_for_the_banner() -> None:
    store = FlakyStore()
    sim = Sim(at(10, 3, 23, 50), store=store)
    runner = sim.runner()
    before = runner.status()
    assert (before.status, before.running, before.next_action.kind) == ("ok", False, "start")
    assert before.next_roll_at == at(10, 4, 0, 5)  # what the store says, before the runner ran
    runner.run_pending()
    status = runner.status()
    assert status.status == "ok"
    assert status.next_roll_at == at(10, 4, 0, 5)
    assert status.next_verify_at == at(10, 4, 9, 0)
    assert (status.retry_at, status.failures, status.missing_days) == (None, 0, ())
    assert status.banner() == "Next auto-roll at Sun 4 Oct 2026 00:05 (ok)"

    store.fail_day, store.fail_times = day(10, 17), 2
    sim.clock.set_local(2026, 10, 4, 0, 5)
    runner.run_pending()
    failed = runner.status()
    assert failed.status == "failed"
    assert failed.retry_at == failed.next_roll_at == at(10, 4, 0, 15)
    assert failed.missing_days == (day(10, 17),)
    assert failed.last_roll is not None
    assert failed.last_roll.status == "failed"
    assert failed.banner() == (
        "Next auto-roll at Sun 4 Oct 2026 00:15 (failed); retrying after 1 failed "
        "attempt(s): StoreUnavailableError: database connection lost"
    )

    store.down = True
    unreadable = runner.status()
    assert (unreadable.status, unreadable.health) == ("failed", None)
    assert unreadable.health_error == "StoreUnavailableError: database unavailable"
    assert unreadable.missing_days == ()

    store.down = False
    sim.clock.set_local(2026, 10, 4, 0, 30)
    runner.run_pending()  # the second retry fails, the third is due at 00:40
    assert runner.status().failures == 2
    sim.clock.set_local(2026, 10, 4, 0, 40)
    assert runner.run_pending() == RunnerAction(kind="verify", at=at(10, 4, 9, 0))
    recovered = runner.status()
    assert (recovered.status, recovered.failures) == ("ok", 0)
    assert recovered.last_roll is not None
    assert (recovered.last_roll.trigger, recovered.last_roll.days_planned) == ("retry", 1)
    assert recovered.last_roll.duration >= timedelta(0)
    assert [a.kind for a in sim.alerts] == ["failure", "failure", "recovery"]


def test_a_store_down_at_start_is_a_failure_then_a_retry() -> None:
    store = FlakyStore()
    sim = Sim(at(10, 3, 23, 50), store=store)
    store.down = True
    runner = sim.runner()
    assert runner.run_pending() == RunnerAction(kind="retry", at=at(10, 4, 0, 0))
    assert [(a.kind, a.action, a.attempt) for a in sim.alerts] == [("failure", "start", 1)]
    store.down = False
    sim.clock.set_local(2026, 10, 4, 0, 0)
    assert runner.run_pending().kind == "roll"
    assert [(a.kind, a.action, a.attempt) for a in sim.alerts][-1] == ("recovery", "retry", 2)
    assert runner.state == done(day(10, 3), day(10, 3))


def test_a_runner_starting_after_a_failed_roll_retries_it() -> None:
    store = FlakyStore()
    sim = Sim(at(10, 3, 23, 50), store=store)
    store.fail_day, store.fail_times = day(10, 17), 1
    with pytest.raises(StoreUnavailableError):
        sim.loom.roll(at(10, 4, 0, 5))
    sim.clock.set_local(2026, 10, 4, 0, 7)
    runner = sim.runner()
    retry_at = sim.loom.health().retry_at
    assert retry_at is not None
    assert runner.run_pending() == RunnerAction(kind="retry", at=retry_at)
    assert retry_at - at(10, 4, 0, 15) < timedelta(seconds=1)  # 10 minutes after it failed
    assert sim.alerts == []  # whoever failed has alerted already
    sim.clock.set_local(2026, 10, 4, 0, 16)
    runner.run_pending()
    assert [(a.kind, a.attempt) for a in sim.alerts] == [("recovery", 2)]


def test_manual_actions_are_logged_with_who_asked() -> None:
    store = FlakyStore()
    sim = Sim(at(10, 3, 23, 50), store=store)
    runner = sim.runner()
    runner.run_pending()
    store.fail_day, store.fail_times = day(10, 17), 1
    sim.clock.set_local(2026, 10, 4, 0, 5)
    runner.run_pending()
    assert runner.state.failures == 1
    sim.clock.advance(minutes=2)
    entry = runner.roll_now(by="alice")
    assert (entry.trigger, entry.by, entry.days_planned) == ("manual", "alice", 1)
    assert [(a.kind, a.action) for a in sim.alerts] == [("failure", "roll"), ("recovery", "manual")]
    assert runner.state.failures == 0
    assert describe_roll(entry).startswith("manual ok: 1 day planned, 0 dropped, 0 purged in ")

    plan = runner.regenerate_day(day(10, 1), by="bob")
    assert plan.date == day(10, 1)
    audit = sim.loom.audit_log()[-1]
    assert (audit.by, audit.action, audit.subject) == ("bob", "regenerate", "2026-10-01")
    assert runner.verify_now(by="carol").status == "ok"

    store.fail_day, store.fail_times = day(10, 17), 1
    store.delete_days(day(10, 17), None)
    with pytest.raises(StoreUnavailableError):
        runner.roll_now(by="alice")
    assert runner.state.failures == 1  # the loop retries it
    assert sim.alerts[-1].action == "manual"


def test_scheduled_rolls_are_logged_with_the_runner_name() -> None:
    sim = Sim(at(10, 3, 23, 50))
    sim.runner(name="roller@host-a").run(until=at(10, 4, 0, 10))
    assert [(e.by, e.trigger) for e in sim.rolls()] == [("roller@host-a", "roll")]


def test_a_loop_is_bounded_by_until_even_with_nothing_due() -> None:
    sim = Sim(at(10, 4, 12, 0))
    runner = sim.runner(max_sleep=None)
    runner.run(until=at(10, 4, 18, 0))
    assert sim.clock.now == at(10, 4, 18, 0)
    assert sim.sleeps == 1  # no action due before `until`: one sleep to it


# --------------------------------------------------------------------------- threads and asyncio


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = real_time.monotonic() + timeout
    while not condition():
        assert real_time.monotonic() < deadline, "timed out"
        real_time.sleep(0.005)


def test_a_thread_stops_promptly_and_cleanly() -> None:
    clock = Clock(at(10, 4, 12, 0).replace(tzinfo=None))
    loom = make_loom(clock, weeks=2)
    runner = Runner(loom, alert=fail_on_alert, max_sleep=timedelta(hours=1))  # real waiting
    thread = runner.start_thread()
    assert thread.daemon
    wait_until(lambda: runner.state.started)
    assert runner.running
    with pytest.raises(RuntimeError, match="already running"):
        runner.start_thread()
    with pytest.raises(RuntimeError, match="already running"):
        runner.run()
    began = real_time.monotonic()
    runner.stop()
    assert runner.join(timeout=5)
    assert real_time.monotonic() - began < 1.0  # the hour-long wait was interrupted
    assert not runner.running
    assert not thread.is_alive()
    # a stopped runner can run again
    runner.start_thread()
    wait_until(lambda: runner.running)
    runner.stop()
    assert runner.join(timeout=5)


def test_a_manual_roll_from_another_thread_wakes_the_loop() -> None:
    clock = Clock(at(10, 4, 0, 1).replace(tzinfo=None))
    loom = make_loom(clock, weeks=2)
    runner = Runner(loom, alert=fail_on_alert, max_sleep=timedelta(hours=1))
    waits: list[float | None] = []  # what the loop decided at each turn
    step = runner._step

    def watched(until: datetime | None) -> float | None:
        waits.append(step(until))
        return waits[-1]

    runner._step = watched  # type: ignore[method-assign]
    runner.start_thread()
    try:
        wait_until(lambda: len(waits) == 2)
        assert waits == [0.0, 4 * 60.0]  # started, then waiting (really) for the 00:05 roll
        clock.set_local(2026, 10, 4, 0, 6)
        runner.roll_now(by="alice")
        # woken, the loop decides again at once: the roll is done, the 09:00
        # check is next (an hour's wait at most)
        wait_until(lambda: len(waits) == 3)
        assert waits[2] == 3600.0
        assert runner.next_action().at == at(10, 4, 9, 0)
    finally:
        runner.stop()
        assert runner.join(timeout=5)
    assert [(e.trigger, e.by) for e in loom.roll_log()] == [("manual", "alice")]


def test_run_async_with_a_fake_async_sleep() -> None:
    sim = Sim(at(10, 3, 23, 50))

    async def sleep(seconds: float) -> None:
        sim.sleep(seconds)
        await asyncio.sleep(0)

    runner = Runner(sim.loom, alert=fail_on_alert, sleep=sleep, max_sleep=timedelta(hours=1))
    asyncio.run(asyncio.wait_for(runner.run_async(until=at(10, 6, 12, 0)), timeout=20))
    assert [t.date() for t in local_times(sim.rolls("roll"))] == [day(10, d) for d in (4, 5, 6)]
    assert not runner.running


def test_a_stop_just_before_the_wake_is_cleared_is_not_lost() -> None:
    # A signal handler calling stop() can run between any two lines of the
    # loop; here it runs as the loop clears its wake-up, the narrowest spot.
    clock = Clock(at(10, 4, 12, 0).replace(tzinfo=None))
    runner = Runner(make_loom(clock, weeks=2), alert=fail_on_alert)  # real waiting, for hours
    real_clear = runner._wake.clear
    calls = [0]

    def clear_after_a_stop() -> None:
        calls[0] += 1
        if calls[0] == 2:  # the loop's second turn: started, now waiting for the roll
            runner.stop()
        real_clear()

    runner._wake.clear = clear_after_a_stop  # type: ignore[method-assign]
    thread = runner.start_thread()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert calls[0] == 2


def test_run_async_stops_on_its_event_and_on_stop() -> None:
    clock = Clock(at(10, 4, 12, 0).replace(tzinfo=None))
    runner = Runner(make_loom(clock, weeks=2), alert=fail_on_alert)

    async def scenario() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run_async(stop))
        while not runner.state.started:
            await asyncio.sleep(0.005)
        began = real_time.monotonic()
        stop.set()
        await asyncio.wait_for(task, timeout=5)
        first = real_time.monotonic() - began

        task = asyncio.create_task(runner.run_async())
        while not runner.running:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        began = real_time.monotonic()
        threading.Thread(target=runner.stop).start()  # from another thread, e.g. a signal
        await asyncio.wait_for(task, timeout=5)
        return max(first, real_time.monotonic() - began)

    assert asyncio.run(scenario()) < 1.0
    assert not runner.running


# --------------------------------------------------------------------------- the command


def test_roller_refuses_an_unknown_timezone(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["roller", "--dsn", "postgresql://nobody@127.0.0.1:1/x", "--timezone", "Mars/Base"])
    assert code == 2
    assert capsys.readouterr().err == "loom: error: unknown timezone 'Mars/Base'\n"


@pytest.mark.parametrize("workers", ["0", "-1", "two", "1.5"])
def test_rolling_commands_refuse_a_bad_number_of_workers(
    workers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("roller", "roll-now"):
        assert main([command, "--dsn", "postgresql://x/y", "--workers", workers]) == 2
        err = capsys.readouterr().err
        assert f"argument --workers: expected a whole number of at least 1, got {workers!r}" in err


def test_the_database_commands_need_a_dsn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["roller", "--once"]) == 2
    assert "--dsn" in capsys.readouterr().err
    assert main(["regenerate", "--dsn", "postgresql://x/y", "5 Oct"]) == 2
    assert "expected a date as YYYY-MM-DD" in capsys.readouterr().err
