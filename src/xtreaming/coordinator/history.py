"""Per-message history: every settled attempt kept for the retention, written off the settlement path.

``HistoryWriter`` is a settlement listener that only appends each settlement's outcomes, stamped with
the time they were told, to a buffer; a thread of its own writes the buffer in batches (one
transaction every ``flush_interval_s``, or sooner once ``flush_rows`` wait) and now and then
removes what is older than the retention. Settlement never waits for the history's database.

What it may lose, said plainly: the history is a convenience, the ``.ACK`` and ``.DLQ`` topics are
the record of truth. A coordinator killed (SIGKILL, power) loses the attempts of its last flush
interval. While the history's database is down, attempts wait in the buffer up to
``max_buffered_rows``; past that the oldest are dropped and counted (``dropped``), with one log line
per outage.

Where it lives. On SQLite the history has a database of its own by default (``history_url``): a
sibling file of the state store, so that writing history never holds the state store's write lock.
Elsewhere (PostgreSQL) it shares the state store's database, whose migrations create its table.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import make_url

from xtreaming.broker import Broker, log_file
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.outcomes import Outcome
from xtreaming.coordinator.store.database import Database
from xtreaming.coordinator.store.history import Attempt, HistoryTable, MessageHistoryNotFound
from xtreaming.errors import StoreUnavailable

log = logging.getLogger("xtreaming.coordinator")

#: Buffered attempts are written at least this often: the most a killed coordinator loses.
FLUSH_INTERVAL_S: Final = 0.5
#: Written sooner once this many attempts wait: one statement of a few tens of milliseconds.
FLUSH_ROWS: Final = 10_000
#: Attempts kept in memory while the history's database is down (about 200 bytes each).
MAX_BUFFERED_ROWS: Final = 200_000
#: How often retention runs (and PostgreSQL's partitions of today and tomorrow are made sure of).
RETENTION_INTERVAL_S: Final = 600.0

Clock = Callable[[], datetime]


def history_url(database_url: str, history_database_url: str | None) -> str:
    """Where the history lives: ``history_database_url`` when set; else, for a SQLite state file ``X.db``, the
    sibling ``X.history.db``; else the state store's own database."""
    if history_database_url:
        return history_database_url
    url = make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return database_url
    stem = database.removesuffix(".db")
    return url.set(database=f"{stem}.history.db").render_as_string(hide_password=False)


def open_history(database_url: str, history_database_url: str | None, broker_url: str | None = None) -> HistoryTable:
    """The history table where ``history_url`` says, created there when it is not the state store's database
    (whose migrations create it). A SQLite history of its own reads batches' keys from an embedded log at
    ``broker_url`` (``store/history.py``). Raises StoreUnavailable or InvalidStoreUrl."""
    url = history_url(database_url, history_database_url)
    database = Database(url)
    try:
        database.create_folder()
        log = log_file(broker_url) if broker_url is not None and url != database_url else None
        table = HistoryTable(database, log)
        if url != database_url:
            table.create()
    except BaseException:
        database.close()
        raise
    return table


