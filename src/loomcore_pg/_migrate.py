"""Creating and upgrading a loomcore database."""

from __future__ import annotations

from sqlalchemy import Engine, func, insert, inspect, select

from loomcore import LoomError

from ._schema import MIGRATIONS, SCHEMA_VERSION, build_metadata

__all__ = ["SchemaVersionError", "migrate", "schema_version"]

# Any fixed number: serialises concurrent migrate() calls on one database.
_MIGRATION_LOCK = 0x6C6F6F6D_0001


class SchemaVersionError(LoomError, RuntimeError):
    """The database's schema version is not the one this code works with."""

    def __init__(self, found: int | None, expected: int, hint: str) -> None:
        self.found = found
        self.expected = expected
        super().__init__(
            f"database schema version is {found if found is not None else 'absent'}, "
            f"this loomcore_pg needs {expected}: {hint}"
        )


def schema_version(engine: Engine) -> int | None:
    """The database's schema version, or ``None`` when it has no loomcore tables."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("loom_schema_version"):
            return None
        version = build_metadata().tables["loom_schema_version"].c.version
        return conn.execute(select(func.max(version))).scalar()


def migrate(engine: Engine) -> int:
    """Create the schema in an empty database, or upgrade an older one.

    Applies every missing migration in order, all in one transaction, and
    returns the version reached. Raises :class:`SchemaVersionError`,
    changing nothing, when the database is newer than this code. Safe to call
    from several processes at once: they take turns.
    """
    table = build_metadata().tables["loom_schema_version"]
    with engine.begin() as conn:
        conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        if inspect(conn).has_table("loom_schema_version"):
            current = conn.execute(select(func.max(table.c.version))).scalar() or 0
        else:
            current = 0
        if current > SCHEMA_VERSION:
            raise SchemaVersionError(
                current, SCHEMA_VERSION, "the database is newer than this code; upgrade loomcore"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)
            conn.execute(insert(table).values(version=version))
    return SCHEMA_VERSION
