"""Alembic environment of the consultation store.

Run through `backline.consult.database.migrate(url)`, which passes an open connection in
``config.attributes["connection"]``; the `alembic` command line works too when
``sqlalchemy.url`` is set (``-x url=...`` or the main option).
"""

from alembic import context
from sqlalchemy import create_engine

from backline.consult.database import VERSION_TABLE
from backline.consult.schema import metadata

config = context.config


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, future=True)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run them against a database")
run_migrations_online()
