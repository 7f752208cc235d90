"""The coordinator's state store: its configuration, farms, tasks, ledgers and audit log, in SQL.

SQLAlchemy Core on any URL: a SQLite file by default, PostgreSQL in production. Each method is
one transaction: it lands whole or not at all. ``Store.open`` brings the schema to the newest
Alembic revision (``migrations/``, shipped inside the package) before anything else runs.

SQLite. The file runs in WAL mode (readers never block the writer) with ``synchronous=NORMAL``:
a committed transaction survives the process being killed, though the last ones before a power
loss may roll back. Writes start with ``BEGIN IMMEDIATE``, so two writers wait for each other
(up to ``BUSY_TIMEOUT_S``) instead of failing when one upgrades a read lock.

Values. Timestamps are stored in UTC and come back timezone-aware in UTC; a naive one is
refused. Labels, commands, task messages (keys as hex), errors, audit details and ledger
ranges are JSON.
"""

from __future__ import annotations

import functools
import json
import re
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Row,
    Table,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, IntegrityError, InterfaceError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from xtreaming.coordinator.core.ledger import LedgerState
from xtreaming.coordinator.core.windows import Window
from xtreaming.coordinator.records import (
    AuditEntry,
    BaseRecord,
    FarmRecord,
    LeasedMessage,
    LedgerRecord,
    Profile,
    QueueRecord,
    RetryRecord,
    SlotRecord,
    TaskMessage,
    TaskRecord,
    WindowRecord,
    WorkSettings,
)
from xtreaming.coordinator.schema import (
    AUDIT_LOG,
    BASES,
    FARMS,
    LEDGER,
    PROFILES,
    QUEUES,
    RETRIES,
    SLOTS,
    TASKS,
    WINDOWS,
)
from xtreaming.errors import (
    BaseNotFound,
    FarmNotFound,
    InvalidProfile,
    InvalidRecord,
    InvalidStoreUrl,
    ProfileNotFound,
    QueueNotFound,
    StoreUnavailable,
    WindowNotFound,
)
from xtreaming.wire import packed

#: An unreachable database fails ``Store.open`` in seconds instead of hanging on TCP retries.
CONNECT_TIMEOUT_S: Final = 5
#: A SQLite writer waits this long for another one (another thread or process) before failing.
BUSY_TIMEOUT_S: Final = 30.0
#: Serializes concurrent ``Store.open`` migrations of one PostgreSQL database ("xtream" in ASCII).
MIGRATION_LOCK_KEY: Final = 0x787472_65616D
MIGRATIONS: Final = "xtreaming.coordinator:migrations"
#: The message count at the head of a packed ``tasks.packed``.
_COUNT: Final = struct.Struct("<q")
#: JSON columns are written compactly (ledger ranges, retries' errors, settings).
_dumps: Final = functools.partial(json.dumps, separators=(",", ":"))


_INSERT_TASK = insert(TASKS)
_DELETE_TASK = delete(TASKS).where(TASKS.c.id == bindparam("task_id"))
_DELETE_RETRY = delete(RETRIES).where(
    RETRIES.c.topic == bindparam("b_topic"),
    RETRIES.c.partition == bindparam("b_partition"),
    RETRIES.c.offset == bindparam("b_offset"),
)
#: Execution option naming the statement that opens a SQLite transaction (``BEGIN IMMEDIATE`` when absent).
_SQLITE_BEGIN: Final = "xtreaming_sqlite_begin"


