"""The broker port and ``open_broker(url)``, which picks the adapter by URL scheme."""

from __future__ import annotations

from pathlib import Path

from xtreaming.broker.partitioning import partition_for
from xtreaming.broker.port import Broker, Headers, Message, Position, Record
from xtreaming.errors import InvalidBrokerUrl

__all__ = [
    "Broker",
    "Headers",
    "Message",
    "Position",
    "Record",
    "keys_in_range_query",
    "log_file",
    "open_broker",
    "partition_for",
]


def open_broker(url: str) -> Broker:
    """Open the log named by ``url``: ``sqlite:///path/log.db`` (embedded, the default) or
    ``kafka://host1:9092,host2:9092[?librdkafka settings]`` (see ``xtreaming.broker.kafka.config``).

    Raises ``InvalidBrokerUrl`` for a malformed URL and ``BrokerUnavailable`` when the log cannot be
    opened or, for Kafka, no server answers within the URL's ``timeout_s``.
    """
    scheme = url.partition(":")[0]
    if scheme == "sqlite":
        from xtreaming.broker.sqlite import SqliteBroker

        return SqliteBroker.from_url(url)
    if scheme == "kafka":
        from xtreaming.broker.kafka import KafkaBroker  # only the Kafka adapter's modules import confluent_kafka

        return KafkaBroker.from_url(url)
    raise InvalidBrokerUrl(
        f"broker URL {url.split('?', 1)[0]!r}: unknown scheme {scheme!r}; "
        "expected sqlite:///path/to/log.db or kafka://host1:9092,host2:9092"
    )


def log_file(url: str) -> Path | None:
    """The file of the embedded log ``url`` names, for a SQLite database that attaches it to read records without
    Python in between; None for another broker. Raises InvalidBrokerUrl for a malformed ``sqlite:`` URL."""
    if url.partition(":")[0] != "sqlite":
        return None
    from xtreaming.broker.sqlite import log_file as embedded_log_file

    return embedded_log_file(url)


def keys_in_range_query(schema: str) -> str:
    """The embedded log's query of a range of records' keys, on a connection that attached its file as ``schema``
    (``xtreaming.broker.sqlite.keys_in_range_query``)."""
    from xtreaming.broker.sqlite import keys_in_range_query as embedded_query

    return embedded_query(schema)
