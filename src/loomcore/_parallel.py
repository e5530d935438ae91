"""Planning many days at once, in worker processes if asked: ``plan_days``.

Theory of operation
-------------------
:func:`loomcore.plan_day` is pure, so days can be planned anywhere and in
any order. With ``workers`` above one, :func:`plan_days` starts
``workers - 1`` helper processes (``spawn``: a fresh interpreter each, safe
beside threads) and plans with them: the helpers from the last day on, this
process from the first on, each day claimed once, by whichever comes to it
first (a lock and two shared numbers: the first and one past the last day
not yet claimed). The helpers import :mod:`loomcore` while the inputs
(without what they remember) and the bus routes worked out so far are
packed for them, and get them once, through a queue. A helper sends each
plan back as soon as it is made, through a queue whose own thread writes
it out, and claims its next day at once: it never waits for this process,
which reads the helpers' plans only when it comes to their days (they are
the last ones). The plans come back in the order asked for. With each plan
from a helper come the routes and the per-program results (see
``PlanInputs._memo``) worked out for that day; they are remembered here
too, so planning a day again in this process afterwards (an edit) costs
what it would have cost had the day been planned here.

Invariants
~~~~~~~~~~
1. The plans are those of ``plan_day(inputs, day)`` for each day, byte for
   byte, whatever ``workers`` is.
2. The days are yielded in the order given; closing the iterator early
   leaves the days not yet claimed unplanned, and waits for the helpers to
   finish the day each is planning.
3. A helper is always given its inputs or told to stop (``None``), and
   stops when nothing is left to claim: none waits for ever, whatever this
   process raises. This process waits for a helper's plan only while the
   helper lives: one that ends without sending it is an error, not a hang.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import signal
import traceback
from collections.abc import Generator, Iterable
from datetime import date
from typing import Any

import attrs

from . import _routing
from ._errors import InvalidRecordError
from ._inputs import PlanInputs
from ._plan import DayPlan, plan_day

__all__ = ["plan_days"]

# (program id, memo key, value): what a helper remembered for one day
_Found = tuple[str, Any, Any]
# a day's plan from a helper, with what was worked out for it
_Planned = tuple[DayPlan, list[_routing.Entry], list[_Found]]
# How long this process waits for a helper's next message before it looks
# whether the helpers still live (seconds).
_PATIENCE = 1.0


def plan_days(
    inputs: PlanInputs, days: Iterable[date], *, workers: int = 1
) -> Generator[DayPlan, None, None]:
    """Plan each of ``days`` from ``inputs``; a generator of the plans, in the order given.

    The same plans as :func:`plan_day` gives day by day. With ``workers``
    above 1, that many processes plan the days: this one, from the first
    day on, and ``workers - 1`` helpers started for this call, from the
    last day on, each day planned by whichever comes to it first; the
    helpers stop when they meet this process, or when the iterator is
    closed (after the day each is planning). What the helpers work out
    (bus routes, each program's instances) is remembered in this process
    too. Days these inputs have planned before are planned again in this
    process, where most of the work is remembered (no helpers at all if
    that is every day). A helper is ready about a second after the call,
    so it pays for a dozen days or more. Raises
    :class:`InvalidRecordError` when ``workers`` is below 1; an error
    raised planning a day in a helper is raised here when that day's plan
    is due (with a note holding the helper's traceback), and a helper that
    ends without sending a plan it claimed raises :class:`RuntimeError`.

    Helper processes import :mod:`loomcore` afresh (``spawn``), so a script
    that calls this at import time must guard its entry point with
    ``if __name__ == "__main__":``.
    """
    if workers < 1:
        raise InvalidRecordError(f"workers must be at least 1, got {workers}", field="workers")
    days = list(days)
    # a day these inputs have planned before is planned again here, cheaply
    new = [] if workers == 1 else list(dict.fromkeys(d for d in days if not _remembers(inputs, d)))
    if len(new) < 2:
        for d in days:
            yield plan_day(inputs, d)
        return
    helpers = _Helpers(new, min(workers - 1, len(new) - 1))
    try:
        helpers.start()
        # the helpers import loomcore while the inputs are packed for them
        helpers.hand(inputs)
        for d in days:
            if helpers.mine(d):
                yield plan_day(inputs, d)
                continue
            plan, routes, memos = helpers.take(d)
            _routing.remember(routes)
            for program_id, key, value in memos:
                inputs._memo(program_id).setdefault(key, value)
            yield plan
    finally:
        helpers.close()


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


class _Helpers:
    """Helper processes planning ``days`` from the last on, while this
    process claims them from the first on (see the module's notes)."""

    def __init__(self, days: list[date], count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._at = {d: i for i, d in enumerate(days)}  # each day's index
        self._ahead = set(days)  # the days this process has not come to yet
        self._lock = context.Lock()
        # the first day not yet claimed, and one past the last
        self._bounds = context.RawArray("i", [0, len(days)])
        self._handed: Any = context.Queue()  # the inputs, once for each helper
        self._handed.cancel_join_thread()  # never wait at exit on a helper that did not read them
        # (index of the day, its plan or error pickled), or (None, b"") when a helper ends
        self._results: Any = context.Queue()
        self._made: dict[int, bytes] = {}  # what came from the helpers, by index
        self._handed_over = False
        self._processes = [
            context.Process(
                target=_help,
                args=(self._handed, self._results, self._lock, self._bounds, days),
                daemon=True,
            )
            for _ in range(count)
        ]
        self._started: list[Any] = []  # the processes started, each until it ends
        self._running = 0  # how many have not yet said they end

    def start(self) -> None:
        """Start the helpers: they import loomcore, then wait for their inputs."""
        for process in self._processes:
            process.start()
            self._started.append(process)
            self._running += 1

    def hand(self, inputs: PlanInputs) -> None:
        """Pack ``inputs`` and the routes remembered so far for each helper."""
        payload = pickle.dumps((_portable(inputs), _routing.remembered()), pickle.HIGHEST_PROTOCOL)
        for _ in self._started:
            self._handed.put(payload)
        self._handed_over = True

    def mine(self, day: date) -> bool:
        """Whether this process plans ``day`` itself. So it does every day
        but the first coming of the helpers' days; of those, each it claims
        now from the first on, until a helper has claimed the next (then
        False, as for every later one: they are the helpers')."""
        if day not in self._ahead:
            return True
        self._ahead.discard(day)
        with self._lock:
            first, end = self._bounds
            if first == end:
                return False
            self._bounds[0] = first + 1
            return True

    def take(self, day: date) -> _Planned:
        """A helper's plan of ``day`` and what it worked out, once it comes."""
        at = self._at[day]
        while at not in self._made:
            self._receive(day)
        outcome = pickle.loads(self._made.pop(at))
        if isinstance(outcome, BaseException):
            raise outcome
        planned: _Planned = outcome
        return planned

    def close(self) -> None:
        """Leave nothing to claim, wait for the helpers to finish their days, and end them."""
        with self._lock:
            self._bounds[1] = self._bounds[0]
        if not self._handed_over:  # packing failed, or was cut short: the helpers stop
            for _ in self._started:
                self._handed.put(None)
        try:
            while self._running:
                self._receive(None)
        finally:
            for process in self._started:
                process.join()
            self._handed.close()
            self._results.close()

    def _receive(self, day: date | None) -> None:
        """Read one message from the helpers, waiting only while one lives."""
        while True:
            # a helper writes out all it sent before it ends: once none
            # lives, what they sent is there to read at once, or never
            alive = any(p.is_alive() for p in self._started)
            try:
                index, outcome = self._results.get(timeout=_PATIENCE if alive else 0)
                break
            except queue.Empty:
                if alive:
                    continue
                self._running = 0  # none left to send anything
                if day is None:
                    return
                codes = ", ".join(str(p.exitcode) for p in self._started)
                raise RuntimeError(
                    f"the helper processes ended (exit codes {codes}) without "
                    f"sending the plan of {day.isoformat()}"
                ) from None
        if index is None:
            self._running -= 1
        else:
            self._made[index] = outcome


# ------------------------------------------------------------------ in a helper


def _help(handed: Any, results: Any, lock: Any, bounds: Any, days: list[date]) -> None:
    """A helper's life: get the inputs, plan the days it claims from the last
    on until none is left, send each plan (or the error that stopped it)."""
    # an interrupt at the terminal reaches every process of its group: the
    # caller's handles it, and stops the helpers as it would otherwise
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        payload = handed.get()
        if payload is None:
            # packing failed in the caller, which raises that error: nothing
            # to plan here, and no traceback of its own beside the real one
            return
        inputs, routes = pickle.loads(payload)
        _routing.remember(routes)
        while True:
            with lock:
                first, end = bounds
                if first == end:
                    return
                bounds[1] = at = end - 1
            try:
                outcome = pickle.dumps(_plan(inputs, days[at]), pickle.HIGHEST_PROTOCOL)
            except Exception as e:  # sent to be raised where the plan is due
                results.put((at, _failure(e, days[at])))
                return
            results.put((at, outcome))
    finally:
        results.put((None, b""))


def _plan(inputs: PlanInputs, day: date) -> _Planned:
    """The day's plan, and what was worked out for it to be remembered."""
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


def _failure(error: Exception, day: date) -> bytes:
    """``error``, raised planning ``day`` in a helper, pickled with its
    traceback as a note (or, if it cannot be pickled, a RuntimeError saying it)."""
    where = "".join(traceback.format_exception(error))
    note = f"raised planning {day.isoformat()} in a helper process:\n{where}"
    error.add_note(note)
    try:
        return pickle.dumps(error, pickle.HIGHEST_PROTOCOL)
    except Exception:
        lost = RuntimeError(f"{type(error).__name__}: {error}")
        lost.add_note(note)
        return pickle.dumps(lost, pickle.HIGHEST_PROTOCOL)
