"""A tick's records: numbered in batches (one message per key), stamped with the tick's headers, and found again
in the log when the tick was cut short (``schedules.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Final

from xtreaming.broker import Broker, Record
from xtreaming.broker.reading import records_between
from xtreaming.coordinator.schedule_records import RECORD_HEADER, TICK_HEADER, Tick, tick_name
from xtreaming.errors import TopicNotFound
from xtreaming.seen_keys import SeenKeys

#: Records per append (one atomic batch), and per read when a tick cut short is looked for in the log.
BATCH: Final = 1000

Numbered = list[tuple[int, Record]]


def numbered_batches(records: Iterable[Record]) -> Iterator[Numbered]:
    """The records in batches of at most ``BATCH``, each with its place among the tick's records once duplicate
    keys are dropped (one message per key, as ``xtreaming publish`` does): the same source gives the same places."""
    seen = SeenKeys()
    place = 0
    try:
        iterator = iter(records)
        while batch := list(islice(iterator, BATCH)):
            fresh = iter(seen.add([r.key for r in batch if r.key is not None]))
            numbered = []
            for record in batch:
                if record.key is None or next(fresh):
                    numbered.append((place, record))
                    place += 1
            if numbered:
                yield numbered
    finally:
        seen.close()


def stamped(batch: Numbered, tick: str, found: set[int]) -> list[Record]:
    """The records of ``batch`` whose place is not in ``found``, each with the tick's headers."""
    name = tick.encode()
    return [
        Record(r.key, r.value, (*r.headers, (TICK_HEADER, name), (RECORD_HEADER, str(place).encode())))
        for place, r in batch
        if place not in found
    ]


def end_offsets(broker: Broker, topic: str) -> dict[int, int]:
    """The topic's end offsets; none for a topic not made yet."""
    try:
        return broker.end_offsets(topic)
    except TopicNotFound:
        return {}


def found_in_log(broker: Broker, topic: str, tick: Tick) -> set[int]:
    """The places of the tick's records already in the log, read from the ends recorded at its claim."""
    name = tick_name(tick.schedule_id, tick.tick_at).encode()
    starts = tick.ends or {}
    found: set[int] = set()
    for partition, end in end_offsets(broker, topic).items():
        for message in records_between(broker, topic, partition, starts.get(partition, 0), end):
            place = _place(message.headers, name)
            if place is not None:
                found.add(place)
    return found


def _place(headers: Sequence[tuple[str, bytes]], name: bytes) -> int | None:
    """The record's place among the tick ``name``'s records, or None when it is not one of them."""
    values = dict(headers)
    if values.get(TICK_HEADER) != name:
        return None
    place = values.get(RECORD_HEADER)
    return int(place) if place is not None and place.isdigit() else None
