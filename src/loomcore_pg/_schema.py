"""The Postgres schema, as SQLAlchemy Core tables, and its migrations.

Theory of operation
-------------------
:func:`build_metadata` builds every table of the current schema version in
one place. Table names follow the seeds (``tgl_loom_instances``,
``tgl_operator_intents``, ``tgl_temporal_exceptions`` …).

* Reference data (venues, participants, staff, vehicles, programs) are rows
  with their host id, a few queryable columns, and the whole value as JSONB.
* Intents, exceptions and retractions are append-only. Each addition is one
  row of ``tgl_loom_changes`` too: its ``revision`` orders every change, and
  its unique ``own_id`` makes record and retraction ids one namespace.
* A planned day is a ``tgl_loom_days`` row; its instances, allocations and
  staff shifts hang off it with ``ON DELETE CASCADE``, so replacing or
  dropping a day is one statement. Each instance keeps its whole value as
  JSONB (read back exactly) next to the columns that hosts query.
* ``loom_schema_version`` holds one row per applied migration.

Migrations are numbered functions in :data:`MIGRATIONS`;
:func:`loomcore_pg.migrate` applies the missing ones in order and refuses a
database whose version is newer than this code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP, UUID

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "build_metadata", "span"]

SCHEMA_VERSION = 1

_TS = TIMESTAMP(timezone=True)


def _key() -> Column[object]:
    return Column(
        "key", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


def span(start: Any, end: Any) -> Any:
    """``daterange(start, end, '[]')``: an inclusive range, unbounded when ``end`` is NULL."""
    return func.daterange(start, end, literal_column("'[]'"))


def _reference(md: MetaData, name: str, *extra: Column[object]) -> Table:
    return Table(
        name,
        md,
        _key(),
        Column("id", Text, nullable=False, unique=True),
        Column("name", Text, nullable=False),
        *extra,
        Column("data", JSONB, nullable=False),
    )


def build_metadata() -> MetaData:
    """Every table of the current schema version."""
    md = MetaData()
    Table(
        "loom_schema_version",
        md,
        Column("version", Integer, primary_key=True),
        Column("applied_at", _TS, nullable=False, server_default=func.now()),
    )
    Table(
        "settings",
        md,
        Column("key", Text, primary_key=True),
        Column("value", JSONB, nullable=False),
    )
    Table(
        "organisation",
        md,
        Column("key", Integer, primary_key=True),
        Column("name", Text, nullable=False),
        Column("registration_number", Text, nullable=False),
        Column("abn", Text, nullable=False),
    )
    _reference(md, "venues", Column("capacity", Integer, nullable=False))
    _reference(md, "participants", Column("ndis_number", Text, nullable=False))
    _reference(md, "staff")
    _reference(md, "vehicles", Column("seats", Integer, nullable=False))
    _reference(
        md,
        "programs",
        Column("venue_id", Text, ForeignKey("venues.id"), nullable=False),
    )
    _records(md)
    _plans(md)
    _prices(md)
    _ledger(md)
    _logs(md)
    return md


def _records(md: MetaData) -> None:
    Table(
        "tgl_loom_changes",
        md,
        Column("revision", BigInteger, primary_key=True),
        Column("kind", Text, nullable=False),
        Column("record_id", Text),
        Column("own_id", Text, unique=True),
        Column("changed_at", _TS, nullable=False, server_default=func.now()),
    )
    intents = Table(
        "tgl_operator_intents",
        md,
        _key(),
        Column("id", Text, nullable=False, unique=True),
        Column("revision", BigInteger, ForeignKey("tgl_loom_changes.revision"), nullable=False),
        Column("kind", Text, nullable=False),
        Column("program_id", Text, ForeignKey("programs.id")),  # NULL: about staff or a vehicle
        Column("participant_id", Text),
        Column("staff_id", Text),
        Column("vehicle_id", Text),
        Column("start_date", Date, nullable=False),
        Column("end_date", Date),
        Column("recorded_at", _TS, nullable=False),
        Column("recorded_by", Text, nullable=False),
        Column("data", JSONB, nullable=False),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="intent_dates_ordered"),
    )
    Index(
        "ix_intents_span", span(intents.c.start_date, intents.c.end_date), postgresql_using="gist"
    )
    Index("ix_intents_program", intents.c.program_id, intents.c.start_date)
    exceptions = Table(
        "tgl_temporal_exceptions",
        md,
        _key(),
        Column("id", Text, nullable=False, unique=True),
        Column("revision", BigInteger, ForeignKey("tgl_loom_changes.revision"), nullable=False),
        Column("kind", Text, nullable=False),
        Column("program_id", Text, ForeignKey("programs.id"), nullable=False),
        Column("participant_id", Text),
        Column("exception_date", Date, nullable=False),
        Column("to_date", Date),
        Column("recorded_at", _TS, nullable=False),
        Column("recorded_by", Text, nullable=False),
        Column("data", JSONB, nullable=False),
    )
    Index("ix_exceptions_date", exceptions.c.exception_date)
    Index(
        "ix_exceptions_to_date",
        exceptions.c.to_date,
        postgresql_where=exceptions.c.to_date.isnot(None),
    )
    Index("ix_exceptions_program", exceptions.c.program_id, exceptions.c.exception_date)
    Table(
        "tgl_record_retractions",
        md,
        _key(),
        Column("id", Text, nullable=False, unique=True),
        Column("target_id", Text, nullable=False, unique=True),
        Column("revision", BigInteger, ForeignKey("tgl_loom_changes.revision"), nullable=False),
        Column("recorded_at", _TS, nullable=False),
        Column("recorded_by", Text, nullable=False),
        Column("reason", Text, nullable=False),
    )


def _plans(md: MetaData) -> None:
    Table(
        "tgl_loom_days",
        md,
        Column("day", Date, primary_key=True),
        Column("revision", BigInteger, nullable=False),
        Column("planned_at", _TS, nullable=False),
        Column("warnings", JSONB, nullable=False),
    )
    instances = Table(
        "tgl_loom_instances",
        md,
        _key(),
        Column("day", Date, ForeignKey("tgl_loom_days.day", ondelete="CASCADE"), nullable=False),
        Column("position", Integer, nullable=False),
        Column("instance_id", Text, nullable=False),
        Column("program_id", Text, nullable=False),
        Column("scheduled_date", Date, nullable=False),
        Column("status", Text, nullable=False),
        Column("start_at", _TS, nullable=False),
        Column("end_at", _TS, nullable=False),
        Column("venue_id", Text, nullable=False),
        Column("origin", Text, nullable=False),
        Column("provenance", ARRAY(Text), nullable=False),
        Column("leads", Integer, nullable=False),
        Column("support", Integer, nullable=False),
        Column("riders", Integer, nullable=False),
        Column("wheelchair_riders", Integer, nullable=False),
        Column("data", JSONB, nullable=False),
    )
    Index("ix_instances_day", instances.c.day, instances.c.instance_id, unique=True)
    Index("ix_instances_program", instances.c.program_id, instances.c.day)
    Index("ix_instances_status", instances.c.status, instances.c.day)
    allocations = Table(
        "tgl_loom_participant_allocations",
        md,
        _key(),
        Column(
            "instance_key",
            UUID(as_uuid=True),
            ForeignKey("tgl_loom_instances.key", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("day", Date, nullable=False),
        Column("participant_id", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("origin", Text, nullable=False),
        Column("reason_code", Text, nullable=False),
        Column("notice_days", Integer),
        Column("no_show", Boolean, nullable=False),
    )
    Index("ix_allocations_participant", allocations.c.participant_id, allocations.c.day)
    Index("ix_allocations_instance", allocations.c.instance_key)
    shifts = Table(
        "tgl_loom_staff_shifts",
        md,
        _key(),
        Column(
            "instance_key",
            UUID(as_uuid=True),
            ForeignKey("tgl_loom_instances.key", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("day", Date, nullable=False),
        Column("role", Text, nullable=False),
        Column("position", Integer, nullable=False),
        Column("staff_id", Text),
        Column("start_at", _TS, nullable=False),
        Column("end_at", _TS, nullable=False),
    )
    Index("ix_shifts_day", shifts.c.day)
    Index("ix_shifts_instance", shifts.c.instance_key)
    runs = Table(
        "tgl_loom_vehicle_runs",
        md,
        _key(),
        Column(
            "instance_key",
            UUID(as_uuid=True),
            ForeignKey("tgl_loom_instances.key", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("day", Date, nullable=False),
        Column("run_id", Text, nullable=False),
        Column("direction", Text, nullable=False),
        Column("vehicle_id", Text, nullable=False),
        Column("driver_id", Text),
        Column("departs_at", _TS, nullable=False),
        Column("arrives_at", _TS, nullable=False),
        Column("km", Numeric(10, 3), nullable=False),
        Column("riders", ARRAY(Text), nullable=False),
    )
    Index("ix_runs_day", runs.c.day, runs.c.vehicle_id)
    Index("ix_runs_instance", runs.c.instance_key)


def _prices(md: MetaData) -> None:
    Table(
        "support_items",
        md,
        Column("number", Text, primary_key=True),
        Column("name", Text, nullable=False),
        Column("unit", Text, nullable=False),
        Column("gst_code", Text, nullable=False),
        Column("price_limited", Boolean, nullable=False),
        Column("source", Text, nullable=False),
    )
    limits = Table(
        "price_limits",
        md,
        _key(),
        Column("number", Text, ForeignKey("support_items.number"), nullable=False),
        Column("applies_to", Text, nullable=False),
        Column("effective_from", Date, nullable=False),
        Column("effective_to", Date),
        Column("limit", Numeric(12, 2), nullable=False),
        Column("source", Text, nullable=False),
    )
    Index("ix_limits_item", limits.c.number, limits.c.applies_to, limits.c.effective_from)


def _ledger(md: MetaData) -> None:
    # Not tied to tgl_loom_days: purging planned days keeps the lines.
    Table(
        "tgl_billing_exports",
        md,
        Column("export_id", Text, primary_key=True),
        Column("exported_at", _TS, nullable=False),
    )
    Table(
        "tgl_billing_ledger",
        md,
        Column("day", Date, primary_key=True),
        Column("export_id", Text, ForeignKey("tgl_billing_exports.export_id")),
    )
    lines = Table(
        "tgl_billing_lines",
        md,
        _key(),
        Column(
            "day", Date, ForeignKey("tgl_billing_ledger.day", ondelete="CASCADE"), nullable=False
        ),
        Column("position", Integer, nullable=False),
        Column("participant_id", Text, nullable=False),
        Column("ndis_number", Text, nullable=False),
        Column("instance_id", Text, nullable=False),
        Column("program_id", Text, nullable=False),
        Column("item_number", Text, nullable=False),
        Column("quantity", Numeric(12, 2), nullable=False),
        Column("unit_price", Numeric(12, 2), nullable=False),
        Column("total", Numeric(12, 2), nullable=False),
        Column("claim_type", Text, nullable=False),
        Column("cancellation_reason", Text, nullable=False),
        Column("claim_reference", Text, nullable=False),
        Column("data", JSONB, nullable=False),
    )
    Index("ix_lines_day", lines.c.day, lines.c.position, unique=True)
    Index("ix_lines_participant", lines.c.participant_id, lines.c.day)


def _logs(md: MetaData) -> None:
    audit = Table(
        "tgl_loom_audit_log",
        md,
        _key(),
        Column("seq", BigInteger, Identity(), nullable=False, unique=True),
        Column("at", _TS, nullable=False),
        Column("by", Text, nullable=False),
        Column("action", Text, nullable=False),
        Column("subject", Text, nullable=False),
        Column("detail", Text, nullable=False),
    )
    Index("ix_audit_at", audit.c.at)
    rolls = Table(
        "tgl_loom_roll_log",
        md,
        _key(),
        Column("seq", BigInteger, Identity(), nullable=False, unique=True),
        Column("started_at", _TS, nullable=False),
        Column("finished_at", _TS, nullable=False),
        Column("today", Date, nullable=False),
        Column("window_start", Date, nullable=False),
        Column("window_end", Date, nullable=False),
        Column("status", Text, nullable=False),
        Column("trigger", Text, nullable=False),
        Column("by", Text, nullable=False),
        Column("days_planned", Integer, nullable=False),
        Column("days_dropped", Integer, nullable=False),
        Column("days_purged", Integer, nullable=False),
        Column("error", Text, nullable=False),
    )
    Index("ix_rolls_started", rolls.c.started_at)


def _create_version_1(conn: Connection) -> None:
    build_metadata().create_all(conn)


#: Migration number → function that brings the schema from the previous
#: version to that one, inside the caller's transaction.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _create_version_1}
