"""Append and read throughput of the embedded SQLite log next to plain sqlite3 on the same rows.

Run: .venv/bin/python bench/broker.py [--records 1000000] [--batch 1000] [--rounds 3]

Both sides write the same rows (key, value, timestamp) in batches, one transaction per batch,
in WAL mode with synchronous=NORMAL, and read them back in pages of one batch. The plain side
is the floor of what SQLite can do from Python: a rowid table, executemany, fetchall of tuples.
The adapter adds partitioning, per-partition offsets, positions, and a Message object per
record read. Rounds alternate between the two so that machine noise hits both; the best
round of each is reported.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from xtreaming.broker import Message, Record
from xtreaming.broker.sqlite import SqliteBroker

TOPIC = "MULTCOB02.1186.IMPORTACAO.BENCH"


def make_records(count: int) -> list[Record]:
    return [Record(f"{10_000_000_000 + i}".encode(), b'{"cpf":"%d","nome":"Fulano de Tal"}' % i) for i in range(count)]


def adapter_append(path: Path, records: list[Record], batch: int, partitions: int, synchronous: str) -> float:
    log = SqliteBroker(path, synchronous=synchronous)
    log.create_topic(TOPIC, partitions)
    started = time.perf_counter()
    for start in range(0, len(records), batch):
        log.append(TOPIC, records[start : start + batch])
    elapsed = time.perf_counter() - started
    log.close()
    return elapsed


def adapter_read(path: Path, count: int, batch: int) -> float:
    log = SqliteBroker(path)
    started = time.perf_counter()
    seen = 0
    for partition in range(log.partition_count(TOPIC)):
        offset = 0
        while page := log.read(TOPIC, partition, offset, max_records=batch):
            seen += len(page)
            offset = page[-1].offset + 1
    elapsed = time.perf_counter() - started
    log.close()
    assert seen == count, f"read {seen} of {count}"
    return elapsed


def plain_connection(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    return con


def plain_append(path: Path, records: list[Record], batch: int) -> float:
    con = plain_connection(path)
    con.execute("CREATE TABLE plain (id INTEGER PRIMARY KEY, key BLOB, value BLOB NOT NULL, ts INTEGER NOT NULL)")
    rows = [(r.key, r.value, 0) for r in records]
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO plain (key, value, ts) VALUES (?, ?, ?)", rows[start : start + batch])
        con.execute("COMMIT")
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def plain_read(path: Path, count: int, batch: int, *, objects: bool = False) -> float:
    """Plain sqlite3 reading the rows back; with ``objects``, also one Message per row: the floor for
    any reader that returns objects."""
    con = plain_connection(path)
    started = time.perf_counter()
    seen, last = 0, 0
    while page := con.execute(
        "SELECT id, key, value, ts FROM plain WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
    ).fetchall():
        last = page[-1][0]
        if objects:
            page = [Message(TOPIC, 0, rid - 1, key, value, (), ts) for rid, key, value, ts in page]
        seen += len(page)
    elapsed = time.perf_counter() - started
    con.close()
    assert seen == count, f"read {seen} of {count}"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    records = make_records(args.records)
    n, batch = args.records, args.batch
    times: dict[str, list[float]] = {}

    def measure(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for r in range(args.rounds):
            plain, log, log4 = root / f"plain{r}.db", root / f"log{r}.db", root / f"log4-{r}.db"
            measure("plain append", plain_append(plain, records, batch))
            measure("log append", adapter_append(log, records, batch, 1, "NORMAL"))
            measure("log append p4", adapter_append(log4, records, batch, 4, "NORMAL"))
            measure("plain read", plain_read(plain, n, batch))
            measure("log read", adapter_read(log, n, batch))
            measure("log read p4", adapter_read(log4, n, batch))
            measure("plain read objects", plain_read(plain, n, batch, objects=True))
        measure("log append full", adapter_append(root / "full.db", records, batch, 1, "FULL"))
    rate = {name: n / min(values) for name, values in times.items()}
    rows = [
        ("plain sqlite3 append (executemany)", "plain append", "plain append"),
        ("SqliteBroker append, 1 partition", "log append", "plain append"),
        ("SqliteBroker append, 4 partitions", "log append p4", "plain append"),
        ("SqliteBroker append, synchronous=FULL", "log append full", "plain append"),
        ("plain sqlite3 read (tuples)", "plain read", "plain read"),
        ("plain sqlite3 read + a Message per row", "plain read objects", "plain read"),
        ("SqliteBroker read, 1 partition", "log read", "plain read"),
        ("SqliteBroker read, 4 partitions", "log read p4", "plain read"),
    ]
    table = Table(title=f"{n:,} records of ~{len(records[0].value)} B, batches of {batch}, best of {args.rounds}")
    for column in ("operation", "records/s", "vs plain sqlite3"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for label, name, baseline in rows:
        table.add_row(label, f"{rate[name]:,.0f}", f"{rate[name] / rate[baseline]:.0%}")
    Console().print(table)


if __name__ == "__main__":
    main()
