"""Rolling at scale: a 16-week window over years of intents, timed.

Usage::

    python benchmarks/roll.py [--store memory|postgres] [--dsn DSN] [--json]
        [--scale 1.0] [--intents N] [--exceptions N] [--programs N] [--participants N]
        [--staff N] [--vehicles N] [--venues N] [--years 10] [--weeks 16]
        [--nights 30] [--edits 5] [--workers 1] [--seed 0] [--profile FILE] [--cache FILE]
        [--gc-freeze] [--quiet]

What is measured (seconds unless said otherwise):

* ``full_roll``: the first roll of a ``--weeks`` window over a store holding
  the organisation and every record but no planned day.
* ``nightly_roll``: ``--nights`` nights in a row, each a roll one day later
  than the last (median and max). Between two nights operators record
  ``--edits`` changes.
* ``edit``: each of those changes, recorded through :meth:`Loom.record`,
  which stores it and re-plans the window days it affects (p50 and p95).
  The changes cycle through an absence, a one-day time change, a temporary
  withdrawal (three weeks) and a new enrolment from a date on.
* ``shrink`` and ``grow``: the window resized to 2 weeks, then back.
* ``holidays_first_use``: the first question asked of the default public
  holiday calendar in the process (it imports the ``holidays`` package,
  which imports every country's module, and works out the year's
  holidays), timed before the full roll and left out of it, as importing
  ``loomcore`` is: a cost of starting a process, not of rolling. With
  ``--workers N`` each worker process still pays it within the roll.
* ``--workers N``: the service plans the full roll and the growth in N
  worker processes (``Loom(workers=N)``); nights and edits stay in this one.
* ``--gc-freeze``: once the store is loaded, ``gc.collect()`` and
  ``gc.freeze()``, as a long-running host may do after loading its data:
  the collector then leaves the records out of every collection (undone
  with ``gc.unfreeze()`` at the end).
* ``peak_rss_mb``: the process's peak resident memory (``getrusage``),
  ``records_mb``: what the generated records take (``tracemalloc``, measured
  while generating).
* ``machine.reference_ms``: how fast the machine ran Python just then,
  before loading the store and at the end (after the resizing): the
  median of five timings of a fixed piece of pure-Python work that uses
  nothing of loomcore (dicts, tuples, sorting), so the same on every run
  of every version. Machines that share their cores run it slower in
  their slow spells, as they run everything else: compare runs whose
  figures are alike. Two readings at the ends of a run cannot see a
  spell in its middle.

With ``--store postgres`` a database of its own is created on the server
of ``--dsn`` (default ``LOOM_PG_DSN``) and dropped at the end. ``--profile
FILE`` writes a cProfile of the full roll to FILE, and one of the nights and
edits to FILE.nights.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import pickle
import platform
import random
import resource
import statistics
import sys
import time as _time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs

sys.path.insert(0, str(Path(__file__).parent))

from scale_org import DEFAULT_TODAY, Generated, Sizes, generate, load_memory, load_postgres

from loomcore import (
    Absence,
    Enrolment,
    Loom,
    NswPublicHolidays,
    OneDayChange,
    Record,
    Store,
    Withdrawal,
)

ZONE = ZoneInfo("Australia/Sydney")


class Clock:
    """A clock the benchmark moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def roll_time(day: date) -> datetime:
    """00:05 in Sydney on ``day``, as the nightly roll sees it."""
    return datetime.combine(day, time(0, 5), tzinfo=ZONE).astimezone(UTC)


def _seconds(fn: Callable[[], Any]) -> float:
    started = _time.perf_counter()
    fn()
    return _time.perf_counter() - started


def _edit(loom: Loom, n: int, today: date, generated: Generated) -> Record:
    """The ``n``-th operator change, with the id ``edit-N``: the same plans in
    every run (a night's changes are recorded at one time, and the one rule
    breaks such ties by id)."""
    return attrs.evolve(_change(loom, n, today, generated), id=f"edit-{n}")


