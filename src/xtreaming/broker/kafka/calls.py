"""Calls to the Kafka cluster: librdkafka errors as ours, and an outage remembered so that calls fail fast."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final, TypeVar

from confluent_kafka import KafkaError, KafkaException

from xtreaming.errors import BrokerUnavailable, PartitionNotFound, TopicNotFound, XtreamingError

log = logging.getLogger("xtreaming.broker.kafka")

#: While the cluster is known down, calls fail at once; one cheap probe per interval asks again.
PROBE_INTERVAL_S: Final = 1.0
PROBE_TIMEOUT_S: Final = 0.5
#: A topic that does not exist, as the cluster (UNKNOWN_TOPIC_OR_PART) or librdkafka's metadata says it.
MISSING_TOPIC: Final = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})
#: Errors that mean the cluster, or a partition's leader, cannot be reached now: the outage is remembered.
_UNREACHABLE: Final = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
    }
)

#: Errors about one record, not the cluster: too large (librdkafka's own check in ``produce`` uses
#: MSG_SIZE_TOO_LARGE too), malformed, a bad timestamp. Sending it again fails again; the others go on.
_REFUSED_RECORD: Final = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_TIMESTAMP,
    }
)

T = TypeVar("T")


def is_refused_record(error: object) -> bool:
    """Whether ``error`` (librdkafka's, from ``produce`` or a delivery report) refuses a record for what it
    is, rather than saying the cluster cannot take any: such an error never marks the cluster down."""
    return isinstance(error, KafkaError) and error.code() in _REFUSED_RECORD


class ClusterCalls:
    """What every part of the adapter shares about the cluster: its servers (named in every error),
    ``timeout_s`` (the longest any call waits) and whether it is known down.

    After one call finds the cluster unreachable, calls fail at once with the same
    ``BrokerUnavailable`` and ``probe`` (one cheap request, given its timeout) asks again every
    ``PROBE_INTERVAL_S``, so a caller holding a lock (the coordinator) is not stuck in timeouts.
    """

    def __init__(self, servers: str, timeout_s: float, probe: Callable[[float], object]) -> None:
        self.servers = servers
        self.timeout_s = timeout_s
        self._probe = probe
        self._last_error: str | None = None
        self._down: str | None = None
        self._next_probe = 0.0
        self._closed = False

    def call(self, what: str, call: Callable[[], T]) -> T:
        """Run one blocking client call, failing fast while the cluster is known down; errors translated."""
        self.check()
        try:
            result = call()
        except KafkaException as exc:
            raise self.translate(exc.args[0], what) from exc
        except TimeoutError as exc:  # an admin future that did not complete in time
            raise self.mark_down(f"{what}: no answer within {self.timeout_s:g} s") from exc
        self.answered()
        return result

    def check(self) -> None:
        """Raise ``BrokerUnavailable`` at once when the client is closed, or while the cluster is known
        down and no probe is due; a due probe that answers ends the outage."""
        if self._closed:
            raise BrokerUnavailable(f"kafka {self.servers}: the broker client is closed")
        if self._down is None:
            return
        if time.monotonic() < self._next_probe:
            raise BrokerUnavailable(self._down)
        try:
            self._probe(PROBE_TIMEOUT_S)
        except KafkaException as exc:
            self._next_probe = time.monotonic() + PROBE_INTERVAL_S  # from the probe's end: callers get turns
            raise BrokerUnavailable(self._down) from exc
        self.answered()

    def mark_down(self, why: str) -> BrokerUnavailable:
        """Remember that the cluster is unreachable (calls fail fast until a probe answers); returns the
        error to raise, which names the servers, ``why`` and librdkafka's last error."""
        self._down = f"kafka {self.servers} unreachable: {why}{self.last_error_note()}"
        self._next_probe = time.monotonic() + PROBE_INTERVAL_S
        return BrokerUnavailable(self._down)

    def answered(self) -> None:
        """The cluster answered a call: an outage, if any, is over."""
        if self._down is not None:
            log.info("kafka %s reachable again", self.servers)
        self._down = None
        self._last_error = None

    def on_error(self, error: KafkaError) -> None:
        """librdkafka's ``error_cb`` for background errors (connection refused, all brokers down): kept
        for the messages of the errors raised next."""
        self._last_error = error.str()

    def last_error_note(self) -> str:
        return f" (last error: {self._last_error})" if self._last_error else ""

    def translate(self, error: KafkaError | object, what: str) -> XtreamingError:
        """A librdkafka error as ours: missing topic/partition, or the cluster unavailable (remembered)."""
        if not isinstance(error, KafkaError):
            return BrokerUnavailable(f"kafka {self.servers}: {what}: {error}")
        code = error.code()
        if code in MISSING_TOPIC:
            return TopicNotFound(f"{what}: topic does not exist ({error.str()})")
        if code == KafkaError._UNKNOWN_PARTITION:
            return PartitionNotFound(f"{what}: {error.str()}")
        if code in _UNREACHABLE:
            return self.mark_down(f"{what}: {error.str()}")
        return BrokerUnavailable(f"kafka {self.servers}: {what}: {error.name()}: {error.str()}")

    def close(self) -> None:
        """Every later call fails at once: the clients are being closed."""
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed
