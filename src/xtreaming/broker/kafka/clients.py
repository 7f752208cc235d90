"""The librdkafka clients the Kafka adapter makes, with every setting it gives them, in one place."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from xtreaming.broker.kafka.config import KafkaConfig
from xtreaming.errors import InvalidBrokerUrl

log = logging.getLogger("xtreaming.broker.kafka")

#: The appending producer's defaults; the URL's settings win. Idempotent with ``acks=all``: no
#: duplicates from retries and a batch's order kept per partition (see ``appender``).
_PRODUCER_DEFAULTS: Final[Mapping[str, object]] = {
    "enable.idempotence": True,
    "acks": "all",
    "partitioner": "consistent",
    "allow.auto.create.topics": False,
    "linger.ms": 1,
}
#: Measured on tansu (KAFKA-NOTES.md): without these, a partition's next fetch waits a second.
_READER_DEFAULTS: Final[Mapping[str, str]] = {"fetch.queue.backoff.ms": "10", "fetch.wait.max.ms": "10"}
_NO_DEFAULTS: Final[Mapping[str, str]] = {}

T = TypeVar("T")


class KafkaClients:
    """Makes the adapter's clients: each gets the URL's librdkafka settings, the bootstrap servers, the
    adapter's logger and ``on_error`` (librdkafka's ``error_cb``). Invalid settings raise ``InvalidBrokerUrl``."""

    def __init__(self, config: KafkaConfig, on_error: Callable[[KafkaError], None]) -> None:
        self._servers = config.servers
        self._base: dict[str, Any] = {
            **config.settings,
            "bootstrap.servers": config.servers,
            "logger": log,
            "error_cb": on_error,
        }

    def admin(self) -> AdminClient:
        return self._make(AdminClient, dict(self._base))

    def producer(self) -> Producer:
        return self._make(Producer, {**_PRODUCER_DEFAULTS, **self._base})

    def reader(self) -> Consumer:
        """The reading consumer: a group of its own, never joined (it is assigned partitions)."""
        return self._consumer(f"xtreaming-reader-{uuid.uuid4().hex}", _READER_DEFAULTS)

    def group_consumer(self, group: str) -> Consumer:
        """A consumer that reads and commits ``group``'s offsets without joining the group."""
        return self._consumer(group, _NO_DEFAULTS)

    def _consumer(self, group: str, defaults: Mapping[str, str]) -> Consumer:
        settings = {
            **defaults,
            "enable.auto.offset.store": False,
            **self._base,
            "group.id": group,
            "enable.auto.commit": False,
        }
        return self._make(Consumer, settings)

    def _make(self, kind: Callable[[dict[str, Any]], T], settings: dict[str, Any]) -> T:
        try:
            return kind(settings)
        except KafkaException as exc:
            raise InvalidBrokerUrl(f"kafka {self._servers}: invalid client settings: {exc.args[0].str()}") from exc
