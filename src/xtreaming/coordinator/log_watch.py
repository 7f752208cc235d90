"""Noticing at once what is appended straight to the log for the urgent queues, between background passes.

A ``Producer`` appends to the log itself: the coordinator learns of its messages at its next background pass
(``poll_interval_s`` apart, 50 ms by default), where a publish through the API reads them at once. For an urgent
queue that wait was most of a request's start latency, so a thread of its own polls the ends of the urgent
queues' topics every ``WATCH_INTERVAL_S`` and reads a topic ahead as soon as its end moves (``refresh``: the
coordinator's, which wakes the farms' long-polls). Urgent: a queue an urgent slot may take (priority at or above
the site's urgent priority, or a farm's own), whether or not any farm keeps such a slot.

Only on a log that answers from this machine (``Broker.local``): the embedded log, where a poll while nothing
was appended costs one ``PRAGMA data_version``, and a few small reads once something was. On Kafka each poll
would be a round trip that the adapter's reads wait behind: there the background passes find the messages, as
before.

Cost. Each poll's CPU is measured (the thread's own time) and the next one waits long enough to keep polling
under ``MAX_CPU_SHARE`` of a core, whatever the number of urgent queues and however busy the log; the list of
urgent queues is asked for once every ``TOPICS_INTERVAL_S`` (it walks every queue). The reads a moved end
brings are the background pass's work, done sooner, and not counted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from xtreaming.broker import Broker
from xtreaming.errors import TopicNotFound

#: How often the urgent queues' ends are polled (at least: see ``MAX_CPU_SHARE``): the most a message appended
#: straight to the log waits before the coordinator reads it. At this interval a coordinator of 2,000 queues, 20 of
#: them urgent, spent 0.7% of a core watching an idle log and 1.1% one taking 1,000 appends/s (bench/log_watch.py;
#: with all 2,000 urgent, 2%, polling 6 to 11 times a second); 5 ms doubled that for 5 ms less latency.
WATCH_INTERVAL_S: Final = 0.01
#: Polling takes at most this share of one core: a poll that cost more CPU waits longer before the next.
MAX_CPU_SHARE: Final = 0.02
#: How often the list of urgent queues is asked for again (a queue turned urgent is watched this much later).
TOPICS_INTERVAL_S: Final = 1.0


class LogWatch:
    """Polls the urgent queues' ends (``run_once``), for a thread of its own; see the module docstring.

    ``urgent_topics``: the topics of the urgent queues now; ``refresh``: reads the given topics ahead, returning
    how many messages became pending (``Coordinator.refresh``). Neither is called holding anything of this."""

    def __init__(
        self,
        broker: Broker,
        urgent_topics: Callable[[], list[str]],
        refresh: Callable[[Sequence[str]], int],
        interval_s: float = WATCH_INTERVAL_S,
    ) -> None:
        self._broker = broker
        self._urgent_topics = urgent_topics
        self._refresh = refresh
        self.interval_s = interval_s
        self._topics: list[str] = []
        self._topics_at = -math.inf
        #: The ends last seen, by topic: a topic whose end differs is read ahead.
        self._seen: Mapping[str, Mapping[int, int]] = {}
        #: How long to wait before the next poll: ``interval_s``, or more to stay under ``MAX_CPU_SHARE``.
        self.next_wait_s = interval_s
        #: CPU seconds the polls took, all told (not the reads they brought).
        self.cpu_s = 0.0

    def run_once(self) -> int:
        """Poll the urgent queues' ends once and read ahead the topics whose end moved since the last poll (all of
        them at the first); returns how many messages became pending. Broker errors are raised (the loop's
        to report); a topic gone from the log makes the list of urgent queues be asked for again."""
        started = time.thread_time()
        now = time.monotonic()
        if now - self._topics_at >= TOPICS_INTERVAL_S:
            self._topics, self._topics_at = self._urgent_topics(), now
        try:
            ends = self._broker.end_offsets_of(self._topics) if self._topics else {}
        except TopicNotFound:
            self._topics_at = -math.inf
            ends = {}
        moved = [topic for topic, end in ends.items() if self._seen.get(topic) != end]
        spent = time.thread_time() - started
        self.cpu_s += spent
        self.next_wait_s = max(self.interval_s, spent / MAX_CPU_SHARE)
        fresh = self._refresh(moved) if moved else 0
        self._seen = ends  # only once read: a read that failed is tried again at the next poll
        return fresh
