"""The storage interface. Its docstrings are the specification every store meets.

A store only saves and returns what the service gives it; it never plans.
Two adapters exist: :class:`loomcore.MemoryStore` and the Postgres store in
``loomcore_pg``. Both pass :class:`loomcore.testing.StoreContract`, which a
third-party store can run too.

Rules every store keeps
-----------------------
1. Intents, one-offs (exceptions) and retractions are append-only: nothing a
   store offers deletes or changes them.
2. Every change to what plans depend on (a record, a retraction, the
   organisation) gets the next *revision*, a whole number starting at 1.
   ``changes_since(r)`` returns every change after ``r`` in revision order.
3. Planned days are the only thing that can be deleted; writing a day
   replaces it whole, atomically.
4. Errors are loomcore's own: a duplicate id raises
   :class:`~loomcore.DuplicateIdError`, an unknown one
   :class:`~loomcore.UnknownRecordError`, a second retraction
   :class:`~loomcore.AlreadyRetractedError`; the store is unchanged after
   any of them.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta

import attrs

from ._billing import BillingLine
from ._model import Organisation
from ._plan import DayPlan
from ._records import Intent, OneOff, Record, Retraction

__all__ = [
    "AuditEntry",
    "Change",
    "LedgerDay",
    "PlannedDay",
    "RollEntry",
    "Store",
    "StoredRecords",
]


@attrs.frozen(kw_only=True)
class PlannedDay:
    """A day's plan as stored: the plan, the revision it reflects, when it was made."""

    plan: DayPlan
    revision: int
    planned_at: datetime

    @property
    def date(self) -> date:
        """The planned local date."""
        return self.plan.date


@attrs.frozen(kw_only=True)
class Change:
    """One revision: a record added, a record retracted, or a new organisation.

    ``kind`` is ``"record"``, ``"retraction"`` or ``"organisation"``;
    ``record`` is the record added or retracted (``None`` for an
    organisation change).
    """

    revision: int
    kind: str
    record: Record | None = None


@attrs.frozen(kw_only=True)
class StoredRecords:
    """Active (unretracted) records, as :meth:`Store.load_records` returns them."""

    intents: tuple[Intent, ...] = ()
    one_offs: tuple[OneOff, ...] = ()


@attrs.frozen(kw_only=True)
class LedgerDay:
    """A day's billing lines in the permanent ledger.

    ``export_id`` and ``exported_at`` are set once the lines went into a
    claim file; from then on the ledger keeps these lines, whatever later
    plans of the day say.
    """

    date: date
    lines: tuple[BillingLine, ...]
    export_id: str = ""
    exported_at: datetime | None = None

    @property
    def exported(self) -> bool:
        """Whether the lines were exported in a claim file."""
        return bool(self.export_id)


@attrs.frozen(kw_only=True)
class AuditEntry:
    """Who did what, when. ``subject`` names the record, day or setting acted on."""

    at: datetime
    by: str
    action: str
    subject: str = ""
    detail: str = ""


@attrs.frozen(kw_only=True)
class RollEntry:
    """One roll, successful or not.

    ``trigger`` says why it ran: ``roll`` (the nightly roll), ``verify`` (the
    09:00 check), ``retry`` (after a failure) or ``manual``; ``status``
    is ``ok``, ``stopped`` (ended early on request: the days written are
    whole, the next roll plans the rest) or ``failed`` (then ``error`` says
    why).
    """

    started_at: datetime
    finished_at: datetime
    today: date
    window_start: date
    window_end: date
    status: str
    trigger: str = "roll"
    by: str = ""
    days_planned: int = 0
    days_dropped: int = 0
    days_purged: int = 0
    error: str = ""

    @property
    def duration(self) -> timedelta:
        """How long the roll took."""
        return self.finished_at - self.started_at