class Store:
    """The coordinator's durable state; see the module docstring. Safe to share between threads."""

    def __init__(self, url: str) -> None:
        """Connect lazily to ``url``; ``Store.open`` also creates the schema. Raises InvalidStoreUrl."""
        self._url = _parse_url(url)
        self._shown_url = self._url.render_as_string(hide_password=True)
        self._engine = _create_engine(self._url, self._shown_url)
        self._local = threading.local()  # the thread's open ``transaction()``, if any

    @classmethod
    def open(cls, url: str) -> Store:
        """Open the store at ``url``, creating a SQLite file's folder and migrating the schema to the newest.

        Raises StoreUnavailable, within about ``CONNECT_TIMEOUT_S``, when the database cannot be reached.
        """
        store = cls(url)
        try:
            store._create_folder()
            store._migrate()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- profiles ---------------------------------------------------------------------------

    def list_profiles(self) -> list[Profile]:
        """Every profile, the one to try first (lowest position) first."""
        with self._read() as conn:
            rows = conn.execute(select(PROFILES).order_by(PROFILES.c.position, PROFILES.c.id))
            return [Profile(row.id, row.position, row.pattern, _settings_of(row)) for row in rows]

    def add_profile(self, pattern: str, settings: WorkSettings, position: int | None = None) -> Profile:
        """Add a profile at ``position`` (profiles there and after move down one), or after the last one.

        Raises InvalidProfile when ``pattern`` is not a regular expression or ``position`` is negative.
        """
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidProfile(f"profile pattern {pattern!r} is not a valid regular expression: {exc}") from exc
        if position is not None and position < 0:
            raise InvalidProfile(f"profile position {position} is negative; give 0 or more")
        with self._write() as conn:
            _lock_for_writes(conn, PROFILES)  # positions are read, then written
            if position is None:
                last = conn.execute(select(func.max(PROFILES.c.position))).scalar_one()
                position = 0 if last is None else last + 1
            else:
                conn.execute(
                    update(PROFILES).where(PROFILES.c.position >= position).values(position=PROFILES.c.position + 1)
                )
            values = {"position": position, "pattern": pattern, **_settings_row(settings)}
            profile_id = _new_id(conn.execute(insert(PROFILES).values(values)))
        return Profile(profile_id, position, pattern, settings)

    def remove_profile(self, profile_id: int) -> None:
        """Remove a profile; queues it configured keep their settings. Raises ProfileNotFound."""
        with self._write() as conn:
            if conn.execute(delete(PROFILES).where(PROFILES.c.id == profile_id)).rowcount == 0:
                raise ProfileNotFound(f"profile {profile_id} does not exist")

    # -- queues -----------------------------------------------------------------------------

    def list_queues(self) -> list[QueueRecord]:
        with self._read() as conn:
            return [_queue_of(row) for row in conn.execute(select(QUEUES).order_by(QUEUES.c.topic))]

    def get_queue(self, topic: str) -> QueueRecord:
        """The queue of ``topic``; raises QueueNotFound."""
        with self._read() as conn:
            return _queue_of(_one(conn, QUEUES, QUEUES.c.topic == topic, QueueNotFound, f"queue {topic!r}"))

    def add_queue(self, record: QueueRecord) -> QueueRecord:
        """Register a queue, stamping ``discovered_at`` now when it is None; an existing queue is returned unchanged."""
        if record.discovered_at is None:
            record = replace(record, discovered_at=datetime.now(UTC))
        row = {
            "topic": record.topic,
            "base": record.base,
            "kind": record.kind,
            **_settings_row(record.settings),
            "paused": record.paused,
            "profile_id": record.profile_id,
            "discovered_at": record.discovered_at,
        }
        with self._write() as conn:
            _upsert(conn, QUEUES, [row], keys=("topic",), replace=False)
            return _queue_of(conn.execute(select(QUEUES).where(QUEUES.c.topic == record.topic)).one())

    def update_queue(
        self, topic: str, *, paused: bool | None = None, settings: WorkSettings | None = None
    ) -> QueueRecord:
        """Pause or resume a queue and/or replace its settings; the queue as stored. Raises QueueNotFound."""
        values: dict[str, Any] = {} if settings is None else _settings_row(settings)
        if paused is not None:
            values["paused"] = paused
        with self._write() as conn:
            if values:
                conn.execute(update(QUEUES).where(QUEUES.c.topic == topic).values(values))
            return _queue_of(_one(conn, QUEUES, QUEUES.c.topic == topic, QueueNotFound, f"queue {topic!r}"))

    # -- bases and their windows ------------------------------------------------------------

    def list_bases(self) -> list[BaseRecord]:
        with self._read() as conn:
            return [_base_of(row) for row in conn.execute(select(BASES).order_by(BASES.c.name))]

    def get_base(self, name: str) -> BaseRecord:
        """The base called ``name``; raises BaseNotFound."""
        with self._read() as conn:
            return _base_of(_one(conn, BASES, BASES.c.name == name, BaseNotFound, f"base {name!r}"))

    def put_base(self, record: BaseRecord) -> BaseRecord:
        """Create the base or replace its limits and pause flag."""
        row = {
            "name": record.name,
            "max_workers": record.max_workers,
            "min_workers": record.min_workers,
            "paused": record.paused,
        }
        with self._write() as conn:
            _upsert(conn, BASES, [row], keys=("name",))
        return record

    def list_windows(self, base: str | None = None) -> list[WindowRecord]:
        """The windows of ``base`` (of every base when None), by base then id."""
        query = select(WINDOWS).order_by(WINDOWS.c.base, WINDOWS.c.id)
        if base is not None:
            query = query.where(WINDOWS.c.base == base)
        with self._read() as conn:
            return [
                WindowRecord(row.id, row.base, frozenset(row.weekdays), row.start, row.end, row.max_workers)
                for row in conn.execute(query)
            ]

    def add_window(self, record: WindowRecord) -> WindowRecord:
        """Store a window of an existing base; the record with its new id (``record.id`` is ignored).

        Raises InvalidWindow (see ``Window.parse``) or BaseNotFound, changing nothing.
        """
        Window.parse(record.weekdays, record.start, record.end, record.max_workers)
        row = {
            "base": record.base,
            "weekdays": sorted(record.weekdays),
            "start": record.start,
            "end": record.end,
            "max_workers": record.max_workers,
        }
        with self._write() as conn:
            _one(conn, BASES, BASES.c.name == record.base, BaseNotFound, f"base {record.base!r}")
            window_id = _new_id(conn.execute(insert(WINDOWS).values(row)))
        return replace(record, id=window_id)

    def remove_window(self, window_id: int) -> None:
        """Raises WindowNotFound."""
        with self._write() as conn:
            if conn.execute(delete(WINDOWS).where(WINDOWS.c.id == window_id)).rowcount == 0:
                raise WindowNotFound(f"window {window_id} does not exist")

    # -- farms and their slots --------------------------------------------------------------

    def put_farm(self, record: FarmRecord) -> FarmRecord:
        """Register a farm, or replace every field of a registered one (its slots stay)."""
        row = {
            "id": record.id,
            "name": record.name,
            "labels": dict(record.labels),
            "slots": record.slots,
            "heartbeat_interval_s": record.heartbeat_interval_s,
            "registered_at": record.registered_at,
            "last_heartbeat_at": record.last_heartbeat_at,
        }
        with self._write() as conn:
            _upsert(conn, FARMS, [row], keys=("id",))
        return record

    def get_farm(self, farm_id: str) -> FarmRecord:
        """Raises FarmNotFound."""
        with self._read() as conn:
            return _farm_of(_one(conn, FARMS, FARMS.c.id == farm_id, FarmNotFound, f"farm {farm_id!r}"))

    def list_farms(self) -> list[FarmRecord]:
        with self._read() as conn:
            return [_farm_of(row) for row in conn.execute(select(FARMS).order_by(FARMS.c.id))]

    def record_heartbeat(self, farm_id: str, at: datetime, slots: Sequence[SlotRecord]) -> None:
        """Set the farm's last heartbeat to ``at`` and replace its slots with ``slots``.

        Raises FarmNotFound, or InvalidRecord for a slot of another farm, changing nothing.
        """
        strangers = sorted({s.farm_id for s in slots} - {farm_id})
        if strangers:
            raise InvalidRecord(f"heartbeat of farm {farm_id!r} describes slots of farm(s) {', '.join(strangers)}")
        rows = [
            {
                "farm_id": s.farm_id,
                "slot": s.index,
                "state": s.state,
                "task_id": s.task_id,
                "pid": s.pid,
                "done": s.done,
                "total": s.total,
                "rss_bytes": s.rss_bytes,
            }
            for s in slots
        ]
        with self._write() as conn:
            found = conn.execute(update(FARMS).where(FARMS.c.id == farm_id).values(last_heartbeat_at=at))
            if found.rowcount == 0:
                raise FarmNotFound(f"farm {farm_id!r} is not registered")
            conn.execute(delete(SLOTS).where(SLOTS.c.farm_id == farm_id))
            if rows:
                conn.execute(insert(SLOTS), rows)

    def list_slots(self, farm_id: str | None = None) -> list[SlotRecord]:
        """The slots of ``farm_id`` (of every farm when None) as last reported, by farm then index."""
        query = select(SLOTS).order_by(SLOTS.c.farm_id, SLOTS.c.slot)
        if farm_id is not None:
            query = query.where(SLOTS.c.farm_id == farm_id)
        with self._read() as conn:
            return [
                SlotRecord(r.farm_id, r.slot, r.state, r.task_id, r.pid, r.done, r.total, r.rss_bytes)
                for r in conn.execute(query)
            ]

    # -- tasks, ledgers and retries: the hot path ---------------------------------------------

    def add_task(self, record: TaskRecord) -> None:
        """Store a lease before it is handed out. Raises InvalidRecord when its id is taken."""
        self.add_tasks([record])

    def add_tasks(self, records: Sequence[TaskRecord]) -> None:
        """Store several leases in one statement (a farm asking for many slots)."""
        if not records:
            return
        rows = [
            {
                "id": record.id,
                "topic": record.topic,
                "farm_id": record.farm_id,
                "slot": record.slot,
                "packed": _packed_of(record.messages),
                "messages": None,
                "leased_at": record.leased_at,
                "deadline_at": record.deadline_at,
            }
            for record in records
        ]
        with self._write() as conn:
            conn.execute(_INSERT_TASK, rows)

    def active_tasks(self) -> list[TaskRecord]:
        """Every stored task (leased and not settled), oldest lease first."""
        with self._read() as conn:
            return [_task_of(row) for row in conn.execute(select(TASKS).order_by(TASKS.c.leased_at, TASKS.c.id))]

    def settle(
        self,
        *,
        finished_tasks: Sequence[str] = (),
        ledgers: Sequence[LedgerRecord] = (),
        retries: Sequence[RetryRecord] = (),
        cleared_retries: Sequence[tuple[str, int, int]] = (),
    ) -> None:
        """In one transaction: delete ``finished_tasks`` (unknown ids are ignored), store ``ledgers`` and
        ``retries`` (replacing those of the same partition / message), and delete ``cleared_retries``
        given as ``(topic, partition, offset)``. Raises InvalidRecord, changing nothing, for a refused row.
        """
        if not (finished_tasks or ledgers or retries or cleared_retries):
            return
        ledger_rows = [
            {
                "topic": r.topic,
                "partition": r.partition,
                "watermark": r.state.watermark,
                "finished": [list(pair) for pair in r.state.finished],
            }
            for r in ledgers
        ]
        retry_rows = [
            {
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "attempts": r.attempts,
                "not_before": r.not_before,
                "errors": list(r.errors),
            }
            for r in retries
        ]
        with self._write() as conn:
            if finished_tasks:
                conn.execute(_DELETE_TASK, [{"task_id": task_id} for task_id in finished_tasks])
            _upsert(conn, LEDGER, ledger_rows, keys=("topic", "partition"))
            _upsert(conn, RETRIES, retry_rows, keys=("topic", "partition", "offset"))
            if cleared_retries:
                conn.execute(
                    _DELETE_RETRY, [{"b_topic": t, "b_partition": p, "b_offset": o} for t, p, o in cleared_retries]
                )

    def load_ledgers(self) -> list[LedgerRecord]:
        """Every partition's ledger, by topic then partition."""
        query = select(LEDGER).order_by(LEDGER.c.topic, LEDGER.c.partition)
        with self._read() as conn:
            return [
                LedgerRecord(r.topic, r.partition, LedgerState(r.watermark, tuple((s, e) for s, e in r.finished)))
                for r in conn.execute(query)
            ]

    def load_retries(self) -> list[RetryRecord]:
        """Every message waiting for a retry, by topic, partition and offset."""
        query = select(RETRIES).order_by(RETRIES.c.topic, RETRIES.c.partition, RETRIES.c.offset)
        with self._read() as conn:
            return [
                RetryRecord(r.topic, r.partition, r.offset, r.attempts, r.not_before, tuple(r.errors))
                for r in conn.execute(query)
            ]

    # -- audit log --------------------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, details: Mapping[str, Any]) -> AuditEntry:
        """Record an admin action now; ``details`` must be JSON-serializable."""
        at = datetime.now(UTC)
        values = {"at": at, "actor": actor, "action": action, "target": target, "details": dict(details)}
        with self._write() as conn:
            entry_id = _new_id(conn.execute(insert(AUDIT_LOG).values(values)))
        return AuditEntry(entry_id, at, actor, action, target, dict(details))

    def list_audit(self, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        """Up to ``limit`` entries, newest first; pass the last one's id as ``before_id`` for the next page."""
        if limit < 1:
            raise ValueError(f"audit limit {limit} must be at least 1")
        query = select(AUDIT_LOG).order_by(AUDIT_LOG.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AUDIT_LOG.c.id < before_id)
        with self._read() as conn:
            return [AuditEntry(r.id, r.at, r.actor, r.action, r.target, r.details) for r in conn.execute(query)]

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
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
        """Group this thread's writes until the block ends into one transaction (all or none).

        The hot path uses it to store a farm's completions and its next leases with one commit.
        Nested blocks join the outer one.
        """
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
    def _read(self) -> Iterator[Connection]:
        """A connection whose transaction (a plain ``BEGIN`` on SQLite: it never blocks the writer) rolls back."""
        with self._translated(), self._engine.connect() as conn:
            conn.execution_options(**{_SQLITE_BEGIN: "BEGIN"})
            yield conn

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

    def _create_folder(self) -> None:
        database = self._url.database
        if self._url.get_backend_name() != "sqlite" or not database or database == ":memory:":
            return
        if database.startswith("file:"):  # a SQLite URI (?uri=true): SQLite resolves it
            return
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"state store {self._shown_url}: cannot create its folder: {exc}") from exc

    def _migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")


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


