"""The runner against PostgreSQL: several processes, a connection lost, the command.

Needs LOOM_PG_DSN (see docs/postgres.md). The processes share one
accelerated clock (simulated time = a fixed start + real time elapsed since
an agreed moment × SPEED), as hosts share the real one: clocks that
drifted apart by days would be a different (and unrealistic) test.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time as real_time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from builders import SYDNEY, Clock, assert_window_from_scratch, local, seed_organisation
from conftest import clean_database, connection_dies_writing
from loomcore import Enrolment, Loom
from loomcore._cli import main
from loomcore._runner import Runner, RunnerAlert
from loomcore_pg import PostgresStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(pg_engine: Any) -> PostgresStore:
    clean_database(pg_engine)
    return PostgresStore(pg_engine)


# --------------------------------------------------------------------------- several processes

ROLLER = textwrap.dedent(
    """
    import json, sys, time
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from loomcore import Loom
    from loomcore._runner import Runner
    from loomcore_pg import PostgresStore

    url, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
    real0, speed = float(sys.argv[4]), float(sys.argv[5])
    sydney = ZoneInfo("Australia/Sydney")
    sim0 = datetime(2026, 10, 3, 23, 50, tzinfo=sydney).astimezone(timezone.utc)
    end = datetime(2026, 10, 6, 0, 30, tzinfo=sydney)

    def clock():
        return sim0 + timedelta(seconds=max(0.0, time.time() - real0) * speed)

    sleeps = 0

    def sleep(seconds):
        global sleeps
        sleeps += 1
        if sleeps > 500_000 or time.time() > real0 + 60:  # bounded whatever happens
            runner.stop()
        time.sleep(seconds / speed)

    alerts = []
    loom = Loom(PostgresStore(url), clock=clock)
    loom.health(sim0)  # connect and warm up now: at SPEED, 0.1 s of real time is an hour
    runner = Runner(loom, alert=alerts.append, sleep=sleep, name=name)
    time.sleep(max(0.0, real0 - time.time()))
    runner.run(until=end)
    with open(out, "w") as f:
        json.dump({"alerts": [a.message for a in alerts], "end": clock().isoformat()}, f)
    """
)

SPEED = 36_000.0  # ten simulated hours a second: 00:05 to 09:00 takes 0.9 s
NIGHTS = [date(2026, 10, 4), date(2026, 10, 5), date(2026, 10, 6)]


def test_three_processes_roll_exactly_once_a_night(
    store: PostgresStore, pg_url: str, tmp_path: Path
) -> None:
    setup = Loom(store, clock=Clock(local(2026, 10, 3, 23, 0)))
    setup.load(
        seed_organisation(),
        [Enrolment(program_id="centre-wed", participant_id="sarah", start=date(2026, 1, 1))],
        weeks=2,
    )
    script = tmp_path / "roller.py"
    script.write_text(ROLLER)
    real0 = real_time.time() + 2.5  # every process is up before simulated time starts
    outs = [tmp_path / f"out{n}.json" for n in range(3)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), pg_url, str(out), f"roller-{n}", str(real0), str(SPEED)],
            cwd=ROOT,
        )
        for n, out in enumerate(outs)
    ]
    try:
        for p in procs:
            assert p.wait(timeout=60) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    results = [json.loads(out.read_text()) for out in outs]
    assert [r["alerts"] for r in results] == [[], [], []]
    assert all(r["end"] >= "2026-10-05T13:30" for r in results)  # each ran to the end

    log = store.roll_log()
    assert {e.status for e in log} == {"ok"}
    assert {e.today for e in log} == set(NIGHTS)  # no start-up roll, no roll from a check
    for night in NIGHTS:
        rolls = [e for e in log if e.today == night]
        # one roll planned the night's new day; any others found nothing left to do
        assert sorted(e.days_planned for e in rolls)[-1:] == [1], night
        assert sum(e.days_planned for e in rolls) == 1, night
        assert max(Counter(e.by for e in rolls).values()) == 1, night  # never twice
    new_days = [e.window_end for e in log if e.days_planned]
    assert new_days == [d + timedelta(days=13) for d in NIGHTS]  # no day planned twice
    assert_window_from_scratch(Loom(store), datetime(2026, 10, 6, 0, 30, tzinfo=SYDNEY))


# --------------------------------------------------------------------------- a connection lost


def test_connection_lost_mid_roll_is_alerted_retried_and_recovered(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(local(2026, 10, 7, 23, 0))
    loom = Loom(store, clock=clock)
    loom.load(
        seed_organisation(),
        [Enrolment(program_id="centre-wed", participant_id="sarah", start=date(2026, 1, 1))],
        weeks=2,
    )
    victim = date(2026, 10, 21)  # a Wednesday: the 00:05 roll on 8 Oct plans it
    connection_dies_writing(monkeypatch, victim, times=2)

    def rows_of_victim() -> int:
        with store.engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM tgl_loom_instances WHERE day = :d"), {"d": victim}
                ).scalar_one()
            )

    seen: list[tuple[RunnerAlert, bool, int]] = []

    def alert(a: RunnerAlert) -> None:
        seen.append((a, store.get_day(victim) is not None, rows_of_victim()))

    clock.set_local(2026, 10, 7, 23, 50)
    runner = Runner(loom, alert=alert, sleep=lambda s: clock.advance(seconds=s))
    runner.run(until=local(2026, 10, 8, 1, 0))

    alerts = [a for a, _, _ in seen]
    assert [(a.kind, a.action, a.attempt) for a in alerts] == [
        ("failure", "roll", 1),
        ("failure", "retry", 2),
        ("recovery", "retry", 3),
    ]
    assert [a.at for a in alerts] == [local(2026, 10, 8, 0, m) for m in (5, 15, 25)]
    assert [a.next_retry_at for a in alerts[:2]] == [local(2026, 10, 8, 0, m) for m in (15, 25)]
    assert all("StoreUnavailableError" in a.error for a in alerts)
    # at each failure, nothing of the half-written day survived
    assert [(stored, rows) for _, stored, rows in seen[:2]] == [(False, 0), (False, 0)]
    log = loom.roll_log()
    assert [(e.trigger, e.status, e.days_planned) for e in log] == [
        ("roll", "failed", 0),
        ("retry", "failed", 0),
        ("retry", "ok", 1),
    ]
    assert rows_of_victim() == 1
    assert runner.status().status == "ok"
    assert_window_from_scratch(loom, local(2026, 10, 8, 1, 0))


# --------------------------------------------------------------------------- the command


def real_today() -> date:
    return datetime.now(SYDNEY).date()


@pytest.fixture
def loaded(store: PostgresStore) -> Loom:
    """The seed organisation, planned for the real today (the command uses the real clock)."""
    loom = Loom(store)
    loom.load(seed_organisation(), weeks=2)
    return loom


def test_roller_once_rolls_and_exits(
    loaded: Loom, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded.store.delete_days(real_today() + timedelta(days=10), None)
    assert main(["roller", "--dsn", pg_url, "--once"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("roll ok: 4 days planned, 0 dropped, ")
    assert main(["roller", "--dsn", pg_url, "--once", "--verify-now"]) == 0
    assert " is ok; next roll at " in capsys.readouterr().out
    entry = loaded.roll_log()[-1]
    assert (entry.trigger, entry.by.startswith("roller@")) == ("roll", True)


def test_roll_now_and_regenerate_are_logged_with_who_asked(
    loaded: Loom, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["roll-now", "--dsn", pg_url, "--by", "alice"]) == 0
    assert capsys.readouterr().out.startswith("manual ok: 0 days planned")
    entry = loaded.roll_log()[-1]
    assert (entry.trigger, entry.by) == ("manual", "alice")
    today = real_today()
    assert main(["regenerate", "--dsn", pg_url, today.isoformat(), "--by", "bob"]) == 0
    assert capsys.readouterr().out.startswith(f"regenerated {today.isoformat()}: ")
    audit = loaded.audit_log()[-1]
    assert (audit.action, audit.subject, audit.by) == ("regenerate", today.isoformat(), "bob")
    later = (today + timedelta(days=30)).isoformat()
    assert main(["regenerate", "--dsn", pg_url, later]) == 2
    assert capsys.readouterr().err.startswith(f"loom: error: {later}")


def test_roll_now_plans_a_new_window_in_workers_as_in_one_process(
    loaded: Loom,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    helper_first: list[date],
) -> None:
    import loomcore._service as service
    from loomcore._parallel import plan_days  # the one _service imported

    asked: list[int] = []

    def counted(*args: Any, workers: int = 1) -> Any:
        asked.append(workers)
        return plan_days(*args, workers=workers)

    monkeypatch.setattr(service, "plan_days", counted)
    before = {d.date: d.plan for d in loaded.store.planned_days()}
    loaded.store.delete_days(real_today(), None)
    assert main(["roll-now", "--dsn", pg_url, "--workers", "2"]) == 0
    assert capsys.readouterr().out.startswith("manual ok: 14 days planned")
    assert asked == [2]
    assert helper_first  # some days were planned by a helper
    assert {d.date: d.plan for d in loaded.store.planned_days()} == before


def test_the_database_commands_report_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["roll-now", "--dsn", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    assert capsys.readouterr().err.startswith("loom: error: database unavailable: ")
    assert main(["roller", "--dsn", "not a dsn", "--once"]) == 2
    assert capsys.readouterr().err.startswith("loom: error: cannot use the database: ")


def read_lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_roller_runs_until_a_signal_then_exits_cleanly(
    loaded: Loom, pg_url: str, signum: int
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "loomcore", "roller", "--dsn", pg_url],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=read_lines, args=(proc.stderr, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = real_time.monotonic() + 30
        while not any("next roll at" in line for line in seen):  # started, health read
            assert real_time.monotonic() < deadline, "".join(seen)
            assert proc.poll() is None, "".join(seen)
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.5))
        began = real_time.monotonic()
        proc.send_signal(signum)
        assert proc.wait(timeout=10) == 0
        assert real_time.monotonic() - began < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)  # it ends at the end of the process's output
    assert not reader.is_alive()
    while not lines.empty():
        seen.append(lines.get())
    log = "".join(seen)
    assert "runner roller@" in log
    assert "stopped" in log
    assert "Traceback" not in log
