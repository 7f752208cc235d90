"""The state store's database: its engine, each thread's transaction, the driver's errors as ours, and migrations.

SQLAlchemy Core on any URL: a SQLite file by default, PostgreSQL in production.

SQLite. The file runs in WAL mode (readers never block the writer) with ``synchronous=NORMAL``:
a committed transaction survives the process being killed, though the last ones before a power
loss may roll back. Writes start with ``BEGIN IMMEDIATE``, so two writers wait for each other
(up to ``BUSY_TIMEOUT_S``) instead of failing when one upgrades a read lock.

Errors. Whatever the driver raises leaves as ours, its error kept as the cause: a value or row the
database refuses (a duplicate key, an integer too large for its column) as ``InvalidRecord``, any
other database failure (a full disk, a lost connection, a backend killed) as ``StoreUnavailable``.
A transaction that fails is rolled back; when the rollback or the commit fails too, its connection
is dropped (the pool opens a new one; on PostgreSQL, ``pool_pre_ping`` also replaces connections
that died while idle), and the caller sees the first error, not the rollback's.

Fencing. Where several coordinators share the database, ``fence`` is set to the leader's check
(``coordinator/leadership.py``): every write transaction runs it first, so a coordinator that no longer
leads changes nothing, whichever of its write sites tries.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL, RootTransaction
from sqlalchemy.exc import ArgumentError, DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from xtreaming.coordinator.store import driver
from xtreaming.errors import InvalidRecord, InvalidStoreUrl, StoreUnavailable

log = logging.getLogger("xtreaming.coordinator")

#: An unreachable database fails ``Store.open`` in seconds instead of hanging on TCP retries.
CONNECT_TIMEOUT_S: Final = 5
#: A SQLite writer waits this long for another one (another thread or process) before failing.
BUSY_TIMEOUT_S: Final = 30.0
#: Serializes concurrent ``Store.open`` migrations of one PostgreSQL database ("xtream" in ASCII).
MIGRATION_LOCK_KEY: Final = 0x787472_65616D
MIGRATIONS: Final = "xtreaming.coordinator:migrations"
#: JSON columns are written compactly (ledger ranges, retries' errors, settings).
dumps: Final = functools.partial(json.dumps, separators=(",", ":"))
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
        #: Run at the start of every write transaction (``write()``, ``transaction()``): raises NotLeader to
        #: refuse it. None (the default, one coordinator): every write goes ahead.
        self.fence: Callable[[Connection], None] | None = None
        #: Run before a write transaction begins, outside it: the coordinator waits there for the changes it
        #: commits out of its lock (``commit_order.py``), which must land first. None: nothing to wait for.
        self.before_write: Callable[[], None] | None = None

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def write(self, *, fenced: bool = True, ordered: bool = True) -> Iterator[Connection]:
        """A connection in a transaction committed on success (``BEGIN IMMEDIATE`` on SQLite), or the
        thread's open ``transaction()``, which commits when it ends. ``fenced=False`` skips the ``fence``:
        for the leadership row itself, which decides who passes it. ``ordered=False`` skips ``before_write``:
        for a row no change on its way to the store touches (a farm's last heartbeat)."""
        current: Connection | None = getattr(self._local, "conn", None)
        if current is not None:
            with self._translated():
                yield current
            return
        self._before_write(ordered)
        with self._begun(fenced=fenced) as conn, self._translated():
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group this thread's writes until the block ends into one transaction (all or none); nested
        blocks join the outer one."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        self._before_write()
        with self._begun() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextmanager
    def deferred(self) -> Iterator[list[Callable[[], None]]]:
        """A list for this thread's writes to be run later (``Store.deferred`` fills it; ``later`` finds it); while
        the block runs, a write transaction on this thread raises RuntimeError: it would land before them."""
        writes: list[Callable[[], None]] = []
        self._local.later = writes
        try:
            yield writes
        finally:
            self._local.later = None

    def later(self) -> list[Callable[[], None]] | None:
        """The list of the thread's ``deferred`` block, or None outside one."""
        writes: list[Callable[[], None]] | None = getattr(self._local, "later", None)
        return writes

    def _before_write(self, ordered: bool = True) -> None:
        if self.later() is not None:
            raise RuntimeError("a store write while this thread defers its writes: it would land before them")
        if ordered and self.before_write is not None:
            self.before_write()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection whose transaction (a plain ``BEGIN`` on SQLite: it never blocks the writer) rolls back."""
        with self._translated(), self._engine.connect() as conn:
            conn.execution_options(**{_SQLITE_BEGIN: "BEGIN"})
            yield conn

    @property
    def dialect(self) -> str:
        """The database's kind: ``sqlite`` or ``postgresql``."""
        return self._url.get_backend_name()

    def end_idle_transactions_after(self, seconds: float) -> None:
        """On PostgreSQL, have the server end this store's transactions left idle for ``seconds`` (their
        process paused or gone) and release their locks; connections already open are replaced."""
        if self.dialect != "postgresql":
            return
        timeout_ms = max(1, round(seconds * 1000))

        def configure(dbapi_connection: Any, _record: object) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET idle_in_transaction_session_timeout = {timeout_ms}")
            cursor.close()
            dbapi_connection.commit()

        event.listen(self._engine, "connect", configure)
        self._engine.dispose()

    def attach_on_connect(self, schema: str, path: Path) -> None:
        """On SQLite, attach the database file at ``path`` as ``schema`` to every connection from now on, to be
        read (by statements that read another file without Python in between). Call it before the first
        connection. Write transactions then begin deferred: ``BEGIN IMMEDIATE`` would take the write lock of
        every attached file too, stopping that file's own writers; a deferred one locks only the database its
        statements write to, when they do. So use it on a database with one writer at a time."""
        if self.dialect != "sqlite":
            raise ValueError(f"attaching {path} to {self._shown_url}: only a SQLite database attaches a file")

        def attach(dbapi_connection: Any, _record: object) -> None:
            try:
                dbapi_connection.execute(f"ATTACH DATABASE ? AS {schema}", (str(path),))
            except sqlite3.Error as exc:  # the connection serves its own database; statements on the file fail
                log.warning("%s: cannot attach %s as %s: %s", self._shown_url, path, schema, exc)

        event.listen(self._engine, "connect", attach)
        self._engine = self._engine.execution_options(**{_SQLITE_BEGIN: "BEGIN"})

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
    def _begun(self, *, fenced: bool = True) -> Iterator[Connection]:
        """A connection in a transaction of its own, committed when the block ends, rolled back if it
        raises. SQLAlchemy's ``engine.begin()`` would raise a failing rollback's error over the one
        that caused it; here the first error is the one raised, and a connection whose rollback or
        commit failed is dropped rather than given to the next caller in an unknown state. Errors of
        the block itself are not translated here (``write()`` translates the statements')."""
        with self._translated():
            conn = self._engine.connect()  # on PostgreSQL, pre-pinged: a connection killed while idle is replaced
        with conn:
            with self._translated():
                transaction = conn.begin()
            try:
                if fenced and self.fence is not None:
                    with self._translated():
                        self.fence(conn)
                yield conn
            except BaseException:
                self._roll_back(conn, transaction)
                raise
            with self._translated():
                try:
                    transaction.commit()
                except BaseException:
                    _drop(conn)
                    raise

    def _roll_back(self, conn: Connection, transaction: RootTransaction) -> None:
        """Roll back after an error; a rollback that fails is logged and its connection dropped, never raised."""
        try:
            transaction.rollback()
        except Exception as exc:
            log.warning("state store %s: rollback failed too, connection dropped: %s", self._shown_url, exc)
            _drop(conn)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn the driver's errors into ours: refused rows and values → InvalidRecord, any other database
        failure → StoreUnavailable."""
        try:
            yield
        except (IntegrityError, DataError) as exc:  # a duplicate key, a value out of its column's range
            raise InvalidRecord(f"state store refused the write: {_first_line(exc.orig)}") from exc
        except (DBAPIError, PoolTimeoutError) as exc:  # lost, killed, full, damaged, locked too long
            reason = _first_line(exc.orig if isinstance(exc, StatementError) else exc)
            raise StoreUnavailable(f"state store {self._shown_url} is unavailable: {reason}") from exc
        except StatementError as exc:
            if isinstance(exc.orig, ValueError | TypeError | OverflowError):  # a value's conversion (a naive datetime)
                raise InvalidRecord(f"state store refused a value: {exc.orig}") from exc
            raise
        except OverflowError as exc:  # sqlite3 binding an integer beyond 64 bits raises it unwrapped
            raise InvalidRecord(f"state store refused a value: {exc}") from exc


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
            json_serializer=dumps,
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
    # On the driver: a statement through SQLAlchemy here would cost every transaction its execution machinery.
    statement = conn.get_execution_options().get(_SQLITE_BEGIN, "BEGIN IMMEDIATE")
    with driver.cursor(conn, statement) as cursor:
        cursor.execute(statement)


def _drop(conn: Connection) -> None:
    """Close ``conn``'s database connection for good: the pool opens a new one for the next caller."""
    if not conn.invalidated and not conn.closed:
        conn.invalidate()


def _first_line(error: BaseException | None) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