def _one(conn: Connection, table: Table, where: Any, error: Callable[[str], LookupError], what: str) -> Row[Any]:
    """The row of ``table`` matching ``where``; raises ``error("<what> does not exist")`` when there is none."""
    row = conn.execute(select(table).where(where)).first()
    if row is None:
        raise error(f"{what} does not exist")
    return row


def _lock_for_writes(conn: Connection, table: Table) -> None:
    """Make concurrent writers of ``table`` wait for this transaction (SQLite's ``BEGIN IMMEDIATE`` already does)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE"))


@functools.cache
def _upsert_statement(dialect: str, table: Table, keys: tuple[str, ...], replace: bool) -> Any:
    build = sqlite_insert if dialect == "sqlite" else postgresql_insert
    statement = build(table)
    if not replace:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=list(keys), set_=updates)


def _upsert(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, keys: tuple[str, ...], replace: bool = True
) -> None:
    """Insert ``rows``; where a row with the same ``keys`` exists, replace its other columns (or keep it)."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        conn.execute(_upsert_statement(dialect, table, keys, replace), list(rows))
        return
    for row in rows:  # any other database: portable, one row at a time
        where = and_(*(table.c[k] == row[k] for k in keys))
        if conn.execute(select(exists().where(where))).scalar_one():
            if replace:
                conn.execute(update(table).where(where).values({k: v for k, v in row.items() if k not in keys}))
        else:
            conn.execute(insert(table).values(row))


