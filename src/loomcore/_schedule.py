"""When the runner acts next: the pure decision of the nightly roll.

:func:`next_action` takes the current instant, what the runner remembers
(:class:`RunnerState`) and the schedule (:class:`RollSchedule`), and returns
the one thing to do next and when (:class:`RunnerAction`). It reads no clock
and touches no store, so it is tested as a table; :class:`loomcore.Runner`
only waits until the action is due and performs it. The invariants are
listed in :mod:`loomcore._runner`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs

from ._errors import InvalidRecordError
from ._inputs import _zone
from ._service import Health, Loom, check_times
from ._window import local_moment, next_local_time

__all__ = [
    "ACTION_KINDS",
    "RollSchedule",
    "RunnerAction",
    "RunnerState",
    "due",
    "next_action",
    "utc",
]

_ONE_DAY = timedelta(days=1)

#: What the runner can do next (see :class:`RunnerAction`).
ACTION_KINDS = ("start", "retry", "roll", "verify")


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; :class:`InvalidRecordError` (a ``ValueError``) unless aware."""
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        shown = moment.isoformat() if isinstance(moment, datetime) else repr(moment)
        raise InvalidRecordError(f"expected a timezone-aware datetime, got {shown}", field="now")
    return moment.astimezone(UTC)


def _latest_day(now: datetime, at: time, zone: ZoneInfo) -> date:
    """The local date of the latest moment at or before ``now`` when the clock read ``at``."""
    return next_local_time(now, at, zone).date() - _ONE_DAY


@attrs.frozen(kw_only=True)
class RollSchedule:
    """When the runner acts: local wall-clock times in ``timezone``, and the retry delay.

    Build it from a service with :meth:`of`, which takes the ``Loom``'s
    ``timezone``, ``roll_at`` (00:05), ``verify_at`` (09:00) and
    ``retry_after`` (10 minutes).
    """

    timezone: str = "Australia/Sydney"
    roll_at: time = time(0, 5)
    verify_at: time = time(9, 0)
    retry_after: timedelta = timedelta(minutes=10)

    def __attrs_post_init__(self) -> None:
        check_times(self.roll_at, self.verify_at, self.retry_after)
        _zone(self.timezone)  # an unknown name fails now, not at midnight

    @classmethod
    def of(cls, loom: Loom) -> RollSchedule:
        """The schedule ``loom`` is configured with."""
        return cls(
            timezone=loom.timezone,
            roll_at=loom.roll_at,
            verify_at=loom.verify_at,
            retry_after=loom.retry_after,
        )

    @property
    def zone(self) -> ZoneInfo:
        """The organisation's timezone."""
        return ZoneInfo(self.timezone)


@attrs.frozen(kw_only=True)
class RunnerAction:
    """What the runner does next (``kind``) and when it is due (``at``).

    ``kind`` is one of:

    * ``start``: read the store's health to learn whether the window is up to
      date (the first thing a runner does);
    * ``roll``: the nightly roll (:meth:`Loom.roll`, trigger ``roll``);
    * ``verify``: the morning check (:meth:`Loom.verify`);
    * ``retry``: roll again after a failure (:meth:`Loom.roll`, trigger ``retry``).

    ``at`` is an aware datetime in the organisation's timezone; it may be in
    the past, meaning the action is overdue and runs at once. Compute waits
    with :meth:`delay`, which works in UTC.
    """

    kind: str = attrs.field(validator=attrs.validators.in_(ACTION_KINDS))
    at: datetime

    def delay(self, now: datetime) -> timedelta:
        """How long from ``now`` until the action is due (zero when it is due)."""
        return max(utc(self.at) - utc(now), timedelta(0))

    def is_due(self, now: datetime) -> bool:
        """Whether the action should run at ``now``."""
        return utc(self.at) <= utc(now)


