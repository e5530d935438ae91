"""The runner: the nightly roll, the morning check and retries, in production.

Theory of operation
-------------------
The runner is an imperative shell around :class:`~loomcore.Loom`, in two
halves:

* **The decision is pure.** :func:`next_action` takes the current instant,
  what the runner remembers (:class:`RunnerState`) and the schedule
  (:class:`RollSchedule`), and returns the one thing to do next and when
  (:class:`RunnerAction`). It reads no clock and touches no store, so it is
  tested as a table.
* **The loop only waits and acts.** :meth:`Runner.run` asks the decision,
  waits until the action is due (never longer than ``max_sleep`` at a time,
  so a clock that jumps is noticed soon), performs it through the ``Loom``
  and folds the outcome into the state with :meth:`RunnerState.succeeded`
  or :meth:`RunnerState.failed`.

Invariants
----------
1. A roll or check is due on each local date at most once: the state keeps
   the local date of the last one done, and the next one is on a later date.
   Local times come from ``zoneinfo``, so DST changes neither skip nor repeat
   a night; instants are compared and subtracted in UTC.
2. Missed occurrences coalesce: after the clock jumps forward (a machine
   that slept), one roll is due, and :meth:`Loom.roll` catches up every
   missed day by itself.
3. A failed action is retried ``retry_after`` after it failed, as a roll,
   until one succeeds; a pending retry comes before any scheduled action.
4. Every failed attempt calls the alert hook with a ``failure``; the first
   success after failures calls it with a ``recovery``. An alert hook that
   raises is logged and ignored.
5. Several runners on one store are safe: :meth:`Loom.roll` holds the
   store's roll lock, so rolls run one at a time and a later one finds
   nothing left to plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TypeVar

import attrs

from ._plan import DayPlan
from ._schedule import (
    ACTION_KINDS,
    RollSchedule,
    RunnerAction,
    RunnerState,
    due,
    next_action,
    utc,
)
from ._service import Health, Loom
from ._store import RollEntry

__all__ = [
    "RollSchedule",
    "Runner",
    "RunnerAction",
    "RunnerAlert",
    "RunnerState",
    "RunnerStatus",
    "log_alert",
    "next_action",
]

logger = logging.getLogger("loomcore.runner")

_ONE_DAY = timedelta(days=1)
_T = TypeVar("_T")

# --------------------------------------------------------------------------- alerts and status


@attrs.frozen(kw_only=True)
class RunnerAlert:
    """What the alert hook receives: a failed attempt, or the recovery after failures.

    ``kind`` is ``failure`` or ``recovery``; ``action`` what was attempted
    (``start``, ``roll``, ``verify``, ``retry`` or ``manual``); ``at`` when
    the attempt failed or succeeded; ``attempt`` its number since the
    failures began (1 for a first failure; a recovery at attempt 3 followed
    two failures). A failure carries ``error`` (``"TypeName: message"``),
    the ``exception`` itself and ``next_retry_at``; a recovery carries the
    last ``error`` seen. ``failing_since`` is when the first failure
    happened.
    """

    kind: str = attrs.field(validator=attrs.validators.in_(("failure", "recovery")))
    action: str
    at: datetime
    attempt: int
    error: str = ""
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)
    next_retry_at: datetime | None = None
    failing_since: datetime | None = None

    @property
    def message(self) -> str:
        """A one-line description for a log, an e-mail subject or a chat message."""
        if self.kind == "failure":
            retry = self.next_retry_at.isoformat() if self.next_retry_at else "not scheduled"
            return (
                f"loomcore {self.action} failed (attempt {self.attempt}): {self.error}; "
                f"next try at {retry}"
            )
        since = self.failing_since.isoformat() if self.failing_since else "unknown"
        return (
            f"loomcore recovered: {self.action} succeeded at attempt {self.attempt} "
            f"(failing since {since}; last error: {self.error})"
        )


def log_alert(alert: RunnerAlert) -> None:
    """The default alert hook: log to ``loomcore.runner``.

    A failure is logged at ERROR with its traceback, a recovery at WARNING.
    Hosts that send alerts elsewhere can call it from their own hook to keep
    the log line.
    """
    if alert.kind == "failure":
        exc = alert.exception
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        logger.error("%s", alert.message, exc_info=exc_info)
    else:
        logger.warning("%s", alert.message)


@attrs.frozen(kw_only=True)
class RunnerStatus:
    """The runner's view for a host's "Next auto-roll at …" banner.

    ``status`` is ``failed`` (attempts are failing, a retry is pending, or
    the store cannot be read), else the store's ``ok`` or ``late``.
    ``next_roll_at`` is when the window will next be rolled: the pending
    retry if there is one, else the next nightly roll (in the past while it
    is overdue). ``retry_at`` is the pending retry (``None`` when none);
    ``failures`` and ``last_error`` describe the current run of failures.
    ``health`` is :meth:`Loom.health` at ``now``, or ``None`` when the store
    could not be read (then ``health_error`` says why); ``last_roll`` and
    ``missing_days`` come from it.
    """

    now: datetime
    running: bool
    status: str
    next_action: RunnerAction
    next_roll_at: datetime
    next_verify_at: datetime
    retry_at: datetime | None
    failures: int
    last_error: str
    state: RunnerState
    health: Health | None
    health_error: str = ""

    @property
    def last_roll(self) -> RollEntry | None:
        """The latest roll in the store's log (when, how long, days planned), if known."""
        return self.health.last_roll if self.health is not None else None

    @property
    def missing_days(self) -> tuple[date, ...]:
        """Window days due but not planned (empty when the store could not be read)."""
        return self.health.missing_days if self.health is not None else ()

    def banner(self) -> str:
        """The banner text, e.g. ``Next auto-roll at Sun 4 Oct 2026 00:05 (ok)``."""
        local = self.next_roll_at
        when = f"{local:%a} {local.day} {local:%b %Y %H:%M}"
        text = f"Next auto-roll at {when} ({self.status})"
        if self.retry_at is not None:
            text += f"; retrying after {self.failures} failed attempt(s): {self.last_error}"
        elif self.missing_days:
            text += f"; {len(self.missing_days)} window day(s) missing"
        return text


