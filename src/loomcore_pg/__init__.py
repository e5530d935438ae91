"""loomcore_pg: the PostgreSQL store for loomcore.

Install with ``pip install 'loomcore[pg]'``. ``import loomcore`` never
imports this package, SQLAlchemy or psycopg.
"""

from ._migrate import SchemaVersionError, migrate, schema_version
from ._schema import SCHEMA_VERSION, build_metadata
from ._store import PostgresStore

__all__ = [
    "SCHEMA_VERSION",
    "PostgresStore",
    "SchemaVersionError",
    "build_metadata",
    "migrate",
    "schema_version",
]
