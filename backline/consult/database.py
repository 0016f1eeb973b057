"""The consultation store's database: its URL, engines (SQLite tuned for one writer at a time,
PostgreSQL), and the Alembic migrations that own the schema, with their command line.

    python -m backline.consult.store migrate [--url URL]   # upgrade to head
    python -m backline.consult.store current [--url URL]   # show the schema revision
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from pathlib import Path
from typing import Any, List, Optional, Union

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url

from backline.paths import PROJECT_ROOT, VAR  # noqa: F401  (PROJECT_ROOT: re-exported)

ENV_URL = "BACKLINE_CONSULT_DB_URL"
DEFAULT_DB_PATH = VAR / "consultations.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "consult_alembic_version"
"""Alembic's version table, named apart so the store can share a database with others."""
_PG_LOCK_KEY = 0x6261636B6C696E65 % (2**63)  # "backline": serialises concurrent migrations


def database_url() -> str:
    """$BACKLINE_CONSULT_DB_URL, else SQLite at <project root>/var/consultations.db."""
    url = os.environ.get(ENV_URL, "").strip()
    return url or f"sqlite:///{DEFAULT_DB_PATH}"


def _is_sqlite(url: Union[str, Engine]) -> bool:
    backend = url.dialect.name if isinstance(url, Engine) else make_url(url).get_backend_name()
    return backend == "sqlite"


def make_engine(url: str) -> Engine:
    """An engine for `url`. SQLite: the folder is created, foreign keys on, WAL for files,
    and writes take the lock at BEGIN (``BEGIN IMMEDIATE``) so read-then-write is atomic."""
    if not _is_sqlite(url):
        return create_engine(url, future=True, pool_pre_ping=True)
    parsed = make_url(url)
    on_disk = parsed.database not in (None, "", ":memory:") and not parsed.database.startswith("file:")
    if on_disk:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if on_disk:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:  # another connection holds the lock while switching it: it
                pass  # is persistent, so that connection's switch serves this one too
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get("backline_read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _alembic_config(connection: Optional[Connection] = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(url: Union[str, Engine, None] = None) -> str:
    """Upgrade the consultation schema at `url` (or an engine) to head; return the head revision.

    Idempotent; concurrent starts are serialised (PostgreSQL advisory lock, SQLite write lock)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    engine = url if isinstance(url, Engine) else make_engine(url or database_url())
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            command.upgrade(_alembic_config(connection), "head")
        return ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def current_revision(url: Union[str, Engine, None] = None) -> Optional[str]:
    """The schema revision the database at `url` is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine = url if isinstance(url, Engine) else make_engine(url or database_url())
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def main(argv: Optional[List[str]] = None) -> int:
    """``migrate`` (upgrade to head) or ``current`` (print the revision) for the consultation store."""
    parser = argparse.ArgumentParser(prog="python -m backline.consult.store", description=main.__doc__)
    parser.add_argument("command", choices=("migrate", "current"))
    parser.add_argument("--url", default=None, help=f"database URL (default: ${ENV_URL} or {DEFAULT_DB_PATH})")
    args = parser.parse_args(argv)
    url = args.url or database_url()
    shown = make_url(url).render_as_string(hide_password=True)
    if args.command == "migrate":
        head = migrate(url)
        print(f"consultation store at {shown}: schema at revision {head}")
    else:
        print(current_revision(url) or "none")
    return 0
