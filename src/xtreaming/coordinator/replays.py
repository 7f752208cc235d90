"""Replays: dead letters appended back onto their work topic as new messages, a batch at a time, in a thread
of their own at each replay's rate.

A batch goes in three steps: (1) one store transaction takes the batch's letters into ``replaying`` and
records the work topic's end offsets; (2) the DLQ records are appended to the work topic, each with
``xtreaming-replay-of`` naming its DLQ record; (3) the letters are marked ``replayed`` with the ids of their
copies. A process killed anywhere in between leaves letters ``replaying``: before anything else, they are
looked for on the work topic from the recorded ends on, by that header. Found, they are marked replayed;
not found, they go back in the queue and are appended with the next batch. So no letter is appended twice
and none is lost, and a replay cut short resumes where it stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from xtreaming.broker import Broker, Message, Record
from xtreaming.coordinator.dead_letter_records import (
    CUT,
    DLQ_HEADERS,
    READ_RECORDS,
    REPLAY_OF,
    DeadLetter,
    Replay,
    ReplayState,
)
from xtreaming.coordinator.store import Store
from xtreaming.errors import TopicNotFound, XtreamingError
from xtreaming.topics import DLQ_SUFFIX
from xtreaming.wire.message_id import message_id

log = logging.getLogger("xtreaming.coordinator")

#: The most letters one batch appends: a batch is also one store transaction and one append.
MAX_BATCH: Final = 500
#: How long the runner sleeps with nothing to do before looking for replays again (a new one wakes it).
IDLE_WAIT_S: Final = 5.0
#: How long it waits after a failed batch (broker or store down) before trying again.
RETRY_WAIT_S: Final = 1.0


class ReplayCannotRun(XtreamingError):
    """A replay that cannot go on (its work topic or a DLQ record is gone): it is stopped, marked failed."""


def batch_size(rate_per_s: float) -> int:
    """Letters per batch: about a second's worth at ``rate_per_s``, at most ``MAX_BATCH``."""
    return max(1, min(MAX_BATCH, int(rate_per_s)))


