"""A producer process for the broker contract: ``python appender.py concurrent|crash URL TOPIC ...``.

It talks to its parent over stdio, one line per event, so the parent waits on conditions (a line
arrived) rather than on time:

* ``concurrent URL TOPIC WRITER BATCHES SIZE`` prints ``ready``, waits for a line on stdin (so
  every writer starts at once), appends ``BATCHES`` batches of ``SIZE`` records whose values are
  ``WRITER:BATCH:INDEX``, then prints one JSON object: the positions it was given, and the
  ``time.monotonic()`` (system-wide) at which its first append started and its last one ended.
* ``crash URL TOPIC ROUND SEED`` appends large batches until it is killed, printing
  ``begin ID SIZE`` before each append and ``appended ID SIZE`` after it. Each record carries
  headers ``batch``, ``size`` and ``index`` so the parent can count what survived of each batch.
"""

from __future__ import annotations

import json
import random
import sys
import time

from xtreaming.broker import Position, Record, open_broker

#: Keys are drawn from a small set so that several writers hit the same partitions.
KEYS = [b"client-%02d" % i for i in range(20)]
#: Enough batches that the writer is still appending when the parent kills it.
CRASH_BATCHES = 40


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def append_concurrently(url: str, topic: str, writer: int, batches: int, size: int) -> None:
    broker = open_broker(url)
    emit("ready")
    sys.stdin.readline()
    positions: list[Position] = []
    started = time.monotonic()
    for batch in range(batches):
        records = [
            Record(KEYS[(writer * 7 + index) % len(KEYS)] if index % 5 else None, f"{writer}:{batch}:{index}".encode())
            for index in range(size)
        ]
        positions.extend(broker.append(topic, records))
    finished = time.monotonic()
    broker.close()
    emit(json.dumps({"positions": positions, "started": started, "finished": finished}))


def crash_batch(batch_id: str, size: int, rng: random.Random) -> list[Record]:
    tag = batch_id.encode()
    return [
        Record(
            rng.choice(KEYS) if rng.random() > 0.125 else None,
            tag + b":" + b"x" * 100,
            (("batch", tag), ("size", str(size).encode()), ("index", str(index).encode())),
        )
        for index in range(size)
    ]


def append_until_killed(url: str, topic: str, round_: int, seed: int) -> None:
    rng = random.Random(seed)
    broker = open_broker(url)
    # Built up front so that the writer spends its time inside append(), where the kill should land.
    batches = []
    for number in range(CRASH_BATCHES):
        batch_id, size = f"{round_}-{number}", rng.randint(500, 2000)
        batches.append((batch_id, size, crash_batch(batch_id, size, rng)))
    for batch_id, size, records in batches:
        emit(f"begin {batch_id} {size}")
        broker.append(topic, records)
        emit(f"appended {batch_id} {size}")
    sys.stdin.readline()  # out of batches: wait to be killed, as the parent expects


def main(argv: list[str]) -> None:
    command, url, topic, *numbers = argv
    if command == "concurrent":
        writer, batches, size = map(int, numbers)
        append_concurrently(url, topic, writer, batches, size)
    elif command == "crash":
        round_, seed = map(int, numbers)
        append_until_killed(url, topic, round_, seed)
    else:
        raise SystemExit(f"unknown command {command!r}: expected concurrent or crash")


if __name__ == "__main__":
    main(sys.argv[1:])
