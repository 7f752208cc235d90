"""The state store's database: its engine, each thread's transaction, the driver's errors as ours, and migrations.

SQLAlchemy Core on any URL: a SQLite file by default, PostgreSQL in production.

SQLite. The file runs in WAL mode (readers never block the writer) with ``synchronous=NORMAL``:
a committed transaction survives the process being killed, though the last ones before a power
loss may roll back. Writes start with ``BEGIN IMMEDIATE``, so two writers wait for each other
(up to ``BUSY_TIMEOUT_S``) instead of failing when one upgrades a read lock.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, IntegrityError, InterfaceError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from xtreaming.errors import InvalidRecord, InvalidStoreUrl, StoreUnavailable

#: An unreachable database fails ``Store.open`` in seconds instead of hanging on TCP retries.
CONNECT_TIMEOUT_S: Final = 5
#: A SQLite writer waits this long for another one (another thread or process) before failing.
BUSY_TIMEOUT_S: Final = 30.0
#: Serializes concurrent ``Store.open`` migrations of one PostgreSQL database ("xtream" in ASCII).
MIGRATION_LOCK_KEY: Final = 0x787472_65616D
MIGRATIONS: Final = "xtreaming.coordinator:migrations"
#: JSON columns are written compactly (ledger ranges, retries' errors, settings).
_dumps: Final = functools.partial(json.dumps, separators=(",", ":"))
#: Execution option naming the statement that opens a SQLite transaction (``BEGIN IMMEDIATE`` when absent).
_SQLITE_BEGIN: Final = "xtreaming_sqlite_begin"


class Database:
    """One database at a URL, safe to share between threads; connects lazily.

    Each ``write()`` is one transaction, unless the thread has a ``transaction()`` open: then it joins it.
    """

    def __init__(self, url: str) -> None:
        """Raises InvalidStoreUrl."""
        self._url = _parse_url(url)
        self._shown_url = self._url.render_as_string(hide_password=True)
        self._engine = _create_engine(self._url, self._shown_url)
        self._local = threading.local()  # the thread's open ``transaction()``, if any

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a transaction committed on success (``BEGIN IMMEDIATE`` on SQLite), or the
        thread's open ``transaction()``, which commits when it ends."""
        current: Connection | None = getattr(self._local, "conn", None)
        if current is not None:
            with self._translated():
                yield current
            return
        with self._translated(), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group this thread's writes until the block ends into one transaction (all or none); nested
        blocks join the outer one."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self._translated(), self._engine.begin() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection whose transaction (a plain ``BEGIN`` on SQLite: it never blocks the writer) rolls back."""
        with self._translated(), self._engine.connect() as conn:
            conn.execution_options(**{_SQLITE_BEGIN: "BEGIN"})
            yield conn

    def create_folder(self) -> None:
        """Create a SQLite file's folder; raises StoreUnavailable when it cannot be."""
        database = self._url.database
        if self._url.get_backend_name() != "sqlite" or not database or database == ":memory:":
            return
        if database.startswith("file:"):  # a SQLite URI (?uri=true): SQLite resolves it
            return
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"state store {self._shown_url}: cannot create its folder: {exc}") from exc

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (``migrations/``), in one transaction."""
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        with self.write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn the driver's errors into ours: refused rows → InvalidRecord, lost database → StoreUnavailable."""
        try:
            yield
        except IntegrityError as exc:
            raise InvalidRecord(f"state store refused the write: {_first_line(exc.orig)}") from exc
        except (OperationalError, InterfaceError, PoolTimeoutError) as exc:
            reason = _first_line(exc.orig if isinstance(exc, StatementError) else exc)
            raise StoreUnavailable(f"state store {self._shown_url} is unavailable: {reason}") from exc
        except StatementError as exc:
            if isinstance(exc.orig, ValueError | TypeError):  # raised by a value's conversion (a naive datetime)
                raise InvalidRecord(f"state store refused a value: {exc.orig}") from exc
            raise


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise InvalidStoreUrl(
            f"state store URL {url!r} is not a SQLAlchemy URL such as sqlite:///path/state.db "
            "or postgresql+psycopg://user@host/db"
        ) from exc


def _create_engine(url: URL, shown_url: str) -> Engine:
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        connect_args["timeout"] = BUSY_TIMEOUT_S
    elif backend == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        engine = create_engine(
            url,
            connect_args=connect_args,
            json_serializer=_dumps,
            pool_pre_ping=backend != "sqlite",
        )
    except ImportError as exc:
        raise StoreUnavailable(f"state store {shown_url}: its database driver is not installed ({exc})") from exc
    except ArgumentError as exc:
        raise InvalidStoreUrl(
            f"state store URL {shown_url}: unknown database {url.drivername!r}; "
            "use sqlite:///path/state.db or postgresql+psycopg://user@host/db"
        ) from exc
    if backend == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: object) -> None:
    # Autocommit at the driver: it would otherwise BEGIN only before DML, deferred; we BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _begin_sqlite(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_SQLITE_BEGIN, "BEGIN IMMEDIATE"))


def _first_line(error: BaseException | None) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