@attrs.frozen(kw_only=True)
class RunnerState:
    """What a runner remembers between actions. Change it with its methods, not by hand.

    ``rolled_for`` and ``verified_for`` are the local dates of the latest
    nightly roll and morning check done (``None``: none yet, so one is due
    at once). ``failures`` counts consecutive failed attempts; while it is
    above zero a retry is pending, due ``retry_after`` after ``failed_at``.
    ``failing_since`` is when the first of those failures happened, and
    ``last_error`` what the latest one said. ``started`` is false until the
    runner has read the store's health once.
    """

    started: bool = False
    rolled_for: date | None = None
    verified_for: date | None = None
    failures: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    failed_at: datetime | None = None
    failing_since: datetime | None = None
    last_error: str = ""

    def __attrs_post_init__(self) -> None:
        if self.failures and self.failed_at is None:
            raise ValueError("a state with failures needs failed_at")

    @classmethod
    def from_health(cls, health: Health, schedule: RollSchedule) -> RunnerState:
        """The state of a runner that starts now and reads ``health`` from the store.

        ``ok``: today's roll and any check already due count as done.
        ``late``: a roll is due at once. ``failed``: the failed roll in the
        log counts as this runner's first failure, so it retries at
        ``health.retry_at`` and reports the recovery.
        """
        if health.status == "ok":
            return cls().succeeded(health.now, schedule)
        verified = _latest_day(health.now, schedule.verify_at, schedule.zone)
        last = health.last_roll
        if health.status == "failed" and last is not None:
            failed_at = last.finished_at.astimezone(schedule.zone)
            return cls(
                started=True,
                verified_for=verified,
                failures=1,
                failed_at=failed_at,
                failing_since=failed_at,
                last_error=last.error,
            )
        return cls(started=True, verified_for=verified)

    def succeeded(self, now: datetime, schedule: RollSchedule) -> RunnerState:
        """The state after an action that succeeded at ``now``.

        A successful roll or check leaves the window whole, so it counts as
        every roll and check due up to ``now``; failures are cleared. The
        remembered dates never move backwards, even if the clock does.
        """
        zone = schedule.zone
        rolled = _latest_day(now, schedule.roll_at, zone)
        verified = _latest_day(now, schedule.verify_at, zone)
        return RunnerState(
            started=True,
            rolled_for=max(rolled, self.rolled_for or rolled),
            verified_for=max(verified, self.verified_for or verified),
        )

    def failed(self, at: datetime, error: str) -> RunnerState:
        """The state after an attempt that failed at ``at`` with ``error``."""
        return attrs.evolve(
            self,
            failures=self.failures + 1,
            failed_at=at,
            failing_since=self.failing_since or at,
            last_error=error,
        )

    def retry_at(self, schedule: RollSchedule) -> datetime | None:
        """When the pending retry is due (local time), or ``None`` when nothing failed."""
        if not self.failures or self.failed_at is None:
            return None
        return (utc(self.failed_at) + schedule.retry_after).astimezone(schedule.zone)


def due(now: datetime, done: date | None, at: time, zone: ZoneInfo) -> datetime:
    """When the daily action at local time ``at`` is next due, given the date last done."""
    upcoming = next_local_time(now, at, zone)
    latest = upcoming.date() - _ONE_DAY
    if done is None or done < latest:
        return local_moment(latest, at, zone)  # overdue: missed ones coalesce into one
    if done == latest:
        return upcoming
    return local_moment(done + _ONE_DAY, at, zone)  # the clock went back: never repeat a date


def next_action(now: datetime, state: RunnerState, schedule: RollSchedule) -> RunnerAction:
    """The runner's next action and when it is due. Pure: no clock, no store.

    In order: a pending retry first (``retry_after`` after the latest
    failure; a retry is a roll, also after a start that failed); a runner
    that has not started reads the store's health at once; otherwise the
    next of the nightly roll (``roll_at`` local, on the day after
    ``state.rolled_for``) and the morning check (``verify_at``
    local, on the day after ``state.verified_for``), the roll first when
    both are due. A roll or check overdue by several days is due once, at
    its latest missed time. ``now`` must be timezone-aware.
    """
    zone = schedule.zone
    now = utc(now).astimezone(zone)
    if state.failures:
        retry = state.retry_at(schedule)
        assert retry is not None
        return RunnerAction(kind="retry", at=retry)
    if not state.started:
        return RunnerAction(kind="start", at=now)
    roll = due(now, state.rolled_for, schedule.roll_at, zone)
    verify = due(now, state.verified_for, schedule.verify_at, zone)
    if utc(roll) <= utc(now) or utc(roll) <= utc(verify):
        return RunnerAction(kind="roll", at=roll)
    return RunnerAction(kind="verify", at=verify)
