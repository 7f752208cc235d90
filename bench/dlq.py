"""Dead letters: indexing ``.DLQ`` records, reading the index, and replaying them, with the rate cap kept.

Run: .venv/bin/python bench/dlq.py [--letters 100000] [--database-url postgresql+psycopg://…] [--seconds 4]

Dead letters are made as the coordinator makes them (``results.dlq_records``) on an embedded log. Reported:
how fast the indexer takes them in (its passes of at most ``MAX_RECORDS_PER_PASS``), the summary and a key
lookup on the full index, a replay at full speed (``drain``), then replays run by the runner's thread at
several rate caps for about ``--seconds`` each: the rate achieved must stay at or under the cap.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from xtreaming.broker import Broker, Record, open_broker
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.dead_letter_records import LetterFilter, LetterState
from xtreaming.coordinator.dead_letters import DeadLetters
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.replays import batch_size
from xtreaming.coordinator.results import Finished, Status, dlq_records
from xtreaming.coordinator.store import Store

#: Rate caps (letters/s) the thread is measured at.
RATES = (500.0, 2000.0, 5000.0)


def kill(broker: Broker, topic: str, count: int, batch: int = 5000) -> None:
    """Publish ``count`` messages to ``topic`` and write each one's DLQ record, in batches."""
    broker.create_topic(topic, 4)
    broker.create_topic(f"{topic}.DLQ", 4)
    for start in range(0, count, batch):
        keys = [f"{n:011d}".encode() for n in range(start, min(count, start + batch))]
        positions = broker.append(topic, [Record(k, b'{"cpf":"%b"}' % k) for k in keys])
        errors = (f"attempt 1: {'timeout' if n % 3 else 'CPF inválido'}" for n in range(len(keys)))
        dying = [
            PendingMessage(p.partition, p.offset, k, 1, value=b'{"cpf":"%b"}' % k, errors=(e,))
            for k, p, e in zip(keys, positions, errors, strict=True)
        ]
        broker.append(
            f"{topic}.DLQ", dlq_records(Finished(topic, "t", "f", 0, datetime.now(UTC), Status.DEAD, None, dying))
        )


def timed_replay(letters: DeadLetters, store: Store, topic: str, rate: float, seconds: float) -> tuple[int, float]:
    """Replay about ``seconds``' worth of letters at ``rate`` with the runner's thread; (letters, elapsed s)."""
    wanted = int(rate * seconds)
    page, _ = letters.find(LetterFilter(topic), LetterState.DEAD, limit=1000)
    keys: list[bytes] = []
    after = None
    while len(keys) < wanted and page:
        keys += [letter.key or b"" for letter in page][: wanted - len(keys)]
        after = page[-1].id
        page, _ = letters.find(LetterFilter(topic), LetterState.DEAD, after_id=after, limit=1000)
    started = time.perf_counter()
    replayed = 0
    for start in range(0, len(keys), 1000):  # a filter names at most 1,000 keys: one replay per thousand
        count, _ = letters.replay(LetterFilter(topic, keys=tuple(keys[start : start + 1000])), "bench", rate_per_s=rate)
        replayed += count
    letters.start()
    while store.dead_letters.running_replays():
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    letters.stop()
    return replayed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--letters", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="State store (default: a SQLite file in a temp folder).")
    parser.add_argument("--seconds", type=float, default=4.0, help="Length of each rate-capped replay.")
    args = parser.parse_args()
    topic = "MULTCOB02.1186.IMPORTACAO.BENCH"
    table = Table("step", "letters", "seconds", "letters/s", "note")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        broker = open_broker(f"sqlite:///{root}/log.db")
        store = Store.open(args.database_url or f"sqlite:///{root}/state.db")
        letters = DeadLetters(store, broker, CoordinatorOptions())
        kill(broker, topic, args.letters)

        started = time.perf_counter()
        indexed = passes = 0
        while count := letters.index():
            indexed, passes = indexed + count, passes + 1
        elapsed = time.perf_counter() - started
        table.add_row("index", f"{indexed:,}", f"{elapsed:.2f}", f"{indexed / elapsed:,.0f}", f"{passes} passes")

        started = time.perf_counter()
        [summary] = letters.summary()
        table.add_row("summary", f"{summary.open:,}", f"{time.perf_counter() - started:.4f}", "", "grouped by error")
        started = time.perf_counter()
        found, _ = letters.find(LetterFilter(topic, keys=(f"{args.letters // 2:011d}".encode(),)))
        table.add_row("find by key", f"{len(found)}", f"{time.perf_counter() - started:.4f}", "", "one key")

        for rate in RATES:
            count, elapsed = timed_replay(letters, store, topic, rate, args.seconds)
            expected = (count - batch_size(rate)) / rate  # the first batch goes at once, each next one a batch later
            note = f"thread; paced: ≥ {expected:.2f} s"
            table.add_row(f"replay ≤ {rate:,.0f}/s", f"{count:,}", f"{elapsed:.2f}", f"{count / elapsed:,.0f}", note)

        started = time.perf_counter()
        count, _ = letters.replay(LetterFilter(topic), "bench", rate_per_s=5000)
        letters.replays.drain()
        elapsed = time.perf_counter() - started
        table.add_row("replay, drain", f"{count:,}", f"{elapsed:.2f}", f"{count / elapsed:,.0f}", "no rate cap")
        store.close()
        broker.close()
    Console().print(table)


if __name__ == "__main__":
    main()
