"""PostgresStore: the production store, on SQLAlchemy Core and psycopg 3.

Theory of operation
-------------------
1. Every change (record, retraction, organisation) takes a transaction-level
   advisory lock, then the next revision (``max + 1``) in
   ``tgl_loom_changes``. Changes therefore commit in revision order, which
   the service relies on: a day stamped with revision *r* reflects every
   change up to *r*.
2. Intents, exceptions, retractions and the logs are only ever inserted.
3. Days are written in batches, one transaction each (:meth:`put_days`):
   an upsert of their ``tgl_loom_days`` rows that keeps a later revision,
   then the instances, allocations, shifts, runs and ledger lines of the
   days written replaced, one statement per table for the whole batch.
   Every transaction that locks several days' rows (writing, deleting,
   marking exported) locks them in date order, so the roll, operator edits
   and exports wait for each other but cannot deadlock.
4. One roll at a time: a session-level advisory lock on a connection of its
   own, released when the roll ends or the connection dies.
5. Backend errors become loomcore's at one choke point, :func:`_translated`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from operator import attrgetter, itemgetter
from typing import Any

import attrs
import psycopg.errors as pg_errors
from psycopg.types.json import Jsonb
from sqlalchemy import (
    Connection,
    Date,
    Engine,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    create_engine,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from loomcore import (
    AlreadyRetractedError,
    AuditEntry,
    BillingLine,
    Change,
    DayPlan,
    DuplicateIdError,
    Instance,
    Intent,
    LedgerDay,
    LoomError,
    OneOff,
    Organisation,
    PlannedDay,
    PlanWarning,
    PriceCatalogue,
    PriceLimit,
    Record,
    Reschedule,
    Retraction,
    RollEntry,
    Store,
    StoredRecords,
    StoreError,
    StoreUnavailableError,
    SupportItem,
    UnknownRecordError,
)
from loomcore._serial import converter, structure

from ._migrate import SchemaVersionError, schema_version
from ._migrate import migrate as _migrate
from ._schema import SCHEMA_VERSION, build_metadata, span

__all__ = ["PostgresStore"]

_REVISION_LOCK = 0x6C6F6F6D_0002
_ROLL_LOCK = 0x6C6F6F6D_0003
_BATCH = 5_000  # records fetched by id in one query
_DAYS_SEEN = 400  # days whose rows a store remembers (a window is at most 112)
_T = build_metadata().tables
_CHANGES = _T["tgl_loom_changes"]
_INTENTS = _T["tgl_operator_intents"]
_EXCEPTIONS = _T["tgl_temporal_exceptions"]
_RETRACTIONS = _T["tgl_record_retractions"]
_DAYS = _T["tgl_loom_days"]
_INSTANCES = _T["tgl_loom_instances"]
_ALLOCATIONS = _T["tgl_loom_participant_allocations"]
_SHIFTS = _T["tgl_loom_staff_shifts"]
_RUNS = _T["tgl_loom_vehicle_runs"]
_EXPORTS = _T["tgl_billing_exports"]
_LEDGER = _T["tgl_billing_ledger"]
_LINES = _T["tgl_billing_lines"]
_ITEMS = _T["support_items"]
_LIMITS = _T["price_limits"]
_AUDIT = _T["tgl_loom_audit_log"]
_ROLLS = _T["tgl_loom_roll_log"]
_SETTINGS = _T["settings"]
_ORGANISATION = _T["organisation"]
_REFERENCE = ("venues", "participants", "staff", "vehicles", "programs")


def _url(dsn: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


@contextmanager
def _translated(**context: str) -> Iterator[None]:
    """The one place where driver errors become loomcore errors."""
    try:
        yield
    except LoomError:
        raise
    except sa_exc.IntegrityError as e:
        if isinstance(e.orig, pg_errors.UniqueViolation) and "id" in context:
            raise DuplicateIdError(context.get("kind", "record"), context["id"]) from e
        raise StoreError(f"integrity error: {e.orig}") from e
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as e:
        raise StoreUnavailableError(f"database unavailable: {e.orig}") from e
    except sa_exc.DBAPIError as e:
        if e.connection_invalidated:
            raise StoreUnavailableError(f"database connection lost: {e.orig}") from e
        raise StoreError(f"database error: {e.orig}") from e


class PostgresStore(Store):
    """A :class:`loomcore.Store` in a PostgreSQL database.

    ``engine`` is a SQLAlchemy engine on the psycopg 3 driver
    (``postgresql+psycopg://…``) or a DSN (``postgresql://…``, for which
    that driver is used). With ``migrate=True`` the schema is created or
    upgraded first; otherwise a database at another schema version is
    refused with :class:`SchemaVersionError`. An engine on another driver
    is refused with :class:`StoreError` (days are written with psycopg's
    ``COPY``).
    """

    def __init__(self, engine: Engine | str, *, migrate: bool = False) -> None:
        self.engine = (
            create_engine(_url(engine), pool_pre_ping=True) if isinstance(engine, str) else engine
        )
        dialect = self.engine.dialect
        if (dialect.name, dialect.driver) != ("postgresql", "psycopg"):
            raise StoreError(
                f"PostgresStore needs a postgresql+psycopg engine (psycopg 3), "
                f"got {dialect.name}+{dialect.driver}"
            )
        with _translated():
            if migrate:
                _migrate(self.engine)
            found = schema_version(self.engine)
        if found != SCHEMA_VERSION:
            raise SchemaVersionError(found, SCHEMA_VERSION, "run loomcore_pg.migrate(engine)")
        self._records_seen: dict[str, Record] = {}
        # the instance each row of a day holds, by row key, as this store
        # last wrote or read the day (a row's value never changes): the
        # days most recently written or read, enough for any window
        self._rows_seen: OrderedDict[date, dict[uuid.UUID, Instance]] = OrderedDict()
        self._rows_lock = threading.Lock()

    # ----------------------------------------------------------- helpers

    def _decoded(
        self, conn: Connection, tables: Sequence[Table], ids: Sequence[str]
    ) -> list[Record]:
        """The records with ``ids``, in that order, looked for in ``tables`` in turn.

        A stored record never changes, so each is read and decoded once per
        store and remembered by id: loading a window again (every edit made
        elsewhere, every night) fetches only the records not seen before.
        Each query looks records up by id, whatever the planner knows of
        the tables' sizes.
        """
        known = self._records_seen
        missing = list(dict.fromkeys(i for i in ids if i not in known))
        for table in tables:
            for n in range(0, len(missing), _BATCH):
                wanted = bindparam("ids", missing[n : n + _BATCH], type_=ARRAY(Text))
                rows = conn.execute(
                    select(table.c.id, table.c.data).where(table.c.id == any_(wanted))
                )
                for r in rows:
                    known[r.id] = _record(r.data)
            missing = [i for i in missing if i not in known]
        return [known[i] for i in ids]

    @contextmanager
    def _tx(self, **context: str) -> Iterator[Connection]:
        with _translated(**context), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read-only transaction whose statements all see one snapshot
        (``REPEATABLE READ``): a read of several tables is of one moment,
        never of a day's row from one write and its instances from another."""
        with _translated(), self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(text("SET TRANSACTION READ ONLY"))
                yield conn

    def _next_revision(
        self, conn: Connection, kind: str, record_id: str | None, own_id: str | None
    ) -> int:
        conn.execute(select(func.pg_advisory_xact_lock(_REVISION_LOCK)))
        revision = (
            int(conn.execute(select(func.coalesce(func.max(_CHANGES.c.revision), 0))).scalar_one())
            + 1
        )
        conn.execute(
            insert(_CHANGES).values(
                revision=revision, kind=kind, record_id=record_id, own_id=own_id
            )
        )
        return revision

    # ----------------------------------------------------------- organisation

    def organisation(self) -> Organisation:
        with self._tx() as conn:
            row = conn.execute(select(_ORGANISATION)).first()
            head = {
                "name": row.name if row else "",
                "registration_number": row.registration_number if row else "",
                "abn": row.abn if row else "",
            }
            parts: dict[str, list[Any]] = {}
            for table in _REFERENCE:
                rows = conn.execute(select(_T[table].c.data).order_by(_T[table].c.id))
                parts[table] = [r.data for r in rows]
        return structure({**head, **parts}, Organisation)

    def set_organisation(self, organisation: Organisation) -> int:
        data = converter.unstructure(organisation)
        with self._tx() as conn:
            revision = self._next_revision(conn, "organisation", None, None)
            conn.execute(delete(_ORGANISATION))
            conn.execute(
                insert(_ORGANISATION).values(
                    key=1,
                    name=organisation.name,
                    registration_number=organisation.registration_number,
                    abn=organisation.abn,
                )
            )
            # programs first out and last in: they reference venues
            for table in reversed(_REFERENCE):
                ids = [item["id"] for item in data[table]]
                conn.execute(delete(_T[table]).where(_T[table].c.id.notin_(ids)))
            for table in _REFERENCE:
                for item in data[table]:
                    values = _reference_row(table, item)
                    stmt = pg_insert(_T[table]).values(**values)
                    conn.execute(
                        stmt.on_conflict_do_update(index_elements=["id"], set_=dict(values))
                    )
        return revision

    # ----------------------------------------------------------- records

    def add_record(self, record: Record) -> int:
        data = converter.unstructure(record, Record)
        with self._tx(id=record.id, kind="record") as conn:
            revision = self._next_revision(conn, "record", record.id, record.id)
            if isinstance(record, Intent):
                conn.execute(insert(_INTENTS).values(**_intent_row(record, data, revision)))
            else:
                conn.execute(insert(_EXCEPTIONS).values(**_exception_row(record, data, revision)))
        return revision

    def add_retraction(self, retraction: Retraction) -> int:
        with self._tx(id=retraction.id, kind="retraction") as conn:
            conn.execute(select(func.pg_advisory_xact_lock(_REVISION_LOCK)))
            if self._record_data(conn, retraction.target_id) is None:
                raise UnknownRecordError(retraction.target_id)
            taken = select(_RETRACTIONS.c.id).where(
                _RETRACTIONS.c.target_id == retraction.target_id
            )
            if conn.execute(taken).first() is not None:
                raise AlreadyRetractedError(retraction.target_id)
            revision = self._next_revision(conn, "retraction", retraction.target_id, retraction.id)
            conn.execute(
                insert(_RETRACTIONS).values(
                    id=retraction.id,
                    target_id=retraction.target_id,
                    revision=revision,
                    recorded_at=retraction.recorded_at,
                    recorded_by=retraction.recorded_by,
                    reason=retraction.reason,
                )
            )
        return revision

    def _record_data(self, conn: Connection, record_id: str) -> Any:
        for table in (_INTENTS, _EXCEPTIONS):
            row = conn.execute(select(table.c.data).where(table.c.id == record_id)).first()
            if row is not None:
                return row.data
        return None

    def get_record(self, record_id: str) -> Record:
        with self._tx() as conn:
            data = self._record_data(conn, record_id)
        if data is None:
            raise UnknownRecordError(record_id)
        return _record(data)

    def records(self) -> tuple[Record, ...]:
        with self._tx() as conn:
            rows = conn.execute(
                select(_INTENTS.c.revision, _INTENTS.c.data)
                .union_all(select(_EXCEPTIONS.c.revision, _EXCEPTIONS.c.data))
                .order_by("revision")
            )
            return tuple(_record(r.data) for r in rows)

    def retractions(self) -> tuple[Retraction, ...]:
        with self._tx() as conn:
            rows = conn.execute(select(_RETRACTIONS).order_by(_RETRACTIONS.c.revision))
            return tuple(
                Retraction(
                    id=r.id,
                    target_id=r.target_id,
                    recorded_at=r.recorded_at,
                    recorded_by=r.recorded_by,
                    reason=r.reason,
                )
                for r in rows
            )

    def load_records(self, start: date, end: date) -> StoredRecords:
        with self._tx() as conn:
            ids = conn.execute(_one_offs_query(start, end)).scalars().all()
            one_offs = self._decoded(conn, (_EXCEPTIONS,), ids)
            origins = sorted(
                {(o.program_id, o.date) for o in one_offs if isinstance(o, Reschedule)}
            )
            if origins:
                seen = set(ids)
                more = conn.execute(_origin_one_offs_query(origins)).scalars()
                one_offs += self._decoded(conn, (_EXCEPTIONS,), [i for i in more if i not in seen])
            ids = conn.execute(_intents_query(start, end, origins)).scalars().all()
            intents = self._decoded(conn, (_INTENTS,), ids)
        return StoredRecords(
            intents=tuple(i for i in intents if isinstance(i, Intent)),
            one_offs=tuple(o for o in one_offs if isinstance(o, OneOff)),
        )

    def revision(self) -> int:
        with self._tx() as conn:
            return int(
                conn.execute(select(func.coalesce(func.max(_CHANGES.c.revision), 0))).scalar_one()
            )

    def changes_since(self, revision: int) -> tuple[Change, ...]:
        # the changes first, then their records by id: one query joining
        # them chose to hash every record when the tables had not been
        # analysed yet (600 ms for one change among half a million)
        with self._tx() as conn:
            rows = conn.execute(
                select(_CHANGES.c.revision, _CHANGES.c.kind, _CHANGES.c.record_id)
                .where(_CHANGES.c.revision > revision)
                .order_by(_CHANGES.c.revision)
            ).all()
            about = [r.record_id for r in rows if r.kind != "organisation"]
            records = iter(self._decoded(conn, (_INTENTS, _EXCEPTIONS), about))
        return tuple(
            Change(
                revision=r.revision,
                kind=r.kind,
                record=next(records) if r.kind != "organisation" else None,
            )
            for r in rows
        )

    # ----------------------------------------------------------- planned days

    def put_day(self, day: PlannedDay) -> bool:
        return self.put_days([day])[0]

    def put_days(self, days: Sequence[PlannedDay]) -> list[bool]:
        """Write the days as :meth:`put_day` would, all in one transaction
        (all or none): one statement per table for them all, not one per
        day, so a batch costs little more than a day. Days given in any
        order are written in date order. A date given twice makes the days
        written one transaction each, in turn (as :meth:`put_day` for each)."""
        dates = [d.plan.date for d in days]
        if len(set(dates)) < len(dates):  # a date twice: one transaction each, in turn
            return [self.put_days([d])[0] for d in days]
        if not days:
            return []
        ordered = sorted(days, key=lambda d: d.plan.date)  # rows locked in date order
        with self._tx() as conn:
            stmt = pg_insert(_DAYS).values(
                [
                    {
                        "day": d.plan.date,
                        "revision": d.revision,
                        "planned_at": d.planned_at,
                        "warnings": converter.unstructure(d.plan.warnings, tuple[PlanWarning, ...]),
                    }
                    for d in ordered
                ]
            )
            written = set(
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["day"],
                        set_={
                            "revision": stmt.excluded.revision,
                            "planned_at": stmt.excluded.planned_at,
                            "warnings": stmt.excluded.warnings,
                        },
                        where=_DAYS.c.revision <= stmt.excluded.revision,
                    ).returning(_DAYS.c.day)
                ).scalars()
            )
            plans = [d.plan for d in ordered if d.plan.date in written]
            if plans:
                with self._rows_lock:
                    seen = {p.date: self._rows_seen.get(p.date, {}) for p in plans}
                lines, rows = _write_instances(conn, plans, seen)
                _write_ledger(conn, [(p, lines[p.date]) for p in plans if lines[p.date].any])
        self._remember_rows({p.date: rows[p.date] for p in plans})  # written
        return [d in written for d in dates]

    def _remember_rows(self, rows: Mapping[date, dict[uuid.UUID, Instance]]) -> None:
        """Note the instance each row of these days holds, by row key (a
        row's value never changes), keeping the days most recently written
        or read."""
        with self._rows_lock:
            for day, held in rows.items():
                self._rows_seen[day] = held
                self._rows_seen.move_to_end(day)
            while len(self._rows_seen) > _DAYS_SEEN:
                self._rows_seen.popitem(last=False)

    def get_day(self, day: date) -> PlannedDay | None:
        found = self.planned_days(day, day)
        return found[0] if found else None

    def day_revisions(self, start: date | None = None, end: date | None = None) -> dict[date, int]:
        with self._tx() as conn:
            rows = conn.execute(
                select(_DAYS.c.day, _DAYS.c.revision).where(*_day_range(_DAYS.c.day, start, end))
            )
            return {r.day: r.revision for r in rows}

    def planned_days(
        self, start: date | None = None, end: date | None = None
    ) -> tuple[PlannedDay, ...]:
        with self._snapshot() as conn:
            days = conn.execute(
                select(_DAYS).where(*_day_range(_DAYS.c.day, start, end)).order_by(_DAYS.c.day)
            ).all()
            rows = conn.execute(
                select(_INSTANCES.c.key, _INSTANCES.c.day, _INSTANCES.c.data)
                .where(*_day_range(_INSTANCES.c.day, start, end))
                .order_by(_INSTANCES.c.day, _INSTANCES.c.position)
            )
            by_day: dict[date, list[Instance]] = {}
            held: dict[date, dict[uuid.UUID, Instance]] = {}
            for r in rows:
                inst = structure(r.data, Instance)
                by_day.setdefault(r.day, []).append(inst)
                held.setdefault(r.day, {})[r.key] = inst
        # what each row holds, as read: a later write of these days compares
        # with it instead of reading the rows again. A row already known
        # keeps the instance it was known by (the same value): a plan made
        # of the very instances written is then told unchanged at a glance.
        with self._rows_lock:
            known = {d: self._rows_seen.get(d, {}) for d in held}
        self._remember_rows(
            {d: {k: known[d].get(k, i) for k, i in by_key.items()} for d, by_key in held.items()}
        )
        return tuple(
            PlannedDay(
                plan=DayPlan(
                    date=d.day,
                    instances=tuple(by_day.get(d.day, ())),
                    warnings=structure(d.warnings, tuple[PlanWarning, ...]),
                ),
                revision=d.revision,
                planned_at=d.planned_at,
            )
            for d in days
        )

    def delete_days(self, start: date | None = None, end: date | None = None) -> int:
        with self._tx() as conn:
            locked = _locked_in_order(conn, _DAYS, start, end)
            deleted = int(conn.execute(delete(_DAYS).where(_DAYS.c.day == _dates(locked))).rowcount)
        with self._rows_lock:
            for d in [d for d in self._rows_seen if _between(d, start, end)]:
                del self._rows_seen[d]
        return deleted

    # ----------------------------------------------------------- prices

    def put_catalogue(self, catalogue: PriceCatalogue) -> None:
        """Replace the support items and price limits kept in the database.

        Not part of the :class:`Store` interface: a host that keeps its NDIS
        price data in the database loads it with :meth:`catalogue` and gives
        it to ``Loom(catalogue=...)``.
        """
        with self._tx() as conn:
            conn.execute(delete(_LIMITS))
            conn.execute(delete(_ITEMS))
            if catalogue.items:
                conn.execute(insert(_ITEMS), [_item_row(i) for i in catalogue.items])
            if catalogue.limits:
                conn.execute(insert(_LIMITS), [_limit_row(x) for x in catalogue.limits])

    def catalogue(self) -> PriceCatalogue | None:
        """The price catalogue kept in the database, or ``None`` when there is none."""
        with self._tx() as conn:
            items = conn.execute(select(_ITEMS).order_by(_ITEMS.c.number)).all()
            limits = conn.execute(
                select(*(c for c in _LIMITS.c if c.name != "key")).order_by(
                    _LIMITS.c.number, _LIMITS.c.applies_to, _LIMITS.c.effective_from
                )
            ).all()
        if not items:
            return None
        return PriceCatalogue(
            items=[SupportItem(**r._asdict()) for r in items],
            limits=[PriceLimit(**r._asdict()) for r in limits],
        )

    # ----------------------------------------------------------- billing ledger

    def ledger(self, start: date | None = None, end: date | None = None) -> tuple[LedgerDay, ...]:
        with self._snapshot() as conn:
            days = conn.execute(
                select(_LEDGER.c.day, _LEDGER.c.export_id, _EXPORTS.c.exported_at)
                .select_from(_LEDGER.outerjoin(_EXPORTS))
                .where(*_day_range(_LEDGER.c.day, start, end))
                .order_by(_LEDGER.c.day)
            ).all()
            rows = conn.execute(
                select(_LINES.c.day, _LINES.c.data)
                .where(*_day_range(_LINES.c.day, start, end))
                .order_by(_LINES.c.day, _LINES.c.position)
            )
            lines: dict[date, list[BillingLine]] = {}
            for r in rows:
                lines.setdefault(r.day, []).append(structure(r.data, BillingLine))
        return tuple(
            LedgerDay(
                date=d.day,
                lines=tuple(lines.get(d.day, ())),
                export_id=d.export_id or "",
                exported_at=d.exported_at,
            )
            for d in days
        )

    def mark_exported(self, start: date, end: date, export_id: str, at: datetime) -> int:
        with self._tx(id=export_id, kind="export") as conn:
            conn.execute(insert(_EXPORTS).values(export_id=export_id, exported_at=at))
            locked = _locked_in_order(conn, _LEDGER, start, end)
            marked = conn.execute(
                update(_LEDGER)
                .where(_LEDGER.c.day == _dates(locked), _LEDGER.c.export_id.is_(None))
                .values(export_id=export_id)
            )
            return int(marked.rowcount)

    # ----------------------------------------------------------- settings and logs

    def window_weeks(self) -> int | None:
        with self._tx() as conn:
            value = conn.execute(
                select(_SETTINGS.c.value).where(_SETTINGS.c.key == "window_weeks")
            ).scalar()
        return None if value is None else int(value)

    def set_window_weeks(self, weeks: int) -> None:
        with self._tx() as conn:
            stmt = pg_insert(_SETTINGS).values(key="window_weeks", value=weeks)
            conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": weeks}))

    def append_audit(self, entry: AuditEntry) -> None:
        with self._tx() as conn:
            conn.execute(
                insert(_AUDIT).values(
                    at=entry.at,
                    by=entry.by,
                    action=entry.action,
                    subject=entry.subject,
                    detail=entry.detail,
                )
            )

    def audit_log(self) -> tuple[AuditEntry, ...]:
        with self._tx() as conn:
            rows = conn.execute(select(_AUDIT).order_by(_AUDIT.c.seq))
            return tuple(
                AuditEntry(at=r.at, by=r.by, action=r.action, subject=r.subject, detail=r.detail)
                for r in rows
            )

    def append_roll(self, entry: RollEntry) -> None:
        values = converter.unstructure(entry)
        with self._tx() as conn:
            conn.execute(insert(_ROLLS).values(**{k: getattr(entry, k) for k in values}))

    def roll_log(self) -> tuple[RollEntry, ...]:
        fields = [c for c in _ROLLS.c if c.name not in ("key", "seq")]
        with self._tx() as conn:
            rows = conn.execute(select(*fields).order_by(_ROLLS.c.seq))
            return tuple(RollEntry(**r._asdict()) for r in rows)

    def roll_lock(self) -> AbstractContextManager[None]:
        return self._holding_roll_lock()

    @contextmanager
    def _holding_roll_lock(self) -> Iterator[None]:
        with _translated(), self.engine.connect() as conn:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            auto.execute(select(func.pg_advisory_lock(_ROLL_LOCK)))
            try:
                yield
            finally:
                if not conn.invalidated:
                    auto.execute(select(func.pg_advisory_unlock(_ROLL_LOCK)))


