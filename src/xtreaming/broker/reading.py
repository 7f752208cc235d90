"""Reading a stretch of one partition through the port, page by page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from xtreaming.broker.port import Broker, Message

#: Records asked for per read.
PAGE: Final = 1000


def records_between(broker: Broker, topic: str, partition: int, start: int, end: int) -> Iterator[Message]:
    """The records of ``topic``'s ``partition`` at offsets ``[start, end)``, in order (offsets may skip on Kafka)."""
    offset = start
    while offset < end:
        page = broker.read(topic, partition, offset, max_records=min(end - offset, PAGE))
        for message in page:
            if message.offset >= end:
                return
            yield message
        if not page:
            return
        offset = page[-1].offset + 1
