"""Dead messages for the dead-letter tests, made as the coordinator makes them: the originals appended to a
work topic, then their ``.DLQ`` records built by ``results.dlq_records`` (the coordinator's own code)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from tests.broker.contract import read_all
from xtreaming.broker import Broker, Message, Record
from xtreaming.broker.port import Headers
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.dead_letter_records import REPLAY_OF
from xtreaming.coordinator.results import Finished, Status, dlq_records

TOPIC = "MULTCOB02.1186.IMPORTACAO.CARGA"
DLQ = f"{TOPIC}.DLQ"


def cpf(n: int) -> str:
    return f"{n:011d}"


def value_of(key: str) -> bytes:
    return json.dumps({"cpf": key, "nome": "Maria"}).encode()


def kill(
    broker: Broker,
    keys: Sequence[str],
    *,
    error: str = "worker exited with 2",
    attempts: int = 3,
    topic: str = TOPIC,
    partitions: int = 2,
    headers: Headers = (),
    max_record_bytes: int | None = None,
) -> None:
    """Publish one message per key to ``topic`` and send each to its DLQ after ``attempts`` failed attempts,
    the last failing with ``error`` (the others with "timeout")."""
    broker.create_topic(topic, partitions)
    broker.create_topic(f"{topic}.DLQ", partitions)
    positions = broker.append(topic, [Record(k.encode(), value_of(k), headers) for k in keys])
    history = (*(f"attempt {n}: timeout" for n in range(1, attempts)), f"attempt {attempts}: {error}")
    dying = [
        PendingMessage(p.partition, p.offset, k.encode(), attempts, value=value_of(k), headers=headers, errors=history)
        for k, p in zip(keys, positions, strict=True)
    ]
    done = Finished(topic, "task-1", "farm-1", 0, datetime.now(UTC), Status.DEAD, error, dying)
    broker.append(f"{topic}.DLQ", dlq_records(done, max_record_bytes))


def replayed_copies(broker: Broker, topic: str = TOPIC) -> list[tuple[str, Message]]:
    """Every message of ``topic`` that is a replay's copy, with the DLQ record it names."""
    return [
        (dict(m.headers)[REPLAY_OF].decode(), m)
        for messages in read_all(broker, topic).values()
        for m in messages
        if REPLAY_OF in dict(m.headers)
    ]


def total(broker: Broker, topic: str) -> int:
    return sum(len(messages) for messages in read_all(broker, topic).values())