def _change(loom: Loom, n: int, today: date, generated: Generated) -> Record:
    """The ``n``-th operator change: valid on the store as it stands."""
    window = loom.window()
    for offset in range(3 + n % 7, (window.end - today).days + 1):
        plan = loom.day(today + timedelta(days=offset))
        if plan is None:
            continue
        for inst in plan.instances:
            if inst.status != "scheduled" or not inst.attending:
                continue
            who = inst.attending[n % len(inst.attending)]
            kind = n % 4
            if kind == 0:
                return Absence(
                    program_id=inst.program_id, date=inst.scheduled_date, participant_id=who
                )
            if kind == 1:
                return OneDayChange(
                    program_id=inst.program_id,
                    date=inst.scheduled_date,
                    start_time=time(11),
                    end_time=time(14),
                )
            if kind == 2:
                return Withdrawal(
                    program_id=inst.program_id,
                    participant_id=who,
                    start=inst.scheduled_date,
                    end=inst.scheduled_date + timedelta(days=20),
                )
            people = generated.organisation.participants
            newcomer = people[(n * 7919) % len(people)].id
            return Enrolment(
                program_id=inst.program_id, participant_id=newcomer, start=inst.scheduled_date
            )
    raise AssertionError("the window has no instance to edit")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(
    store: Store,
    generated: Generated,
    *,
    weeks: int = 16,
    nights: int = 30,
    edits: int = 5,
    profile: str | None = None,
    quiet: bool = True,
    workers: int = 1,
) -> dict[str, Any]:
    """Time the roll, nights, edits and resizing on a loaded ``store``; the figures."""
    today = generated.today
    clock = Clock(roll_time(today))
    loom = Loom(store, clock=clock, workers=workers)
    store.set_window_weeks(weeks)

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr)

    # the calendar's first use imports the holidays package: once a process
    first_use = _seconds(lambda: today in NswPublicHolidays())
    say("full roll …")
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    full = _seconds(lambda: loom.roll(clock.at))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)  # type: ignore[arg-type]
    days_planned = loom.roll_log()[-1].days_planned
    instances = sum(len(d.plan.instances) for d in store.planned_days())

    nightly: list[float] = []
    edit_times: list[float] = []
    by_kind: dict[str, list[float]] = {}
    if profiler is not None:
        profiler = cProfile.Profile()
        profiler.enable()
    for night in range(1, nights + 1):
        day = today + timedelta(days=night)
        clock.at = roll_time(day)
        nightly.append(_seconds(lambda: loom.roll(clock.at)))
        clock.at = clock.at + timedelta(hours=9)
        for k in range(edits):
            change = _edit(loom, night * edits + k, day, generated)
            edit_times.append(_seconds(lambda c=change: loom.record(c, by="bench")))  # type: ignore[misc]
            by_kind.setdefault(type(change).__name__, []).append(edit_times[-1])
        say(f"night {night}/{nights}: roll {nightly[-1]:.3f} s")

    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{profile}.nights")
    shrink = _seconds(lambda: loom.resize_window(2))
    grow = _seconds(lambda: loom.resize_window(weeks))
    figures: dict[str, Any] = {
        "full_roll_s": round(full, 3),
        "holidays_first_use_s": round(first_use, 3),
        "days_planned": days_planned,
        "instances": instances,
        "per_day_ms": round(1000 * full / max(days_planned, 1), 2),
        "nightly_roll_median_s": round(statistics.median(nightly), 4) if nightly else None,
        "nightly_roll_max_s": round(max(nightly), 4) if nightly else None,
        "edit_p50_ms": round(1000 * percentile(edit_times, 0.5), 2) if edit_times else None,
        "edit_p95_ms": round(1000 * percentile(edit_times, 0.95), 2) if edit_times else None,
        "edits": len(edit_times),
        "edit_median_ms_by_kind": {
            kind: round(1000 * statistics.median(times), 2)
            for kind, times in sorted(by_kind.items())
        },
        "shrink_to_2_s": round(shrink, 3),
        "grow_to_16_s" if weeks == 16 else f"grow_to_{weeks}_s": round(grow, 3),
    }
    return figures


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


@contextlib.contextmanager
def postgres_store(dsn: str) -> Iterator[Any]:
    """A ``PostgresStore`` on a database of its own, dropped on the way out."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from loomcore_pg import PostgresStore
    from loomcore_pg._store import _url

    name = f"loombench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(_url(dsn), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(_url(dsn)).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=5)
    try:
        yield PostgresStore(engine, migrate=True)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _sizes(args: argparse.Namespace) -> Sizes:
    sizes = Sizes(years=args.years).scaled(args.scale)
    given = {
        k: getattr(args, k)
        for k in (
            "programs",
            "participants",
            "staff",
            "vehicles",
            "venues",
            "intents",
            "exceptions",
        )
        if getattr(args, k) is not None
    }
    return attrs.evolve(sizes, **given)


def _reference_work() -> int:
    """A fixed piece of pure-Python work, nothing of loomcore: rows made,
    grouped in a dictionary, each group sorted and read."""
    rng = random.Random(7)
    groups: dict[int, list[tuple[float, str]]] = {}
    for i in range(20_000):
        groups.setdefault(rng.randrange(1000), []).append((rng.random(), str(i)))
    total = 0
    for key, rows in groups.items():
        rows.sort()
        total += key + len(rows[0][1])
    return total


def reference_ms() -> float:
    """The median of five timings of :func:`_reference_work`, in milliseconds,
    the collector held off (so a large heap of the process's own does not
    weigh on it)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return round(1000 * statistics.median(_seconds(_reference_work) for _ in range(5)), 1)
    finally:
        if collecting:
            gc.enable()


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version()}


