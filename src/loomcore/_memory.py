"""The in-memory store: the embedded default, and a real implementation.

Thread-safe (one re-entrant lock for data, another for rolls), with the same
integrity errors as any other store. Values are immutable, so returning them
never lets a caller change what is stored.

``load_records`` answers from indexes rather than a scan of every record:
one-offs by each date they name and by (program, date), and intents by
start date in classes of span length (an intent up to ``L`` days long that
overlaps ``[start, end]`` starts in ``[start - L, end]``), with open-ended
and very long intents kept apart. Answers keep the order records were added.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from itertools import chain, count

import attrs

from ._errors import AlreadyRetractedError, DuplicateIdError, UnknownRecordError
from ._model import Organisation
from ._records import Intent, OneOff, Record, Reschedule, Retraction
from ._store import AuditEntry, Change, LedgerDay, PlannedDay, RollEntry, Store, StoredRecords

__all__ = ["MemoryStore"]

#: Span classes (days) of the intent index; longer or open-ended intents are
#: checked one by one.
_SPANS = (7, 31, 92, 366, 1096)


class _Buckets:
    """Items by an integer key (a date's ordinal): one list per key, in the
    order added, and the keys sorted when next read after a new one.

    Adding costs an append; nothing is sorted but the distinct keys (a few
    thousand dates, where the items are hundreds of thousands of records).
    """

    __slots__ = ("_buckets", "_keys", "_sorted")

    def __init__(self) -> None:
        self._buckets: dict[int, list[Record]] = {}
        self._keys: list[int] = []
        self._sorted = True

    def add(self, key: int, item: Record) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = [item]
            self._sorted = False
        else:
            bucket.append(item)

    def between(self, lo: int, hi: int) -> Iterator[Record]:
        """The items with keys in ``[lo, hi]``, by key, each key's in the order added."""
        if not self._sorted:
            self._keys = sorted(self._buckets)
            self._sorted = True
        keys = self._keys
        span = keys[bisect_left(keys, lo) : bisect_right(keys, hi)]
        return chain.from_iterable(map(self._buckets.__getitem__, span))


class _RecordIndex:
    """Where ``load_records`` looks: active or not, in the order records were added."""

    def __init__(self) -> None:
        self.seq: dict[str, int] = {}
        self._spans = [_Buckets() for _ in _SPANS]
        self._long: list[Intent] = []
        self._one_off_days = _Buckets()
        self._one_offs_on: dict[tuple[str, date], list[OneOff]] = {}

    def add(self, record: Record) -> None:
        self.seq[record.id] = len(self.seq)
        if isinstance(record, OneOff):
            for d in set(record.dates()):
                self._one_off_days.add(d.toordinal(), record)
            self._one_offs_on.setdefault((record.program_id, record.date), []).append(record)
            return
        if record.end is not None:
            length = record.end.toordinal() - record.start.toordinal()
            for n, limit in enumerate(_SPANS):
                if length <= limit:
                    self._spans[n].add(record.start.toordinal(), record)
                    return
        self._long.append(record)

    def intents(self, start: date, end: date) -> Iterator[Intent]:
        """Intents overlapping ``[start, end]``, in no particular order."""
        lo, hi = start.toordinal(), end.toordinal()
        for limit, spans in zip(_SPANS, self._spans, strict=True):
            for r in spans.between(lo - limit, hi):
                if isinstance(r, Intent) and r.end is not None and r.end >= start:
                    yield r
        for r in self._long:
            if r.start <= end and (r.end is None or r.end >= start):
                yield r

    def one_offs(self, start: date, end: date) -> list[OneOff]:
        """One-offs naming a date in ``[start, end]``, once each, in no particular order."""
        found = self._one_off_days.between(start.toordinal(), end.toordinal())
        unique = {r.id: r for r in found if isinstance(r, OneOff)}
        return list(unique.values())

    def one_offs_on(self, program_id: str, day: date) -> list[OneOff]:
        return self._one_offs_on.get((program_id, day), [])


class MemoryStore(Store):
    """Keeps everything in process memory. Nothing survives the process."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._roll_lock = threading.Lock()
        self._organisation = Organisation()
        self._records: dict[str, Record] = {}
        self._index = _RecordIndex()
        self._retractions: dict[str, Retraction] = {}  # by target id
        self._retraction_ids: set[str] = set()
        # the change log as two columns, kind and record id (None for an
        # organisation), made into Change values when read: hundreds of
        # thousands of strings the garbage collector need not look at
        self._change_kinds: list[str] = []
        self._change_ids: list[str | None] = []
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
        self._change_kinds.append(kind)
        self._change_ids.append(None if record is None else record.id)
        return len(self._change_kinds)

    def _taken(self, id: str) -> bool:
        return id in self._records or id in self._retraction_ids

    def add_record(self, record: Record) -> int:
        with self._lock:
            if self._taken(record.id):
                raise DuplicateIdError("record", record.id)
            self._records[record.id] = record
            self._index.add(record)
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
            index, retracted = self._index, self._retractions
            one_offs = [r for r in index.one_offs(start, end) if r.id not in retracted]
            origins = {(r.program_id, r.date) for r in one_offs if isinstance(r, Reschedule)}
            # a later move of an origin date wins over the one landing in range
            seen = {r.id for r in one_offs}
            for program_id, day in origins:
                for o in index.one_offs_on(program_id, day):
                    if o.id not in seen and o.id not in retracted:
                        seen.add(o.id)
                        one_offs.append(o)
            intents = {r.id: r for r in index.intents(start, end) if r.id not in retracted}
            for program_id, day in origins:
                for i in index.intents(day, day):
                    if i.program_id == program_id and i.id not in retracted:
                        intents[i.id] = i
            order = index.seq
            return StoredRecords(
                intents=tuple(sorted(intents.values(), key=lambda r: order[r.id])),
                one_offs=tuple(sorted(one_offs, key=lambda r: order[r.id])),
            )

    def revision(self) -> int:
        with self._lock:
            return len(self._change_kinds)

    def changes_since(self, revision: int) -> tuple[Change, ...]:
        with self._lock:
            first = max(revision, 0)
            records = self._records
            return tuple(
                Change(revision=n, kind=kind, record=None if id is None else records[id])
                for n, kind, id in zip(
                    count(first + 1),
                    self._change_kinds[first:],
                    self._change_ids[first:],
                    strict=False,
                )
            )

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
                lines = tuple(chain.from_iterable(i.billing_lines for i in day.plan.instances))
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

    def day_revisions(self, start: date | None = None, end: date | None = None) -> dict[date, int]:
        with self._lock:
            return {d: self._days[d].revision for d in self._range(start, end)}

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
