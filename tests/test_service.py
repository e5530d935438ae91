"""The Loom service: re-planning, rolling, health, history, audit."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import attrs
import pytest

from builders import Clock, local, make_loom, seed_organisation, weekly
from loomcore import (
    Absence,
    DayOutsideWindowError,
    Enrolment,
    Loom,
    MemoryStore,
    PlanInputs,
    PlannedDay,
    ProgramChange,
    Reschedule,
    Store,
    plan_day,
)


def from_scratch(loom: Loom, day: date):  # type: ignore[no-untyped-def]
    retracted = {r.target_id for r in loom.store.retractions()}
    active = [r for r in loom.store.records() if r.id not in retracted]
    inputs = PlanInputs(
        organisation=loom.store.organisation(),
        catalogue=loom.catalogue,
        intents=[r for r in active if isinstance(r, Enrolment | ProgramChange)],
        one_offs=[r for r in active if isinstance(r, Absence | Reschedule)],
    )
    return plan_day(inputs, day)


def planned_at(loom: Loom) -> dict[date, datetime]:
    return {p.date: p.planned_at for p in loom.store.planned_days()}


@pytest.fixture
def clock() -> Clock:
    return Clock(local(2026, 10, 1, 0, 5))


@pytest.fixture
def loom(clock: Clock, any_store: Store) -> Loom:
    return make_loom(clock, weeks=4, store=any_store)


def test_recording_replans_only_the_days_it_can_affect(loom: Loom, clock: Clock) -> None:
    before = planned_at(loom)
    clock.advance(hours=3)
    loom.record(
        Enrolment(
            program_id="centre-wed",
            participant_id="sarah",
            start=date(2026, 10, 14),
            end=date(2026, 10, 21),
        )
    )
    after = planned_at(loom)
    changed = sorted(d for d in after if after[d] != before[d])
    # only the days the program runs in that range: the Wednesdays
    assert changed == [date(2026, 10, 14), date(2026, 10, 21)]

    clock.advance(hours=1)
    before = planned_at(loom)
    loom.record(Absence(program_id="centre-wed", participant_id="sarah", date=date(2026, 10, 14)))
    after = planned_at(loom)
    assert sorted(d for d in after if after[d] != before[d]) == [date(2026, 10, 14)]


def test_changing_an_instance_origin_replans_the_day_it_was_moved_to(loom: Loom) -> None:
    loom.record(
        Reschedule(program_id="centre-wed", date=date(2026, 10, 14), to_date=date(2026, 10, 16))
    )
    assert [
        i.id
        for i in loom.instances(date(2026, 10, 16), date(2026, 10, 16), program_id="centre-wed")
    ] == ["centre-wed/2026-10-14"]
    # pausing the program on the 14th also orphans the move that lands on the 16th
    loom.record(
        ProgramChange(
            program_id="centre-wed", start=date(2026, 10, 14), end=date(2026, 10, 14), runs=False
        )
    )
    plan = loom.day(date(2026, 10, 16))
    assert plan is not None
    assert plan == from_scratch(loom, date(2026, 10, 16))
    assert [w.code for w in plan.warnings] == ["orphaned-exception"]


def test_roll_is_idempotent_and_catches_up(loom: Loom, clock: Clock) -> None:
    assert loom.roll().days_planned == 0
    clock.set_local(2026, 10, 4, 0, 5)  # three nights missed
    entry = loom.roll()
    assert (entry.status, entry.days_planned, entry.today) == ("ok", 3, date(2026, 10, 4))
    assert loom.roll().days_planned == 0
    window = loom.window()
    assert [p.date for p in loom.store.planned_days(window.start, window.end)] == list(
        window.days()
    )
    # history is kept: the days that left the window are still stored
    assert loom.day(date(2026, 10, 1)) is not None


def test_a_crash_between_recording_and_replanning_is_mended_by_the_roll(loom: Loom) -> None:
    # the record lands but the process dies before re-planning
    lost = Enrolment(
        id="late",
        program_id="centre-wed",
        participant_id="john",
        start=date(2026, 10, 7),
        recorded_at=datetime(2026, 9, 30, tzinfo=UTC),
    )
    loom.store.add_record(lost)
    health = loom.health()
    assert health.status == "late"
    assert health.stale_days == tuple(date(2026, 10, d) for d in (7, 14, 21, 28))
    assert health.missing_days == ()
    after = loom.verify()
    assert after.status == "ok"
    assert after.stale_days == ()
    for day in loom.window().days():
        assert loom.day(day) == from_scratch(loom, day)
    assert loom.roll_log()[-1].trigger == "verify"


def programs_worked_out(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the programs whose instances planning works out from now
    on (rather than finds remembered), one entry each time."""
    import loomcore._plan as plan_module

    worked_out: list[str] = []
    real = plan_module._program_instances

    def spy(inputs, program, day, applied):  # type: ignore[no-untyped-def]
        worked_out.append(program.id)
        return real(inputs, program, day, applied)

    monkeypatch.setattr(plan_module, "_program_instances", spy)
    return worked_out


