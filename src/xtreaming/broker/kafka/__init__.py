"""The Kafka adapter (``KafkaBroker``), in pieces: its settings, clients, calls, topics, reader,
appender and group commits. Only these modules import ``confluent_kafka``."""

from __future__ import annotations

from xtreaming.broker.kafka.adapter import KafkaBroker

__all__ = ["KafkaBroker"]
