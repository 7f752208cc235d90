"""The embedded log on SQLite: the default broker, durable, shared safely by several processes.

Layout. ``topics`` holds each topic's partition count and the first of its *partition ids*
(``pid``): a topic's partitions get consecutive pids when it is created. Every record lives in
one rowid table whose integer key is ``pid << 40 | offset``: appends and range reads walk the
table's own B-tree (no secondary index). That leaves 2^40 offsets per partition and 2^23
partitions in all. Offsets are dense. Each partition's end (its next offset) is kept in ``heads``
by the appends themselves, so polling every queue's end is one small read; a log written before
that table existed gets it from one ``MAX(id)`` probe per partition when opened.

Concurrency. The database runs in WAL mode: readers never block writers nor each other.
Appends take the write lock up front (``BEGIN IMMEDIATE``) and compute offsets inside that
transaction, so appenders in several processes serialize without losing or reusing offsets;
a busy writer is waited for (``busy_timeout``), not failed. ``begin_append`` inserts on the log's
own writing connection; a batch of ``COMMIT_ASIDE_FROM`` records or more commits on a thread of its
own while the caller goes on (SQLite lets go of the GIL for the commit's writes), a smaller one at
once; the caller's wait returns once the commit is done.

Durability (fsync policy). ``synchronous=NORMAL`` by default: a committed append survives the
process being killed at any moment (SIGKILL included) — the WAL is written before COMMIT
returns — but the last transactions before a power loss or kernel crash may roll back (the
file stays consistent). Append ``?synchronous=full`` to the URL to fsync the WAL on every
commit and survive power loss too, at a cost in append throughput.

Errors. Whatever SQLite raises (a full disk, an I/O error, a lock waited for too long, a damaged
file) leaves the adapter as ``BrokerUnavailable`` with SQLite's error as its cause, and a write
that fails is rolled back whole. SQLite rolls some transactions back by itself (after an I/O
error, for one); a rollback that then fails is logged, never raised over the error that caused it.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import sqlite3
import threading
import time
from base64 import b64decode, b64encode
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from re import Pattern
from typing import Concatenate, Final, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

from xtreaming.broker.partitioning import partitions_for
from xtreaming.broker.port import Headers, Message, Positions, Record
from xtreaming.errors import BrokerUnavailable, InvalidBrokerUrl, PartitionNotFound, TopicNotFound
from xtreaming.sql_chunks import chunks, values_sql

log = logging.getLogger("xtreaming.broker.sqlite")

P = ParamSpec("P")
R = TypeVar("R")

OFFSET_BITS: Final = 40
OFFSET_MASK: Final = (1 << OFFSET_BITS) - 1
#: 2^23 partitions in all keeps ``pid << 40 | offset`` inside SQLite's signed 64-bit integers.
MAX_PIDS: Final = 1 << 23
#: A writer waits this long for another process's append to finish before giving up.
BUSY_TIMEOUT_S: Final = 60.0
SYNCHRONOUS_MODES: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
#: ``begin_append`` commits batches of this many records or more on its committing thread; smaller
#: ones at once (the hand-off costs more than their commit).
COMMIT_ASIDE_FROM: Final = 256

#: ``end_offsets_of`` reads the ends of this many topics or fewer a topic at a time, of more the whole ``heads``
#: table at once: polling a few topics (``Broker.local``) costs a few small reads, not one of every partition of
#: the log (~3.5 ms with 2,000 topics of 4 partitions and their ``.ACK`` topics, measured).
FEW_TOPICS: Final = 32

#: CPython's sqlite3 binds int, float, str and bytearray directly, but looks for an adapter for every
#: ``bytes`` value (keys and values), building and dropping an AttributeError each time (~0.3 µs):
#: an identity adapter turns that into one dictionary lookup. Process-wide, and changes nothing else.
sqlite3.register_adapter(bytes, bytes)

_READ = "SELECT id, key, value, headers, ts FROM records WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"
_READ_KEYS = f"SELECT id & {OFFSET_MASK}, key FROM records WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"
#: Each partition's end (next offset), kept by appends: polling every queue's end is one small read.
_SET_HEAD = (
    "INSERT INTO heads (pid, next_offset) VALUES (?, ?) "
    "ON CONFLICT (pid) DO UPDATE SET next_offset = excluded.next_offset"
)
#: The ends of one topic's partitions (a range of partition ids).
_HEADS_OF = "SELECT pid, next_offset FROM heads WHERE pid >= ? AND pid < ?"
_COLUMNS: Final = "id, key, value, ts"
_COLUMNS_WITH_HEADERS: Final = "id, key, value, headers, ts"
#: Rows of the largest INSERT (``sql_chunks``).
ROWS_PER_INSERT: Final = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    partitions INTEGER NOT NULL,
    first_pid INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    key BLOB,
    value BLOB NOT NULL,
    headers TEXT,
    ts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS heads (
    pid INTEGER PRIMARY KEY,
    next_offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS commits (
    grp TEXT NOT NULL,
    pid INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (grp, pid)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class _Topic:
    name: str
    partitions: int
    first_pid: int

    def bounds(self, partition: int) -> tuple[int, int]:
        """The record-id range ``[lo, hi)`` of one partition."""
        if not 0 <= partition < self.partitions:
            raise PartitionNotFound(f"topic {self.name!r} has partitions 0..{self.partitions - 1}, not {partition}")
        lo = (self.first_pid + partition) << OFFSET_BITS
        return lo, lo + OFFSET_MASK + 1


@dataclass(slots=True)
class _Heads:
    """Partition ends read by one thread's connection while the log stood at ``version`` (``end_offsets_of``):
    by partition id, of the topics whose first partition id is in ``read``, or of all of them (None)."""

    version: tuple[int, int]
    heads: dict[int, int]
    read: set[int] | None


def _translated(method: Callable[Concatenate[SqliteBroker, P], R]) -> Callable[Concatenate[SqliteBroker, P], R]:
    """``method`` raising ``BrokerUnavailable`` (SQLite's error as its cause) where SQLite raised."""

    @functools.wraps(method)
    def translated(self: SqliteBroker, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise BrokerUnavailable(f"log {self.path}: {exc}") from exc

    return translated


class SqliteBroker:
    """The embedded, single-machine log (see the module docstring for layout and guarantees)."""

    #: No limit to cut records to: values are SQLite blobs (SQLite's own bound is a billion bytes).
    max_record_bytes: int | None = None
    #: Every call reads this machine's file: ``end_offsets_of`` of a few topics takes a few microseconds while
    #: nobody appended (``PRAGMA data_version``), a small read per topic once somebody did.
    local: bool = True

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise InvalidBrokerUrl(f"synchronous={synchronous!r}: expected one of {', '.join(SYNCHRONOUS_MODES)}")
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._topics: dict[str, _Topic] = {}
        self._round_robin = itertools.count()
        self._appending = threading.Lock()
        self._append_con: sqlite3.Connection | None = None
        self._commits: ThreadPoolExecutor | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = self._connection()
            con.execute("PRAGMA journal_mode=WAL")
            with self._write() as tx:
                _create_schema(tx)
                _backfill_heads(tx)
        except (OSError, sqlite3.Error) as exc:
            raise BrokerUnavailable(f"cannot open the log at {self.path}: {exc}") from exc

    @classmethod
    def from_url(cls, url: str) -> SqliteBroker:
        """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, optional ``?synchronous=full``."""
        path, synchronous = _parse_url(url)
        return cls(path, synchronous=synchronous)

    # -- topics ---------------------------------------------------------------------------------

    @_translated
    def create_topic(self, topic: str, partitions: int) -> int:
        if partitions < 1:
            raise ValueError(f"topic {topic!r}: partitions must be at least 1, got {partitions}")
        with self._write() as con:
            row = con.execute("SELECT partitions FROM topics WHERE name = ?", (topic,)).fetchone()
            if row is not None:
                return int(row[0])
            (first_pid,) = con.execute("SELECT COALESCE(MAX(first_pid + partitions), 0) FROM topics").fetchone()
            if first_pid + partitions > MAX_PIDS:
                raise ValueError(f"topic {topic!r}: the log holds at most {MAX_PIDS} partitions in all")
            con.execute(
                "INSERT INTO topics (name, partitions, first_pid, created_ms) VALUES (?, ?, ?, ?)",
                (topic, partitions, first_pid, _now_ms()),
            )
        return partitions

    @_translated
    def list_topics(self, pattern: Pattern[str] | None = None) -> list[str]:
        names = [name for (name,) in self._read("SELECT name FROM topics ORDER BY name")]
        return [n for n in names if pattern.fullmatch(n)] if pattern is not None else names

    @_translated
    def partition_count(self, topic: str) -> int:
        return self._topic(topic).partitions

    # -- records --------------------------------------------------------------------------------

    @_translated
    def append(self, topic: str, records: Sequence[Record]) -> Positions:
        if not records:  # nothing to write: no write lock taken (an unknown topic is refused all the same)
            self._topic(topic)
            return Positions([], [])
        with self._write() as con:
            return self._insert(con, topic, records)

    @_translated
    def begin_append(self, topic: str, records: Sequence[Record]) -> Callable[[], Positions]:
        """The records are inserted at once, on the log's own writing connection; their transaction
        commits on a thread of its own (SQLite lets go of the GIL meanwhile) when they are many,
        and the returned callable waits for it. The next ``begin_append`` waits for this commit."""
        if not records:
            positions = self.append(topic, records)
            return lambda: positions
        self._appending.acquire()  # held until the commit is done
        handed_off = False
        try:
            con = self._appender()
            with self._transaction(con):
                positions = self._insert(con, topic, records)
            if len(records) < COMMIT_ASIDE_FROM:  # not worth the hand-off to the committing thread
                _commit(con, self.path)
                return lambda: positions
            committed = self._committer().submit(self._commit_aside, con)
            handed_off = True
        finally:
            if not handed_off:
                self._appending.release()

        def confirm() -> Positions:
            committed.result()
            return positions

        return confirm

    def _insert(self, con: sqlite3.Connection, topic: str, records: Sequence[Record]) -> Positions:
        """Insert ``records`` (at least one) inside the write transaction open on ``con``."""
        meta = self._topic(topic)
        keys = [r.key for r in records]
        partitions = partitions_for(keys, meta.partitions, self._round_robin)
        values = [r.value for r in records]
        now = repeat(_now_ms())
        if meta.partitions == 1:
            start = _end_offset(con, meta, 0)
            offsets: Sequence[int] = range(start, start + len(records))
            first_id = meta.bounds(0)[0] + start
            ids: Sequence[int] = range(first_id, first_id + len(records))
            heads = {meta.first_pid: start + len(records)}
        else:
            offsets, ids, heads = _number(con, meta, partitions)
        con.executemany(_SET_HEAD, heads.items())
        # ``now`` repeats endlessly: zip stops with the records.
        if any(r.headers for r in records):
            headers = [_encode_headers(r.headers) if r.headers else None for r in records]
            _insert_rows(con, _COLUMNS_WITH_HEADERS, list(zip(ids, keys, values, headers, now, strict=False)))
        else:
            _insert_rows(con, _COLUMNS, list(zip(ids, keys, values, now, strict=False)))
        return Positions(partitions, offsets)

    def _commit_aside(self, con: sqlite3.Connection) -> None:
        """On the committing thread: commit what ``begin_append`` inserted, then let the next one in."""
        try:
            _commit(con, self.path)
        finally:
            self._appending.release()

    def _appender(self) -> sqlite3.Connection:
        if self._append_con is None:
            self._append_con = self._open()
        return self._append_con

    def _committer(self) -> ThreadPoolExecutor:
        if self._commits is None:
            self._commits = ThreadPoolExecutor(1, thread_name_prefix="log-commit")
        return self._commits

    @_translated
    def read(
        self, topic: str, partition: int, offset: int, max_records: int = 1000, max_bytes: int = 1 << 20
    ) -> list[Message]:
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        meta = self._topic(topic)
        lo, hi = meta.bounds(partition)
        if offset > OFFSET_MASK or max_records < 1:
            return []
        cursor = self._read(_READ, (lo + offset, hi, max_records))
        messages: list[Message] = []
        size = 0
        for rid, key, value, headers, ts in cursor:
            size += len(value) + (len(key) if key else 0)
            if size > max_bytes and messages:
                break
            decoded = _decode_headers(headers) if headers else ()
            messages.append(Message(topic, partition, rid & OFFSET_MASK, key, value, decoded, ts))
        cursor.close()
        return messages

    @_translated
    def read_keys(
        self, topic: str, partition: int, offset: int, max_records: int = 1000
    ) -> list[tuple[int, bytes | None]]:
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        lo, hi = self._topic(topic).bounds(partition)
        if offset > OFFSET_MASK or max_records < 1:
            return []
        return self._read(_READ_KEYS, (lo + offset, hi, max_records)).fetchall()

    @_translated
    def end_offsets(self, topic: str) -> dict[int, int]:
        meta = self._topic(topic)
        con = self._connection()
        return {p: _end_offset(con, meta, p) for p in range(meta.partitions)}

    @_translated
    def end_offsets_of(self, topics: Iterable[str]) -> dict[str, dict[int, int]]:
        metas = [self._topic(topic) for topic in topics]
        con = self._connection()
        # Unchanged data_version and total_changes: nobody (this connection included) wrote since.
        version = (con.execute("PRAGMA data_version").fetchone()[0], con.total_changes)
        cached: _Heads | None = getattr(self._local, "heads", None)
        if cached is None or cached.version != version:
            cached = self._local.heads = _Heads(version, {}, set())
        heads, read = cached.heads, cached.read
        if read is not None and len(metas) > FEW_TOPICS:
            heads.update(con.execute("SELECT pid, next_offset FROM heads").fetchall())
            cached.read = None
        elif read is not None:
            for meta in metas:
                if meta.first_pid not in read:
                    heads.update(con.execute(_HEADS_OF, (meta.first_pid, meta.first_pid + meta.partitions)).fetchall())
                    read.add(meta.first_pid)
        return {m.name: {p: heads.get(m.first_pid + p, 0) for p in range(m.partitions)} for m in metas}

    # -- consumer groups ------------------------------------------------------------------------

    @_translated
    def committed(self, group: str, topic: str) -> dict[int, int]:
        meta = self._topic(topic)
        rows = self._read(
            "SELECT pid, next_offset FROM commits WHERE grp = ? AND pid >= ? AND pid < ?",
            (group, meta.first_pid, meta.first_pid + meta.partitions),
        )
        return {pid - meta.first_pid: offset for pid, offset in rows}

    @_translated
    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        meta = self._topic(topic)
        for partition, offset in offsets.items():
            meta.bounds(partition)
            if offset < 0:
                raise ValueError(f"topic {topic!r} partition {partition}: committed offset must be >= 0, got {offset}")
        with self._write() as con:
            con.executemany(
                "INSERT INTO commits (grp, pid, next_offset) VALUES (?, ?, ?) "
                "ON CONFLICT (grp, pid) DO UPDATE SET next_offset = excluded.next_offset",
                [(group, meta.first_pid + p, o) for p, o in offsets.items()],
            )

    def close(self) -> None:
        if self._commits is not None:
            self._commits.shutdown()
            self._commits = None
        self._append_con = None
        with self._lock:
            for con in self._connections:
                con.close()
            self._connections.clear()
        self._local = threading.local()

    # -- plumbing -------------------------------------------------------------------------------

    def _topic(self, topic: str) -> _Topic:
        meta = self._topics.get(topic)
        if meta is None:
            row = self._read("SELECT partitions, first_pid FROM topics WHERE name = ?", (topic,)).fetchone()
            if row is None:
                raise TopicNotFound(f"topic {topic!r} does not exist")
            meta = self._topics[topic] = _Topic(topic, row[0], row[1])
        return meta

    def _connection(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._open()
        return con

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        con.execute(f"PRAGMA synchronous={self._synchronous}")
        with self._lock:
            self._connections.append(con)
        return con

    def _read(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        return self._connection().execute(sql, params)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on this thread's connection, committed when the block ends."""
        con = self._connection()
        with self._transaction(con):
            yield con
        _commit(con, self.path)

    @contextmanager
    def _transaction(self, con: sqlite3.Connection) -> Iterator[None]:
        """A write transaction on ``con``, its lock taken up front, rolled back if the block raises;
        committing is the caller's."""
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise BrokerUnavailable(f"log {self.path}: cannot take the write lock: {exc}") from exc
        try:
            yield
        except BaseException:
            _roll_back(con, self.path)
            raise


def _commit(con: sqlite3.Connection, path: Path) -> None:
    """Commit the write transaction open on ``con``, or roll it back and say why."""
    try:
        con.execute("COMMIT")
    except sqlite3.Error as exc:
        _roll_back(con, path)
        raise BrokerUnavailable(f"log {path}: commit failed: {exc}") from exc


def _roll_back(con: sqlite3.Connection, path: Path) -> None:
    """Roll back the transaction open on ``con`` after an error, unless SQLite already did (it does
    after an I/O error, for one). A rollback that fails is logged, not raised: the caller re-raises
    the error that made it roll back, which says what happened."""
    if not con.in_transaction:
        return
    try:
        con.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.warning("log %s: rollback after a failed write failed too: %s", path, exc)


def log_file(url: str) -> Path:
    """The file of the embedded log ``url`` names; raises InvalidBrokerUrl."""
    return Path(_parse_url(url)[0])


def keys_in_range_query(schema: str) -> str:
    """For a SQLite connection that attached this log as ``schema``: the ``offset`` and ``key`` of the records of
    partition ``:partition`` of topic ``:topic`` with offsets ``:first`` to ``:last`` — none at all unless the
    records at both ends have the keys ``:first_key`` and ``:last_key`` (those the caller read: a topic deleted and
    made again holds others). One range of the records' own B-tree, read by SQLite without Python in between."""
    pid = f"(SELECT first_pid + :partition FROM {schema}.topics WHERE name = :topic AND :partition < partitions)"
    first, last = f"(({pid} << {OFFSET_BITS}) | :first)", f"(({pid} << {OFFSET_BITS}) | :last)"
    return (
        f'SELECT id & {OFFSET_MASK} AS "offset", key FROM {schema}.records WHERE id BETWEEN {first} AND {last} '
        f"AND (SELECT key FROM {schema}.records WHERE id = {first}) IS :first_key "
        f"AND (SELECT key FROM {schema}.records WHERE id = {last}) IS :last_key"
    )


def _parse_url(url: str) -> tuple[str, str]:
    """The path and the ``synchronous`` mode of an embedded log's URL; raises InvalidBrokerUrl."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or len(parts.path) < 2:
        raise InvalidBrokerUrl(f"broker URL {url!r}: expected sqlite:///path/to/log.db")
    options = parse_qs(parts.query)
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise InvalidBrokerUrl(f"broker URL {url!r}: unknown option {sorted(unknown)[0]!r} (known: synchronous)")
    return parts.path[1:], options.get("synchronous", ["NORMAL"])[-1]


def _create_schema(con: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            con.execute(statement)


def _number(
    con: sqlite3.Connection, meta: _Topic, partitions: Sequence[int]
) -> tuple[list[int], list[int], dict[int, int]]:
    """Offsets and record ids for records bound to ``partitions``, and the new end of each partition
    touched (by partition id), inside the write transaction."""
    ends = {p: _end_offset(con, meta, p) for p in set(partitions)}
    firsts = {p: meta.bounds(p)[0] for p in ends}
    offsets = []
    ids = []
    for partition in partitions:
        offset = ends[partition]
        ends[partition] = offset + 1
        offsets.append(offset)
        ids.append(firsts[partition] + offset)
    return offsets, ids, {meta.first_pid + p: end for p, end in ends.items()}


def _end_offset(con: sqlite3.Connection, meta: _Topic, partition: int) -> int:
    meta.bounds(partition)
    row = con.execute("SELECT next_offset FROM heads WHERE pid = ?", (meta.first_pid + partition,)).fetchone()
    return 0 if row is None else int(row[0])


def _backfill_heads(con: sqlite3.Connection) -> None:
    """A log written before the ``heads`` table existed: derive each partition's end from its records."""
    if con.execute("SELECT 1 FROM heads LIMIT 1").fetchone() or not con.execute("SELECT 1 FROM records").fetchone():
        return
    for first_pid, partitions in con.execute("SELECT first_pid, partitions FROM topics").fetchall():
        for pid in range(first_pid, first_pid + partitions):
            lo = pid << OFFSET_BITS
            top = con.execute("SELECT MAX(id) FROM records WHERE id >= ? AND id < ?", (lo, lo | OFFSET_MASK)).fetchone()
            if top[0] is not None:
                con.execute(_SET_HEAD, (pid, (top[0] & OFFSET_MASK) + 1))


def _encode_headers(headers: Headers) -> str:
    return json.dumps([[name, b64encode(value).decode("ascii")] for name, value in headers])


def _decode_headers(encoded: str) -> Headers:
    return tuple((name, b64decode(value)) for name, value in json.loads(encoded))


def _insert_rows(con: sqlite3.Connection, columns: str, rows: Sequence[tuple[object, ...]]) -> None:
    """Insert ``rows`` into ``records`` (``columns`` in their order), many to a statement (``sql_chunks``): the
    coordinator's lock is held meanwhile."""
    for count, values in chunks(rows, ROWS_PER_INSERT):
        con.execute(_insert_sql(columns, count), values)


@functools.lru_cache(maxsize=32)
def _insert_sql(columns: str, rows: int) -> str:
    return values_sql(f"INSERT INTO records ({columns})", columns.count(",") + 1, rows)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