class FlakyStore(MemoryStore):
    """Fails to write one date: the days before it in a batch are written."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_on: date | None = None

    def put_day(self, day: PlannedDay) -> bool:
        if day.date == self.fail_on:
            raise ConnectionError("database went away")
        return super().put_day(day)


class FlakyBatchStore(FlakyStore):
    """Writes a batch all or nothing, as in one transaction."""

    def put_days(self, days: Sequence[PlannedDay]) -> list[bool]:
        if any(d.date == self.fail_on for d in days):
            raise ConnectionError("database went away")
        return super().put_days(days)


@pytest.mark.parametrize(
    ("flaky", "first_missing"),
    [(FlakyStore, 16), (FlakyBatchStore, 15)],  # 15 Oct is written in a batch with the 16th
    ids=["by-day", "by-batch"],
)
def test_a_failed_roll_is_logged_and_the_next_one_completes(
    clock: Clock, flaky: type[FlakyStore], first_missing: int
) -> None:
    store = flaky()
    loom = Loom(store, clock=clock)
    loom.load(seed_organisation(), weeks=2)
    clock.set_local(2026, 10, 5, 0, 5)
    store.fail_on = date(2026, 10, 16)
    with pytest.raises(ConnectionError):
        loom.roll()
    failed = loom.roll_log()[-1]
    assert (failed.status, failed.error) == ("failed", "ConnectionError: database went away")
    health = loom.health()
    assert health.status == "failed"
    assert health.missing_days == tuple(date(2026, 10, d) for d in range(first_missing, 19))
    # the days written before the failure are whole and correct
    for d in range(1, first_missing):
        assert loom.day(date(2026, 10, d)) == from_scratch(loom, date(2026, 10, d))
    store.fail_on = None
    clock.advance(minutes=10)
    assert loom.verify().status == "ok"
    assert loom.roll_log()[-1].days_planned == 19 - first_missing


def test_health_before_the_roll_is_due_is_not_late(clock: Clock, any_store: Store) -> None:
    loom = make_loom(clock, weeks=2, store=any_store)  # planned at 00:05 on 1 Oct
    loom.roll()
    clock.set_local(2026, 10, 2, 0, 1)
    early = loom.health()
    assert (early.status, early.missing_days) == ("ok", ())
    assert early.next_roll_at == datetime(2026, 10, 2, 0, 5, tzinfo=early.next_roll_at.tzinfo)
    clock.set_local(2026, 10, 2, 0, 6)
    assert loom.health().missing_days == (date(2026, 10, 15),)
    assert loom.health().status == "late"


def test_past_days_are_history_until_regenerated(loom: Loom, clock: Clock) -> None:
    clock.set_local(2026, 10, 10, 0, 5)
    loom.roll()
    old = loom.day(date(2026, 10, 7))
    loom.record(Enrolment(program_id="centre-wed", participant_id="sarah", start=date(2026, 10, 1)))
    assert loom.day(date(2026, 10, 7)) == old  # history is not re-planned
    assert loom.roll().days_planned == 0
    assert loom.health().status == "ok"  # history staleness is not the window's
    regenerated = loom.regenerate_day(date(2026, 10, 7), by="ops")
    assert "sarah" in regenerated.instances[0].attending
    entry = loom.audit_log()[-1]
    assert (entry.action, entry.subject, entry.by, entry.detail) == (
        "regenerate",
        "2026-10-07",
        "ops",
        "history day",
    )


def test_retention_purges_old_history_and_purge_is_explicit_too(loom: Loom, clock: Clock) -> None:
    e = loom.record(
        Enrolment(program_id="centre-wed", participant_id="john", start=date(2026, 10, 1))
    )
    clock.set_local(2027, 1, 15, 0, 5)  # the nights after 28 Oct were missed
    entry = loom.roll()
    # 90 days of history are kept (17 Oct 2026 onwards): 1..16 Oct go
    assert entry.days_purged == 16
    assert loom.store.planned_days()[0].date == date(2026, 10, 17)
    # history holds what was planned while it was in the window: 17..28 Oct
    assert loom.purge(date(2026, 11, 1), by="ops") == 12
    assert loom.store.planned_days()[0].date == date(2027, 1, 15)
    assert loom.audit_log()[-1].action == "purge"
    assert loom.store.records() == (e,)  # records are never purged


def test_records_are_never_lost_and_retractions_are_queryable(loom: Loom) -> None:
    e = loom.record(
        Enrolment(program_id="centre-wed", participant_id="sarah", start=date(2026, 10, 7)),
        by="ops",
    )
    assert e.id
    assert e.recorded_by == "ops"
    assert e.recorded_at is not None
    r = loom.retract(e.id, by="ops2", reason="wrong program")
    assert loom.intents() == []
    assert loom.intents(include_retracted=True) == [e]
    assert loom.retraction_of(e.id) == r
    assert loom.store.get_record(e.id) == e
    assert all(
        "sarah" not in i.attending for i in loom.instances(date(2026, 10, 1), date(2026, 10, 28))
    )
    actions = [(a.action, a.subject, a.by) for a in loom.audit_log()[-2:]]
    assert actions == [("record", e.id, "ops"), ("retract", e.id, "ops2")]


def test_absence_without_notice_date_is_taken_as_notified_today(loom: Loom) -> None:
    loom.record(Enrolment(program_id="centre-wed", participant_id="john", start=date(2026, 1, 1)))
    a = loom.record(Absence(program_id="centre-wed", participant_id="john", date=date(2026, 10, 7)))
    assert isinstance(a, Absence)
    assert a.notified_on == date(2026, 10, 1)
    (inst,) = loom.instances(date(2026, 10, 7), date(2026, 10, 7), participant_id="john")
    assert inst.allocations[0].notice_days == 5


def test_queries_filter_by_program_participant_and_status(loom: Loom) -> None:
    loom.record(Enrolment(program_id="centre-wed", participant_id="john", start=date(2026, 1, 1)))
    loom.record(Enrolment(program_id="sun-social", participant_id="sarah", start=date(2026, 1, 1)))
    johns = loom.instances(date(2026, 10, 1), date(2026, 10, 28), participant_id="john")
    assert {i.program_id for i in johns} == {"centre-wed"}
    assert len(johns) == 4
    assert loom.instances(date(2026, 10, 1), date(2026, 10, 28), status="cancelled") == []
    assert [i.id for i in loom.intents(participant_id="sarah")] == [
        loom.intents(program_id="sun-social")[0].id
    ]


def test_preview_plans_beyond_the_window_without_storing(loom: Loom) -> None:
    plans = loom.preview(date(2027, 3, 1), date(2027, 3, 7))
    assert [p.date for p in plans] == [date(2027, 3, d) for d in range(1, 8)]
    assert sum(len(p.instances) for p in plans) == 5
    assert loom.day(date(2027, 3, 1)) is None


def test_organisation_changes_replan_the_window(loom: Loom) -> None:
    loom.upsert(weekly("fri-music", "FR", time(13), time(15)), by="admin")
    fridays = loom.instances(date(2026, 10, 1), date(2026, 10, 28), program_id="fri-music")
    assert len(fridays) == 4
    assert loom.audit_log()[-1].action == "organisation"


def test_two_services_on_one_store_agree(clock: Clock, any_store: Store) -> None:
    store = any_store
    a = Loom(store, clock=clock)
    a.load(seed_organisation(), weeks=2)
    b = Loom(store, clock=clock)
    b.record(Enrolment(program_id="centre-wed", participant_id="sarah", start=date(2026, 10, 1)))
    assert a.window_size() == 2
    assert "sarah" in a.instances(date(2026, 10, 7), date(2026, 10, 7))[0].attending
    assert a.roll().days_planned == 0


def test_resize_is_audited_and_the_window_follows(loom: Loom) -> None:
    w = loom.resize_window(2, by="admin")
    assert (w.start, w.end) == (date(2026, 10, 1), date(2026, 10, 14))
    assert loom.store.planned_days()[-1].date == date(2026, 10, 14)
    entry = loom.audit_log()[-1]
    assert (entry.action, entry.by) == ("resize", "admin")
    assert "4 → 2 weeks" in entry.detail


def test_stamping_keeps_given_ids_and_times(loom: Loom) -> None:
    at = datetime(2026, 9, 1, tzinfo=UTC)
    e = Enrolment(
        id="mine",
        program_id="centre-wed",
        participant_id="john",
        start=date(2026, 10, 1),
        recorded_at=at,
        recorded_by="import",
    )
    stored = loom.record(e)
    assert stored == attrs.evolve(e)


def test_a_roll_asked_to_stop_ends_between_days_and_the_next_completes(
    loom: Loom, clock: Clock
) -> None:
    clock.set_local(2026, 10, 8, 0, 5)  # seven new days to plan
    asked = iter([False, False, True])
    entry = loom.roll(until=lambda: next(asked, True))
    assert (entry.status, entry.days_planned) == ("stopped", 2)
    # 29 and 30 Oct were written, whole; 31 Oct to 4 Nov wait for the next roll
    assert loom.health().missing_days == (
        date(2026, 10, 31),
        *(date(2026, 11, d) for d in range(1, 5)),
    )
    assert loom.health().status == "late"
    again = loom.roll()
    assert (again.status, again.days_planned) == ("ok", 5)
    for day in loom.window().days():
        assert loom.day(day) == from_scratch(loom, day)


def test_billing_lines_are_kept_claimed_once_and_never_silently_changed(
    loom: Loom, clock: Clock
) -> None:
    org = attrs.evolve(
        loom.store.organisation(), registration_number="4050000123", abn="51824753556"
    )
    loom.set_organisation(org)
    for p in ("p01", "p02", "p03"):
        loom.record(Enrolment(program_id="centre-wed", participant_id=p, start=date(2026, 1, 1)))
    wed = date(2026, 10, 7)
    billed = loom.billing_lines(wed, wed)
    assert {line.participant_id for line in billed} == {"p01", "p02", "p03"}

    with pytest.raises(DayOutsideWindowError):
        loom.export_claims(wed, wed)  # not yet delivered
    clock.set_local(2027, 1, 20, 0, 5)
    loom.roll()  # 7 Oct is now history, purged after 90 days...
    clock.set_local(2027, 1, 21, 0, 5)
    files = loom.export_claims(date(2026, 10, 1), date(2026, 10, 31), by="finance")
    assert len(files) == 1
    assert files[0].text.count("\n") == 1 + len(
        loom.billing_lines(date(2026, 10, 1), date(2026, 10, 31))
    )
    assert loom.audit_log()[-1].action == "export-claims"
    assert loom.billing_lines(wed, wed) == billed  # ...but its lines are kept

    # a late no-show, then regenerating the exported day: the claim stays
    loom.record(Absence(program_id="centre-wed", participant_id="p01", date=wed, no_show=True))
    loom.regenerate_day(wed, by="ops")
    assert loom.billing_lines(wed, wed) == billed
    assert loom.ledger_conflicts(date(2026, 10, 1), date(2026, 10, 31)) == [wed]
    assert "exported claim lines, which are kept" in loom.audit_log()[-1].detail


def test_a_day_regenerated_during_a_claim_export_waits_for_it(
    loom: Loom, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = attrs.evolve(
        loom.store.organisation(), registration_number="4050000123", abn="51824753556"
    )
    loom.set_organisation(org)
    for p in ("p01", "p02"):
        loom.record(Enrolment(program_id="centre-wed", participant_id=p, start=date(2026, 1, 1)))
    wed = date(2026, 10, 7)
    clock.set_local(2026, 10, 9, 0, 5)
    loom.roll()
    loom.record(Absence(program_id="centre-wed", participant_id="p01", date=wed, no_show=True))
    # another operator regenerates the day (with its late no-show) just as
    # the export has read the lines and is about to mark them
    mark = loom.store.mark_exported
    other = threading.Thread(target=loom.regenerate_day, args=(wed,))

    def marked_after_a_regeneration_began(*args: Any) -> int:
        other.start()
        other.join(timeout=0.5)  # done by now unless it waits for the export
        return mark(*args)

    monkeypatch.setattr(loom.store, "mark_exported", marked_after_a_regeneration_began)
    (claims,) = loom.export_claims(wed, wed)
    other.join(timeout=10)
    assert not other.is_alive()
    in_file = {row.split(",")[5] for row in claims.text.splitlines()[1:]}
    assert {line.claim_reference for line in loom.billing_lines(wed, wed)} == in_file
    assert loom.ledger_conflicts(wed, wed) == [wed]  # the regenerated plan bills otherwise


def test_claims_need_the_provider_numbers(loom: Loom, clock: Clock) -> None:
    from loomcore import InvalidClaimError

    loom.record(Enrolment(program_id="centre-wed", participant_id="p01", start=date(2026, 1, 1)))
    clock.set_local(2026, 10, 9, 0, 5)
    loom.roll()
    with pytest.raises(InvalidClaimError):
        loom.export_claims(date(2026, 10, 7), date(2026, 10, 7))
    assert all(not d.exported for d in loom.store.ledger())  # nothing marked


def test_a_change_of_weekday_replans_every_day_it_covers(loom: Loom, clock: Clock) -> None:
    from loomcore import Weekly

    loom.record(Enrolment(program_id="centre-wed", participant_id="john", start=date(2026, 1, 1)))
    before = planned_at(loom)
    clock.advance(hours=1)
    loom.record(
        ProgramChange(
            program_id="centre-wed",
            start=date(2026, 10, 12),
            end=date(2026, 10, 18),
            recurrence=Weekly(weekdays=["FR"]),
        )
    )
    after = planned_at(loom)
    assert sorted(d for d in after if after[d] != before[d]) == [
        date(2026, 10, d) for d in range(12, 19)
    ]
    assert [
        i.date
        for i in loom.instances(date(2026, 10, 12), date(2026, 10, 18), program_id="centre-wed")
    ] == [date(2026, 10, 16)]


def test_a_manual_roll_is_audited(loom: Loom, clock: Clock) -> None:
    clock.set_local(2026, 10, 3, 0, 5)
    entry = loom.roll(by="maria", trigger="manual")
    audit = loom.audit_log()[-1]
    assert (audit.action, audit.by, audit.subject) == ("roll", "maria", "2026-10-03..2026-10-30")
    assert audit.detail == f"{entry.days_planned} days planned, status ok"
    loom.roll()  # the nightly roll is in the roll log only
    assert loom.audit_log()[-1] == audit


def test_inputs_reloaded_as_the_window_moves_on_keep_what_was_planned(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After three weeks of nightly rolls the service reloads its records
    for the window's dates; an edit then re-plans only its own program,
    not every program of every day it touches."""
    loom = make_loom(clock, weeks=16)
    store = loom.store
    reloads: list[tuple[date, date]] = []
    real_load = store.load_records

    def load_records(start: date, end: date):  # type: ignore[no-untyped-def]
        reloads.append((start, end))
        return real_load(start, end)

    monkeypatch.setattr(store, "load_records", load_records)
    for _ in range(21):
        clock.advance(days=1)
        loom.roll()
    assert any(end - start > timedelta(weeks=15) for start, end in reloads)  # reloaded

    worked_out = programs_worked_out(monkeypatch)
    start = loom.window().start + timedelta(days=7)
    loom.record(Enrolment(program_id="centre-wed", participant_id="sarah", start=start))
    assert set(worked_out) == {"centre-wed"}
    for d in loom.window().days():
        assert loom.day(d) == from_scratch(loom, d)


