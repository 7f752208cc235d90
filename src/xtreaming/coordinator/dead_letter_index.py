"""The dead-letter indexer: reads every ``<topic>.DLQ`` from where it stopped and indexes the new records.

It needs only the broker and the store (never the coordinator's lock). Each ``.DLQ`` partition's records and
its new position are stored in one transaction, so a crash between two passes indexes nothing twice and
skips nothing. A record without our headers (a DLQ topic a person or another tool wrote) is indexed as
foreign rather than refused: operators still see it, and may replay or skip it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from xtreaming.broker import Broker, Message
from xtreaming.coordinator.attempt_errors import split_attempt_error
from xtreaming.coordinator.dead_letter_records import (
    ATTEMPTS,
    ERRORS,
    FOREIGN_ERROR,
    READ_RECORDS,
    SOURCE,
    DeadLetter,
    LetterState,
)
from xtreaming.coordinator.store import Store
from xtreaming.errors import InvalidTopicName
from xtreaming.topics import DLQ_SUFFIX, source_of
from xtreaming.wire.message_id import InvalidMessageId, parse_message_id

log = logging.getLogger("xtreaming.coordinator")

#: Told of each record found not written by Xtreaming: its work topic, and its ``.DLQ`` partition and offset.
ForeignListener = Callable[[str, int, int], None]

#: The error of a letter whose history did not fit its DLQ record (``fitting.fit_dlq`` drops it last but one).
HISTORY_CUT: Final = "error history cut to fit the DLQ record"
#: Records one pass indexes at most: the background loop's other work waits for a pass (about 0.1 s per
#: thousand on PostgreSQL, ``bench/dlq.py``), so a pass after many deaths catches up over several.
MAX_RECORDS_PER_PASS: Final = 2000


def letter_of(message: Message, topic: str) -> DeadLetter:
    """A ``.DLQ`` record of work topic ``topic`` as the index keeps it (its ``id`` not given yet: 0)."""
    headers = dict(message.headers)
    dead_at = datetime.fromtimestamp(message.timestamp_ms / 1000, UTC)
    source = _source(headers.get(SOURCE), topic)
    if source is None:
        return DeadLetter(
            0, topic, message.partition, message.offset, None, None, message.key, FOREIGN_ERROR, 0, dead_at,
            LetterState.DEAD,
        )  # fmt: skip
    attempts = headers.get(ATTEMPTS, b"0")
    return DeadLetter(
        0,
        topic,
        message.partition,
        message.offset,
        source[0],
        source[1],
        message.key,
        _last_error(headers.get(ERRORS)),
        int(attempts) if attempts.isdigit() else 0,
        dead_at,
        LetterState.DEAD,
    )


def _source(header: bytes | None, topic: str) -> tuple[int, int] | None:
    """The source position ``xtreaming-source`` names, when it is one of ``topic``'s."""
    if header is None:
        return None
    try:
        source_topic, partition, offset = parse_message_id(header.decode("utf-8", "replace"))
    except InvalidMessageId:
        return None
    return (partition, offset) if source_topic == topic else None


def _last_error(header: bytes | None) -> str:
    """The last attempt's detail, without its "attempt N: ": letters are grouped by what went wrong."""
    if header is None:
        return HISTORY_CUT
    try:
        errors = json.loads(header)
    except ValueError:
        return HISTORY_CUT
    if not isinstance(errors, list) or not errors or not isinstance(errors[-1], str):
        return HISTORY_CUT
    return split_attempt_error(errors[-1])[1] or "-"


def dlq_topics(broker: Broker) -> dict[str, str]:
    """``.DLQ`` topic → its work topic, for every ``.DLQ`` topic of a work topic on the broker."""
    found = {}
    for name in broker.list_topics():
        if not name.endswith(f".{DLQ_SUFFIX}"):
            continue
        try:
            found[name] = str(source_of(name))
        except InvalidTopicName:
            continue
    return found


def index_once(
    store: Store,
    broker: Broker,
    topics: dict[str, str],
    budget: int = MAX_RECORDS_PER_PASS,
    foreign: ForeignListener | None = None,
) -> int:
    """Index new records of the ``.DLQ`` ``topics`` (``.DLQ`` topic → work topic), at most ``budget``;
    returns how many were indexed. Records not written by Xtreaming are logged (a warning) and, once stored,
    told to ``foreign``: the queue's dead figure counts only what the coordinator wrote."""
    if not topics:
        return 0
    positions = store.dead_letters.positions()
    indexed = 0
    for dlq_topic, ends in sorted(broker.end_offsets_of(list(topics)).items()):
        for partition, end in sorted(ends.items()):
            start = positions.get((dlq_topic, partition), 0)
            while start < end and indexed < budget:
                messages = broker.read(dlq_topic, partition, start, max_records=min(READ_RECORDS, budget - indexed))
                # Nothing at all from here to the end (Kafka's transaction markers): the partition is read.
                start = messages[-1].offset + 1 if messages else end
                letters = [letter_of(m, topics[dlq_topic]) for m in messages]
                store.dead_letters.add_letters(dlq_topic, partition, start, letters)
                indexed += len(letters)
                strangers = [letter for letter in letters if letter.source_partition is None]
                if strangers:
                    log.warning(
                        "%s partition %d: %d record(s) not written by Xtreaming (no xtreaming-source header, "
                        "offsets %d–%d): indexed as foreign, not counted as dead",
                        dlq_topic, partition, len(strangers), strangers[0].offset, strangers[-1].offset,
                    )  # fmt: skip
                    if foreign is not None:
                        for letter in strangers:
                            foreign(letter.topic, letter.partition, letter.offset)
    return indexed
