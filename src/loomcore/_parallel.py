"""Planning many days at once, in worker processes if asked: ``plan_days``.

Theory of operation
-------------------
:func:`loomcore.plan_day` is pure, so days can be planned anywhere and in
any order. With ``workers`` above one, :func:`plan_days` starts
``workers - 1`` helper processes (``spawn``: a fresh interpreter each, safe
beside threads) and plans with them: the helpers take the days from the
last on, this process from the first on, and a day not yet handed to a
helper when this process comes to it is planned here (the pool hands each
helper a day or two ahead, so a batch of a few days waits for a helper to
start: about a second). The helpers import
:mod:`loomcore` while the inputs (without what they remember) and the bus
routes worked out so far are packed for them, and get them once, through a
queue. The plans come back in the order asked for. With each plan from a
helper come the routes and the per-program results (see
``PlanInputs._memo``) worked out for that day; they are remembered here
too, so planning a day again in this process afterwards (an edit) costs
what it would have cost had the day been planned here.

Invariants
~~~~~~~~~~
1. The plans are those of ``plan_day(inputs, day)`` for each day, byte for
   byte, whatever ``workers`` is.
2. The days are yielded in the order given; closing the iterator early
   cancels the days not yet handed to a helper, and waits for the others.
3. A helper is always given its inputs or told to stop (``None``): none
   waits for ever, whatever this process raises.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Generator, Iterable
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from typing import Any

import attrs

from . import _routing
from ._errors import InvalidRecordError
from ._inputs import PlanInputs
from ._plan import DayPlan, plan_day

__all__ = ["plan_days"]

# (program id, memo key, value): what a worker remembered for one day
_Found = tuple[str, Any, Any]


def plan_days(
    inputs: PlanInputs, days: Iterable[date], *, workers: int = 1
) -> Generator[DayPlan, None, None]:
    """Plan each of ``days`` from ``inputs``; a generator of the plans, in the order given.

    The same plans as :func:`plan_day` gives day by day. With ``workers``
    above 1, that many processes plan the days: this one, from the first
    day on, and ``workers - 1`` helpers started for this call, from the
    last day on, stopped when the iterator is done or closed (after the
    days handed to them: each is handed a day or two ahead). What the
    helpers work out (bus routes, each program's instances) is remembered
    in this process too. Days these inputs have planned before are planned
    again in this process, where most of the work is remembered (no
    helpers at all if that is every day). A helper is ready about a second
    after the call, so it pays for a dozen days or more. Raises
    :class:`InvalidRecordError` when ``workers`` is below 1.

    Worker processes import :mod:`loomcore` afresh (``spawn``), so a script
    that calls this at import time must guard its entry point with
    ``if __name__ == "__main__":``.
    """
    if workers < 1:
        raise InvalidRecordError(f"workers must be at least 1, got {workers}", field="workers")
    days = list(days)
    # a day these inputs have planned before is planned again here, cheaply
    new = [] if workers == 1 else [d for d in days if not _remembers(inputs, d)]
    if len(new) < 2:
        for d in days:
            yield plan_day(inputs, d)
        return
    helpers = min(workers - 1, len(new) - 1)
    context = multiprocessing.get_context("spawn")
    handed: Any = context.Queue()  # the inputs, once for each helper
    handed.cancel_join_thread()  # never wait at exit on a helper that did not read them
    pool = ProcessPoolExecutor(
        max_workers=helpers, mp_context=context, initializer=_start, initargs=(handed,)
    )
    handed_over = False
    try:
        # The helpers take the days from the last on, this process from the
        # first on, until they meet: a day not yet handed to a helper is
        # planned here (the pool hands each helper the next day or two
        # ahead, started or not). Submitting starts the helpers, which
        # import loomcore while the inputs are packed for them.
        futures = {d: pool.submit(_plan, d) for d in reversed(new)}
        payload = pickle.dumps((_portable(inputs), _routing.remembered()), pickle.HIGHEST_PROTOCOL)
        for _ in range(helpers):
            handed.put(payload)
        handed_over = True
        for d in days:
            future = futures.get(d)
            if future is None or future.cancel():
                yield plan_day(inputs, d)
                continue
            plan, routes, memos = future.result()
            _routing.remember(routes)
            for program_id, key, value in memos:
                inputs._memo(program_id).setdefault(key, value)
            yield plan
    finally:
        if not handed_over:  # packing failed, or was cut short: the helpers stop
            for _ in range(helpers):
                handed.put(None)
        # the helpers finish the days handed to them and exit; only then may
        # the queue go (a helper still starting would find it gone)
        pool.shutdown(wait=True, cancel_futures=True)
        handed.close()


def _remembers(inputs: PlanInputs, day: date) -> bool:
    """Whether ``inputs`` has planned ``day`` before (and still holds what it found)."""
    key = ("instances", day)
    return any(key in memo for memo in (inputs._memos or {}).values())


def _portable(inputs: PlanInputs) -> PlanInputs:
    """``inputs`` with the indexes it has built, without what it remembers."""
    out = attrs.evolve(inputs)
    object.__setattr__(out, "_intents_built", inputs._intents_built)
    object.__setattr__(out, "_one_offs_built", inputs._one_offs_built)
    return out


# ------------------------------------------------------------------ in a worker

_held: PlanInputs | None = None


def _start(handed: Any) -> None:
    global _held
    payload = handed.get()
    if payload is None:
        # packing failed in the caller, which raises that error: each day
        # already handed here fails unread (see _plan) until the pool shuts
        # down, with no traceback of its own beside the real one
        return
    inputs, routes = pickle.loads(payload)
    _routing.remember(routes)
    _held = inputs


def _plan(day: date) -> tuple[DayPlan, list[_routing.Entry], list[_Found]]:
    """The day's plan, and what was worked out for it to be remembered."""
    inputs = _held
    if inputs is None:
        raise RuntimeError(f"no inputs reached this worker process to plan {day.isoformat()}")
    with _routing.made() as routes:
        plan = plan_day(inputs, day)
    # everything remembered is of this day (the memos are keyed by day), and
    # of no use for the next: send it all and start the next day empty
    memos = [
        (program_id, key, value)
        for program_id, memo in (inputs._memos or {}).items()
        for key, value in memo.items()
    ]
    object.__setattr__(inputs, "_memos", None)
    return plan, routes, memos
