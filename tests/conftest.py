"""Shared fixtures. Postgres tests use LOOM_PG_DSN; see docs/postgres.md."""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from loomcore import _parallel

# tests/ holds shared helpers (builders, strategies) imported by plain name.
sys.path.insert(0, str(Path(__file__).parent))

PG_DSN = os.environ.get("LOOM_PG_DSN", "")
NO_PG = "LOOM_PG_DSN is not set: the Postgres tests need a server (see docs/postgres.md)"
# Set by CI (.ci/run): a run that skips any test fails, so that a missing
# database or a test skipping itself cannot pass for green.
NO_SKIPS = os.environ.get("LOOM_NO_SKIPS", "") not in ("", "0")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if NO_SKIPS and skipped:
        terminalreporter.write_line(
            f"LOOM_NO_SKIPS is set and {len(skipped)} tests were skipped: failing the run",
            red=True,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if NO_SKIPS and exitstatus == 0 and reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _engine(dsn: str, **kw: Any) -> Any:
    from sqlalchemy import create_engine

    from loomcore_pg._store import _url

    return create_engine(_url(dsn), **kw)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of this test run's own, created now and dropped at the end."""
    if not PG_DSN:
        pytest.skip(NO_PG)
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from loomcore_pg._store import _url

    name = f"loomtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = _engine(PG_DSN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(_url(PG_DSN)).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Any]:
    from loomcore_pg import migrate

    engine = _engine(pg_url, pool_size=10, max_overflow=40)
    migrate(engine)
    yield engine
    engine.dispose()


def clean_database(engine: Any) -> None:
    """Empty every loomcore table but the schema version."""
    from sqlalchemy import text

    from loomcore_pg import build_metadata

    names = [t.name for t in build_metadata().sorted_tables if t.name != "loom_schema_version"]
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY"))


@pytest.fixture(params=["memory", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def any_store(store_kind: str, request: pytest.FixtureRequest) -> Any:
    """A fresh store of each kind: engine tests that touch storage run on both."""
    from loomcore import MemoryStore

    if store_kind == "memory":
        return MemoryStore()
    from loomcore_pg import PostgresStore

    engine = request.getfixturevalue("pg_engine")
    clean_database(engine)
    return PostgresStore(engine)


def connection_dies_writing(
    monkeypatch: pytest.MonkeyPatch, victim: date, times: int | None = None
) -> None:
    """The Postgres store's connection dies right after it has written the
    instances of ``victim`` (their rows inside the transaction), ``times``
    times (every time when ``None``)."""
    from sqlalchemy import text

    import loomcore_pg._store as pg_store

    real_insert = pg_store._insert_instances
    left = [times]

    def dying_insert(conn: Any, fresh: Any) -> None:
        real_insert(conn, fresh)  # rows written inside the transaction …
        if left[0] != 0 and any(day == victim for _, day, *_ in fresh):
            if left[0] is not None:
                left[0] -= 1
            conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))  # … then death

    monkeypatch.setattr(pg_store, "_insert_instances", dying_insert)


def paused_before(engine: Any, statement: str) -> tuple[threading.Event, threading.Event]:
    """Events: set when a statement on ``engine`` starting ``statement`` is
    about to run, and the one it then waits for (up to 20 s)."""
    from sqlalchemy import event

    reached, go = threading.Event(), threading.Event()

    def hook(conn: Any, cursor: Any, sql: str, *_: Any) -> None:
        if sql.startswith(statement):
            reached.set()
            go.wait(20)

    event.listen(engine, "before_cursor_execute", hook)
    return reached, go


@pytest.fixture
def helper_first(monkeypatch: pytest.MonkeyPatch) -> list[date]:
    """This process claims no day before a helper has claimed one (which a
    helper, a second or so in starting, otherwise may never do in a test's
    few days; the test fails if none has within a minute). Gives the days
    whose plans came from a helper, as they come."""
    mine = _parallel._Helpers.mine
    take = _parallel._Helpers.take
    from_helpers: list[date] = []

    def after_a_helper(self: _parallel._Helpers, day: date) -> bool:
        deadline = time.monotonic() + 60
        while self._bounds[1] == len(self._at):
            if time.monotonic() > deadline:
                pytest.fail("no helper claimed a day within a minute")
            time.sleep(0.01)
        return mine(self, day)

    def taken(self: _parallel._Helpers, day: date) -> Any:
        from_helpers.append(day)
        return take(self, day)

    monkeypatch.setattr(_parallel._Helpers, "mine", after_a_helper)
    monkeypatch.setattr(_parallel._Helpers, "take", taken)
    return from_helpers