def _settings_row(settings: WorkSettings) -> dict[str, Any]:
    return {
        "priority": settings.priority,
        "batch_size": settings.batch_size,
        "command": list(settings.command),
        "handler": settings.handler,
        "timeout_s": settings.timeout_s,
        "max_attempts": settings.max_attempts,
        "backoff_s": settings.backoff_s,
        "backoff_max_s": settings.backoff_max_s,
        "required_labels": dict(settings.required_labels),
        "max_workers": settings.max_workers,
    }


def _settings_of(row: Row[Any]) -> WorkSettings:
    return WorkSettings(
        priority=row.priority,
        batch_size=row.batch_size,
        command=tuple(row.command),
        handler=row.handler,
        timeout_s=row.timeout_s,
        max_attempts=row.max_attempts,
        backoff_s=row.backoff_s,
        backoff_max_s=row.backoff_max_s,
        required_labels=dict(row.required_labels),
        max_workers=row.max_workers,
    )


def _queue_of(row: Row[Any]) -> QueueRecord:
    return QueueRecord(row.topic, row.base, row.kind, _settings_of(row), row.paused, row.profile_id, row.discovered_at)


def _base_of(row: Row[Any]) -> BaseRecord:
    return BaseRecord(row.name, row.max_workers, row.min_workers, row.paused)


