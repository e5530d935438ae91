"""Planning many days at once in worker processes.

:func:`plan_day` is pure, so the days of a long roll can be planned side by
side: each worker process gets the inputs once, plans the days it is handed
and sends the plans back, which are yielded in date order. A plan made in a
worker is the plan this process would have made (the tests compare them).

Workers start with ``fork`` where the platform has it (they inherit the
inputs, nothing is copied up front) and ``spawn`` elsewhere (the inputs are
pickled to each worker once). Only planning runs in a worker: nothing there
touches a store, a connection or a clock.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Generator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import date

from ._inputs import PlanInputs
from ._plan import DayPlan, plan_day

__all__ = ["MIN_DAYS_PER_WORKER", "plan_days"]

#: Fewer days than this per worker are planned in this process: starting
#: workers costs more than it saves.
MIN_DAYS_PER_WORKER = 4

_inputs: PlanInputs | None = None  # a worker's inputs, set once when it starts


def _start_worker(inputs: PlanInputs) -> None:
    global _inputs
    _inputs = inputs


def _plan(day: date) -> DayPlan:
    assert _inputs is not None, "worker started without inputs"
    return plan_day(_inputs, day)


def plan_days(
    inputs: PlanInputs, days: Sequence[date], workers: int
) -> Generator[DayPlan, None, None]:
    """Plans of ``days``, in the order given, made by up to ``workers`` processes.

    With one worker, or too few days to share out, the days are planned
    here, one at a time. Plans are yielded as soon as each is ready in
    order; closing the iterator early cancels the days not yet started.
    """
    workers = min(workers, len(days) // MIN_DAYS_PER_WORKER)
    if workers <= 1:
        for d in days:
            yield plan_day(inputs, d)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(inputs,)
    ) as pool:
        futures: list[Future[DayPlan]] = [pool.submit(_plan, d) for d in days]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()