class Store(abc.ABC):
    """Where the service keeps everything. Implementations must be thread-safe."""

    # ----------------------------------------------------------- organisation

    @abc.abstractmethod
    def organisation(self) -> Organisation:
        """The current reference data; an empty :class:`Organisation` at first."""

    @abc.abstractmethod
    def set_organisation(self, organisation: Organisation) -> int:
        """Replace the reference data. Returns the new revision."""

    # ----------------------------------------------------------- records

    @abc.abstractmethod
    def add_record(self, record: Record) -> int:
        """Append an intent or one-off that carries its id and ``recorded_at``.

        Returns the new revision. Raises :class:`DuplicateIdError` when any
        record or retraction already has this id.
        """

    @abc.abstractmethod
    def add_retraction(self, retraction: Retraction) -> int:
        """Append a retraction of ``retraction.target_id``. Returns the new revision.

        Raises :class:`UnknownRecordError` when no record has that id,
        :class:`AlreadyRetractedError` when it is retracted already, and
        :class:`DuplicateIdError` when the retraction's own id is taken.
        """

    @abc.abstractmethod
    def get_record(self, record_id: str) -> Record:
        """The record with this id, retracted or not; :class:`UnknownRecordError` if none."""

    @abc.abstractmethod
    def records(self) -> tuple[Record, ...]:
        """Every record ever added, retracted ones included, in the order added."""

    @abc.abstractmethod
    def retractions(self) -> tuple[Retraction, ...]:
        """Every retraction, in the order added."""

    @abc.abstractmethod
    def load_records(self, start: date, end: date) -> StoredRecords:
        """The active records that can shape any day in ``[start, end]``.

        At least: every active intent whose ``[start, end]`` overlaps the
        range; every active one-off dated in the range or moving an instance
        into it; and, for each such move, every active one-off dated on its
        origin date (a later move of that date wins over it) and every active
        intent covering its origin date (they decide whether the origin had
        an instance). Returning more is allowed (planning ignores what does
        not apply); returning less is a bug.
        """

    @abc.abstractmethod
    def revision(self) -> int:
        """The latest revision; 0 for a new store."""

    @abc.abstractmethod
    def changes_since(self, revision: int) -> tuple[Change, ...]:
        """Every change with a revision greater than ``revision``, oldest first."""

    # ----------------------------------------------------------- planned days

    @abc.abstractmethod
    def put_day(self, day: PlannedDay) -> bool:
        """Write a day's plan, replacing any plan of that date, in one transaction.

        A stored plan that reflects a *later* revision is kept (a slow writer
        never undoes a faster one's newer plan): the call then returns
        ``False``. Otherwise the day is written and the call returns ``True``.

        In the same transaction, the plan's billing lines (every instance's
        ``billing_lines``) replace the day's lines in the permanent ledger,
        unless that day was exported: exported lines are never replaced.
        """

    def put_days(self, days: Sequence[PlannedDay]) -> list[bool]:
        """:meth:`put_day` for each of ``days``, in order; what each returned.

        A store may write them all in one transaction, so that either every
        day is written or none is, and a batch costs it little more than a
        day (:class:`loomcore_pg.PostgresStore` does). This default writes
        them one by one, each in its own transaction.
        """
        return [self.put_day(day) for day in days]

    @abc.abstractmethod
    def get_day(self, day: date) -> PlannedDay | None:
        """The stored plan of ``day``, or ``None``."""

    @abc.abstractmethod
    def planned_days(
        self, start: date | None = None, end: date | None = None
    ) -> tuple[PlannedDay, ...]:
        """Stored plans with ``start <= date <= end`` (open bounds when ``None``), by date."""

    def day_revisions(self, start: date | None = None, end: date | None = None) -> dict[date, int]:
        """The revision each stored plan with ``start <= date <= end`` was made at.

        What the roll reads to find missing and stale days. This default
        reads the whole plans; adapters answer it from an index.
        """
        return {p.date: p.revision for p in self.planned_days(start, end)}

    @abc.abstractmethod
    def delete_days(self, start: date | None = None, end: date | None = None) -> int:
        """Delete stored plans with ``start <= date <= end``; returns how many.

        The billing ledger is not touched: lines outlive the plans.
        """

    # ----------------------------------------------------------- billing ledger

    @abc.abstractmethod
    def ledger(self, start: date | None = None, end: date | None = None) -> tuple[LedgerDay, ...]:
        """Ledger days with ``start <= date <= end`` (open bounds when ``None``), by date."""

    @abc.abstractmethod
    def mark_exported(self, start: date, end: date, export_id: str, at: datetime) -> int:
        """Mark the ledger days of ``[start, end]`` not yet exported as exported.

        Returns how many days were marked; days exported before keep their
        first export. Raises :class:`DuplicateIdError` when ``export_id`` was
        used before.
        """

    # ----------------------------------------------------------- settings and logs

    @abc.abstractmethod
    def window_weeks(self) -> int | None:
        """The stored window size, or ``None`` when never set."""

    @abc.abstractmethod
    def set_window_weeks(self, weeks: int) -> None:
        """Store the window size (already validated by the service)."""

    @abc.abstractmethod
    def append_audit(self, entry: AuditEntry) -> None:
        """Append to the audit log."""

    @abc.abstractmethod
    def audit_log(self) -> tuple[AuditEntry, ...]:
        """The audit log, oldest first."""

    @abc.abstractmethod
    def append_roll(self, entry: RollEntry) -> None:
        """Append to the roll log."""

    @abc.abstractmethod
    def roll_log(self) -> tuple[RollEntry, ...]:
        """The roll log, oldest first."""

    @abc.abstractmethod
    def roll_lock(self) -> AbstractContextManager[None]:
        """A lock held for a whole roll: one roll at a time for this store.

        Entering blocks until no other roll holds it.
        """
