"""Per-message history at size: key lookups on millions of attempts, on SQLite and PostgreSQL.

Run: .venv/bin/python bench/history.py [--rows 10000000] [--lookups 1000] [--backends sqlite,postgres]
     [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Each backend gets a fresh database (a temporary SQLite file; a new PostgreSQL schema, dropped afterwards)
holding the history table as the coordinator makes it. It is filled inside the database (a recursive
CTE on SQLite, ``generate_series`` on PostgreSQL; SQLite builds its indexes after the fill) with
``--rows`` attempts over the last 30 days, in time order as the writer appends them: ``rows / 10``
keys (CPFs) of about ten attempts each. Then it times, through ``HistoryTable`` as the API calls it:

* key lookups: ``by_key`` of ``--lookups`` random existing keys over the whole retention (page 100);
* message lookups: ``by_message`` of as many random messages;
* writes: ``write`` of 10,000-row batches into the full table, as the writer flushes them.

Target: a key lookup ≤ 50 ms (p99 shown too).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

from xtreaming.coordinator.outcomes import Outcome, Result
from xtreaming.coordinator.schema import MESSAGE_HISTORY
from xtreaming.coordinator.store.database import Database
from xtreaming.coordinator.store.history import HistoryTable

TARGET_MS = 50.0
TOPIC = "MULTCOB03.1186.IMPORTACAO.CARGA"
RETENTION = timedelta(days=30)
ATTEMPTS_PER_KEY = 10
WRITE_BATCH = 10_000
WRITE_BATCHES = 20
#: The fill, in the database: attempt n (1..rows) settled at now - span * (rows - n) / rows, key n*7919 mod keys.
SQLITE_FILL = """
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :rows)
INSERT INTO message_history
SELECT strftime('%Y-%m-%d %H:%M:%f000', :now_s - :span_s * (:rows - n) / :rows, 'unixepoch'),
       CASE WHEN n % 10 = 0 THEN 'retry' ELSE 'ok' END, :topic, n % 8, n / 8,
       CAST(printf('%011d', (n * 7919) % :keys) AS BLOB),
       1, 'farm-' || (n % 20), n % 16, 'task-' || (n / 5000), 0.5, CASE WHEN n % 10 = 0 THEN 'timeout' END
FROM s
"""
POSTGRES_FILL = """
INSERT INTO message_history
SELECT to_timestamp(:now_s - :span_s * (:rows - n) / :rows),
       CASE WHEN n % 10 = 0 THEN 'retry' ELSE 'ok' END, :topic, n % 8, n / 8,
       convert_to(lpad(((n * 7919) % :keys)::text, 11, '0'), 'UTF8'),
       1, 'farm-' || (n % 20), n % 16, 'task-' || (n / 5000), 0.5, CASE WHEN n % 10 = 0 THEN 'timeout' END
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
"""


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'state.history.db'}"


@contextmanager
def postgres_url(url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def fill(database: Database, table: HistoryTable, rows: int, now: datetime) -> None:
    keys = max(1, rows // ATTEMPTS_PER_KEY)
    values = {"rows": rows, "now_s": now.timestamp(), "span_s": RETENTION.total_seconds(), "topic": TOPIC, "keys": keys}
    with database.read() as conn:
        dialect = conn.dialect.name
    if dialect == "sqlite":
        with database.write() as conn:
            for index in MESSAGE_HISTORY.indexes:
                index.drop(conn)
            conn.exec_driver_sql(SQLITE_FILL, values)  # sqlite3 takes :name parameters itself
        with database.write() as conn:
            for index in MESSAGE_HISTORY.indexes:
                index.create(conn)
            conn.exec_driver_sql("ANALYZE")
        return
    table.ensure_days((now - timedelta(days=day)).date() for day in range(32))
    step = 1_000_000
    for first in range(1, rows + 1, step):
        with database.write() as conn:
            sql = POSTGRES_FILL.replace("%", "%%")  # the modulo operator, in psycopg's placeholder syntax
            for name in ("rows", "now_s", "span_s", "topic", "keys", "first", "last"):
                sql = sql.replace(f":{name}", f"%({name})s")
            conn.exec_driver_sql(sql, {**values, "first": first, "last": min(rows, first + step - 1)})
    with database.write() as conn:
        conn.exec_driver_sql("ANALYZE message_history")


def timed_ms(calls: list[Callable[[], object]]) -> list[float]:
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(url: str, rows: int, lookups: int) -> list[str]:
    now = datetime.now(UTC)
    database = Database(url)
    table = HistoryTable(database)
    table.create()
    started = time.perf_counter()
    fill(database, table, rows, now)
    fill_s = time.perf_counter() - started
    keys = max(1, rows // ATTEMPTS_PER_KEY)
    rng = random.Random(13)
    found: list[int] = []

    def by_key(key: bytes) -> Callable[[], object]:
        return lambda: found.append(len(table.by_key(key, now - RETENTION, now + timedelta(seconds=1), 100)))

    key_ms = timed_ms([by_key(f"{rng.randrange(keys):011d}".encode()) for _ in range(lookups)])

    def by_message(n: int) -> Callable[[], object]:
        return lambda: table.by_message(TOPIC, n % 8, n // 8)

    message_ms = timed_ms([by_message(rng.randrange(1, rows + 1)) for _ in range(lookups)])
    outcomes = [
        Outcome(Result.OK, TOPIC, i % 8, 10**9 + i, f"{i:011d}".encode(), 1, "farm-1", i % 16, "task-x", 0.5, None)
        for i in range(WRITE_BATCH)
    ]
    started = time.perf_counter()
    for _ in range(WRITE_BATCHES):
        table.write([(datetime.now(UTC), outcomes)])
    write_rate = WRITE_BATCH * WRITE_BATCHES / (time.perf_counter() - started)
    table.close()
    return [
        f"{rows:,}",
        f"{fill_s:.0f}",
        f"{statistics.median(found):.0f}",
        f"{statistics.median(key_ms):.2f}",
        f"{percentile(key_ms, 0.99):.2f}",
        f"{max(key_ms):.2f}",
        f"{statistics.median(message_ms):.2f}",
        f"{percentile(message_ms, 0.99):.2f}",
        f"{write_rate:,.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    table = Table(title=f"Per-message history: lookups over {args.rows:,} attempts ({args.lookups:,} of each)")
    columns = ["backend", "rows", "fill s", "attempts/key", "key ms median", "key ms p99", "key ms max"]
    for column in [*columns, "message ms median", "message ms p99", "writes rows/s"]:
        table.add_column(column, justify="left" if column == "backend" else "right")
    places: dict[str, Callable[[], AbstractContextManager[str]]] = {
        "sqlite": sqlite_url,
        "postgres": lambda: postgres_url(args.postgres_url),
    }
    for backend in args.backends.split(","):
        with places[backend]() as url:
            table.add_row(backend, *run(url, args.rows, args.lookups))
    console = Console(width=160)
    console.print(table)
    console.print(f"target: a key lookup ≤ {TARGET_MS:.0f} ms")


if __name__ == "__main__":
    main()