class HistoryWriter:
    """The settlement listener writing the history (see the module docstring); ``start`` its thread,
    ``stop`` flushes what is buffered. Tests drive ``run_once`` instead."""

    def __init__(
        self,
        table: HistoryTable,
        retention_days: int,
        *,
        clock: Clock = lambda: datetime.now(UTC),
        flush_interval_s: float = FLUSH_INTERVAL_S,
        flush_rows: int = FLUSH_ROWS,
        max_buffered_rows: int = MAX_BUFFERED_ROWS,
        retention_interval_s: float = RETENTION_INTERVAL_S,
    ) -> None:
        if retention_days < 1:
            raise ValueError(f"history retention of {retention_days} days: keep at least 1 day")
        self.table = table
        self.retention = timedelta(days=retention_days)
        self._clock = clock
        self._flush_interval_s = flush_interval_s
        self._flush_rows = flush_rows
        self._max_buffered_rows = max_buffered_rows
        self._retention_interval = timedelta(seconds=retention_interval_s)
        self._lock = threading.Lock()
        self._buffer: deque[tuple[datetime, Sequence[Outcome]]] = deque()
        self._buffered = 0
        #: Attempts dropped, over the coordinator's life, because the history's database was down too long.
        self.dropped = 0
        self._dropping = False  # logged once per outage
        self._unavailable = False
        self._retained_at: datetime | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xtreaming-history", daemon=True)

    def __call__(self, outcomes: Sequence[Outcome], /) -> None:
        """Buffer a settlement's outcomes: constant time, whatever the history's database does."""
        at = self._clock()
        with self._lock:
            self._buffer.append((at, outcomes))
            self._buffered += len(outcomes)
            self._trim()
            full = self._buffered >= self._flush_rows
        if full:
            self._wake.set()

    @property
    def buffered(self) -> int:
        """Attempts waiting to be written."""
        with self._lock:
            return self._buffered

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread once it has written what is buffered (unless the database is down)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def run_once(self) -> int:
        """Write what is buffered, and remove what is past the retention when it is time; the attempts written.

        Raises StoreUnavailable when the database is down (what was buffered stays buffered)."""
        written = self.flush()
        now = self._clock()
        if self._retained_at is None or now - self._retained_at >= self._retention_interval:
            self.table.ensure_days([now.date(), (now + timedelta(days=1)).date()])
            self.table.remove_older_than(now - self.retention)
            self._retained_at = now
        return written

    def flush(self) -> int:
        """Write every buffered attempt in one transaction; raises StoreUnavailable, keeping them buffered."""
        with self._lock:
            batches = list(self._buffer)
            self._buffer.clear()
            self._buffered = 0
        if not batches:
            return 0
        try:
            written = self.table.write(batches)
        except StoreUnavailable:
            with self._lock:
                self._buffer.extendleft(reversed(batches))
                self._buffered += sum(len(outcomes) for _, outcomes in batches)
                self._trim()
            raise
        with self._lock:
            self._dropping = False
        return written

    def _trim(self) -> None:
        """Drop the oldest buffered attempts past ``max_buffered_rows`` (the lock held)."""
        while self._buffered > self._max_buffered_rows and self._buffer:
            _, oldest = self._buffer.popleft()
            self._buffered -= len(oldest)
            self.dropped += len(oldest)
            if not self._dropping:
                self._dropping = True
                log.warning(
                    "history: %d attempts wait for the history's database; dropping the oldest from now on "
                    "(the .ACK and .DLQ topics keep every outcome)",
                    self._max_buffered_rows,
                )

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            self._pass()
        try:
            self.flush()
        except Exception as exc:  # stopping: what cannot be written now is lost, and said so
            log.warning("history: %d attempts not written at shutdown: %s", self.buffered, exc)

    def _pass(self) -> None:
        try:
            self.run_once()
        except StoreUnavailable as exc:
            if not self._unavailable:
                self._unavailable = True
                log.warning("history: its database is unavailable, attempts wait in memory: %s", exc)
            return
        except Exception:  # the loop must survive anything; the log says what happened
            log.exception("history: a pass failed; continuing")
            return
        if self._unavailable:
            self._unavailable = False
            log.info("history: its database answers again")


class HistoryCollector(Collector):
    """The writer's figures for Prometheus: attempts waiting to be written, and those dropped."""

    def __init__(self, writer: HistoryWriter) -> None:
        self._writer = writer

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "xtreaming_history_buffered_attempts", "Settled attempts waiting to be written to the history.",
            value=self._writer.buffered,
        )  # fmt: skip
        yield CounterMetricFamily(
            "xtreaming_history_dropped_attempts",
            "Settled attempts left out of the history: its database was down while too many waited.",
            value=self._writer.dropped,
        )


class MessageHistory:
    """The history of a running coordinator: its table (read by the API) and, when enabled, its writer."""

    def __init__(self, table: HistoryTable, retention_days: int, writer: HistoryWriter | None) -> None:
        self.table = table
        self.retention = timedelta(days=retention_days)
        self.writer = writer

    @classmethod
    def open(cls, database_url: str, options: CoordinatorOptions, broker_url: str | None = None) -> MessageHistory:
        """Open the history ``options`` configure for the state store at ``database_url`` and the log at
        ``broker_url``."""
        table = open_history(database_url, options.history_database_url, broker_url)
        retention_days = options.history_retention_days
        writer = HistoryWriter(table, retention_days) if options.history_enabled else None
        return cls(table, retention_days, writer)

    def of_message(self, broker: Broker, topic: str, partition: int, offset: int) -> list[Attempt]:
        """Every attempt kept of the message at ``topic/partition/offset``, oldest first: its key read from the
        log, then looked up in the key index. Raises MessageHistoryNotFound when the log holds no message
        there (never written, or gone with the log's retention) or none of its attempts is kept; TopicNotFound
        or PartitionNotFound for no such place in the log."""
        page = broker.read(topic, partition, offset, max_records=1)
        if not page or page[0].offset != offset:
            raise MessageHistoryNotFound(
                f"message {topic}/{partition}/{offset} is not in the log (never written, or gone with the log's "
                "retention): look its key up instead"
            )
        return self.table.by_message(topic, partition, offset, page[0].key)

    def start(self) -> None:
        if self.writer is not None:
            self.writer.start()

    def stop(self) -> None:
        """Write what is buffered, then close the database (blocks: call it off the event loop)."""
        if self.writer is not None:
            self.writer.stop()
        self.table.close()