# --------------------------------------------------------------------------- rows


def _record(data: Mapping[str, Any]) -> Record:
    return structure(data, Record)  # type: ignore[arg-type]


def _item_row(item: SupportItem) -> dict[str, Any]:
    return {f.name: getattr(item, f.name) for f in attrs.fields(SupportItem)}


def _limit_row(limit: PriceLimit) -> dict[str, Any]:
    return {f.name: getattr(limit, f.name) for f in attrs.fields(PriceLimit)}


def _reference_row(table: str, item: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": item["id"], "name": item.get("name", ""), "data": item}
    if table == "venues":
        row["capacity"] = item["capacity"]
    elif table == "participants":
        row["ndis_number"] = item.get("ndis_number", "")
    elif table == "vehicles":
        row["seats"] = item["seats"]
    elif table == "programs":
        row["venue_id"] = item["venue_id"]
    return row


def _intent_row(intent: Intent, data: Any, revision: int) -> dict[str, Any]:
    return {
        "id": intent.id,
        "revision": revision,
        "kind": data["kind"],
        "program_id": intent.program_id or None,
        "participant_id": getattr(intent, "participant_id", None),
        "staff_id": getattr(intent, "staff_id", None),
        "vehicle_id": getattr(intent, "vehicle_id", None),
        "start_date": intent.start,
        "end_date": intent.end,
        "recorded_at": intent.recorded_at,
        "recorded_by": intent.recorded_by,
        "data": data,
    }


def _exception_row(one_off: OneOff, data: Any, revision: int) -> dict[str, Any]:
    return {
        "id": one_off.id,
        "revision": revision,
        "kind": data["kind"],
        "program_id": one_off.program_id,
        "participant_id": getattr(one_off, "participant_id", None),
        "exception_date": one_off.date,
        "to_date": one_off.to_date if isinstance(one_off, Reschedule) else None,
        "recorded_at": one_off.recorded_at,
        "recorded_by": one_off.recorded_by,
        "data": data,
    }


def _not_retracted(table: Any) -> Any:
    return ~exists().where(_RETRACTIONS.c.target_id == table.c.id)


def _one_offs_query(start: date, end: date) -> Any:
    e = _EXCEPTIONS
    return (
        select(e.c.id)
        .where(
            or_(e.c.exception_date.between(start, end), e.c.to_date.between(start, end)),
            _not_retracted(e),
        )
        .order_by(e.c.revision)
    )


def _origin_one_offs_query(origins: Sequence[tuple[str, date]]) -> Any:
    e = _EXCEPTIONS
    wanted = [and_(e.c.program_id == p, e.c.exception_date == d) for p, d in origins]
    return select(e.c.id).where(or_(*wanted), _not_retracted(e)).order_by(e.c.revision)


def _intents_query(start: date, end: date, origins: Sequence[tuple[str, date]]) -> Any:
    i = _INTENTS
    i_span = span(i.c.start_date, i.c.end_date)
    wanted = [i_span.op("&&")(span(literal(start), literal(end)))]
    for program_id, day in origins:  # intents that shape a moved instance's origin date
        wanted.append(and_(i.c.program_id == program_id, i_span.op("@>")(literal(day))))
    return select(i.c.id).where(or_(*wanted), _not_retracted(i)).order_by(i.c.revision)


def _as_stored(value: Any) -> Any:
    """``value`` as it reads back from a JSONB column (tuples become lists)."""
    return json.loads(json.dumps(value))


def _between(day: date, start: date | None, end: date | None) -> bool:
    return (start is None or start <= day) and (end is None or day <= end)


def _locked_in_order(
    conn: Connection, table: Table, start: date | None, end: date | None
) -> list[date]:
    """Lock ``table``'s rows of the days in ``[start, end]`` in date order, as
    :meth:`PostgresStore.put_days` does; the days locked. A statement on
    every row of the range could lock them in any order, and meet a row
    another transaction made since (and holds) after ones this one holds:
    either deadlocks with a batch being written. Change only the days
    locked."""
    return list(
        conn.execute(
            select(table.c.day)
            .where(*_day_range(table.c.day, start, end))
            .order_by(table.c.day)
            .with_for_update()
        ).scalars()
    )


def _day_range(column: Any, start: date | None, end: date | None) -> list[Any]:
    out = []
    if start is not None:
        out.append(column >= start)
    if end is not None:
        out.append(column <= end)
    return out


@attrs.frozen
class _LineChanges:
    """How a day's ledger lines follow its instances once they are written.

    ``whole``: the day had no instances stored, so every line is written
    (:func:`_write_ledger` also writes them all when the stored lines are
    not numbered as ``kept`` expects). Else the lines of the instances in
    ``dropped`` (by id) go, those of ``added`` (position, instance) are
    written, and ``kept`` (id: position, number of lines) says which stored
    lines stay as they are.
    """

    whole: bool
    dropped: frozenset[str] = frozenset()
    added: tuple[tuple[int, Instance], ...] = ()
    kept: Mapping[str, tuple[int, int]] = attrs.field(factory=dict)

    @property
    def any(self) -> bool:
        """Whether any of the day's lines are to be written or deleted."""
        return self.whole or bool(self.dropped or self.added)


def _dates(days: Iterable[date]) -> Any:
    """``days`` as one array parameter: one statement text however many."""
    return any_(bindparam("days", list(days), type_=ARRAY(Date), unique=True))


def _keys(keys: Iterable[uuid.UUID]) -> Any:
    """Row ``keys`` as one array parameter."""
    return any_(bindparam("keys", list(keys), type_=ARRAY(UUID), unique=True))


def _write_instances(
    conn: Connection, plans: Sequence[DayPlan], seen: Mapping[date, Mapping[uuid.UUID, Instance]]
) -> tuple[dict[date, _LineChanges], dict[date, dict[uuid.UUID, Instance]]]:
    """Bring the stored instances of each day of ``plans`` to its plan's;
    by day, how its ledger lines must follow, and the instance each of its
    rows now holds, by row key.

    A day planned again mostly comes back the same but for the instances an
    edit touched, so only instances whose value or place changed are
    rewritten (with their allocations, shifts and runs); an instance that
    only moved place gets its new position. A row's value never changes
    (rows are only added, moved and deleted), so ``seen`` (by day, the
    instance each row this store wrote or read holds, by key) tells what
    the rows hold without reading them. If a day has a row not in it
    (written by another store since, or before this one started), every
    row's value of that day is read and compared with the plan's as stored. Each step is one
    statement for all the days.
    """
    rows: dict[date, list[Any]] = {p.date: [] for p in plans}
    for r in conn.execute(
        select(_INSTANCES.c.key, _INSTANCES.c.day, _INSTANCES.c.instance_id, _INSTANCES.c.position)
        .where(_INSTANCES.c.day == _dates(rows))
        .order_by(_INSTANCES.c.day, _INSTANCES.c.position)
    ):
        rows[r.day].append(r)
    # days with a row written elsewhere: every row's value as stored
    elsewhere = {d for d, rs in rows.items() if any(r.key not in seen[d] for r in rs)}
    stored_data: dict[uuid.UUID, Any] = {}
    if elsewhere:
        keys = [r.key for d in sorted(elsewhere) for r in rows[d]]
        stored_data = {
            r.key: r.data
            for r in conn.execute(
                select(_INSTANCES.c.key, _INSTANCES.c.data).where(_INSTANCES.c.key == _keys(keys))
            )
        }
    gone: list[uuid.UUID] = []
    moved: list[dict[str, Any]] = []
    fresh: list[tuple[uuid.UUID, date, int, Instance, Any]] = []
    changes: dict[date, _LineChanges] = {}
    now: dict[date, dict[uuid.UUID, Instance]] = {}
    for plan in plans:
        # each instance as compared: the instance itself, or its value as stored
        if plan.date in elsewhere:
            held: Mapping[uuid.UUID, Any] = stored_data
            planned = [_as_stored(converter.unstructure(i)) for i in plan.instances]
            lines: Callable[[Any], Any] = itemgetter("billing_lines")
        else:
            held, planned = seen[plan.date], list(plan.instances)
            lines = attrgetter("billing_lines")
        changes[plan.date], now[plan.date] = _day_changes(
            plan, rows[plan.date], held, planned, lines, gone, moved, fresh
        )
    if gone:
        conn.execute(delete(_INSTANCES).where(_INSTANCES.c.key == _keys(gone)))
    if moved:
        conn.execute(
            update(_INSTANCES)
            .where(_INSTANCES.c.key == bindparam("row_key"))
            .values(position=bindparam("new_position")),
            moved,
        )
    _insert_instances(conn, fresh)
    return changes, now


def _day_changes(
    plan: DayPlan,
    rows: list[Any],
    held: Mapping[uuid.UUID, Any],
    planned: list[Any],
    lines: Callable[[Any], Any],
    gone: list[uuid.UUID],
    moved: list[dict[str, Any]],
    fresh: list[tuple[uuid.UUID, date, int, Instance, Any]],
) -> tuple[_LineChanges, dict[uuid.UUID, Instance]]:
    """One day of :func:`_write_instances`: its ``rows`` (as stored, in
    order) against the plan's instances (each compared as in ``planned``,
    with what ``held`` says each row holds). Adds the day's rows to delete
    to ``gone``, its rows to move to ``moved`` and its instances to write
    to ``fresh``; how its lines follow, and what its rows now hold."""
    stored = {r.instance_id: r for r in rows}
    now: dict[uuid.UUID, Instance] = {}
    dropped: set[str] = set()
    added: list[tuple[int, Instance]] = []
    kept: dict[str, tuple[int, int]] = {}
    for position, (inst, value) in enumerate(zip(plan.instances, planned, strict=True)):
        row = stored.get(inst.id)
        before = held[row.key] if row is not None else None
        if row is not None and (before is value or before == value):
            del stored[inst.id]
            now[row.key] = inst
            if row.position != position:
                moved.append({"row_key": row.key, "new_position": position})
        else:
            key = uuid.uuid4()
            fresh.append((key, plan.date, position, inst, value if value is not inst else None))
            now[key] = inst
        if row is not None and row.position == position and lines(before) == lines(value):
            kept[inst.id] = (position, len(lines(value)))
        else:
            if row is not None:
                dropped.add(inst.id)
            added.append((position, inst))
    gone += [r.key for r in stored.values()]  # changed or no longer planned
    dropped.update(r.instance_id for r in stored.values() if r.instance_id not in kept)
    changes = _LineChanges(
        whole=not rows, dropped=frozenset(dropped), added=tuple(added), kept=kept
    )
    return changes, now


def _insert_instances(
    conn: Connection, fresh: list[tuple[uuid.UUID, date, int, Instance, Any]]
) -> None:
    """Write each ``(row key, day, position, instance, value as stored or None)`` of ``fresh``."""
    instances, allocations, shifts, runs = [], [], [], []
    for key, day, position, inst, data in fresh:
        if data is None:
            data = converter.unstructure(inst)
        instances.append(
            {
                "key": key,
                "day": day,
                "position": position,
                "instance_id": inst.id,
                "program_id": inst.program_id,
                "scheduled_date": inst.scheduled_date,
                "status": inst.status,
                "start_at": inst.start,
                "end_at": inst.end,
                "venue_id": inst.venue_id,
                "origin": inst.origin,
                "provenance": list(inst.provenance),
                "leads": inst.staff_demand.leads,
                "support": inst.staff_demand.support,
                "riders": inst.transport_demand.riders,
                "wheelchair_riders": inst.transport_demand.wheelchair_riders,
                "data": data,
            }
        )
        allocations += [
            {
                "instance_key": key,
                "day": day,
                "participant_id": a.participant_id,
                "status": a.status,
                "origin": a.origin,
                "reason_code": a.reason_code,
                "notice_days": a.notice_days,
                "no_show": a.no_show,
            }
            for a in inst.allocations
        ]
        shifts += [
            {
                "instance_key": key,
                "day": day,
                "role": s.role,
                "position": s.position,
                "staff_id": s.staff_id or None,
                "start_at": s.start,
                "end_at": s.end,
            }
            for s in inst.shifts
        ]
        runs += [
            {
                "instance_key": key,
                "day": day,
                "run_id": r.id,
                "direction": r.direction,
                "vehicle_id": r.vehicle_id,
                "driver_id": r.driver_id or None,
                "departs_at": r.departs,
                "arrives_at": r.arrives,
                "km": r.km,
                "riders": list(r.riders),
            }
            for r in inst.bus_runs
        ]
    for table, rows in (
        (_INSTANCES, instances),
        (_ALLOCATIONS, allocations),
        (_SHIFTS, shifts),
        (_RUNS, runs),
    ):
        _copy_rows(conn, table, rows)


def _copy_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys) with one ``COPY``, inside
    ``conn``'s transaction: a day's hundreds of rows in one round trip
    instead of a statement each. Columns left out take their defaults."""
    if not rows:
        return
    names = list(rows[0])
    as_json = {n for n in names if isinstance(table.c[n].type, JSONB)}
    columns = ", ".join(f'"{n}"' for n in names)
    raw = conn.connection.driver_connection
    assert raw is not None, "the connection is closed"
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([Jsonb(row[n]) if n in as_json else row[n] for n in names])


#: A billing line's ``position`` is its instance's position times this,
#: plus its place among the instance's lines: an instance's lines are
#: rewritten without renumbering the day's others.
_LINE_STRIDE = 10_000
_MOST_INSTANCES = (2**31 - 1) // _LINE_STRIDE  # positions are a 32-bit integer


def _write_ledger(conn: Connection, days: Sequence[tuple[DayPlan, _LineChanges]]) -> None:
    """Bring the ledger lines of each ``(plan, changes)`` day to its plan's,
    unless the day was exported (then keep them): only the lines of
    ``changes.dropped`` and ``changes.added``, if the stored lines are
    numbered as expected, else every line of the day. Each step is one
    statement for all the days."""
    if not days:
        return
    stored = {
        r.day: r.export_id
        for r in conn.execute(
            select(_LEDGER.c.day, _LEDGER.c.export_id)
            .where(_LEDGER.c.day == _dates(p.date for p, _ in days))
            .order_by(_LEDGER.c.day)
            .with_for_update()
        )
    }
    new = [p.date for p, _ in days if p.date not in stored]
    if new:
        conn.execute(insert(_LEDGER), [{"day": d} for d in new])
    days = [(p, c) for p, c in days if stored.get(p.date) is None]  # not exported
    partly = [(p, c) for p, c in days if not c.whole and p.date in stored and _by_instance(p)]
    as_expected = _numbered_as(conn, partly)
    whole = [(p, c) for p, c in days if p.date not in as_expected]
    partly = [(p, c) for p, c in partly if p.date in as_expected]
    dropped = [(p.date, i) for p, c in partly for i in sorted(c.dropped)]
    if whole:
        conn.execute(delete(_LINES).where(_LINES.c.day == _dates(p.date for p, _ in whole)))
    if dropped:
        conn.execute(delete(_LINES).where(tuple_(_LINES.c.day, _LINES.c.instance_id).in_(dropped)))
    numbered: list[tuple[date, int, BillingLine]] = []
    for plan, changes in days:
        if plan.date in as_expected:
            numbered += _numbered(plan.date, changes.added)
        elif _by_instance(plan):
            numbered += _numbered(plan.date, enumerate(plan.instances))
        else:  # too many to number by instance: one after another (the next
            # write finds them numbered otherwise and writes them all again)
            lines = (line for i in plan.instances for line in i.billing_lines)
            numbered += ((plan.date, n, line) for n, line in enumerate(lines))
    _copy_lines(conn, numbered)


def _numbered(
    day: date, placed: Iterable[tuple[int, Instance]]
) -> Iterator[tuple[date, int, BillingLine]]:
    """The lines of each ``(position, instance)`` of ``day``, numbered by instance."""
    for position, inst in placed:
        for n, line in enumerate(inst.billing_lines):
            yield day, position * _LINE_STRIDE + n, line


def _by_instance(plan: DayPlan) -> bool:
    """Whether the day's lines can be numbered by instance (each instance's
    fit in their stride, and the last position in the column)."""
    return len(plan.instances) <= _MOST_INSTANCES and all(
        len(i.billing_lines) < _LINE_STRIDE for i in plan.instances
    )


def _numbered_as(conn: Connection, days: Sequence[tuple[DayPlan, _LineChanges]]) -> set[date]:
    """The days among ``days`` whose stored lines are numbered by instance,
    as their ``changes.kept`` expects them, and belong to no other instance."""
    if not days:
        return set()
    found: dict[date, dict[str, tuple[int, int, int]]] = {p.date: {} for p, _ in days}
    for r in conn.execute(
        select(
            _LINES.c.day,
            _LINES.c.instance_id,
            func.min(_LINES.c.position).label("first"),
            func.max(_LINES.c.position).label("last"),
            func.count().label("lines"),
        )
        .where(_LINES.c.day == _dates(found))
        .group_by(_LINES.c.day, _LINES.c.instance_id)
    ):
        found[r.day][r.instance_id] = (r.first, r.last, r.lines)
    return {p.date for p, c in days if _as_kept(found[p.date], c)}


def _as_kept(found: dict[str, tuple[int, int, int]], changes: _LineChanges) -> bool:
    """Whether a day's stored lines (``found``: by instance, their first and
    last position and number) are numbered as ``changes.kept`` expects, and
    belong to no other instance but those dropped."""
    for instance_id, (position, n) in changes.kept.items():
        if n >= _LINE_STRIDE:  # numbered one after another, as such days are
            return False
        start = position * _LINE_STRIDE
        expected = (start, start + n - 1, n) if n else None
        if found.pop(instance_id, None) != expected:
            return False
    return all(instance_id in changes.dropped for instance_id in found)


def _copy_lines(conn: Connection, numbered: Iterable[tuple[date, int, BillingLine]]) -> None:
    _copy_rows(
        conn,
        _LINES,
        [
            {
                "day": day,
                "position": n,
                "participant_id": line.participant_id,
                "ndis_number": line.ndis_number,
                "instance_id": line.instance_id,
                "program_id": line.program_id,
                "item_number": line.item_number,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "total": line.total,
                "claim_type": line.claim_type,
                "cancellation_reason": line.cancellation_reason,
                "claim_reference": line.claim_reference,
                "data": converter.unstructure(line),
            }
            for day, n, line in numbered
        ],
    )
