"""PostgresStore under load and failure, against a real server."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
import threading
import time as _time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from builders import Clock, assert_window_from_scratch, local, seed_organisation
from conftest import clean_database, connection_dies_writing, paused_before
from loomcore import (
    DayPlan,
    Enrolment,
    Loom,
    PlannedDay,
    ProgramChange,
    RollEntry,
    StoreUnavailableError,
)
from loomcore_pg import PostgresStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(pg_engine: Any) -> PostgresStore:
    clean_database(pg_engine)
    return PostgresStore(pg_engine)


def test_200_concurrent_edits_while_a_roll_runs(store: PostgresStore, pg_engine: Any) -> None:
    clock = Clock(local(2026, 10, 1, 0, 5))
    setup = Loom(store, clock=clock)
    setup.load(
        seed_organisation(),
        [
            Enrolment(program_id="centre-wed", participant_id=f"p{i:02d}", start=date(2026, 1, 1))
            for i in range(1, 8)
        ],
        weeks=2,
    )
    setup.resize_window(16)  # leaves 14 weeks for the roll below to plan
    store.delete_days(date(2026, 10, 15), None)
    programs = ["centre-wed", "sat-adventure", "sun-social", "mon-art", "thu-weighted"]

    def edit(n: int) -> str:
        loom = Loom(PostgresStore(pg_engine), clock=clock)
        day = date(2026, 10, 1) + timedelta(days=n % 112)
        record: Enrolment | ProgramChange
        if n % 4 == 0:
            record = Enrolment(
                id=f"edit-{n}",
                program_id=programs[n % 5],
                participant_id=f"p{n % 12 + 1:02d}",
                start=day,
                end=day + timedelta(days=6),
            )
        else:
            record = ProgramChange(
                id=f"edit-{n}",
                program_id=programs[n % 5],
                start=day,
                end=day,
                start_time=time(8, n % 60),
            )
        return loom.record(record, by=f"operator-{n % 7}").id

    roller = Loom(PostgresStore(pg_engine), clock=clock)
    roll_result: list[RollEntry] = []
    roll = threading.Thread(target=lambda: roll_result.append(roller.roll()))
    roll.start()
    with ThreadPoolExecutor(max_workers=16) as pool:
        done = list(pool.map(edit, range(200), timeout=300))
    roll.join(timeout=300)
    assert not roll.is_alive()
    assert roll_result
    assert roll_result[0].status == "ok"

    assert sorted(done) == sorted(f"edit-{n}" for n in range(200))
    assert {r.id for r in store.records()} >= set(done)  # no lost write
    assert len([a for a in store.audit_log() if a.action == "record"]) == 200
    assert_window_from_scratch(setup)


def test_connection_killed_mid_roll_leaves_no_half_day(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(local(2026, 10, 1, 0, 5))
    loom = Loom(store, clock=clock)
    loom.load(
        seed_organisation(),
        [Enrolment(program_id="centre-wed", participant_id="sarah", start=date(2026, 1, 1))],
        weeks=2,
    )
    clock.set_local(2026, 10, 8, 0, 5)  # new days to plan: 15..21 Oct
    victim = date(2026, 10, 17)  # a Saturday, with an instance
    connection_dies_writing(monkeypatch, victim)
    with pytest.raises(StoreUnavailableError):
        loom.roll()
    # nothing of the half-written day (nor of days written with it) survived
    # the seven new days are one batch: written whole or not at all
    assert store.planned_days(date(2026, 10, 15), date(2026, 10, 21)) == ()
    with store.engine.connect() as conn:
        orphans = conn.execute(
            text("SELECT count(*) FROM tgl_loom_instances WHERE day >= :d"), {"d": victim}
        ).scalar()
    assert orphans == 0

    monkeypatch.undo()
    again = loom.roll()
    assert again.status == "ok"
    assert again.days_planned == 7
    assert [e.status for e in loom.roll_log()] == ["failed", "ok"]
    assert "StoreUnavailableError" in loom.roll_log()[0].error
    assert store.get_day(victim).plan.instances  # type: ignore[union-attr]
    assert_window_from_scratch(loom)


ROLLER = textwrap.dedent(
    """
    import json, sys, time
    from datetime import datetime, timezone
    from loomcore import Loom
    from loomcore_pg import PostgresStore

    url, out = sys.argv[1], sys.argv[2]
    store = PostgresStore(url)
    now = datetime(2026, 10, 8, 13, 5, tzinfo=timezone.utc)  # 00:05, 9 Oct in Sydney
    loom = Loom(store, clock=lambda: now)
    held = []
    real = store.roll_lock
    def timed_lock():
        class Timed:
            def __enter__(self):
                self.cm = real(); self.cm.__enter__(); self.t0 = time.monotonic_ns()
            def __exit__(self, *exc):
                held.append((self.t0, time.monotonic_ns())); return self.cm.__exit__(*exc)
        return Timed()
    store.roll_lock = timed_lock
    entry = loom.roll()
    json.dump({"held": held, "planned": entry.days_planned}, open(out, "w"))
    """
)


def test_several_processes_roll_exactly_once(
    store: PostgresStore, pg_url: str, tmp_path: Path
) -> None:
    clock = Clock(local(2026, 10, 1, 0, 5))
    loom = Loom(store, clock=clock)
    loom.load(seed_organisation(), weeks=16)
    script = tmp_path / "roller.py"
    script.write_text(ROLLER)
    outs = [tmp_path / f"out{n}.json" for n in range(4)]
    procs = [
        subprocess.Popen([sys.executable, str(script), pg_url, str(out)], cwd=ROOT) for out in outs
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    results = [json.loads(out.read_text()) for out in outs]
    # together they planned the 8 new days exactly once
    assert sorted(r["planned"] for r in results) == [0, 0, 0, 8]
    intervals = sorted(tuple(r["held"][0]) for r in results)
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert end <= start  # the roll lock was never held by two processes at once
    assert [e.status for e in loom.roll_log()] == ["ok"] * 4


def test_batches_of_days_given_in_any_order_exports_and_deletes_never_deadlock(
    pg_engine: Any,
) -> None:
    # each transaction locks the days' rows in date order: two writers given
    # the same days the other way round, an exporter and a purger wait for
    # each other, but none is chosen to fail by the deadlock detector. The
    # writers move on a day each round, so there are new days (and ledger
    # days) to purge and export all along. A stress run: it finds a deadlock
    # only if the threads happen to meet in the wrong order; the cases that
    # once deadlocked are made to happen step by step in the tests below.
    clean_database(pg_engine)
    setup = PostgresStore(pg_engine)
    setup.set_organisation(seed_organisation())
    first, rounds, span = date(2026, 10, 1), 60, 12
    at = local(2026, 9, 1, 0, 5)

    def days(n: int) -> list[date]:
        return [first + timedelta(days=n + k) for k in range(span)]

    def writer(backwards: bool) -> None:
        store = PostgresStore(pg_engine)
        for n in range(rounds):
            batch = [PlannedDay(plan=DayPlan(date=d), revision=n, planned_at=at) for d in days(n)]
            store.put_days(batch[::-1] if backwards else batch)

    def exporter() -> None:
        store = PostgresStore(pg_engine)
        for n in range(rounds):
            store.mark_exported(first + timedelta(days=n), days(n)[-1], f"export-{n}", at)

    def purger() -> None:
        store = PostgresStore(pg_engine)
        for n in range(rounds):
            store.delete_days(days(n)[n % 3], days(n)[-1 - n % 4])

    with ThreadPoolExecutor(4) as pool:
        running = [
            pool.submit(writer, False),
            pool.submit(writer, True),
            pool.submit(exporter),
            pool.submit(purger),
        ]
        for future in running:
            future.result()  # a deadlock would raise StoreError here
    every_day = {d for n in range(rounds) for d in days(n)}
    assert {d.date for d in setup.ledger()} == every_day  # the ledger keeps every day written


def _until_a_backend_waits_on_a_lock(engine: Any) -> None:
    with engine.connect() as conn:
        for _ in range(200):
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return
            _time.sleep(0.05)
    raise AssertionError("no backend came to wait on a lock")


@pytest.mark.parametrize("change", ["delete_days", "mark_exported"])
def test_a_range_change_meeting_a_day_written_since_its_locks_does_not_deadlock(
    pg_engine: Any, change: str
) -> None:
    # The range change has locked the 1st and 3rd (in date order) when the
    # 2nd is written and committed; a batch of the 2nd and 3rd then holds the
    # 2nd and waits for the 3rd. The change must not reach for the 2nd.
    clean_database(pg_engine)
    PostgresStore(pg_engine).set_organisation(seed_organisation())
    d1, d2, d3 = (date(2026, 10, d) for d in (1, 2, 3))
    at = local(2026, 9, 1, 0, 5)

    def day(d: date, revision: int) -> PlannedDay:
        return PlannedDay(plan=DayPlan(date=d), revision=revision, planned_at=at)

    writer = PostgresStore(pg_engine)
    writer.put_days([day(d1, 1), day(d3, 1)])
    slow_engine = create_engine(pg_engine.url)
    slow = PostgresStore(slow_engine)
    reached, go = paused_before(
        slow_engine, "DELETE FROM tgl_loom_days" if change == "delete_days" else "UPDATE"
    )
    with ThreadPoolExecutor(2) as pool:
        if change == "delete_days":
            changing = pool.submit(slow.delete_days, d1, d3)
        else:
            changing = pool.submit(slow.mark_exported, d1, d3, "claims-1", at)
        try:
            assert reached.wait(20)
            assert writer.put_days([day(d2, 2)]) == [True]  # locks nothing it holds
            batch = pool.submit(PostgresStore(pg_engine).put_days, [day(d2, 3), day(d3, 3)])
            _until_a_backend_waits_on_a_lock(pg_engine)
        finally:
            go.set()
        assert changing.result() == 2  # a deadlock would raise StoreError here or below
        assert batch.result() == [True, True]
    slow_engine.dispose()
    revisions = writer.day_revisions()
    if change == "delete_days":
        assert revisions == {d2: 3, d3: 3}
    else:
        assert revisions == {d1: 1, d2: 3, d3: 3}
        exported = {d.date: d.export_id for d in writer.ledger()}
        assert exported == {d1: "claims-1", d2: "", d3: "claims-1"}
