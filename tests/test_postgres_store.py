"""PostgresStore: the store contract, the schema version, and index use."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import attrs
import pytest
from sqlalchemy import create_engine, event, insert, text

from conftest import clean_database, paused_before
from loomcore import DayPlan, PlannedDay, Store
from loomcore.testing import _AT, StoreContract, _enrol, sample_organisation
from loomcore.testing import _plan as _planned_day
from loomcore_pg import SCHEMA_VERSION, PostgresStore, SchemaVersionError, build_metadata, migrate
from loomcore_pg import _store as pg_store
from loomcore_pg._store import _intents_query, _one_offs_query


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _engine(self, pg_engine: Any) -> None:
        self.engine = pg_engine

    def make_store(self) -> Store:
        clean_database(self.engine)
        return PostgresStore(self.engine)


def test_migrate_is_idempotent_and_versioned(pg_engine: Any) -> None:
    assert migrate(pg_engine) == SCHEMA_VERSION
    assert migrate(pg_engine) == SCHEMA_VERSION
    with pg_engine.connect() as conn:
        versions = conn.execute(text("SELECT version FROM loom_schema_version")).scalars().all()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_a_database_newer_than_the_code_is_refused_loudly(pg_engine: Any) -> None:
    table = build_metadata().tables["loom_schema_version"]
    with pg_engine.begin() as conn:
        conn.execute(insert(table).values(version=SCHEMA_VERSION + 1))
    try:
        with pytest.raises(SchemaVersionError, match="newer than this code") as info:
            migrate(pg_engine)
        assert (info.value.found, info.value.expected) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
        with pytest.raises(SchemaVersionError):
            PostgresStore(pg_engine)
    finally:
        with pg_engine.begin() as conn:
            conn.execute(table.delete().where(table.c.version > SCHEMA_VERSION))


def test_an_empty_database_is_refused_without_migrate(pg_url: str) -> None:
    from sqlalchemy import create_engine

    from loomcore_pg._store import _url

    engine = create_engine(_url(pg_url).replace(pg_url.rsplit("/", 1)[1], "postgres"))
    try:
        with pytest.raises(SchemaVersionError, match="absent"):
            PostgresStore(engine)
    finally:
        engine.dispose()


def _plan(pg_engine: Any, query: Any) -> str:
    with pg_engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        compiled = query.compile(pg_engine, compile_kwargs={"literal_binds": True})
        rows = conn.execute(text(f"EXPLAIN {compiled}")).scalars().all()
    return "\n".join(rows)


def test_window_loads_use_the_indexes(pg_engine: Any) -> None:
    # The planner picks a sequential scan on tiny tables whatever the indexes;
    # with it discouraged, the plan shows which indexes the queries can use.
    intents = _plan(pg_engine, _intents_query(date(2026, 10, 1), date(2027, 1, 20), []))
    assert "ix_intents_span" in intents
    one_offs = _plan(pg_engine, _one_offs_query(date(2026, 10, 1), date(2027, 1, 20)))
    assert "ix_exceptions_date" in one_offs
    assert "ix_exceptions_to_date" in one_offs


def test_the_price_catalogue_round_trips(pg_engine: Any) -> None:
    from loomcore import shipped_catalogue

    clean_database(pg_engine)
    store = PostgresStore(pg_engine)
    assert store.catalogue() is None
    shipped = shipped_catalogue()
    store.put_catalogue(shipped)
    back = store.catalogue()
    assert back is not None
    assert back.items == shipped.items
    assert sorted(back.limits, key=str) == sorted(shipped.limits, key=str)
    day = date(2026, 7, 1)
    assert back.limit("04_102_0136_6_1", day) == shipped.limit("04_102_0136_6_1", day)
    store.put_catalogue(shipped)  # replacing keeps one copy
    assert len(store.catalogue().limits) == len(shipped.limits)  # type: ignore[union-attr]


def _with_ann(pg_engine: Any, stores: int) -> list[PostgresStore]:
    """``stores`` stores on an emptied database holding the sample
    organisation and Ann enrolled on Wednesdays from 1 October 2026."""
    clean_database(pg_engine)
    made = [PostgresStore(pg_engine) for _ in range(stores)]
    made[0].set_organisation(sample_organisation())
    made[0].add_record(_enrol("a", "ann", date(2026, 10, 1)))
    return made


def _instance_keys(engine: Any, day: date) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT instance_id, key FROM tgl_loom_instances WHERE day = :d"), {"d": day}
        )
        return {r.instance_id: r.key for r in rows}


def test_a_day_planned_again_rewrites_only_the_instances_that_changed(pg_engine: Any) -> None:
    (store,) = _with_ann(pg_engine, 1)
    day = date(2026, 10, 7)
    first = _planned_day(day, store).plan.instances[0]
    second = attrs.evolve(first, id=f"{first.id}-b", program_id="other")

    def put(revision: int, *instances: Any) -> dict[str, Any]:
        plan = DayPlan(date=day, instances=instances)
        assert store.put_day(PlannedDay(plan=plan, revision=revision, planned_at=_AT))
        return _instance_keys(pg_engine, day)

    keys = put(1, first, second)
    assert put(2, first, second) == keys  # the same plan: nothing rewritten
    assert put(3, second, first) == keys  # reordered: positions follow, rows stay
    changed = put(4, second, attrs.evolve(first, cancellation_reason="x"))
    assert changed[second.id] == keys[second.id]
    assert changed[first.id] != keys[first.id]


def test_an_engine_on_another_driver_is_refused_by_name() -> None:
    from sqlalchemy import create_engine

    from loomcore import StoreError

    with pytest.raises(
        StoreError, match=r"needs a postgresql\+psycopg engine .* got sqlite\+pysqlite"
    ):
        PostgresStore(create_engine("sqlite://"))


def test_stores_taking_turns_at_a_day_each_leave_their_own_plan(pg_engine: Any) -> None:
    # Each store remembers what the rows it wrote hold; a row another store
    # rewrote meanwhile is one it has not seen, so it is read, not assumed.
    ours, theirs = _with_ann(pg_engine, 2)
    day = date(2026, 10, 7)
    first = _planned_day(day, ours).plan.instances[0]
    assert first.billing_lines
    second = attrs.evolve(first, id=f"{first.id}-b", program_id="other")
    changed = attrs.evolve(first, billing_lines=first.billing_lines[:1], cancellation_reason="x")
    turns = [
        (ours, (first, second)),
        (theirs, (changed, second)),
        (ours, (first, second)),
        (theirs, (second, changed)),
        (ours, (first, second)),
        (ours, (second,)),
        (theirs, (first, second)),
    ]
    for revision, (store, instances) in enumerate(turns, start=1):
        plan = DayPlan(date=day, instances=instances)
        assert store.put_day(PlannedDay(plan=plan, revision=revision, planned_at=_AT))
        for reader in (ours, theirs):
            found = reader.get_day(day)
            assert found is not None
            assert found.plan.instances == instances
            (ledger,) = reader.ledger(day, day)
            assert ledger.lines == tuple(line for i in instances for line in i.billing_lines)


def _named(inst: Any, instance_id: str) -> Any:
    """``inst`` under another id, its billing lines too."""
    return attrs.evolve(
        inst,
        id=instance_id,
        billing_lines=tuple(attrs.evolve(b, instance_id=instance_id) for b in inst.billing_lines),
    )


def _line_rows(engine: Any, day: date) -> list[tuple[str, Any, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT instance_id, key, position FROM tgl_billing_lines "
                "WHERE day = :d ORDER BY position"
            ),
            {"d": day},
        )
        return [(r.instance_id, r.key, r.position) for r in rows]


def test_the_ledger_rewrites_only_the_lines_of_instances_that_changed(
    pg_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_database(pg_engine)
    store = PostgresStore(pg_engine)
    store.set_organisation(sample_organisation())
    for n, who in enumerate(("ann", "bob", "cat")):
        store.add_record(_enrol(f"e{n}", who, date(2026, 10, 1)))
    day = date(2026, 10, 7)
    base = _planned_day(day, store).plan.instances[0]
    assert len(base.billing_lines) == 3
    a, b, c = (_named(base, f"{base.id}-{n}") for n in "abc")
    fewer = attrs.evolve(b, billing_lines=b.billing_lines[:1])
    revision = iter(range(1, 100))

    def put(*instances: Any) -> list[tuple[str, Any, int]]:
        plan = DayPlan(date=day, instances=instances)
        assert store.put_day(PlannedDay(plan=plan, revision=next(revision), planned_at=_AT))
        (ledger,) = store.ledger(day, day)
        assert ledger.lines == tuple(line for i in instances for line in i.billing_lines)
        return _line_rows(pg_engine, day)

    def keys(rows: list[tuple[str, Any, int]], instance_id: str) -> list[Any]:
        return [key for i, key, _ in rows if i == instance_id]

    first = put(a, b, c)
    changed = put(a, fewer, c)  # one instance bills less: only its lines are new
    assert keys(changed, a.id) == keys(first, a.id)
    assert keys(changed, c.id) == keys(first, c.id)
    assert not set(keys(changed, b.id)) & set(keys(first, b.id))
    dropped = put(a, c)  # an instance gone: its lines go, the others stay
    assert keys(dropped, a.id) == keys(first, a.id)
    moved = put(c, a)  # places swapped: lines follow
    assert [i for i, _, _ in moved] == [c.id] * len(c.billing_lines) + [a.id] * len(a.billing_lines)

    # lines numbered otherwise (one after another, as before) are written anew whole
    with pg_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE tgl_billing_lines AS l SET position = n.p - 1 FROM ("
                "SELECT key, row_number() OVER (ORDER BY position) AS p "
                "FROM tgl_billing_lines WHERE day = :d) AS n WHERE l.key = n.key"
            ),
            {"d": day},
        )
    healed = put(fewer, a)  # ``a`` stays second, but its lines are numbered otherwise
    assert not set(keys(healed, a.id)) & set(keys(moved, a.id))
    assert keys(put(fewer, a, c), a.id) == keys(healed, a.id)  # numbered as expected again

    # an instance with more lines than the numbering leaves room for
    monkeypatch.setattr(pg_store, "_LINE_STRIDE", 2)
    put(a, fewer, c)
    put(fewer, a)
    put(fewer, a, c)
    put(a, fewer)
    put(a, c)  # ``a`` unchanged first: ``c``'s lines must not take its numbers


def test_a_batch_of_days_some_rewritten_elsewhere_reads_back_and_keeps_unchanged_rows(
    pg_engine: Any,
) -> None:
    # one transaction for several days: days only this store wrote are
    # compared with what it remembers, a day another store rewrote is read
    ours, theirs = _with_ann(pg_engine, 2)
    days = [date(2026, 10, 7), date(2026, 10, 14), date(2026, 10, 21)]
    base = _planned_day(days[0], ours).plan.instances[0]
    assert base.billing_lines

    def on(day: date, inst: Any, suffix: str = "") -> Any:
        return _named(attrs.evolve(inst, date=day), f"{inst.id}{suffix}")

    def planned(revision: int, day: date, *instances: Any) -> PlannedDay:
        return PlannedDay(
            plan=DayPlan(date=day, instances=instances), revision=revision, planned_at=_AT
        )

    fewer = attrs.evolve(base, billing_lines=base.billing_lines[:1], cancellation_reason="x")
    first = [planned(1, d, on(d, base), on(d, base, "-b")) for d in days]
    assert ours.put_days(first) == [True] * 3
    keys = {d: _instance_keys(pg_engine, d) for d in days}
    assert theirs.put_day(planned(2, days[1], on(days[1], fewer), on(days[1], base, "-b")))
    again = [
        planned(3, days[0], on(days[0], base), on(days[0], fewer, "-b")),
        planned(3, days[1], on(days[1], base), on(days[1], base, "-b")),
        planned(3, days[2], on(days[2], base, "-b"), on(days[2], base)),  # swapped places
    ]
    assert ours.put_days(again) == [True] * 3
    for reader in (ours, theirs):
        assert reader.planned_days() == tuple(again)
        assert [d.lines for d in reader.ledger()] == [
            tuple(line for i in p.plan.instances for line in i.billing_lines) for p in again
        ]
    now = {d: _instance_keys(pg_engine, d) for d in days}
    assert now[days[0]][base.id] == keys[days[0]][base.id]  # unchanged: the same row
    assert now[days[0]][f"{base.id}-b"] != keys[days[0]][f"{base.id}-b"]
    assert now[days[2]] == keys[days[2]]  # only moved


def test_a_store_that_read_a_day_writes_it_without_reading_its_rows_again(
    pg_engine: Any,
) -> None:
    # a web process reads the plans the roller wrote; its edit then compares
    # with what it read instead of reading every row's document back
    roller, web = _with_ann(pg_engine, 2)
    day = date(2026, 10, 7)
    base = _planned_day(day, roller).plan.instances[0]
    other = _named(base, f"{base.id}-b")
    first = DayPlan(date=day, instances=(base, other))
    assert roller.put_day(PlannedDay(plan=first, revision=1, planned_at=_AT))
    keys = _instance_keys(pg_engine, day)
    assert web.planned_days(day, day)[0].plan.instances == (base, other)
    documents_read: list[str] = []

    def note(conn: Any, cursor: Any, sql: str, *_: Any) -> None:
        if sql.startswith("SELECT") and "tgl_loom_instances.data" in sql:
            documents_read.append(sql)

    changed = attrs.evolve(other, cancellation_reason="x")
    event.listen(pg_engine, "before_cursor_execute", note)
    try:
        plan = DayPlan(date=day, instances=(base, changed))
        assert web.put_day(PlannedDay(plan=plan, revision=2, planned_at=_AT))
    finally:
        event.remove(pg_engine, "before_cursor_execute", note)
    assert documents_read == []
    now = _instance_keys(pg_engine, day)
    assert now[base.id] == keys[base.id]  # unchanged: the same row
    assert now[other.id] != keys[other.id]
    assert roller.get_day(day).plan.instances == (base, changed)  # type: ignore[union-attr]


def test_a_day_read_while_it_is_written_is_read_whole_from_before_or_after(
    pg_engine: Any,
) -> None:
    # planned_days reads the days' rows, then their instances: one snapshot,
    # so a write landing between the two is not half seen
    (writer,) = _with_ann(pg_engine, 1)
    day = date(2026, 10, 7)
    base = _planned_day(day, writer).plan.instances[0]
    before = PlannedDay(plan=DayPlan(date=day, instances=(base,)), revision=1, planned_at=_AT)
    after = PlannedDay(
        plan=DayPlan(date=day, instances=(base, _named(base, f"{base.id}-b"))),
        revision=2,
        planned_at=_AT,
    )
    assert writer.put_day(before)
    reader_engine = create_engine(pg_engine.url)
    reader = PostgresStore(reader_engine)
    reached, go = paused_before(reader_engine, "SELECT tgl_loom_instances.key")
    try:
        with ThreadPoolExecutor(1) as pool:
            reading = pool.submit(reader.planned_days, day, day)
            try:
                assert reached.wait(20)
                assert writer.put_day(after)  # lands between the reader's two statements
            finally:
                go.set()
            assert reading.result() == (before,)
        assert reader.planned_days(day, day) == (after,)
    finally:
        reader_engine.dispose()
