"""The service: :class:`Loom`, the imperative shell around the pure core.

Theory of operation
-------------------
``Loom`` reads the clock it was given, talks to a store, decides which days
to (re)plan with :func:`plan_day`, writes them and keeps the audit and roll
logs. It holds no state of its own that matters: two ``Loom`` objects on one
store behave as one.

* Recording or retracting appends to the store, then re-plans at once the
  window days the record can affect (:func:`affected_days`), and only those.
* Each stored day carries the store revision it reflects. A day is *stale*
  when a later change affects it; the roll re-plans missing and stale window
  days, so it is idempotent and catches up after missed nights or a crash
  between recording and re-planning.
* Past days are history and never re-planned, except by
  :meth:`Loom.regenerate_day`. Days that leave the window stay stored until
  the retention period ends (90 days by default), then the roll purges them.
* Days are written in ascending date order, in batches of up to 16 days
  (``Store.put_days``), each batch once it is planned, and every one done (or
  its error raised) before the call that planned them returns. A store that
  writes a batch in one transaction (Postgres) makes one per batch, so an
  edit re-planning a program's sixteen weeks costs it one transaction.
"""

from __future__ import annotations

import time as _time
import uuid
from collections.abc import Callable, Generator, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import attrs

from ._billing import BillingLine
from ._changes import (
    affected_days,
    change_days,
    check_references,
    days_between,
    describe,
    validate_record,
)
from ._claims import ClaimFile, bulk_claim_files
from ._errors import (
    DayOutsideWindowError,
    DuplicateIdError,
    InvalidDateRangeError,
    InvalidRecordError,
    UnknownParticipantError,
    UnknownProgramError,
)
from ._inputs import PlanInputs, TransportSettings
from ._memory import MemoryStore
from ._model import Organisation, Participant, Program, Staff, Vehicle, Venue
from ._parallel import plan_days
from ._plan import DayPlan, Instance, plan_day
from ._prices import PriceCatalogue, shipped_catalogue
from ._records import (
    Absence,
    Intent,
    OneOff,
    Record,
    Reschedule,
    Retraction,
)
from ._store import AuditEntry, PlannedDay, RollEntry, Store
from ._window import (
    MAX_WEEKS,
    Window,
    check_weeks,
    local_moment,
    local_today,
    next_local_time,
    window_for,
)

__all__ = ["DEFAULT_WEEKS", "Health", "Loom", "check_times"]

DEFAULT_WEEKS = 4

# Fewer days than this are planned in this process even with workers: starting
# them costs about as much as planning a week
_IN_WORKERS_FROM = 14
# The longest span of days the cached inputs grow to as the window moves on
# (a 16-week window and two more weeks); past it they are reloaded for the
# last _LONGEST_WINDOW of days, which leaves out the records of days the
# window has left behind, and keeps what was planned of the others.
_MOST_CACHED = timedelta(weeks=18)
# Changes by other writers the cached inputs take in (keeping what was
# planned of the days they do not touch); beyond this they are reloaded
_MOST_CAUGHT_UP = 256
_LONGEST_WINDOW = timedelta(weeks=MAX_WEEKS)
_ONE_DAY = timedelta(days=1)
# Days given to the store in one batch (Store.put_days), at most: a batch
# costs a store writing it in one transaction little more than a day, and
# planning holds no more than this many days unwritten
_WRITE_AT_MOST = 16


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


@attrs.frozen(kw_only=True)
class Health:
    """What a host shows in its "Next auto-roll at …" banner.

    ``status`` is ``ok``, ``late`` (window days missing or stale since the
    roll was due) or ``failed`` (the latest roll failed). ``retry_at`` is
    when a failed roll is due to be tried again (``None`` unless the latest
    roll failed).
    """

    now: datetime
    today: date
    window: Window
    status: str
    last_roll: RollEntry | None
    last_success: RollEntry | None
    next_roll_at: datetime
    next_verify_at: datetime
    missing_days: tuple[date, ...]
    stale_days: tuple[date, ...]
    retry_at: datetime | None = None


def check_times(roll_at: object, verify_at: object, retry_after: object) -> None:
    """Refuse, with :class:`InvalidRecordError`, roll and check times that are
    not local times of day, or a retry delay that is not a positive timedelta."""
    for name, value in (("roll_at", roll_at), ("verify_at", verify_at)):
        if not isinstance(value, time) or value.tzinfo is not None:
            raise InvalidRecordError(
                f"{name} must be a local time of day (datetime.time, no zone), got {value!r}",
                field=name,
            )
    if not isinstance(retry_after, timedelta) or retry_after <= timedelta(0):
        raise InvalidRecordError(
            f"retry_after must be a positive timedelta, got {retry_after!r}", field="retry_after"
        )