class ReplayRunner:
    """Runs the store's running replays, the oldest first, one batch at a time; see the module docstring."""

    def __init__(self, store: Store, broker: Broker, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a thread from now on: replays left running by the previous process resume at once."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="xtreaming-dlq-replays", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the batch in flight (a batch cut short by a kill instead resumes at the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wake(self) -> None:
        """A replay was created: start on it now."""
        self._wake.set()

    def drain(self) -> None:
        """Run every running replay to its end in this thread, at full speed (tests, tools)."""
        while replays := self._store.dead_letters.running_replays():
            self.run_batch(replays[0])

    def run_batch(self, replay: Replay) -> int:
        """One batch of ``replay`` (after resolving a batch cut short); how many letters it appended.
        A replay that cannot go on is marked failed here (``ReplayCannotRun`` is raised before the batch is
        appended); a broker or store outage raises."""
        try:
            in_flight = self._store.dead_letters.in_flight(replay.id)
            if in_flight:
                return self._resolve(replay, in_flight)
            return self._next_batch(replay)
        except ReplayCannotRun as exc:
            log.error("replay %d of %s stopped: %s", replay.id, replay.topic, exc)
            self._store.dead_letters.fail_replay(replay.id, str(exc))
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before looking: a replay created from here on wakes the wait below
            try:
                replays = self._store.dead_letters.running_replays()
                if not replays:
                    self._wake.wait(IDLE_WAIT_S)
                    continue
                started = self._clock()
                appended = self.run_batch(replays[0])
                # The rate cap: a batch of n letters takes at least n / rate seconds, whatever wakes the runner.
                pause_s = appended / replays[0].rate_per_s - (self._clock() - started)
            except Exception:  # a thread of its own: it must outlive an outage; the log says what happened
                log.exception("dead-letter replay failed; trying again")
                pause_s = RETRY_WAIT_S
            if pause_s > 0:
                self._stop.wait(pause_s)

    def _next_batch(self, replay: Replay) -> int:
        try:
            ends = self._broker.end_offsets(replay.topic)
        except TopicNotFound as exc:
            raise ReplayCannotRun(f"work topic {replay.topic} does not exist any more") from exc
        letters = self._store.dead_letters.claim(replay.id, batch_size(replay.rate_per_s), ends)
        if not letters:  # every letter appended: this marks the replay finished
            self._store.dead_letters.settle_batch(replay.id, {}, [])
            return 0
        records = self.records_of(replay.topic, letters)
        positions = self._broker.append(replay.topic, records)
        copies = {
            letter.id: message_id(replay.topic, p.partition, p.offset)
            for letter, p in zip(letters, positions, strict=True)
        }
        done = self._store.dead_letters.settle_batch(replay.id, copies, [])
        if done.state is ReplayState.FINISHED:
            log.info("replay %d of %s finished: %d letters appended", replay.id, replay.topic, done.done)
        return len(letters)

    def _resolve(self, replay: Replay, letters: Sequence[DeadLetter]) -> int:
        """Settle a batch cut short: letters whose copy is on the work topic are replayed, the others requeued."""
        wanted = {letter.dlq_id: letter.id for letter in letters}
        found: dict[int, str] = {}
        starts = replay.batch_ends or {}
        for partition, end in self._broker.end_offsets(replay.topic).items():
            offset = starts.get(partition, 0)
            while offset < end and len(found) < len(wanted):
                page = self._broker.read(replay.topic, partition, offset, max_records=READ_RECORDS)
                if not page:
                    break
                for message in page:
                    letter_id = wanted.get(_replay_of(message) or "")
                    if letter_id is not None:
                        found[letter_id] = message_id(replay.topic, message.partition, message.offset)
                offset = page[-1].offset + 1
        requeued = [letter.id for letter in letters if letter.id not in found]
        log.warning(
            "replay %d of %s resumed: %d letters of the batch cut short were appended, %d go again",
            replay.id, replay.topic, len(found), len(requeued),
        )  # fmt: skip
        self._store.dead_letters.settle_batch(replay.id, found, requeued)
        return len(found)

    def records_of(self, topic: str, letters: Sequence[DeadLetter]) -> list[Record]:
        """The letters' DLQ records as new messages: their key, value and original headers (ours taken off),
        and ``xtreaming-replay-of``. A record cut to fit the DLQ gives its original from the work topic."""
        messages = self._dlq_messages(topic, letters)
        records = []
        for letter in letters:
            message = messages.get((letter.partition, letter.offset))
            if message is None:
                raise ReplayCannotRun(f"DLQ record {letter.dlq_id} is no longer in the log")
            headers = dict(message.headers)
            if _was_cut(headers):
                message = self._source_message(topic, letter) or message
            kept = tuple((n, v) for n, v in message.headers if n not in DLQ_HEADERS and n != REPLAY_OF)
            link = (REPLAY_OF, letter.dlq_id.encode())
            records.append(Record(message.key, message.value, (*kept, link)))
        return records

    def _dlq_messages(self, topic: str, letters: Sequence[DeadLetter]) -> Mapping[tuple[int, int], Message]:
        """The DLQ records of ``letters``, read in runs of each partition."""
        offsets: dict[int, list[int]] = defaultdict(list)
        for letter in letters:
            offsets[letter.partition].append(letter.offset)
        found: dict[tuple[int, int], Message] = {}
        dlq_topic = f"{topic}.{DLQ_SUFFIX}"
        for partition, wanted in offsets.items():
            wanted.sort()
            remaining = set(wanted)
            index = 0
            while index < len(wanted):
                span = min(READ_RECORDS, wanted[-1] - wanted[index] + 1)
                page = self._broker.read(dlq_topic, partition, wanted[index], max_records=span)
                if not page:
                    break
                for message in page:
                    if message.offset in remaining:
                        found[partition, message.offset] = message
                while index < len(wanted) and wanted[index] <= page[-1].offset:
                    index += 1
        return found

    def _source_message(self, topic: str, letter: DeadLetter) -> Message | None:
        """The original message a cut DLQ record came from, while the work topic still holds it."""
        if letter.source_partition is None or letter.source_offset is None:
            return None
        page = self._broker.read(topic, letter.source_partition, letter.source_offset, max_records=1)
        if page and page[0].offset == letter.source_offset:
            return page[0]
        log.warning("DLQ record %s was cut and its original is gone: replayed as cut", letter.dlq_id)
        return None


def _replay_of(message: Message) -> str | None:
    for name, value in message.headers:
        if name == REPLAY_OF:
            return value.decode("utf-8", "replace")
    return None


def _was_cut(headers: Mapping[str, bytes]) -> bool:
    return not CUT.isdisjoint(headers)
