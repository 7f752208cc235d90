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


class RecordRejected(XtreamingError, ValueError):
    """The broker refused records of an append for what they are (too large, malformed), not because it
    is unreachable: ``rejected`` maps each refused record's index in the batch to why. The batch's other
    records are in the log; appending the refused ones again as they are fails again."""

    def __init__(self, message: str, rejected: dict[int, str]) -> None:
        super().__init__(message)
        self.rejected = rejected


class InvalidBrokerUrl(XtreamingError, ValueError):
    """A broker URL with an unknown scheme or malformed parts."""


class InvalidInput(XtreamingError, ValueError):
    """Input (a file, a row, a record) that cannot be published; the message names where and why."""


class InvalidWindow(XtreamingError, ValueError):
    """A base's time window that cannot be used: bad HH:MM, end equal to start, no weekdays, negative max."""


class QueueNotFound(XtreamingError, LookupError):
    """No queue is registered for the topic named."""


class StoreUnavailable(XtreamingError, ConnectionError):
    """The coordinator's state store (its database) cannot be reached or opened."""


class NotLeader(StoreUnavailable):
    """This coordinator does not lead (a standby, or a leader replaced while it was paused): it may not change
    the state store nor hand out work. ``leader_url`` is where the leader answers, when known."""

    def __init__(self, message: str, leader_url: str | None = None) -> None:
        super().__init__(message)
        self.leader_url = leader_url


class InvalidStoreUrl(XtreamingError, ValueError):
    """A state store URL that is not a SQLAlchemy URL, or names an unknown database dialect."""


class InvalidRecord(XtreamingError, ValueError):
    """A write the state store refuses (a duplicate id, a row breaking a constraint): nothing of it was written."""


class InvalidProfile(XtreamingError, ValueError):
    """A profile whose pattern is not a valid regular expression, or whose position is negative."""


class ProfileNotFound(XtreamingError, LookupError):
    """No profile has the id named."""


class BaseNotFound(XtreamingError, LookupError):
    """No base is registered under the name given."""


class WindowNotFound(XtreamingError, LookupError):
    """No time window has the id named."""


class FarmNotFound(XtreamingError, LookupError):
    """No farm is registered under the id given."""


class TaskOfAnotherFarm(XtreamingError, PermissionError):
    """A farm reported a task leased to another farm."""


class InvalidSlot(XtreamingError, ValueError):
    """A lease asked for a slot the farm did not register (its slots are 0..slots-1): refused, nothing changed."""


class RecordTooLarge(XtreamingError, ValueError):
    """A record over the broker's record limit (``Broker.max_record_bytes``), found before anything of its
    batch was written: the message names the record, its size and the limit."""
