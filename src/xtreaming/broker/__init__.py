"""The broker port and ``open_broker(url)``, which picks the adapter by URL scheme."""

from __future__ import annotations

from xtreaming.broker.partitioning import partition_for
from xtreaming.broker.port import Broker, Headers, Message, Position, Positions, Record
from xtreaming.errors import InvalidBrokerUrl

__all__ = ["Broker", "Headers", "Message", "Position", "Positions", "Record", "open_broker", "partition_for"]


def open_broker(url: str) -> Broker:
    """Open the log named by ``url``: ``sqlite:///path/log.db`` (embedded, the default)."""
    scheme = url.partition(":")[0]
    if scheme == "sqlite":
        from xtreaming.broker.sqlite import SqliteBroker

        return SqliteBroker.from_url(url)
    raise InvalidBrokerUrl(f"broker URL {url!r}: unknown scheme {scheme!r}; expected sqlite:///path/to/log.db")
