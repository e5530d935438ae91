"""The benchmark's work up to one phase, untimed: for counting instructions.

Usage::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=OUT \\
        python benchmarks/phases.py load|roll|edits [--scale 0.1] [--cache FILE]
        [--weeks 16] [--nights 5] [--edits 5] [--seed 0]

Runs, on the memory store, what ``roll.py`` times, without the clock, and
stops after the phase named: ``load`` (read the records, load the
store and ask the default holiday calendar its first question, which
imports the ``holidays`` package: left out of the roll, as ``roll.py``
leaves it), ``roll`` (then the full roll of the window) or ``edits`` (then
``--nights`` nights, each with ``--edits`` operator changes, given fixed
ids). The difference between the instruction counts of two phases is the
work of the later one. Counted by callgrind, the same work gives the same
count (give the interpreter a fixed ``PYTHONHASHSEED``: set and dict orders,
and with them the work, otherwise differ from run to run), however busy
the machine; callgrind runs Python about fifty times slower, hence
``--scale``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from roll import Clock, _edit, _generated, roll_time
from scale_org import DEFAULT_TODAY, Generated, Sizes, load_memory

from loomcore import Loom, MemoryStore, NswPublicHolidays

PHASES = ("load", "roll", "edits")


def run_until(
    phase: str, generated: Generated, *, weeks: int = 16, nights: int = 5, edits: int = 5
) -> MemoryStore:
    """Load ``generated`` into a memory store and work through the phases up
    to ``phase`` (one of :data:`PHASES`); the store."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
    store = load_memory(generated)
    _ = generated.today in NswPublicHolidays()  # imports the holidays package
    if phase == "load":
        return store
    clock = Clock(roll_time(generated.today))
    loom = Loom(store, clock=clock)
    store.set_window_weeks(weeks)
    loom.roll(clock.at)
    if phase == "roll":
        return store
    for night in range(1, nights + 1):
        day = generated.today + timedelta(days=night)
        clock.at = roll_time(day)
        loom.roll(clock.at)
        clock.at += timedelta(hours=9)
        for k in range(edits):
            loom.record(_edit(loom, night * edits + k, day, generated), by="bench")
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=PHASES)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--weeks", type=int, default=16)
    parser.add_argument("--nights", type=int, default=5)
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, help="a pickle of the records, as roll.py's")
    args = parser.parse_args(argv)
    # what roll.py's cache key reads
    args.today, args.quiet = DEFAULT_TODAY, True
    generated, _, _ = _generated(Sizes(years=args.years).scaled(args.scale), args)
    run_until(args.phase, generated, weeks=args.weeks, nights=args.nights, edits=args.edits)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
