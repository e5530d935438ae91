"""The in-memory store: the embedded default, and a real implementation.

Thread-safe (one re-entrant lock for data, another for rolls), with the same
integrity errors as any other store. Values are immutable, so returning them
never lets a caller change what is stored.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime

import attrs

from ._errors import AlreadyRetractedError, DuplicateIdError, UnknownRecordError
from ._model import Organisation
from ._records import Intent, OneOff, Record, Reschedule, Retraction
from ._store import AuditEntry, Change, LedgerDay, PlannedDay, RollEntry, Store, StoredRecords

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Keeps everything in process memory. Nothing survives the process."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._roll_lock = threading.Lock()
        self._organisation = Organisation()
        self._records: dict[str, Record] = {}
        self._retractions: dict[str, Retraction] = {}  # by target id
        self._retraction_ids: set[str] = set()
        self._changes: list[Change] = []
        self._days: dict[date, PlannedDay] = {}
        self._day_keys: list[date] = []
        self._weeks: int | None = None
        self._ledger: dict[date, LedgerDay] = {}
        self._exports: set[str] = set()
        self._audit: list[AuditEntry] = []
        self._rolls: list[RollEntry] = []

    # ----------------------------------------------------------- organisation

    def organisation(self) -> Organisation:
        with self._lock:
            return self._organisation

    def set_organisation(self, organisation: Organisation) -> int:
        with self._lock:
            self._organisation = organisation
            return self._change("organisation", None)

    # ----------------------------------------------------------- records

    def _change(self, kind: str, record: Record | None) -> int:
        revision = len(self._changes) + 1
        self._changes.append(Change(revision=revision, kind=kind, record=record))
        return revision

    def _taken(self, id: str) -> bool:
        return id in self._records or id in self._retraction_ids

    def add_record(self, record: Record) -> int:
        with self._lock:
            if self._taken(record.id):
                raise DuplicateIdError("record", record.id)
            self._records[record.id] = record
            return self._change("record", record)

    def add_retraction(self, retraction: Retraction) -> int:
        with self._lock:
            target = self._records.get(retraction.target_id)
            if target is None:
                raise UnknownRecordError(retraction.target_id)
            if retraction.target_id in self._retractions:
                raise AlreadyRetractedError(retraction.target_id)
            if self._taken(retraction.id):
                raise DuplicateIdError("retraction", retraction.id)
            self._retractions[retraction.target_id] = retraction
            self._retraction_ids.add(retraction.id)
            return self._change("retraction", target)

    def get_record(self, record_id: str) -> Record:
        with self._lock:
            try:
                return self._records[record_id]
            except KeyError:
                raise UnknownRecordError(record_id) from None

    def records(self) -> tuple[Record, ...]:
        with self._lock:
            return tuple(self._records.values())

    def retractions(self) -> tuple[Retraction, ...]:
        with self._lock:
            return tuple(self._retractions.values())

    def load_records(self, start: date, end: date) -> StoredRecords:
        with self._lock:
            active = [r for r in self._records.values() if r.id not in self._retractions]
        one_offs = [
            r for r in active if isinstance(r, OneOff) and any(start <= d <= end for d in r.dates())
        ]
        origins = {(r.program_id, r.date) for r in one_offs if isinstance(r, Reschedule)}
        # a later move of an origin date wins over the one landing in range
        one_offs += [
            r
            for r in active
            if isinstance(r, OneOff)
            and (r.program_id, r.date) in origins
            and not any(start <= d <= end for d in r.dates())
        ]
        intents = [
            r
            for r in active
            if isinstance(r, Intent)
            and (
                (r.start <= end and (r.end is None or r.end >= start))
                or any(p == r.program_id and r.covers(d) for p, d in origins)
            )
        ]
        return StoredRecords(intents=tuple(intents), one_offs=tuple(one_offs))

    def revision(self) -> int:
        with self._lock:
            return len(self._changes)

    def changes_since(self, revision: int) -> tuple[Change, ...]:
        with self._lock:
            return tuple(self._changes[max(revision, 0) :])

    # ----------------------------------------------------------- planned days

    def put_day(self, day: PlannedDay) -> bool:
        with self._lock:
            stored = self._days.get(day.date)
            if stored is None:
                insort(self._day_keys, day.date)
            elif stored.revision > day.revision:
                return False
            self._days[day.date] = day
            kept = self._ledger.get(day.date)
            if kept is None or not kept.exported:
                lines = tuple(line for i in day.plan.instances for line in i.billing_lines)
                self._ledger[day.date] = LedgerDay(date=day.date, lines=lines)
            return True

    def get_day(self, day: date) -> PlannedDay | None:
        with self._lock:
            return self._days.get(day)

    def _range(self, start: date | None, end: date | None) -> list[date]:
        lo = 0 if start is None else bisect_left(self._day_keys, start)
        hi = len(self._day_keys) if end is None else bisect_right(self._day_keys, end)
        return self._day_keys[lo:hi]

    def planned_days(
        self, start: date | None = None, end: date | None = None
    ) -> tuple[PlannedDay, ...]:
        with self._lock:
            return tuple(self._days[d] for d in self._range(start, end))

    def delete_days(self, start: date | None = None, end: date | None = None) -> int:
        with self._lock:
            doomed = self._range(start, end)
            for d in doomed:
                del self._days[d]
            gone = set(doomed)
            self._day_keys = [d for d in self._day_keys if d not in gone]
            return len(doomed)

    # ----------------------------------------------------------- billing ledger

    def ledger(self, start: date | None = None, end: date | None = None) -> tuple[LedgerDay, ...]:
        with self._lock:
            return tuple(
                self._ledger[d]
                for d in sorted(self._ledger)
                if (start is None or start <= d) and (end is None or d <= end)
            )

    def mark_exported(self, start: date, end: date, export_id: str, at: datetime) -> int:
        with self._lock:
            if export_id in self._exports:
                raise DuplicateIdError("export", export_id)
            self._exports.add(export_id)
            marked = 0
            for d, kept in self._ledger.items():
                if start <= d <= end and not kept.exported:
                    self._ledger[d] = attrs.evolve(kept, export_id=export_id, exported_at=at)
                    marked += 1
            return marked

    # ----------------------------------------------------------- settings and logs

    def window_weeks(self) -> int | None:
        with self._lock:
            return self._weeks

    def set_window_weeks(self, weeks: int) -> None:
        with self._lock:
            self._weeks = weeks

    def append_audit(self, entry: AuditEntry) -> None:
        with self._lock:
            self._audit.append(entry)

    def audit_log(self) -> tuple[AuditEntry, ...]:
        with self._lock:
            return tuple(self._audit)

    def append_roll(self, entry: RollEntry) -> None:
        with self._lock:
            self._rolls.append(entry)

    def roll_log(self) -> tuple[RollEntry, ...]:
        with self._lock:
            return tuple(self._rolls)

    def roll_lock(self) -> AbstractContextManager[None]:
        return self._holding_roll_lock()

    @contextmanager
    def _holding_roll_lock(self) -> Iterator[None]:
        with self._roll_lock:
            yield
