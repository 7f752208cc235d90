"""The broker port and ``open_broker(url)``, which picks the adapter by URL scheme."""

from __future__ import annotations

from xtreaming.broker.partitioning import partition_for
from xtreaming.broker.port import Broker, Headers, Message, Position, Record
from xtreaming.errors import InvalidBrokerUrl

__all__ = ["Broker", "Headers", "Message", "Position", "Record", "open_broker", "partition_for"]


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
