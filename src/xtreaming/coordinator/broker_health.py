"""Whether the broker answers, as the status and ``/metrics`` show it.

Any of the coordinator's broker calls may be the first to find the broker gone: the background pass's
reads and commits, an ACK append during a farm's completion, a publish. Each failure marks the broker
down at once, whoever saw it; only a whole background pass that reached the broker marks it up again
(one call that happened to be answered from a client's cache says little).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from xtreaming.errors import BrokerUnavailable

log = logging.getLogger("xtreaming.coordinator")


class BrokerHealth:
    """The broker's last known state: ``error`` is None while it answers. Safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._error: str | None = None

    @property
    def error(self) -> str | None:
        """Why the broker is taken as down, or None when it answered last."""
        return self._error

    def failed(self, exc: BrokerUnavailable) -> None:
        """A broker call failed: the broker is down (logged once per outage)."""
        with self._lock:
            if self._error is None:
                log.error("broker unavailable: %s", exc)
            self._error = str(exc)

    def answered(self) -> None:
        """A background pass reached the broker throughout: it is up (logged when it was down)."""
        with self._lock:
            if self._error is not None:
                log.warning("broker reachable again")
            self._error = None

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Around broker calls: a ``BrokerUnavailable`` they raise marks the broker down, and goes on."""
        try:
            yield
        except BrokerUnavailable as exc:
            self.failed(exc)
            raise