# --------------------------------------------------------------------------- the shell


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class Runner:
    """Runs a ``Loom``'s nightly roll, morning check and retries, and raises alerts.

    ``loom`` supplies the clock, the store and the schedule (``timezone``,
    ``roll_at``, ``verify_at``, ``retry_after``). ``alert`` is called with a
    :class:`RunnerAlert` on every failed attempt and on the recovery after
    failures (default: :func:`log_alert`); an exception it raises is logged
    and ignored. ``sleep(seconds)`` replaces real waiting, for tests and
    simulations with a fake clock (it may return an awaitable under
    :meth:`run_async`); by default the runner waits on an event that
    :meth:`stop` sets. No single wait is longer than ``max_sleep`` (one
    minute by default), so a clock that jumps is noticed within it.
    ``name`` is recorded as ``by`` in the roll log.

    Run it in the foreground with :meth:`run`, in a thread with
    :meth:`start_thread`, as an asyncio task with :meth:`run_async`, or
    from a host's own scheduler with :meth:`run_pending`.
    """

    def __init__(
        self,
        loom: Loom,
        *,
        alert: Callable[[RunnerAlert], object] | None = None,
        sleep: Callable[[float], object] | None = None,
        name: str = "roller",
        max_sleep: timedelta | None = timedelta(minutes=1),
    ) -> None:
        if max_sleep is not None and max_sleep <= timedelta(0):
            raise ValueError(f"max_sleep must be positive, got {max_sleep}")
        self.loom = loom
        self.name = name
        self.max_sleep = max_sleep
        self._alert = alert if alert is not None else log_alert
        self._sleep = sleep
        self._state = RunnerState()
        # One action at a time; the state itself is replaced whole, so reading
        # it (status, the loop's decision) never waits for a roll in progress.
        self._action_lock = threading.RLock()
        self._thread_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._running = False
        self._thread: threading.Thread | None = None
        self._async_stop: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    # ------------------------------------------------------------------ what it knows

    @property
    def schedule(self) -> RollSchedule:
        """The schedule, read from the ``Loom`` each time."""
        return RollSchedule.of(self.loom)

    @property
    def state(self) -> RunnerState:
        """What the runner remembers now."""
        return self._state

    @property
    def running(self) -> bool:
        """Whether a loop (:meth:`run`, a thread or :meth:`run_async`) is running."""
        return self._running

    def next_action(self, now: datetime | None = None) -> RunnerAction:
        """The next action at ``now`` (default: the clock), from :func:`next_action`."""
        return next_action(self.loom.now() if now is None else now, self.state, self.schedule)

    def status(self, now: datetime | None = None) -> RunnerStatus:
        """The runner's and the store's view at ``now`` (default: the clock), for a banner.

        Reads the store (:meth:`Loom.health`); a store that cannot be read
        gives ``health=None`` and status ``failed`` instead of raising.
        """
        now = self.loom.now() if now is None else now
        schedule = self.schedule
        state = self.state
        action = next_action(now, state, schedule)
        health: Health | None = None
        health_error = ""
        try:
            health = self.loom.health(now)
        except Exception as e:
            health_error = _describe(e)
        status = "failed" if state.failures or health is None else health.status
        # before its first action, the runner will act on what the store says now
        known = state
        if not state.started and not state.failures and health is not None:
            known = RunnerState.from_health(health, schedule)
        retry = known.retry_at(schedule)
        zone = schedule.zone
        return RunnerStatus(
            now=now,
            running=self._running,
            status=status,
            next_action=action,
            next_roll_at=retry or due(now, known.rolled_for, schedule.roll_at, zone),
            next_verify_at=due(now, known.verified_for, schedule.verify_at, zone),
            retry_at=retry,
            failures=state.failures,
            last_error=state.last_error,
            state=state,
            health=health,
            health_error=health_error,
        )

    # ------------------------------------------------------------------ one step

    def run_pending(self) -> RunnerAction:
        """Perform every action due now, then return the next one (not yet due).

        For hosts that already have a scheduler: call it every minute or so.
        Failures are handled as in :meth:`run` (alert, retry later), never
        raised.
        """
        for _ in range(len(ACTION_KINDS) + 1):
            now = self.loom.now()
            action = self.next_action(now)
            if not action.is_due(now):
                return action
            self._perform(action, now)
        return self.next_action()

    def _perform(self, action: RunnerAction, now: datetime) -> bool:
        """Do a due action; ``False`` when it failed (already alerted)."""
        try:
            if action.kind == "start":
                self._attempt("start", now, lambda: self.loom.health(now), started=True)
            elif action.kind == "verify":
                self._attempt(
                    "verify",
                    now,
                    lambda: self.loom.verify(now, by=self.name, until=self._stop.is_set),
                )
            else:
                self._attempt(
                    action.kind,
                    now,
                    lambda: self.loom.roll(
                        now, by=self.name, trigger=action.kind, until=self._stop.is_set
                    ),
                )
        except Exception:
            return False  # alerted and logged by _attempt; the retry is scheduled
        return True

    def _attempt(
        self, kind: str, now: datetime, call: Callable[[], _T], *, started: bool = False
    ) -> _T:
        """Run ``call`` as action ``kind``; fold the outcome into the state and alert.

        Re-raises a failure after recording and alerting it.
        """
        with self._action_lock:
            before = self._state
            try:
                result = call()
            except Exception as e:
                failed_at = self.loom.now().astimezone(self.schedule.zone)
                self._state = before.failed(failed_at, _describe(e))
                self._notify(
                    RunnerAlert(
                        kind="failure",
                        action=kind,
                        at=failed_at,
                        attempt=self._state.failures,
                        error=self._state.last_error,
                        exception=e,
                        next_retry_at=self._state.retry_at(self.schedule),
                        failing_since=self._state.failing_since,
                    )
                )
                raise
            if started and isinstance(result, Health):
                self._state = RunnerState.from_health(result, self.schedule)
                _log_start(result, self._state, self.schedule)
            else:
                self._state = before.succeeded(now, self.schedule)
                _log_done(kind, result)
            if before.failures:
                self._notify(
                    RunnerAlert(
                        kind="recovery",
                        action=kind,
                        at=self.loom.now().astimezone(self.schedule.zone),
                        attempt=before.failures + 1,
                        error=before.last_error,
                        failing_since=before.failing_since,
                    )
                )
        self._wake.set()  # a loop waiting for an older plan re-decides
        return result

    def _notify(self, alert: RunnerAlert) -> None:
        try:
            self._alert(alert)
        except Exception:
            logger.exception("the alert hook raised while reporting: %s", alert.message)

    # ------------------------------------------------------------------ manual actions

    def roll_now(self, *, by: str, trigger: str = "manual") -> RollEntry:
        """Roll at once, as an operator action: logged with ``by`` and ``trigger``.

        Counts as the scheduled roll when it succeeds (and ends a run of
        failures with a recovery alert). A failure is alerted, schedules a
        retry, and is raised to the caller.
        """
        now = self.loom.now()
        return self._attempt("manual", now, lambda: self.loom.roll(now, by=by, trigger=trigger))

    def verify_now(self, *, by: str | None = None) -> Health:
        """Run the morning check at once (:meth:`Loom.verify`); returns the health after it.

        Handled like :meth:`roll_now`: a failure is alerted, retried later
        and raised.
        """
        now = self.loom.now()
        return self._attempt(
            "verify", now, lambda: self.loom.verify(now, by=by if by is not None else self.name)
        )

    def regenerate_day(self, day: date, *, by: str) -> DayPlan:
        """Re-plan one day now (:meth:`Loom.regenerate_day`, audited with ``by``).

        Errors are raised to the caller; they do not count as roll failures.
        """
        plan = self.loom.regenerate_day(day, by=by)
        logger.info("regenerated %s by %s: %d instances", day, by or "?", len(plan.instances))
        return plan

    # ------------------------------------------------------------------ loops

    def run(self, *, until: datetime | None = None) -> None:
        """Run in the calling thread until :meth:`stop` (or the clock reaches ``until``).

        Waits for each action, performs it, and never raises for a failed
        action: failures are alerted and retried. Raises ``RuntimeError``
        when the runner is already running.
        """
        self._enter_loop()
        logger.info("runner %s started", self.name)
        try:
            while True:
                # cleared before the stop is read: a stop() in between (a
                # signal handler runs between any two lines) sets the wake
                # after this, so the wait below cannot miss it
                self._wake.clear()
                if self._stop.is_set():
                    break
                wait = self._step(until)
                if wait is None:
                    break
                if wait > 0:
                    self._wait(wait)
        finally:
            self._running = False
            self._stop.clear()  # a stop ends one loop; the runner can be run again
            logger.info("runner %s stopped", self.name)

    def _enter_loop(self) -> None:
        with self._thread_lock:
            if self._running:
                raise RuntimeError("the runner is already running")
            self._running = True

    def _step(self, until: datetime | None) -> float | None:
        """Perform the action due now, if any; seconds to wait next, or ``None`` to end."""
        now = self.loom.now()
        if until is not None and utc(now) >= utc(until):
            return None
        action = self.next_action(now)
        if action.is_due(now):
            self._perform(action, now)
            return 0.0
        return self._wait_for(action, now, until)

    def _wait_for(self, action: RunnerAction, now: datetime, until: datetime | None) -> float:
        wait = action.delay(now)
        if until is not None:
            wait = min(wait, utc(until) - utc(now))
        if self.max_sleep is not None:
            wait = min(wait, self.max_sleep)
        return wait / timedelta(seconds=1)

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._wake.wait(seconds)

    def start_thread(self, *, name: str = "loomcore-runner") -> threading.Thread:
        """Start :meth:`run` in a daemon thread and return it.

        Stop it with :meth:`stop` and wait for the action in progress with
        :meth:`join`. Raises ``RuntimeError`` when the runner is already
        running.
        """
        with self._thread_lock:
            if self._running or (self._thread is not None and self._thread.is_alive()):
                raise RuntimeError("the runner is already running")
            self._thread = threading.Thread(target=self._run_logged, name=name, daemon=True)
            self._thread.start()
            return self._thread

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception:  # a bug, not a failed roll: those never leave run()
            logger.exception("the runner thread ended with an error")

    def stop(self) -> None:
        """Ask the loop to end: the wait is interrupted at once, an action in progress finishes.

        Safe from any thread. From a signal handler only when the loop runs
        in another thread (:meth:`start_thread`, as ``loom roller`` does): a
        handler runs in the main thread, and if the loop is waiting there,
        it holds the very lock this takes. Called before a loop starts, it
        ends that loop at once. A stopped runner can be run again.
        """
        self._stop.set()
        self._wake.set()
        registered = self._async_stop
        if registered is not None:
            loop, event = registered
            with contextlib.suppress(RuntimeError):  # a closed loop: nothing waits on it
                loop.call_soon_threadsafe(event.set)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread from :meth:`start_thread` to end; ``True`` when it has."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    async def run_async(
        self, stop_event: asyncio.Event | None = None, *, until: datetime | None = None
    ) -> None:
        """Run as an asyncio task until ``stop_event`` is set or :meth:`stop` is called.

        Also ends when the clock reaches ``until``. Waits with ``asyncio``
        (an injected ``sleep`` may be a coroutine function); the blocking
        ``Loom`` calls run in ``asyncio.to_thread``. Raises ``RuntimeError``
        when the runner is already running.
        """
        stop = stop_event if stop_event is not None else asyncio.Event()
        self._enter_loop()
        self._async_stop = (asyncio.get_running_loop(), stop)
        if self._stop.is_set():
            stop.set()
        logger.info("runner %s started (asyncio)", self.name)
        try:
            while not stop.is_set() and not self._stop.is_set():
                wait = await asyncio.to_thread(self._step, until)
                if wait is None:
                    break
                if wait > 0:
                    await self._wait_async(wait, stop)
        finally:
            self._running = False
            self._async_stop = None
            self._stop.clear()
            logger.info("runner %s stopped", self.name)

    async def _wait_async(self, seconds: float, stop: asyncio.Event) -> None:
        if self._sleep is not None:
            result = self._sleep(seconds)
            if inspect.isawaitable(result):
                await result
            else:
                await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def describe_roll(entry: RollEntry) -> str:
    """A one-line summary of a roll, for logs and the command line."""
    text = (
        f"{entry.trigger} {entry.status}: {_plural(entry.days_planned, 'day')} planned, "
        f"{entry.days_dropped} dropped, {entry.days_purged} purged in "
        f"{entry.duration.total_seconds():.2f} s; window {entry.window_start.isoformat()} "
        f"to {entry.window_end.isoformat()}"
    )
    return text + (f"; {entry.error}" if entry.error else "")


def describe_health(health: Health) -> str:
    """A one-line summary of :meth:`Loom.health`, for logs and the command line."""
    text = (
        f"window {health.window.start.isoformat()} to {health.window.end.isoformat()} "
        f"is {health.status}"
    )
    if health.missing_days or health.stale_days:
        text += f" ({len(health.missing_days)} missing, {len(health.stale_days)} stale)"
    return text + f"; next roll at {health.next_roll_at.isoformat()}"


def _log_start(health: Health, state: RunnerState, schedule: RollSchedule) -> None:
    if state.failures:
        logger.warning(
            "the latest roll failed (%s); retrying at %s",
            state.last_error,
            (state.retry_at(schedule) or health.now).isoformat(),
        )
    elif health.status != "ok":
        logger.info("%s; rolling now", describe_health(health))
    else:
        logger.info("%s", describe_health(health))


def _log_done(kind: str, result: object) -> None:
    if isinstance(result, RollEntry):
        logger.info("%s", describe_roll(result))
    elif isinstance(result, Health):
        logger.info("%s: %s", kind, describe_health(result))