def _table(result: dict[str, Any]) -> str:
    rows = [
        ("store", result["store"]),
        (
            "intents / exceptions",
            f"{result['sizes']['intents']:,} / {result['sizes']['exceptions']:,}",
        ),
        (
            "programs / participants",
            f"{result['sizes']['programs']} / {result['sizes']['participants']:,}",
        ),
        ("window weeks", result["weeks"]),
        ("generate / load (s)", f"{result['generate_s']} / {result['load_s']}"),
    ]
    rows += [(k, v) for k, v in result["figures"].items()]
    rows += [("records_mb", result["records_mb"]), ("peak_rss_mb", result["peak_rss_mb"])]
    before, after = result["machine"]["reference_ms"]
    rows += [("reference_ms (before / after)", f"{before} / {after}")]
    width = max(len(str(k)) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _generated(sizes: Sizes, args: argparse.Namespace) -> tuple[Generated, float, float | None]:
    """The records for ``sizes``, the seconds to make them, and their megabytes.

    With ``--cache FILE`` a pickle made earlier with the same sizes, seed and
    "today" is read instead (megabytes unknown then); any other pickle is an error.
    """
    key = (attrs.asdict(sizes), args.seed, args.today)
    cache = Path(args.cache) if args.cache else None
    started = _time.perf_counter()
    if cache is not None and cache.exists():
        with cache.open("rb") as f:
            stored_key, generated = pickle.load(f)
        if stored_key != key:
            raise SystemExit(f"{cache} holds other sizes, seed or today: {stored_key}")
        return generated, _time.perf_counter() - started, None
    tracemalloc.start()
    generated = generate(sizes, today=args.today, seed=args.seed, quiet=args.quiet)
    generate_s = _time.perf_counter() - started
    records_mb = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
    tracemalloc.stop()
    if cache is not None:
        with cache.open("wb") as f:
            pickle.dump((key, generated), f, protocol=pickle.HIGHEST_PROTOCOL)
    return generated, generate_s, records_mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("memory", "postgres"), default="memory")
    parser.add_argument("--dsn", default=os.environ.get("LOOM_PG_DSN", ""))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--scale", type=float, default=1.0, help="every size times this")
    for name in (
        "programs",
        "participants",
        "staff",
        "vehicles",
        "venues",
        "intents",
        "exceptions",
    ):
        parser.add_argument(f"--{name}", type=int, default=None)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--weeks", type=int, default=16)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--edits", type=int, default=5, help="operator changes per day")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes planning a window (Loom(workers=N))"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--today", type=date.fromisoformat, default=DEFAULT_TODAY)
    parser.add_argument("--profile", default=None, help="write a cProfile of the full roll here")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once the store is loaded (the collector leaves the records alone)",
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="a pickle of the generated records: read if it exists, else written (saves "
        "generating them again; delete it when the generator changes)",
    )
    args = parser.parse_args(argv)
    if args.store == "postgres" and not args.dsn:
        parser.error("--store postgres needs --dsn or LOOM_PG_DSN")

    sizes = _sizes(args)
    generated, generate_s, records_mb = _generated(sizes, args)

    with contextlib.ExitStack() as stack:
        reference_before = reference_ms()
        started = _time.perf_counter()
        if args.store == "memory":
            store: Store = load_memory(generated, quiet=args.quiet)
        else:
            store = stack.enter_context(postgres_store(args.dsn))
            load_postgres(generated, store, quiet=args.quiet)
        load_s = _time.perf_counter() - started
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
            stack.callback(gc.unfreeze)
        figures = run(
            store,
            generated,
            weeks=args.weeks,
            nights=args.nights,
            edits=args.edits,
            profile=args.profile,
            workers=args.workers,
            quiet=args.quiet,
        )
        reference_after = reference_ms()
    result = {
        "store": args.store,
        "sizes": attrs.asdict(sizes),
        "weeks": args.weeks,
        "workers": args.workers,
        "gc_freeze": args.gc_freeze,
        "today": args.today.isoformat(),
        "generate_s": round(generate_s, 2),
        "load_s": round(load_s, 2),
        "figures": figures,
        "records_mb": records_mb,
        "peak_rss_mb": _peak_rss_mb(),
        "machine": {**_machine(), "reference_ms": [reference_before, reference_after]},
    }
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