class BatchStore(MemoryStore):
    """Notes the days of each batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[date]] = []

    def put_days(self, days: Sequence[PlannedDay]) -> list[bool]:
        self.batches.append([d.date for d in days])
        return super().put_days(days)


def test_days_are_written_in_order_in_batches_before_the_call_returns(clock: Clock) -> None:
    store = BatchStore()
    loom = make_loom(clock, weeks=4, store=store)
    window = list(loom.window().days())
    assert store.batches == [window[:16], window[16:]]
    store.batches.clear()
    loom.record(Enrolment(program_id="centre-wed", participant_id="john", start=window[0]))
    assert store.batches == [[d for d in window if d.weekday() == 2]]  # all written on return
    for day in window:
        assert loom.day(day) == from_scratch(loom, day)


def planning_fails_at(failing: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's planning raises on the ``failing``-th day (from 0) it is given."""

    def plan(inputs: PlanInputs, days: list[date], workers: int = 1):  # type: ignore[no-untyped-def]
        for n, day in enumerate(days):
            if n == failing:
                raise RuntimeError(f"cannot plan {day}")
            yield plan_day(inputs, day)

    monkeypatch.setattr("loomcore._service.plan_days", plan)


def test_a_planning_error_raises_after_the_days_before_it_are_written(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BatchStore()
    loom = make_loom(clock, weeks=2, store=store)
    store.delete_days()
    planning_fails_at(3, monkeypatch)
    with pytest.raises(RuntimeError, match="cannot plan"):
        loom.roll()
    window = list(loom.window().days())
    assert [p.date for p in store.planned_days()] == window[:3]


def test_a_write_failing_after_a_planning_error_is_raised_with_it_as_context(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FlakyBatchStore()
    loom = make_loom(clock, weeks=2, store=store)
    store.delete_days()
    window = list(loom.window().days())
    store.fail_on = window[0]
    planning_fails_at(2, monkeypatch)
    with pytest.raises(ConnectionError, match="database went away") as raised:
        loom.roll()
    assert isinstance(raised.value.__context__, RuntimeError)
    assert "cannot plan" in str(raised.value.__context__)
    assert store.planned_days() == ()


class FailingBatchStore(BatchStore):
    """Notes each batch it is given and fails the ``failing``-th (from 0), writing none of it."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: int | None = None

    def put_days(self, days: Sequence[PlannedDay]) -> list[bool]:
        if len(self.batches) == self.failing:
            self.batches.append([d.date for d in days])
            raise ConnectionError("database went away")
        return super().put_days(days)


@pytest.mark.parametrize("failing", [0, 1])
def test_a_failed_batch_is_neither_written_again_nor_followed(clock: Clock, failing: int) -> None:
    store = FailingBatchStore()
    loom = make_loom(clock, weeks=4, store=store)
    store.delete_days()
    store.batches.clear()
    window = list(loom.window().days())
    store.failing = failing
    with pytest.raises(ConnectionError):
        loom.roll()
    assert store.batches == [window[:16], window[16:]][: failing + 1]  # no batch after it
    assert [p.date for p in store.planned_days()] == window[: 16 * failing]


def test_no_day_is_written_after_a_failed_write(clock: Clock) -> None:
    store = FlakyStore()
    loom = make_loom(clock, weeks=4, store=store)
    store.delete_days()
    window = list(loom.window().days())
    store.fail_on = window[3]
    with pytest.raises(ConnectionError):
        loom.roll()
    assert [p.date for p in store.planned_days()] == window[:3]


@pytest.mark.parametrize("between", ["record", "retraction", "organisation"])
def test_edits_by_another_process_are_caught_up_keeping_what_was_worked_out(
    clock: Clock, monkeypatch: pytest.MonkeyPatch, between: str
) -> None:
    # two processes on one store: what the other records is taken into this
    # one's inputs, dropping only what it can change; a new organisation
    # (or too many changes) has them reloaded
    roller = make_loom(clock, weeks=4)
    web = Loom(roller.store, clock=clock)
    web.warm()
    window = list(web.window().days())
    if between == "organisation":
        roller.store.set_organisation(roller.store.organisation())
    else:
        roller.record(Enrolment(program_id="sat-adventure", participant_id="p01", start=window[0]))
        joined = roller.record(
            Enrolment(program_id="centre-wed", participant_id="p01", start=window[0])
        )
        web.record(Enrolment(program_id="mon-art", participant_id="p02", start=window[0]))
        if between == "retraction":  # p01 leaves Wednesdays again, unseen by ``web``
            roller.retract(joined.id)
    worked_out = programs_worked_out(monkeypatch)
    web.record(Enrolment(program_id="centre-wed", participant_id="john", start=window[0]))
    if between == "organisation":  # reloaded: every program worked out again
        assert set(worked_out) == {p.id for p in web.store.organisation().programs}
    else:  # the programs the records since the warm-up name, no other
        assert set(worked_out) == {"centre-wed", "sat-adventure", "mon-art"}
    for day in window:
        assert web.day(day) == from_scratch(web, day)


@pytest.mark.parametrize("warmed", [True, False])
def test_a_warmed_process_edits_working_out_only_the_program_edited(
    clock: Clock, monkeypatch: pytest.MonkeyPatch, warmed: bool
) -> None:
    # a web process beside the roller: the same store, a Loom of its own
    roller = make_loom(clock, weeks=4)
    web = Loom(roller.store, clock=clock)
    window = list(web.window().days())
    if warmed:
        assert web.warm() == len(window)
    worked_out = programs_worked_out(monkeypatch)
    web.record(Enrolment(program_id="centre-wed", participant_id="john", start=window[0]))
    if warmed:
        assert set(worked_out) == {"centre-wed"}
    else:  # the first edit of a day works out every program of it
        assert set(worked_out) > {"centre-wed"}
    for day in window:
        assert web.day(day) == from_scratch(web, day)


def test_records_loaded_while_another_process_writes_are_not_taken_in_twice(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the inputs are stamped with the revision read before loading; a record
    # another process adds in between is both loaded and among the changes
    # since that revision
    roller = make_loom(clock, weeks=4)
    web = Loom(roller.store, clock=clock)
    window = list(web.window().days())
    real_load = roller.store.load_records
    meanwhile = [Enrolment(program_id="sat-adventure", participant_id="p01", start=window[0])]

    def load_records(start: date, end: date):  # type: ignore[no-untyped-def]
        while meanwhile:
            roller.record(meanwhile.pop())
        return real_load(start, end)

    monkeypatch.setattr(roller.store, "load_records", load_records)
    web.warm()
    web.record(Enrolment(program_id="centre-wed", participant_id="john", start=window[0]))
    for day in window:
        assert web.day(day) == from_scratch(web, day)
