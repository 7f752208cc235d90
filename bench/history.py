"""Per-message history at size: key lookups on millions of attempts, on SQLite and PostgreSQL.

Run: .venv/bin/python bench/history.py [--rows 10000000] [--lookups 1000] [--backends sqlite,postgres]
     [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Each backend gets a fresh database (a temporary SQLite file; a new PostgreSQL schema, dropped afterwards)
holding the history's tables as the coordinator makes them. They are filled inside the database (a
recursive CTE on SQLite, ``generate_series`` on PostgreSQL; SQLite builds its indexes after the fill) with
``--rows`` attempts over the last 30 days, in time order as the writer appends them, in groups of
``GROUP_SIZE`` (one task's messages settled alike): ``rows / 10`` keys (CPFs) of about ten attempts each.
Then it times, through ``HistoryTable`` as the API calls it:

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
#: Messages a group (one task's messages settled alike) holds in the fill.
GROUP_SIZE = 50
#: The fill, in the database: message n (1..rows) is in group g = n / GROUP_SIZE, settled at
#: now - span * (rows - g * GROUP_SIZE) / rows, with key n*7919 mod keys; one group in ten is a retry.
SQLITE_GROUPS = """
WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g < :rows / :size),
t(g, at_s) AS (SELECT g, :now_s - :span_s * (:rows - g * :size) / :rows FROM s)
INSERT INTO history_groups
SELECT CAST(at_s * 1000000 AS INTEGER) * 1024 + g % 1024, strftime('%Y-%m-%d %H:%M:%f000', at_s, 'unixepoch'),
       CASE WHEN g % 10 = 0 THEN 'retry' ELSE 'ok' END, :topic, 'farm-' || (g % 20), g % 16,
       'task-' || (g / 100), 0.5, CASE WHEN g % 10 = 0 THEN 'timeout' END
FROM t
"""
SQLITE_MESSAGES = """
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :rows)
INSERT INTO message_history
SELECT CAST((:now_s - :span_s * (:rows - n / :size * :size) / :rows) * 1000000 AS INTEGER) * 1024
           + (n / :size) % 1024,
       n % 8, n / 8, CAST(printf('%011d', (n * 7919) % :keys) AS BLOB), 1
FROM s
"""
POSTGRES_GROUPS = """
INSERT INTO history_groups
SELECT floor(at_s * 1000000)::bigint * 1024 + g % 1024, to_timestamp(floor(at_s * 1000000) / 1000000),
       CASE WHEN g % 10 = 0 THEN 'retry' ELSE 'ok' END, :topic, 'farm-' || (g % 20), g % 16,
       'task-' || (g / 100), 0.5, CASE WHEN g % 10 = 0 THEN 'timeout' END
FROM (SELECT g, :now_s - :span_s * (:rows - g * :size) / :rows AS at_s
      FROM generate_series(CAST(:first AS bigint) / :size, CAST(:last AS bigint) / :size) AS g) AS t
ON CONFLICT DO NOTHING
"""
POSTGRES_MESSAGES = """
INSERT INTO message_history
SELECT floor((:now_s - :span_s * (:rows - n / :size * :size) / :rows) * 1000000)::bigint * 1024 + (n / :size) % 1024,
       n % 8, n / 8, convert_to(lpad(((n * 7919) % :keys)::text, 11, '0'), 'UTF8'), 1
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
    values = {"rows": rows, "now_s": now.timestamp(), "span_s": RETENTION.total_seconds(), "topic": TOPIC}
    values |= {"keys": keys, "size": GROUP_SIZE}
    with database.read() as conn:
        dialect = conn.dialect.name
    if dialect == "sqlite":
        with database.write() as conn:
            for index in MESSAGE_HISTORY.indexes:
                index.drop(conn)
            conn.exec_driver_sql(SQLITE_GROUPS, values)  # sqlite3 takes :name parameters itself
            conn.exec_driver_sql(SQLITE_MESSAGES, values)
        with database.write() as conn:
            for index in MESSAGE_HISTORY.indexes:
                index.create(conn)
            conn.exec_driver_sql("ANALYZE")
        return
    table.ensure_days((now - timedelta(days=day)).date() for day in range(32))
    step = 1_000_000
    for first in range(1, rows + 1, step):
        with database.write() as conn:
            for statement in (POSTGRES_GROUPS, POSTGRES_MESSAGES):
                sql = statement.replace("%", "%%")  # the modulo operator, in psycopg's placeholder syntax
                for name in ("rows", "now_s", "span_s", "topic", "keys", "size", "first", "last"):
                    sql = sql.replace(f":{name}", f"%({name})s")
                conn.exec_driver_sql(sql, {**values, "first": first, "last": min(rows, first + step - 1)})
    with database.write() as conn:
        conn.exec_driver_sql("ANALYZE history_groups")
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
        key = f"{n * 7919 % keys:011d}".encode()  # as the log would say (see the fill)
        return lambda: table.by_message(TOPIC, n % 8, n // 8, key)

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