def _farm_of(row: Row[Any]) -> FarmRecord:
    return FarmRecord(
        row.id,
        row.name,
        dict(row.labels),
        row.slots,
        row.heartbeat_interval_s,
        row.registered_at,
        row.last_heartbeat_at,
    )


def _packed_of(messages: Sequence[LeasedMessage]) -> bytes:
    """A task's messages as the ``packed`` column keeps them: their count (a little-endian 64-bit
    integer), then their partitions, offsets, attempts and keys packed (``xtreaming.wire.packed``)."""
    numbers = [m.partition for m in messages], [m.offset for m in messages], [m.attempt for m in messages]
    return _COUNT.pack(len(messages)) + packed.pack(numbers, [[m.key for m in messages]])


def _messages_of(row: Row[Any]) -> tuple[TaskMessage, ...]:
    """A stored task's messages, from whichever form the version that stored it wrote (see ``schema.TASKS``)."""
    if row.packed is not None:
        (count,) = _COUNT.unpack_from(row.packed)
        (partitions, offsets, attempts), (keys,), _ = packed.unpack(row.packed, _COUNT.size, count, 3, 1)
        return tuple(map(TaskMessage, partitions, offsets, keys, attempts))
    stored = row.messages
    if isinstance(stored, dict):
        columns = zip(stored["partitions"], stored["offsets"], stored["keys"], stored["attempts"], strict=True)
    else:  # rows written before the columns: [[partition, offset, key, attempt], ...]
        columns = iter(stored)
    return tuple(
        TaskMessage(partition, offset, None if key is None else bytes.fromhex(key), attempt)
        for partition, offset, key, attempt in columns
    )


def _task_of(row: Row[Any]) -> TaskRecord:
    return TaskRecord(row.id, row.topic, row.farm_id, row.slot, _messages_of(row), row.leased_at, row.deadline_at)


def _new_id(result: CursorResult[Any]) -> int:
    """The integer key the database gave the row just inserted."""
    key = result.inserted_primary_key
    if key is None:  # only for an insert of several rows, which callers of this never do
        raise RuntimeError("the database returned no key for the inserted row")
    return int(key[0])


def _first_line(error: BaseException | None) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