class Loom:
    """The scheduling service over one store.

    ``clock`` returns the current aware datetime (UTC by default, from the
    system); tests and simulations pass their own. ``id_factory`` makes ids
    for records recorded without one (UUID4 strings by default).
    ``retention_days`` is how long days that left the window are kept before
    the roll purges them (``None`` keeps them forever). ``roll_at`` and
    ``verify_at`` are the local times of the nightly roll and the morning
    check; ``retry_after`` is how soon a failed roll is due again.
    ``transport`` sets how bus runs are planned (ride limit, buffers, the
    travel model: plug in a road network there). ``catalogue`` holds the NDIS
    support items and price limits billing lines are priced from (the
    shipped data by default, read once here). ``workers`` is how many
    processes plan days when a roll, :meth:`load`, :meth:`resize_window` or
    :meth:`set_organisation` plans two weeks or more at once (see
    :func:`loomcore.plan_days`); 1, the default, plans in this process
    alone. Edits always re-plan here, where the routes worked out are
    remembered.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        timezone: str = "Australia/Sydney",
        clock: Callable[[], datetime] = _utc_now,
        id_factory: Callable[[], str] = _new_id,
        roll_at: time = time(0, 5),
        verify_at: time = time(9, 0),
        retry_after: timedelta = timedelta(minutes=10),
        retention_days: int | None = 90,
        transport: TransportSettings | None = None,
        catalogue: PriceCatalogue | None = None,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise InvalidRecordError(f"workers must be at least 1, got {workers}", field="workers")
        check_times(roll_at, verify_at, retry_after)
        self.workers = workers
        self.store: Store = store if store is not None else MemoryStore()
        self.timezone = timezone
        self._zone = PlanInputs(organisation=Organisation(), timezone=timezone).zone
        self._clock = clock
        self._new_id = id_factory
        self.roll_at = roll_at
        self.verify_at = verify_at
        self.retry_after = retry_after
        self.transport = transport if transport is not None else TransportSettings()
        self.catalogue = catalogue if catalogue is not None else shipped_catalogue()
        self.retention_days = retention_days
        self._cache: tuple[int, date, date, PlanInputs] | None = None

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        """The current instant from the service's clock (aware)."""
        now = self._clock()
        if now.tzinfo is None:
            raise InvalidRecordError("the clock must return timezone-aware datetimes")
        return now

    def _at(self, now: datetime | None) -> datetime:
        """``now`` if given (it must be aware), else the clock's instant."""
        if now is None:
            return self.now()
        if now.tzinfo is None or now.utcoffset() is None:
            raise InvalidRecordError(f"now must be timezone-aware, got {now.isoformat()}")
        return now

    def today(self, now: datetime | None = None) -> date:
        """The organisation's local date at ``now`` (default: the clock)."""
        return local_today(self._at(now), self._zone)

    # ------------------------------------------------------------------ window

    def window_size(self) -> int:
        """The window size in weeks (4 until set)."""
        return self.store.window_weeks() or DEFAULT_WEEKS

    def window(self, now: datetime | None = None) -> Window:
        """The window that should be planned at ``now``: today to today + 7N − 1."""
        return window_for(self.today(now), self.window_size())

    def resize_window(self, weeks: int, *, by: str = "", now: datetime | None = None) -> Window:
        """Set the window to ``weeks`` (2..16) and plan or drop days to match.

        Shrinking deletes only planned days beyond the new end; intents and
        exceptions are untouched, so growing again restores the same plans.
        Raises :class:`InvalidWindowError` for any other size, changing nothing.
        """
        weeks = check_weeks(weeks)
        now = self._at(now)
        old = self.window_size()
        self.store.set_window_weeks(weeks)
        window = self.window(now)
        dropped = self.store.delete_days(window.end + _ONE_DAY, None)
        planned = self._plan_days(self._days_to_plan(window), now, many=True)
        self._audit(
            now,
            by,
            "resize",
            "window",
            f"{old} → {weeks} weeks; {len(planned)} days planned, {dropped} dropped",
        )
        return window

    # ------------------------------------------------------------------ reading

    def day(self, day: date) -> DayPlan | None:
        """The stored plan of ``day``, or ``None`` when it is not planned."""
        stored = self.store.get_day(day)
        return stored.plan if stored else None

    def instances(
        self,
        start: date,
        end: date,
        *,
        program_id: str | None = None,
        participant_id: str | None = None,
        status: str | None = None,
    ) -> list[Instance]:
        """Planned instances from ``start`` to ``end`` inclusive, by date and start time.

        Filters: a program; a participant (instances with an allocation for
        them, attending or cancelled); ``status`` (``scheduled`` or
        ``cancelled``). Unknown ids raise, so a typo is never an empty answer.
        """
        if end < start:
            raise InvalidDateRangeError(start, end, "instances range")
        self._check_filters(program_id, participant_id)
        if status not in (None, "scheduled", "cancelled"):
            raise InvalidRecordError(f"status must be 'scheduled' or 'cancelled', got {status!r}")
        out = []
        for stored in self.store.planned_days(start, end):
            for inst in stored.plan.instances:
                if program_id is not None and inst.program_id != program_id:
                    continue
                if status is not None and inst.status != status:
                    continue
                if participant_id is not None and all(
                    a.participant_id != participant_id for a in inst.allocations
                ):
                    continue
                out.append(inst)
        return out

    def warm(self) -> int:
        """Work out the window's plans in this process and read the stored
        ones, writing nothing; the number of days in the window.

        For a host process that records operators' edits but does not roll
        (a web process beside ``loom roller``): an edit re-plans its days
        from what this process worked out before, and a store that compares
        a day with what it holds (``PostgresStore``) compares with what it
        read. Without it, the first edit of each day plans every program and
        bus run of the day from nothing and reads the day's rows back: at
        the benchmark's scale an enrolment took about 0.75 s in a fresh
        process, and about 0.12 s once warmed (which takes about as long as
        planning the window: seconds). Uses the worker processes
        (``Loom(workers=N)``) as a roll does. Called again, it plans little
        (what is remembered holds unless records changed) but reads the
        stored plans again. Records other processes add or retract later
        are taken in by the next call that plans, dropping only what they
        can change (a new organisation, or hundreds of changes at once,
        have everything worked out again).
        """
        window = self.window()
        days = list(window.days())
        for _ in self._plans(days, many=True):
            pass
        self.store.planned_days(window.start, window.end)
        return len(days)

    def preview(self, start: date, end: date) -> list[DayPlan]:
        """Plans of ``[start, end]`` computed now from the records, without storing them.

        For what-if questions and dates beyond the window.
        """
        if end < start:
            raise InvalidDateRangeError(start, end, "preview range")
        inputs = self._inputs(start, end)
        return [plan_day(inputs, d) for d in days_between(start, end)]

    def intents(
        self,
        *,
        program_id: str | None = None,
        participant_id: str | None = None,
        include_retracted: bool = False,
    ) -> list[Intent]:
        """Intents, by start date then recording time; retracted ones only on request.

        Unknown program or participant ids raise, as in :meth:`instances`.
        """
        return [
            r
            for r in self._select(program_id, participant_id, include_retracted)
            if isinstance(r, Intent)
        ]

    def one_offs(
        self,
        *,
        program_id: str | None = None,
        participant_id: str | None = None,
        include_retracted: bool = False,
    ) -> list[OneOff]:
        """Exceptions (one-offs), by date then recording time; retracted ones on request.

        Unknown program or participant ids raise, as in :meth:`instances`.
        """
        return [
            r
            for r in self._select(program_id, participant_id, include_retracted)
            if isinstance(r, OneOff)
        ]

    def retraction_of(self, record_id: str) -> Retraction | None:
        """The retraction of a record, or ``None`` while it is active."""
        self.store.get_record(record_id)
        for r in self.store.retractions():
            if r.target_id == record_id:
                return r
        return None

    def _check_filters(self, program_id: str | None, participant_id: str | None) -> None:
        """Unknown ids in a query raise, so a typo is never an empty answer."""
        if program_id is None and participant_id is None:
            return
        org = self.store.organisation()
        if program_id is not None and all(p.id != program_id for p in org.programs):
            raise UnknownProgramError(program_id)
        if participant_id is not None and all(p.id != participant_id for p in org.participants):
            raise UnknownParticipantError(participant_id)

    def _select(
        self, program_id: str | None, participant_id: str | None, include_retracted: bool
    ) -> list[Record]:
        self._check_filters(program_id, participant_id)
        retracted = {r.target_id for r in self.store.retractions()}
        out = [
            r
            for r in self.store.records()
            if (include_retracted or r.id not in retracted)
            and (program_id is None or r.program_id == program_id)
            and (participant_id is None or getattr(r, "participant_id", None) == participant_id)
        ]
        out.sort(key=lambda r: (r.start if isinstance(r, Intent) else r.date, r.recorded_at, r.id))
        return out

    def audit_log(self) -> tuple[AuditEntry, ...]:
        """Every change, oldest first."""
        return self.store.audit_log()

    def roll_log(self) -> tuple[RollEntry, ...]:
        """Every roll, oldest first."""
        return self.store.roll_log()

    # ------------------------------------------------------------------ organisation

    def set_organisation(self, organisation: Organisation, *, by: str = "") -> None:
        """Replace the reference data and re-plan the whole window.

        Refuses (changing nothing) to drop a program, participant, staff
        member, vehicle or venue that a record names: end a program with a
        :class:`ProgramChange` or ``active_until`` instead.
        """
        check_references(organisation, self.store.records())
        now = self.now()
        self.store.set_organisation(organisation)
        window = self.window(now)
        planned = self._plan_days(list(window.days()), now, many=True)
        self._audit(
            now,
            by,
            "organisation",
            organisation.name,
            f"{len(organisation.programs)} programs; {len(planned)} days re-planned",
        )

    def upsert(
        self, item: Venue | Participant | Staff | Vehicle | Program, *, by: str = ""
    ) -> None:
        """Add or replace one venue, participant, staff member, vehicle or program."""
        self.set_organisation(self.store.organisation().with_item(item), by=by)

    # ------------------------------------------------------------------ recording

    def record(self, record: Record, *, by: str = "") -> Record:
        """Store an intent or exception and re-plan the window days it affects.

        Fills in ``id`` (when empty), ``recorded_at`` (now, when empty) and
        ``recorded_by`` (``by``); an :class:`Absence` without ``notified_on``
        and not a no-show is taken as notified today. Returns the stored
        record. Raises, storing nothing, for unknown ids, an exception on a
        date when its program has no instance, or a participant who is not
        on that instance.
        """
        if not isinstance(record, Intent | OneOff):
            hint = ": retract a record with Loom.retract" if isinstance(record, Retraction) else ""
            raise InvalidRecordError(
                f"record takes an intent or an exception, not {type(record).__name__}{hint}",
                field="record",
            )
        now = self.now()
        record = self._stamp(record, now, by)
        window = self.window(now)
        inputs = self._inputs_around(window, record)
        validate_record(record, inputs)
        revision = self.store.add_record(record)
        self._advance(revision, add=record)
        days = affected_days(record, inputs, window.start, window.end)
        self._plan_days(sorted(days), now)
        self._audit(now, record.recorded_by, "record", record.id, describe(record))
        return record

    def retract(self, record_id: str, *, by: str = "", reason: str = "") -> Retraction:
        """Withdraw an intent or exception. The record is kept; a retraction is added.

        Re-plans the window days the record affected. Raises
        :class:`UnknownRecordError` or :class:`AlreadyRetractedError`.
        """
        now = self.now()
        target = self.store.get_record(record_id)
        window = self.window(now)
        inputs = self._inputs_around(window, target)
        retraction = Retraction(
            id=self._new_id(),
            target_id=record_id,
            recorded_at=now.astimezone(UTC),
            recorded_by=by,
            reason=reason,
        )
        self._advance(self.store.add_retraction(retraction), remove=target)
        self._plan_days(sorted(affected_days(target, inputs, window.start, window.end)), now)
        self._audit(now, by, "retract", record_id, reason or describe(target))
        return retraction

    def load(
        self,
        organisation: Organisation,
        records: Iterable[Record] = (),
        *,
        weeks: int | None = None,
        by: str = "",
    ) -> None:
        """Load reference data and many records at once, then plan the window.

        Every record is validated as :meth:`record` would (one-offs against
        the plans that all the loaded intents give); on any error nothing
        from this call is stored.
        """
        now = self.now()
        if weeks is not None:
            check_weeks(weeks)
        # records given without recorded_at count as recorded in list order
        stamped = [
            self._stamp(r, now, by, at=now + timedelta(microseconds=n))
            for n, r in enumerate(records)
        ]
        taken = {r.id for r in self.store.records()} | {r.id for r in self.store.retractions()}
        for r in stamped:
            if r.id in taken:
                raise DuplicateIdError("record", r.id)
            taken.add(r.id)
        check_references(organisation, (*self.store.records(), *stamped))
        existing = self.store.load_records(date.min, date.max)
        trial = PlanInputs(
            organisation=organisation,
            timezone=self.timezone,
            transport=self.transport,
            catalogue=self.catalogue,
            intents=[*existing.intents, *(r for r in stamped if isinstance(r, Intent))],
            one_offs=[*existing.one_offs, *(r for r in stamped if isinstance(r, OneOff))],
        )
        for r in stamped:
            validate_record(r, trial)
        self.store.set_organisation(organisation)
        for r in stamped:
            self.store.add_record(r)
        if weeks is not None:
            self.store.set_window_weeks(weeks)
        window = self.window(now)
        self.store.delete_days(window.end + _ONE_DAY, None)
        planned = self._plan_days(list(window.days()), now, many=True)
        self._audit(
            now,
            by,
            "load",
            organisation.name,
            f"{len(stamped)} records; {len(planned)} days planned",
        )

    def _stamp(self, record: Record, now: datetime, by: str, at: datetime | None = None) -> Record:
        changes: dict[str, Any] = {}
        if not record.id:
            changes["id"] = self._new_id()
        if record.recorded_at is None:
            changes["recorded_at"] = (at or now).astimezone(UTC)
        if by or not record.recorded_by:
            changes["recorded_by"] = by or record.recorded_by
        if isinstance(record, Absence) and record.notified_on is None and not record.no_show:
            changes["notified_on"] = min(self.today(now), record.date)
        return attrs.evolve(record, **changes) if changes else record

    # ------------------------------------------------------------------ rolling

    def roll(
        self,
        now: datetime | None = None,
        *,
        by: str = "roller",
        trigger: str = "roll",
        until: Callable[[], bool] | None = None,
    ) -> RollEntry:
        """Bring the window up to date at ``now`` (default: the clock).

        Plans every window day that is missing or stale, drops planned days
        beyond the window's end, purges history older than the retention
        period, and logs the roll. Idempotent: rolling again changes nothing;
        after missed nights one roll catches up. On failure the roll is
        logged as failed and the error re-raised; days already written are
        whole and correct.

        ``trigger`` says why (``roll``, ``verify``, ``retry`` or ``manual``); a
        ``manual`` roll, asked for by ``by``, is also written to the audit log.

        ``until`` is asked between days (a runner passes its stop signal):
        when it returns true the roll ends early, logged as ``stopped``; the
        days written are whole and the next roll plans the rest.
        """
        now = self._at(now)
        today = self.today(now)
        window = self.window(now)
        started = _time.perf_counter()
        with self.store.roll_lock():
            try:
                dropped = self.store.delete_days(window.end + _ONE_DAY, None)
                purged = 0
                if self.retention_days is not None:
                    purged = self.store.delete_days(
                        None, today - timedelta(days=self.retention_days + 1)
                    )
                todo = self._days_to_plan(window)
                planned = self._plan_days(todo, now, until, many=True)
            except Exception as e:
                self.store.append_roll(
                    self._roll_entry(
                        now,
                        started,
                        today,
                        window,
                        "failed",
                        trigger,
                        by,
                        error=f"{type(e).__name__}: {e}",
                    )
                )
                raise
            entry = self._roll_entry(
                now,
                started,
                today,
                window,
                "ok" if len(planned) == len(todo) else "stopped",
                trigger,
                by,
                planned=len(planned),
                dropped=dropped,
                purged=purged,
            )
            self.store.append_roll(entry)
            if trigger == "manual":  # an operator asked: audited like any change
                detail = f"{entry.days_planned} days planned, status {entry.status}"
                self._audit(now, by, "roll", f"{window.start}..{window.end}", detail)
            return entry

    def _roll_entry(
        self,
        now: datetime,
        started: float,
        today: date,
        window: Window,
        status: str,
        trigger: str,
        by: str,
        *,
        planned: int = 0,
        dropped: int = 0,
        purged: int = 0,
        error: str = "",
    ) -> RollEntry:
        elapsed = timedelta(seconds=_time.perf_counter() - started)
        return RollEntry(
            started_at=now,
            finished_at=now + elapsed,
            today=today,
            window_start=window.start,
            window_end=window.end,
            status=status,
            trigger=trigger,
            by=by,
            days_planned=planned,
            days_dropped=dropped,
            days_purged=purged,
            error=error,
        )

    def regenerate_day(self, day: date, *, by: str = "", now: datetime | None = None) -> DayPlan:
        """Re-plan one day now, past days included (an audited operator action).

        Billing lines already exported are never changed: when the new plan
        bills the day differently, the ledger keeps the exported lines and
        the audit entry says so (see :meth:`ledger_conflicts`). Holds the
        roll lock, so it waits for a roll or a claim export in progress.
        Raises :class:`DayOutsideWindowError` for a day after the window's end.
        """
        now = self._at(now)
        window = self.window(now)
        if day > window.end:
            raise DayOutsideWindowError(day, f"after the window's end {window.end.isoformat()}")
        with self.store.roll_lock():  # never between a claim export's reading and marking
            self._plan_days([day], now)
        detail = "history day" if day < window.start else "window day"
        if self.ledger_conflicts(day, day):
            detail += "; billing differs from the exported claim lines, which are kept"
        self._audit(now, by, "regenerate", day.isoformat(), detail)
        stored = self.store.get_day(day)
        assert stored is not None
        return stored.plan

    # ------------------------------------------------------------------ billing

    def billing_lines(self, start: date, end: date) -> list[BillingLine]:
        """Billing lines of ``[start, end]`` from the permanent ledger.

        The ledger holds each day's lines as last planned, and keeps them
        when the planned day itself is purged; lines exported in a claim
        file stay as they were exported.
        """
        if end < start:
            raise InvalidDateRangeError(start, end, "billing range")
        return [line for day in self.store.ledger(start, end) for line in day.lines]

    def export_claims(
        self,
        start: date,
        end: date,
        *,
        by: str = "",
        prefix: str = "claims",
        allow_provisional: bool = False,
        now: datetime | None = None,
    ) -> list[ClaimFile]:
        """Claim files (NDIS bulk payment request CSV) for the days ``[start, end]``.

        Only days that have passed can be claimed. The ledger days of the
        range are marked exported (audited, under a new export id), so their
        lines never change afterwards; lines exported before are included
        again only if asked for again (a claim file can be re-made). Raises
        :class:`InvalidClaimError` for a bad registration number, ABN, NDIS
        number or a provisional price (then nothing is marked), and
        :class:`DayOutsideWindowError` when ``end`` is not in the past. Holds
        the roll lock while it reads and marks the lines, so a day
        regenerated meanwhile (by any process on the store) waits.
        """
        now = self._at(now)
        if end < start:
            raise InvalidDateRangeError(start, end, "claims range")
        if end >= self.today(now):
            raise DayOutsideWindowError(end, "only days that have passed can be claimed")
        org = self.store.organisation()
        # under the roll lock, as regenerate_day: the days marked exported
        # hold the very lines written into the files
        with self.store.roll_lock():
            files = bulk_claim_files(
                self.billing_lines(start, end),
                registration_number=org.registration_number,
                abn=org.abn,
                prefix=prefix,
                allow_provisional=allow_provisional,
            )
            export_id = self._new_id()
            marked = self.store.mark_exported(start, end, export_id, now.astimezone(UTC))
        self._audit(
            now,
            by,
            "export-claims",
            export_id,
            f"{start.isoformat()} to {end.isoformat()}: {len(files)} files, {marked} days marked",
        )
        return files

    def ledger_conflicts(self, start: date, end: date) -> list[date]:
        """Exported days whose stored plan now bills differently from the export."""
        out = []
        for kept in self.store.ledger(start, end):
            if not kept.exported:
                continue
            stored = self.store.get_day(kept.date)
            lines = (
                ()
                if stored is None
                else tuple(line for i in stored.plan.instances for line in i.billing_lines)
            )
            if stored is not None and lines != kept.lines:
                out.append(kept.date)
        return out

    def purge(self, before: date, *, by: str = "", now: datetime | None = None) -> int:
        """Delete planned days before ``before`` (history only). Records are never purged.

        Raises :class:`DayOutsideWindowError` when ``before`` is after today.
        """
        now = self._at(now)
        today = self.today(now)
        if before > today:
            raise DayOutsideWindowError(before, f"purging would delete window days from {today}")
        count = self.store.delete_days(None, before - _ONE_DAY)
        self._audit(now, by, "purge", before.isoformat(), f"{count} days deleted")
        return count

    def health(self, now: datetime | None = None) -> Health:
        """Last roll, next roll, missing and stale days, and a status for the banner.

        ``window`` is today's window. Before today's roll time its last day is
        not due yet, so it is not counted missing: a host checking at 00:01
        does not see a false "late".
        """
        now = self._at(now)
        local = now.astimezone(self._zone)
        window = window_for(local.date(), self.window_size())
        revisions = self.store.day_revisions(window.start, window.end)
        rolls_at = local_moment(local.date(), self.roll_at, self._zone)
        due_until = window.end if now.timestamp() >= rolls_at.timestamp() else window.end - _ONE_DAY
        missing = tuple(d for d in window.days() if d not in revisions and d <= due_until)
        stale = tuple(sorted(self._stale(window, revisions)))
        log = self.store.roll_log()
        last = log[-1] if log else None
        last_ok = next((e for e in reversed(log) if e.status == "ok"), None)
        if last is not None and last.status == "failed":
            status = "failed"
        elif missing or stale:
            status = "late"
        else:
            status = "ok"
        return Health(
            now=now,
            today=local.date(),
            window=window,
            status=status,
            last_roll=last,
            last_success=last_ok,
            next_roll_at=next_local_time(now, self.roll_at, self._zone),
            next_verify_at=next_local_time(now, self.verify_at, self._zone),
            missing_days=missing,
            stale_days=stale,
            retry_at=last.finished_at + self.retry_after if status == "failed" and last else None,
        )

    def verify(
        self,
        now: datetime | None = None,
        *,
        by: str = "verifier",
        until: Callable[[], bool] | None = None,
    ) -> Health:
        """The 09:00 check: if the window is incomplete, stale or the last roll failed, roll.

        Returns the health after any roll. A roll that fails again raises.
        ``until`` is passed to :meth:`roll`.
        """
        now = self._at(now)
        health = self.health(now)
        if health.status != "ok":
            self.roll(now, by=by, trigger="verify", until=until)
            health = self.health(now)
        return health

    # ------------------------------------------------------------------ internals

    def _inputs(self, start: date, end: date) -> PlanInputs:
        revision = self.store.revision()
        if self._cache is not None and self._cache[0] < revision:
            self._catch_up()
        cached = self._cache
        if cached is not None and cached[0] == revision and cached[1] <= start:
            if end <= cached[2]:
                return cached[3]
            if end - cached[1] <= _MOST_CACHED:
                # the window moved on a day or two: load only the new days
                inputs = self._extend(cached[3], cached[2] + _ONE_DAY, end)
                self._cache = (revision, cached[1], end, inputs)
                return inputs
            # moved on too far: reload, for the days up to ``end`` that the
            # longest window could hold as well (the next edit asks for them)
            start = min(start, max(cached[1], end - _LONGEST_WINDOW))
        records = self.store.load_records(start, end)
        inputs = PlanInputs(
            organisation=self.store.organisation(),
            timezone=self.timezone,
            transport=self.transport,
            catalogue=self.catalogue,
            intents=records.intents,
            one_offs=records.one_offs,
        )
        if cached is not None and cached[0] == revision:
            # the same records, over other dates (the window moved on too
            # far): what was planned of the days both hold still holds
            inputs._carry_memos(cached[3], max(start, cached[1]), min(end, cached[2]))
        self._cache = (revision, start, end, inputs)
        return inputs

    def _extend(self, inputs: PlanInputs, start: date, end: date) -> PlanInputs:
        """``inputs`` with the records for ``[start, end]`` it does not hold
        yet; ``inputs`` hold every record of the days before ``start``, so
        what they remember is shared when nothing they planned can change
        (see :meth:`PlanInputs._extended`)."""
        held = inputs._ids
        records = self.store.load_records(start, end)
        new: list[Intent | OneOff] = [r for r in records.intents if r.id not in held]
        new += [r for r in records.one_offs if r.id not in held]
        return inputs._extended(new, after=start - _ONE_DAY)

    def _advance(
        self, revision: int, *, add: Record | None = None, remove: Record | None = None
    ) -> None:
        """Bring the cached inputs to ``revision``, this one change later.

        Only when the cache holds the revision just before (no other writer
        came in between); otherwise the next :meth:`_inputs` catches up
        (:meth:`_catch_up`) or reloads. A record
        outside the cached dates is added all the same (more records than
        needed change no plan), except a move onto those dates from a date
        outside them, whose origin's records the cache may lack. A record
        the cache holds already is not added again: inputs loaded while
        another writer added records hold some of the changes after the
        revision they were loaded at.
        """
        cached = self._cache
        if cached is None or cached[0] != revision - 1:
            return
        _, start, end, inputs = cached
        if isinstance(add, Reschedule) and not start <= add.date <= end:
            self._cache = None
            return
        if add is not None and add.id in inputs._ids:
            add = None  # loaded with the inputs already
        if remove is not None and remove.id not in inputs._ids:
            remove = None  # outside the cached dates: nothing to take out
        self._cache = (
            revision,
            start,
            end,
            inputs.updated(
                add=(add,) if isinstance(add, Intent | OneOff) else (),
                remove=(remove,) if remove is not None else (),
            ),
        )

    def _catch_up(self) -> None:
        """Bring the cached inputs up to the store with the records and
        retractions other writers (another process) added since, as
        :meth:`_advance` does for this one's: what was worked out for the
        days they do not touch is kept. A new organisation, or more than
        ``_MOST_CAUGHT_UP`` changes, leaves the inputs to be reloaded.
        """
        cached = self._cache
        assert cached is not None
        changes = self.store.changes_since(cached[0])
        if len(changes) > _MOST_CAUGHT_UP or any(c.kind == "organisation" for c in changes):
            self._cache = None
            return
        for change in changes:
            if change.kind == "record":
                self._advance(change.revision, add=change.record)
            else:
                self._advance(change.revision, remove=change.record)
            if self._cache is None:  # a change the cache cannot take: reloaded
                return

    def _inputs_around(self, window: Window, record: Record) -> PlanInputs:
        """Inputs for the window and the dates a record names (to validate it)."""
        days = record.dates() if isinstance(record, OneOff) else ()
        return self._inputs(min((window.start, *days)), max((window.end, *days)))

    def _plan_days(
        self,
        days: Iterable[date],
        now: datetime,
        until: Callable[[], bool] | None = None,
        *,
        many: bool = False,
    ) -> list[date]:
        """Plan and write ``days`` in ascending order; the days written.
        ``many`` as for :meth:`_plans`."""
        days = sorted(days)
        if not days:
            return []
        revision = self.store.revision()
        plans = self._plans(days, many=many)
        with _Writer(self.store) as write:
            try:
                for n, _ in enumerate(days):
                    if until is not None and until():
                        return days[:n]  # written on leaving the block
                    write(PlannedDay(plan=next(plans), revision=revision, planned_at=now))
            finally:
                plans.close()
        return days

    def _plans(self, days: list[date], *, many: bool) -> Generator[DayPlan, None, None]:
        """The plans of ``days`` (ascending), from the cached inputs. ``many``:
        a window's worth planned afresh, worth the worker processes (if
        any) when it is two weeks or more."""
        inputs = self._inputs(days[0], days[-1])
        workers = self.workers if many and len(days) >= _IN_WORKERS_FROM else 1
        return plan_days(inputs, days, workers=workers)

    def _days_to_plan(self, window: Window) -> list[date]:
        revisions = self.store.day_revisions(window.start, window.end)
        missing = [d for d in window.days() if d not in revisions]
        return sorted({*missing, *self._stale(window, revisions)})

    def _stale(self, window: Window, revisions: dict[date, int]) -> set[date]:
        if not revisions:
            return set()
        changes = self.store.changes_since(min(revisions.values()))
        if not changes:
            return set()
        inputs = self._inputs(window.start, window.end)
        stale: set[date] = set()
        for change in changes:
            for d in change_days(change, inputs, window):
                if d in revisions and revisions[d] < change.revision:
                    stale.add(d)
        return stale

    def _audit(self, now: datetime, by: str, action: str, subject: str, detail: str) -> None:
        self.store.append_audit(
            AuditEntry(at=now.astimezone(UTC), by=by, action=action, subject=subject, detail=detail)
        )


class _Writer:
    """``store.put_days`` for the days given, in order, ``_WRITE_AT_MOST`` at
    a time: a store that writes a batch in one transaction (as
    :class:`loomcore_pg.PostgresStore` does) makes one per batch, with one
    statement per table, not one per day.

    Days are written once a batch is full and on leaving the block, even
    when the block raised (the days given are right; a write's error is
    then raised with the block's as its context). A write's error leaves
    the block, so no later day is planned or written.
    """

    def __init__(self, store: Store) -> None:
        self._put = store.put_days
        self._waiting: list[PlannedDay] = []

    def __call__(self, day: PlannedDay) -> None:
        self._waiting.append(day)
        if len(self._waiting) >= _WRITE_AT_MOST:
            self._write()

    def _write(self) -> None:
        days, self._waiting = self._waiting, []
        if days:
            self._put(days)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *_: object) -> None:
        self._write()
