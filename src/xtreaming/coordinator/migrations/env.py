"""Alembic's environment for the state store: migrates the connection ``Store.open`` hands over.

``Store.open`` runs ``upgrade head`` itself, inside its own transaction (see ``store.database.Database.migrate``).
From the command line, give the URL instead:
``alembic -x url=sqlite:///.xtreaming/state.db -c /dev/null upgrade head`` with
``script_location`` pointing here (or ``--sql`` for the SQL without a database).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from xtreaming.coordinator.schema import METADATA


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=METADATA)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the state store URL: alembic -x url=sqlite:///path/state.db ...")
    return url


given: Connection | None = context.config.attributes.get("connection")
if given is not None:
    _run(given)
elif context.is_offline_mode():
    context.configure(url=_url(), target_metadata=METADATA, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with create_engine(_url(), poolclass=pool.NullPool).connect() as connection:
        _run(connection)
        connection.commit()
