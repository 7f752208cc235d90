"""The Kafka adapter on confluent-kafka (librdkafka): ``KafkaBroker``, wired from the modules beside it.

Only the adapter's modules import ``confluent_kafka``: ``clients`` (every librdkafka setting),
``calls`` (errors and outages), ``topics``, ``appender``, ``reader`` and
``groups``. What the port's words mean here (the contract suite runs against tansu to prove it):

* **append** goes through one idempotent producer (``acks=all``), without transactions: no
  duplicates, the order of a batch kept within each partition, and no control records of its own.
  Partitions are computed here with ``partition_for`` (librdkafka's ``consistent`` partitioner, so
  the CRM's .NET producer agrees). **Atomic** means less than on the embedded log: after a crash,
  each partition holds a prefix of the batch's records for it (``appender`` says why).
* **read** uses one consumer with ``assign()`` and ``seek``, never a group join, fetching ahead and
  pausing full partitions (``reader``); **read_keys** another such consumer, made when first called.
  Offsets increase but may skip: other clients' transactions leave control records, and compaction
  removes records.
* **end_offsets** are the last stable offsets (``read_committed``) of all partitions asked, in one
  ListOffsets request per leader.
* **committed/commit** use the group's offsets without joining it (``groups``).
* Outages: every call waits at most ``timeout_s``; once the cluster is found unreachable, calls fail
  at once while a cheap probe asks again every second (``calls``).
* **max_record_bytes** is the producer's ``message.max.bytes`` (librdkafka checks every record against
  it before sending); a record refused for what it is raises ``RecordRejected``, never an outage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from re import Pattern
from typing import Final

from xtreaming.broker.kafka.appender import KafkaAppender
from xtreaming.broker.kafka.calls import ClusterCalls
from xtreaming.broker.kafka.clients import KafkaClients
from xtreaming.broker.kafka.config import KafkaConfig
from xtreaming.broker.kafka.groups import KafkaGroups
from xtreaming.broker.kafka.reader import KafkaReader
from xtreaming.broker.kafka.topics import KafkaTopics
from xtreaming.broker.port import Message, Positions, Record
from xtreaming.errors import InvalidBrokerUrl

#: librdkafka's default ``message.max.bytes``: the largest record its producer sends.
DEFAULT_MESSAGE_MAX_BYTES: Final = 1_000_000


class KafkaBroker:
    """The broker port on a Kafka cluster (see the module docstring for what each method means here)."""

    #: Each call is a round trip to the cluster (``end_offsets_of`` a ListOffsets request, under the reader's
    #: lock that reads wait for).
    local: bool = False

    def __init__(self, config: KafkaConfig) -> None:
        # The admin client reports to ``calls`` (librdkafka's error callback), and ``calls`` probes the
        # cluster with the admin client: the probe looks the client up when an outage first needs it.
        self._calls = calls = ClusterCalls(config.servers, config.timeout_s, probe=self._probe)
        clients = KafkaClients(config, on_error=calls.on_error)
        self._admin = clients.admin()
        self._appender = KafkaAppender(clients.producer, calls, _message_max_bytes(config))
        self._reader = KafkaReader(clients.reader(), calls, appended=self._appender.appended)
        self._clients = clients
        #: ``read_keys``' own consumer (``Broker.read_keys`` says why), made at its first call.
        self._key_reader: KafkaReader | None = None
        self._topics = KafkaTopics(self._admin, calls, self._reader.topic_metadata, config.replication_factor)
        self._groups = KafkaGroups(clients.group_consumer, calls)
        calls.call("reach the cluster", lambda: self._admin.list_topics(timeout=config.timeout_s))

    @classmethod
    def from_url(cls, url: str) -> KafkaBroker:
        """``kafka://host1:9092,host2:9092[?librdkafka settings, config_file, timeout_s, replication_factor]``."""
        return cls(KafkaConfig.from_url(url))

    # -- topics ---------------------------------------------------------------------------------

    def create_topic(self, topic: str, partitions: int) -> int:
        return self._topics.create(topic, partitions)

    def list_topics(self, pattern: Pattern[str] | None = None) -> list[str]:
        return self._topics.names(pattern)

    def partition_count(self, topic: str) -> int:
        return self._topics.partition_count(topic)

    # -- records --------------------------------------------------------------------------------

    @property
    def max_record_bytes(self) -> int:
        """The producer's ``message.max.bytes``: librdkafka refuses a larger record in ``produce``."""
        return self._appender.max_record_bytes

    def append(self, topic: str, records: Sequence[Record]) -> Positions:
        return self.begin_append(topic, records)()

    def begin_append(self, topic: str, records: Sequence[Record]) -> Callable[[], Positions]:
        """Hands the records to librdkafka now; the returned function waits for the broker's
        acknowledgements (the round trip a caller can spend on other work)."""
        return self._appender.begin(topic, self._topics.partition_count(topic), records)

    def read(
        self, topic: str, partition: int, offset: int, max_records: int = 1000, max_bytes: int = 1 << 20
    ) -> list[Message]:
        if not self._worth_reading(topic, partition, offset, max_records):
            return []
        return self._reader.read(topic, partition, offset, max_records, max_bytes)

    def read_keys(
        self, topic: str, partition: int, offset: int, max_records: int = 1000
    ) -> list[tuple[int, bytes | None]]:
        if not self._worth_reading(topic, partition, offset, max_records):
            return []
        if self._key_reader is None:
            self._key_reader = KafkaReader(self._clients.reader(), self._calls, appended=self._appender.appended)
        return self._key_reader.read_keys(topic, partition, offset, max_records)

    def _worth_reading(self, topic: str, partition: int, offset: int, max_records: int) -> bool:
        """Whether a read asks for any record; raises ValueError for a negative offset, PartitionNotFound for a
        partition outside the topic, BrokerUnavailable while the cluster is down."""
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        self._topics.check_partition(topic, partition)
        if max_records < 1:
            return False
        self._calls.check()
        return True

    def end_offsets(self, topic: str) -> dict[int, int]:
        return self.end_offsets_of([topic])[topic]

    def end_offsets_of(self, topics: Iterable[str]) -> dict[str, dict[int, int]]:
        wanted = [(topic, self._topics.partition_count(topic)) for topic in topics]
        result: dict[str, dict[int, int]] = {topic: {} for topic, _ in wanted}
        asked = [(topic, p) for topic, count in wanted for p in range(count)]
        if asked:
            self._calls.check()
            for (topic, partition), end in self._reader.ends(asked).items():
                result[topic][partition] = end
        return result

    # -- consumer groups ------------------------------------------------------------------------

    def committed(self, group: str, topic: str) -> dict[int, int]:
        return self._groups.committed(group, topic, self._topics.partition_count(topic))

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        for partition, offset in offsets.items():
            self._topics.check_partition(topic, partition)
            if offset < 0:
                raise ValueError(f"topic {topic!r} partition {partition}: committed offset must be >= 0, got {offset}")
        self._groups.commit(group, topic, offsets)

    def close(self) -> None:
        if self._calls.closed:
            return
        self._calls.close()
        self._appender.close()
        self._reader.close()
        if self._key_reader is not None:
            self._key_reader.close()
        self._groups.close()

    def _probe(self, timeout_s: float) -> None:
        """One cheap metadata request: whether the cluster answers again after an outage."""
        self._admin.list_topics(timeout=timeout_s)


def _message_max_bytes(config: KafkaConfig) -> int:
    """The producer's record limit: the URL's (or config file's) ``message.max.bytes``, else librdkafka's."""
    text = config.settings.get("message.max.bytes")
    if text is None:
        return DEFAULT_MESSAGE_MAX_BYTES
    try:
        return int(text)
    except ValueError:
        raise InvalidBrokerUrl(f"kafka {config.servers}: message.max.bytes={text!r} is not a number of bytes") from None
