"""The errors that cross package boundaries; each edge (CLI, API) maps them once."""

from __future__ import annotations


class XtreamingError(Exception):
    """Base of every error this package raises on purpose."""


class InvalidTopicName(XtreamingError, ValueError):
    """A topic name that is not ``BASE.CONVENIO.KIND.PROCESS`` (or its ``.ACK``/``.DLQ``)."""


class TopicNotFound(XtreamingError, LookupError):
    """The topic does not exist on the broker."""


class PartitionNotFound(XtreamingError, LookupError):
    """The partition number is outside the topic's partitions."""


class BrokerUnavailable(XtreamingError, ConnectionError):
    """The broker cannot be reached or opened."""


class InvalidBrokerUrl(XtreamingError, ValueError):
    """A broker URL with an unknown scheme or malformed parts."""


class InvalidInput(XtreamingError, ValueError):
    """Input (a file, a row, a record) that cannot be published; the message names where and why."""


class InvalidWindow(XtreamingError, ValueError):
    """A base's time window that cannot be used: bad HH:MM, end equal to start, no weekdays, negative max."""


class QueueNotFound(XtreamingError, LookupError):
    """No queue is registered for the topic named."""
