"""The coordinator service: the one place combining the state store, the broker and the scheduler.

Thread-safe: every public method holds one lock (the operators' ``Coordinator.controls`` take the
same), so the API's threads, the background loop and tests can call it at will. The background work
holds it only to read and change memory, never across its broker round trips, and the screen's
reads wait for it only briefly (``screen``). Time comes from
an injected clock, and the background work is a ``run_once()`` the tests drive (no sleeping).
What memory holds lives in ``memory.py``, reading from the broker in ``intake.py``, settling
results in ``settlement.py``, the farms in ``farms.py``, configuration in ``catalog.py`` and the
operators' changes to it in ``controls.py``.

A lease is stored before it is handed out. Leases and settlements are worked out under the lock and stored out
of it (the log's confirmation of their results, then the store's commit), one at a time in the order they were
made (``commit_order.py``, ``_made`` and ``_store``); consumer-group offsets (the ledger watermarks) are
committed to the broker every ``commit_interval_s``; the store's ledger is the source of truth.

Outages. When the broker or the store fails in the middle of a change (an ACK append during a
settlement, a lease being stored), memory may be ahead of the store: it is reloaded from the
store, as a restart would, before the next lease or completion; until the reload succeeds they
are refused with the error (HTTP 503: farms keep their results and retry). Any other error raised
midway does the same. The API's reads keep answering from memory meanwhile, and the background
loop shows the broker as down. A request that cannot be served (an unknown farm, a slot it does
not have) is refused before anything changes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from xtreaming.broker import Broker, Message, Position, Record
from xtreaming.coordinator.broker_health import BrokerHealth
from xtreaming.coordinator.catalog import Catalog
from xtreaming.coordinator.commit_order import CommitOrder, Ticket
from xtreaming.coordinator.controls import Controls
from xtreaming.coordinator.core.base_eta import QueueWork
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.core.scheduler import (
    Decision,
    FreeSlot,
    Idle,
    Lease,
    Repeat,
    explain,
    repeat_of,
    schedule,
)
from xtreaming.coordinator.core.snapshot import Snapshot
from xtreaming.coordinator.core.state import MIN_PRIORITY
from xtreaming.coordinator.dead_letters import DeadLetters
from xtreaming.coordinator.farms import FarmRuntime, Reconciled, SlotDetail
from xtreaming.coordinator.figure_history import QUEUE, FigureHistory, summed
from xtreaming.coordinator.figures import (
    BaseFigures,
    QueueFigures,
    eta_work,
    one_base_figures,
    queue_figures,
    screen_figures,
    with_etas,
)
from xtreaming.coordinator.intake import Intake
from xtreaming.coordinator.memory import Memory
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.outcomes import Outcome, SettlementListener, tell
from xtreaming.coordinator.records import (
    FarmRecord,
    FigurePoint,
    SlotRecord,
    TaskRecord,
    WorkSettings,
    minute_of,
)
from xtreaming.coordinator.runtime import QueueRuntime, TaskRuntime
from xtreaming.coordinator.screen_rows import QueueRows
from xtreaming.coordinator.settlement import Report, Settled, confirm_all
from xtreaming.coordinator.store import Store
from xtreaming.errors import (
    BaseNotFound,
    BrokerUnavailable,
    InvalidSlot,
    StoreUnavailable,
    TaskOfAnotherFarm,
    XtreamingError,
)
from xtreaming.topics import TopicName

__all__ = ["Assignment", "Coordinator", "Reconciled", "Report", "Screen", "Settled"]

log = logging.getLogger("xtreaming.coordinator")

#: A lease answer takes no further task once it carries this many messages: the farm starts those
#: while the coordinator prepares the next (a farm asks again at once for its slots still idle),
#: rather than every slot waiting for the last one's task. Small tasks still go many to an answer.
ANSWER_MESSAGES: Final = 1000
#: How long a screen read waits for the lock before answering with the figures last taken: an expiry or an
#: operator's change may hold the lock across a broker or store round trip (the broker's timeout, when it is down).
SCREEN_WAIT_S: Final = 0.05
#: While a screen is watching (it asked in the last ``SCREEN_WATCHED_S``), the background pass takes the figures
#: again once those last taken are this old (seconds), so that a screen read finding the lock busy need wait only
#: ``SCREEN_BUSY_WAIT_S`` for figures this fresh, not ``SCREEN_WAIT_S`` (a drain holds the lock much of the time).
SCREEN_FRESH_S: Final = 1.0
SCREEN_WATCHED_S: Final = 10.0
SCREEN_BUSY_WAIT_S: Final = 0.01
#: The bases' ETAs shown are at most this old (seconds): each is a walk forward in time, for every base.
ETA_INTERVAL_S: Final = 2.0

Clock = Callable[[], datetime]


class _Changes(threading.Condition):
    """The coordinator's condition, counting its notifications: a long-poll that looked for work without the lock
    knows whether something changed meanwhile (``lease_wait``)."""

    def __init__(self, lock: threading.RLock) -> None:
        super().__init__(lock)
        self.count = 0

    def notify(self, n: int = 1) -> None:
        self.count += 1
        super().notify(n)


@dataclass(slots=True)
class _Change:
    """A change made in memory under the lock, to be made durable out of it (``Coordinator._store``): its store
    writes, its results on their way to the log, and the outcomes to tell once durable (the first ``durable`` of
    them were durable already)."""

    ticket: Ticket
    writes: list[Callable[[], None]]
    unconfirmed: list[Callable[[], object]]
    outcomes: list[Outcome]
    durable: int


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Assignment:
    """A task handed to one farm slot."""

    task_id: str
    topic: TopicName
    slot: int
    settings: WorkSettings
    #: The messages (values included) and the attempt each is on.
    messages: tuple[PendingMessage, ...]
    deadline_at: datetime


@dataclass(frozen=True, slots=True)
class LeaseAsk:
    """A farm's lease request: the reports of its finished tasks, and its idle slots to lease."""

    farm_id: str
    completions: Sequence[tuple[str, Report]]
    slots: Sequence[int]


#: What a lease request is answered: what each completion settled, and the tasks leased.
LeaseAnswer = tuple[list[Settled], list[Assignment]]


@dataclass(frozen=True, slots=True)
class Screen:
    """What the operator screen shows, as of ``at``: every queue and base, and each farm with whether it
    is lost and how many of its slots run a task."""

    at: datetime
    queues: list[QueueFigures]
    bases: list[BaseFigures]
    farms: list[tuple[FarmRecord, bool, int]]


class Coordinator:
    """Keeps the site's queues, leases and ledgers; see the module docstring."""

    def __init__(
        self, store: Store, broker: Broker, options: CoordinatorOptions | None = None, clock: Clock = utc_now
    ) -> None:
        self.store = store
        self.broker = broker
        self.options = options or CoordinatorOptions()
        self._clock = clock
        #: Whether the broker answers, from any of the calls below (``broker_health.py``).
        self.broker_health = BrokerHealth()
        self._lock = threading.RLock()
        self._changed = _Changes(self._lock)
        #: Leases and settlements are made under the lock and stored out of it, in order (``commit_order.py``).
        self._commits = CommitOrder()
        self._generation = 0  # of memory: a reload makes a new one
        self._changing = 0  # how deep in ``_consistent`` blocks the lock's holder is
        self._local = threading.local()  # ``committing``: the thread stores a change (``_store``)
        store.wait_before_writes(self._before_write)
        self.catalog = Catalog(store, self.options)
        self.controls = Controls(self.catalog, self._changed, self.queue, self._queue_changed, self._bases_changed)
        #: The dead-letter index and replays: the broker and the store only, never this lock.
        self.dead_letters = DeadLetters(store, broker, self.options)
        self.dead_letters.foreign = self._foreign_letter
        self._next_discovery = 0.0
        self._next_commit = 0.0
        # One refresh and one commit at a time (each across its broker round trips, which nothing else waits
        # on): a publish's refresh then reads what it appended (on a queue taking one message per key, what the
        # scout judged: all of it unless the scout's own pass was under way), and an older watermark never lands
        # after a newer. A refresh scouts under ``_scouting`` and reads under ``_refreshing``, taken before the
        # first is let go: one refresh's reads overlap the next one's scouting, in the order they began.
        self._scouting = threading.Lock()
        self._refreshing = threading.Lock()
        self._committing = threading.Lock()
        #: Queues whose read-ahead a lease brought to half or less: ``top_up_wanted`` reads them without the lock.
        self._reads_wanted: set[str] = set()
        self._read_wake = threading.Event()
        #: Why memory may be ahead of the store (a write failed midway), or None: see the module docstring.
        self._stale: str | None = None
        #: Told each settlement's outcomes once they are durable (``outcomes.py``).
        self._listeners: list[SettlementListener] = []
        #: Outcomes settled and not told yet, collected while anybody listens. Kept here, not in the settlement:
        #: those already durable when a later change failed survive the reload and are told with the next.
        self._outcomes: list[Outcome] = []
        self._use(Memory.load(store, broker, self.options, clock))
        #: Each queue's and base's figures per minute, written once a minute by ``run_once`` (``figure_history.py``).
        self._figure_history = FigureHistory(store, timedelta(hours=self.options.figure_retention_hours), clock())
        #: The bases' ETAs last worked out (``_with_etas``): when (monotonic seconds), the bases with pending work
        #: then, and each base's ETA.
        self._etas: tuple[float, frozenset[str], dict[str, datetime]] = (-ETA_INTERVAL_S, frozenset(), {})
        #: Each queue's screen row as last worked out, kept while its inputs stay the same (``screen_rows.py``).
        self._rows = QueueRows()
        self._screen = self._screen_now()
        #: When (monotonic seconds) the screen's figures were last taken, and last asked for.
        self._screen_taken = self._screen_asked = time.monotonic()

    def _use(self, memory: Memory) -> None:
        """Work on ``memory`` from now on; the scheduler's snapshot is built anew from it."""
        self._queues, self._farms, self._tasks = memory.queues, memory.farms, memory.tasks
        self._generation += 1
        self._dirty, self._intake, self._settlement = memory.dirty, memory.intake, memory.settlement
        self._settlement.outcomes = self._outcomes if self._listeners else None
        self._outcomes += memory.recovered  # durable: told with the next settlement's
        self._snapshot: Snapshot | None = None

    @contextmanager
    def _consistent(self) -> Iterator[None]:
        """Around a change that writes to the broker or the store: reload first if memory is stale,
        and mark it stale when the change fails midway (see the module docstring), whatever the error:
        any of them may leave memory ahead of the store, the source of truth. A request refused before
        it changes anything is refused before this block: a refusal inside it costs a reload. A change stored out
        of the lock that failed (``_store``) is seen here too, at the outermost block only: a change half made
        is never reloaded under."""
        if self._changing == 0 and self._memory_stale():
            self._reload()
        self._changing += 1
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, BrokerUnavailable):
                self.broker_health.failed(exc)
            why = f"{type(exc).__name__}: {exc}"
            if self._stale is None:
                log.warning("memory will be reloaded from the state store: a change failed midway: %s", why)
            self._stale = why
            raise
        finally:
            self._changing -= 1

    def _memory_stale(self) -> bool:
        """Whether memory may be ahead of the store (the lock held): a change failed midway, here or as stored."""
        return self._stale is not None or self._commits.failed(self._generation) is not None

    def _before_write(self) -> None:
        """Before a store write transaction begins: one made holding the lock waits for the changes stored out
        of it (they came first); the thread storing one of them goes ahead."""
        if not getattr(self._local, "committing", False) and self.holds_lock():
            self._commits.drain()

    def _made(self, change: Callable[[], None]) -> _Change:
        """Make ``change`` in memory (the lock held): its store writes collected, the appends of its results begun
        (``Settlement.batched(overlap=True)``), and its ticket to be stored (``_store``, out of the lock). A change
        that raises changed nothing durable (its results may be in the log: a reload settles them); memory is
        reloaded."""
        told = len(self._outcomes)
        try:
            with self._consistent(), self.store.deferred() as writes:
                change()
        except BaseException:
            with suppress(Exception):  # the error raised already is the one to report; memory is reloaded
                self._settlement.confirm()
            del self._outcomes[told:]  # never stored: never told
            raise
        outcomes = self._take_outcomes()
        unconfirmed = self._settlement.take_unconfirmed()
        ticket = self._commits.issue(self._generation)
        return _Change(ticket, writes, unconfirmed, outcomes, min(told, len(outcomes)))

    def _store(self, change: _Change) -> None:
        """Make ``change`` durable, out of the lock, after the changes made before it: its results confirmed in the
        log, then its store writes in one transaction; then its outcomes told. When it fails (or one before it
        did, on the same memory), memory is stale: the error is raised, and the next change reloads first."""
        self._local.committing = True
        try:
            with self._commits.turn(change.ticket) as refused:
                try:
                    confirm_all(change.unconfirmed)  # every one, refused or not: a reload reads them back
                    if refused is not None:
                        raise StoreUnavailable(f"not stored: a change made before it failed ({refused}); send again")
                    if change.writes:
                        with self.store.transaction():
                            for write in change.writes:
                                write()
                except BaseException as exc:
                    if isinstance(exc, BrokerUnavailable):
                        self.broker_health.failed(exc)
                    why = f"{type(exc).__name__}: {exc}"
                    if refused is None:
                        log.warning("memory will be reloaded from the state store: a change failed as stored: %s", why)
                    self._commits.fail(change.ticket.generation, why)
                    self._tell(change.outcomes[: change.durable])
                    raise
        finally:
            self._local.committing = False
        self._tell(change.outcomes)

    def _reload(self) -> None:
        """Load memory again from the store, as a restart would, once every change stored out of the lock is done
        (the results of one refused may be on their way to the log); the old memory stays if this fails."""
        self._commits.drain()
        why = self._stale or self._commits.failed(self._generation)
        self._use(Memory.load(self.store, self.broker, self.options, self._clock))
        log.warning("memory reloaded from the state store (it was stale after: %s)", why)
        self._stale = None
        self._changed.notify_all()

    def _foreign_letter(self, topic: str, partition: int, offset: int) -> None:
        """The dead-letter index found a record of ``topic``'s ``.DLQ`` not written by Xtreaming: off the queue's
        dead figure if it was counted there (read before the index reached it), else it never was."""
        with self._lock:
            queue = self._queues.get(topic)
            counted = queue.dlq_unindexed.get(partition) if queue is not None else None
            if queue is not None and counted is not None and counted[0] <= offset < counted[1]:
                queue.dead -= 1
                self._dirty.add(topic)

    def add_settlement_listener(self, listener: SettlementListener) -> None:
        """Tell ``listener`` the outcomes of every settlement from now on, once they are durable: after the
        store transaction that settled them committed, outside the lock (see ``outcomes.py``)."""
        with self._lock:
            self._listeners.append(listener)
            self._settlement.outcomes = self._outcomes

    def _take_outcomes(self) -> list[Outcome]:
        """The outcomes settled since last taken, all durable (the lock held); none while nobody listens (those
        settled from the log as memory was loaded wait for the first listener)."""
        if not self._outcomes or not self._listeners:
            return []
        taken = self._outcomes.copy()
        self._outcomes.clear()
        return taken

    def _tell(self, outcomes: list[Outcome]) -> None:
        """Give durable ``outcomes`` to the listeners; never holding the lock (a listener may be slow or ask us)."""
        if outcomes:
            tell(list(self._listeners), outcomes)

    # -- background work ------------------------------------------------------------------------

    def run_once(self) -> None:
        """One pass of the background loop: discover topics, read ahead, expire, commit offsets, index dead letters.

        The broker is asked without the lock (topics, ends, reads, commits) and what it answered is
        applied under it: the API's reads and the farms' requests never wait on this loop's broker round
        trips. One exception: memory stale after a change cut short is reloaded under the lock (it is
        replaced as a whole: nothing may change meanwhile), and only once this pass found the broker
        answering; while it does not, the pass ends at its first broker call."""
        now_s = time.monotonic()
        if now_s >= self._next_discovery:
            self.discover()
            self._next_discovery = now_s + self.options.discovery_interval_s
        self.refresh()
        expired: list[int] = []
        with self._lock:
            if self._memory_stale():
                self._reload()
            watched = now_s - self._screen_asked < SCREEN_WATCHED_S
            taken = self._screen_rows() if watched and now_s - self._screen_taken >= SCREEN_FRESH_S else None
            # Last in the block: a change made is always stored (every later one waits for it).
            change = self._made(lambda: expired.append(self._expire_and_finish_duplicates()))
            if expired[0]:
                self._changed.notify_all()
        self._store(change)
        if taken is not None:
            self._screen, self._screen_taken = self._with_etas(*taken), now_s
        if now_s >= self._next_commit:
            self.commit_offsets()
            self._next_commit = now_s + self.options.commit_interval_s
        self.dead_letters.index_when_due()
        self.record_figures()

    def discover(self) -> list[str]:
        """Register work topics that appeared on the broker; returns the new ones.

        The broker is asked without the lock; a new topic is stored and tracked under it."""
        names = self.broker.list_topics()
        with self._lock:
            intake = self._intake
            candidates = []
            for name in names:
                topic = None if name in self._queues else self.catalog.work_topic(name)
                if topic is not None:
                    candidates.append(topic)
        if not candidates:
            return []
        found = [(topic, intake.look_up(topic, with_ends=True)) for topic in candidates]
        matches = self.catalog.match(str(topic) for topic, _ in found)  # operators' patterns: never under the lock
        with self._lock:
            added = []
            for topic, facts in found:
                name = str(topic)
                if facts is None or name in self._queues:
                    continue  # gone since it was listed, or registered meanwhile (a publish, a reload)
                record = self.catalog.register_queue(topic, self._clock(), matches)
                self._intake.track(record, facts, {})
                added.append(name)
                log.info("queue %s registered (priority %d)", name, record.settings.priority)
            if added:  # a new queue may bring a new base, which the snapshot does not have yet
                self._bases_changed()
            return added

    def refresh(self, topics: Iterable[str] | None = None, *, whole: bool = False) -> int:
        """Read ahead every queue (or those of ``topics``); returns how many messages became pending. With
        ``whole``, up to the log's ends even on a queue taking one message per key while the scout's own pass is
        under way (``_scouted_ends``): a publish's messages are leasable once it is answered.

        The log's ends and the reads are asked without the lock (so never call this holding it: RuntimeError);
        what they answered is applied under it."""
        if self.holds_lock():
            raise RuntimeError("refresh reads the log: it is never called holding the coordinator's lock")
        with self._lock:
            intake = self._intake
            names = list(self._queues) if topics is None else [t for t in topics if t in self._queues]
        if not names:
            return 0
        ends = self._scouted_ends(intake, names, whole=whole)  # returns holding ``_refreshing``
        try:
            with self._lock:
                if intake is not self._intake:
                    return 0  # memory reloaded meanwhile: the next pass reads for the new one
                wants = intake.wanted(ends)
            if not wants:
                return 0
            fetched: list[list[Message]] = []
            try:
                for want in wants:
                    fetched.append(intake.fetch(want))
            finally:  # what was read before a failure is taken in; every planned read ends
                with self._lock:
                    fresh = intake.take_in(wants, fetched)
                    if fresh:
                        self._changed.notify_all()
            with self._lock:  # not while memory is stale: the reload that comes first reads them again
                change = None if self._memory_stale() else self._made(self._finish_duplicates)
            if change is not None:
                self._store(change)
        finally:
            self._refreshing.release()
        return fresh

    def _scouted_ends(
        self, intake: Intake, names: Sequence[str], *, whole: bool = False
    ) -> Mapping[str, Mapping[int, int]]:
        """The log's ends of the ``names`` queues, the scout brought up to them first, returned holding
        ``_refreshing`` (taken before the scout is let go: reads follow each other as scouting did). While the
        scout's own pass (``scout_ahead``) is under way, no wait for it: intake reads as far as it has judged;
        unless ``whole``: then the pass is waited for, and the rest judged (a publish reads what it appended)."""
        if not self._scouting.acquire(blocking=whole):
            self._refreshing.acquire()
            try:
                return self.broker.end_offsets_of(names)
            except BaseException:
                self._refreshing.release()
                raise
        try:
            ends = self.broker.end_offsets_of(names)
            self._scout(intake, ends)
            self._refreshing.acquire()
            return ends
        finally:
            self._scouting.release()

    def scout_ahead(self) -> int:
        """One pass of the scout (``key_scout.py``) over the queues it scouts, up to the log's ends, for a thread of
        its own: it judges the keys of a long load ahead of intake's reads, which then wait for none of it. Returns
        how many offsets it planned to judge (0: every scouted partition judged to its end)."""
        if self.holds_lock():
            raise RuntimeError("scout_ahead reads the log: it is never called holding the coordinator's lock")
        with self._lock:
            intake = self._intake
            names = intake.scout.topics()
        if not names:
            return 0
        with self._scouting:
            return self._scout(intake, self.broker.end_offsets_of(names))

    def holds_lock(self) -> bool:
        """Whether the calling thread holds the coordinator's lock (what reads the log must not)."""
        return bool(self._lock._is_owned())  # type: ignore[attr-defined]  # RLock's own check, not in the stubs

    def urgent_topics(self) -> list[str]:
        """The topics of the queues an urgent slot may take: of the site's urgent priority or above, or of a farm's
        own (``log_watch.py`` watches their ends)."""
        with self._lock:
            farms = [g.min_priority for g in self._farms.live_slots(()) if g.min_priority > MIN_PRIORITY]
            least = min([self.options.urgent_priority, *farms])
            return [name for name, queue in self._queues.items() if queue.record.settings.priority >= least]

    def _scout(self, intake: Intake, ends: Mapping[str, Mapping[int, int]]) -> int:
        """Judge the keys of the queues taking one message per key up to the log's ``ends`` (``key_scout.py``),
        before intake reads them: planned and judged under the lock, read without it, a partition at a time.
        Returns how many offsets were planned. ``_scouting`` held."""
        with self._lock:
            plans = intake.scout.wanted(ends) if intake is self._intake else []
        for plan in plans:
            keys = intake.scout.fetch(plan)
            with self._lock:
                intake.scout.take_in(plan, keys)
        return sum(plan.end - plan.offset for plan in plans)

    def _finish_duplicates(self) -> None:
        """Finish the messages just read as duplicates of pending or running ones (``intake.py``), as a
        settlement does: results first, then the store (the lock held, in a change: ``_made``). Not while memory
        is stale: they belong to the memory about to be replaced, and are read again from the one loaded."""
        if self._memory_stale():
            return
        duplicates = self._intake.take_duplicates()
        if duplicates:
            with self._consistent(), self._settlement.batched(overlap=True):
                self._settlement.finish_duplicates(duplicates, self._clock())

    def commit_offsets(self) -> None:
        """Commit each partition's watermark as the group's offset, where it moved: computed under the lock,
        sent without it, once the changes they include are stored (``_store``). Not while memory is stale: it may
        be ahead of the store, the source of truth."""
        with self._committing:
            with self._lock:
                if self._memory_stale():
                    return
                intake, moved, issued = self._intake, self._intake.moved(), self._commits.issued
            self._commits.wait_through(issued)
            with self._lock:
                if self._memory_stale() or intake is not self._intake:
                    return
            for topic, offsets in moved.items():
                self.broker.commit(self.options.group, topic, offsets)
                with self._lock:
                    intake.committed(topic, offsets)

    # -- farms ----------------------------------------------------------------------------------

    def register_farm(
        self,
        name: str,
        labels: Mapping[str, str],
        slots: int,
        instance: str | None = None,
        actor: str = "anonymous",
        *,
        urgent_slots: int | None = None,
        urgent_priority: int | None = None,
    ) -> FarmRecord:
        """Register (or re-register, after a restart of either side) the farm called ``name`` (audited as
        ``actor``'s); a new ``instance`` of a known farm (its process restarted) releases the tasks of the one
        before. ``urgent_*``: the farm's own urgent slots (None: the site's); InvalidInput when it cannot keep them."""
        with self._lock:
            record, replaced = self._farms.register(
                name, labels, slots, instance, self._clock(), actor,
                urgent_slots=urgent_slots, urgent_priority=urgent_priority,
            )  # fmt: skip
            if replaced:
                previous = list(self._tasks.of_farm(name))
                self._release(previous, "its farm restarted")
            self._changed.notify_all()
            return record

    def heartbeat(
        self,
        farm_id: str,
        slots: Sequence[SlotRecord],
        *,
        reporting: Collection[str] = (),
        instance: str | None = None,
    ) -> Reconciled:
        """A farm is alive; the progress its ``slots`` report goes to their tasks, and what they run is
        reconciled with the leases: the tasks it runs that are not leased to it are to be stopped (the
        answer), and its tasks that neither run in a slot nor wait to be reported (``reporting``) for two
        heartbeats are released. ``instance``: the farm process's id, when it sends one."""
        with self._lock:
            now = self._clock()
            farm = self._farms.require(farm_id)
            if instance in (None, farm.record.instance):  # an older instance is told it was superseded instead
                _check_slots(farm, [slot.index for slot in slots])
            running = {slot.task_id for slot in slots if slot.task_id}
            if not self._farms.heartbeat(farm_id, instance, now):
                return Reconciled(tuple(sorted(running)), superseded=True)
            farm.slots_seen = {slot.index: slot for slot in slots}
            if self._memory_stale():  # memory may be ahead of the store: reconcile once it is reloaded
                return Reconciled()
            stop = []
            for slot in slots:
                task = self._tasks.get(slot.task_id) if slot.task_id else None
                if task is None or task.record.farm_id != farm_id:
                    if slot.task_id:
                        stop.append(slot.task_id)
                elif slot.total:
                    task.done, task.total = slot.done, slot.total
            leased = {task_id: t.record.leased_at for task_id, t in self._tasks.of_farm(farm_id).items()}
            missing = self._farms.missing(farm_id, leased, running.union(reporting), now)
            if missing:
                self._release(missing, "its farm's slot is not running it")
            if stop:
                log.warning("farm %s runs task(s) not leased to it, told to stop them: %s", farm_id, ", ".join(stop))
            return Reconciled(tuple(stop))

    def _release(self, task_ids: Sequence[str], why: str) -> None:
        """Give the messages of the tasks ``task_ids`` back at once, no attempt counted (``Settlement.release``)."""
        if not task_ids:
            return
        with self._consistent():  # looked up inside: memory may be reloaded first
            for task_id in task_ids:
                task = self._tasks.pop(task_id, None)
                if task is None:
                    continue
                released = self._settlement.release(task)
                log.warning(
                    "task %s of farm %s slot %d released (%s): %d message(s) pending again",
                    task.record.id, task.record.farm_id, task.record.slot, why, released,
                )  # fmt: skip
        self._changed.notify_all()

    # -- leases ---------------------------------------------------------------------------------

    def lease(self, farm_id: str, slots: Sequence[int]) -> list[Assignment]:
        """Tasks for the farm's idle ``slots`` (indexes), as many as there is work for, until they carry
        ``ANSWER_MESSAGES`` messages; never waits. Raises FarmNotFound, or InvalidSlot for a slot the farm
        did not register, having changed nothing."""
        assignments: list[Assignment] = []
        with self._lock:
            farm = self._leasing_farm(farm_id, slots)
            change = self._made(lambda: assignments.extend(self._lease(farm, slots)))
        self._store(change)
        return assignments

    def _lease(self, farm: FarmRuntime, slots: Sequence[int]) -> list[Assignment]:
        """``lease`` once the request is known to be sound (the lock held, in a ``_consistent`` block)."""
        farm_id = farm.record.id
        now = self._clock()
        farm.record = replace(farm.record, last_heartbeat_at=now)
        farm.lost = False
        assignments: list[Assignment] = []
        records: list[TaskRecord] = []
        carried = 0
        repeat: Repeat | None = None
        # Urgent slots first: urgent work goes to them, leaving the ordinary slots to the rest.
        ordered = sorted(slots, key=farm.min_priority, reverse=True)
        for index, slot in enumerate(ordered):
            if carried >= ANSWER_MESSAGES:
                break
            least = farm.min_priority(slot)
            free = FreeSlot(farm_id, farm.labels, least)
            decision: Decision | None = self._repeated(repeat, free, now)
            if decision is None:
                snapshot = self._current_snapshot()
                decision = schedule(snapshot, free, now)
                alike = index + 1 < len(ordered) and farm.min_priority(ordered[index + 1]) == least
                repeat = repeat_of(snapshot, free, decision, now) if alike and isinstance(decision, Lease) else None
            if isinstance(decision, Idle):
                if least:  # no urgent work: an ordinary slot may still take the rest
                    continue
                break
            queue = self._queues[decision.queue]
            assignments.append(self._start_task(queue, farm_id, slot, decision, now, records))
            carried += len(decision.messages)
        self._finish_duplicates()  # read as the tasks' partitions were topped up: a failure hands nothing out
        self.store.add_tasks(records)  # stored before anything is handed out
        return assignments

    def _repeated(self, repeat: Repeat | None, slot: FreeSlot, now: datetime) -> Lease | None:
        """The lease of ``slot`` decided without a search (``Repeat``) when it is like the slot decided last and nothing
        changed since but the leases of the queue it went to; None when it must be decided in full."""
        if repeat is None or repeat.slot != slot or not self._dirty.issubset((repeat.queue,)):
            return None
        return repeat.lease(self._queues[repeat.queue].state(), now)

    def settle_and_lease(
        self, farm_id: str, completions: Sequence[tuple[str, Report]], slots: Sequence[int]
    ) -> LeaseAnswer:
        """Settle a farm's finished tasks, then lease its idle slots: one store transaction for both.
        A lease ``lease`` would refuse, or a completion of a task leased to another farm (TaskOfAnotherFarm), is
        refused before anything is settled."""
        [answer] = self.settle_and_lease_together([LeaseAsk(farm_id, completions, slots)])
        if isinstance(answer, XtreamingError):
            raise answer
        return answer

    def settle_and_lease_together(self, asks: Sequence[LeaseAsk]) -> list[LeaseAnswer | XtreamingError]:
        """``settle_and_lease`` of several requests at once (a group commit), an answer for each, in order: one
        ``settle_and_lease`` would refuse is refused alike (its error is its answer) before anything changes; the
        others are settled and leased in one store transaction, their results appended once per result topic. An
        error in that transaction is raised: none of them took effect, and each farm sends its request again."""
        with self._lock:
            answers: list[LeaseAnswer | XtreamingError] = []
            sound: list[tuple[int, FarmRuntime | None, LeaseAsk]] = []
            for index, ask in enumerate(asks):
                try:
                    farm = self._leasing_farm(ask.farm_id, ask.slots) if ask.slots else None
                    for task_id, _ in ask.completions:
                        self._check_owner(task_id, ask.farm_id)
                except XtreamingError as refused:
                    answers.append(refused)
                else:
                    answers.append(([], []))
                    sound.append((index, farm, ask))
            if not sound:
                return answers

            def settle_and_lease() -> None:
                # Results appended once, begun before the leases are made: the log confirms them (its round trip,
                # or its commit on a thread of its own) meanwhile, and out of the lock.
                with self._settlement.batched(overlap=True):
                    settled = iter(self._complete_all([c for *_, ask in sound for c in ask.completions]))
                for index, farm, ask in sound:
                    its_settled = [next(settled) for _ in ask.completions]
                    answers[index] = (its_settled, self._lease(farm, ask.slots) if farm is not None else [])

            change = self._made(settle_and_lease)
        self._store(change)
        return answers

    def _leasing_farm(self, farm_id: str, slots: Iterable[int]) -> FarmRuntime:
        """The farm asking for ``slots``, memory reloaded first if stale. Raises FarmNotFound, or InvalidSlot
        for a slot outside the farm's ``0..slots-1``, before anything changes: a task made in memory for a
        slot the store cannot hold would fail only as it is stored."""
        if self._memory_stale():
            self._reload()
        farm = self._farms.require(farm_id)
        _check_slots(farm, slots)
        return farm

    def lease_wait(self, farm_id: str, slots: Sequence[int], timeout_s: float) -> list[Assignment]:
        """``lease``, waiting up to ``timeout_s`` for work to appear (long-poll). Each lease is stored out of the
        lock; a change made meanwhile (counted by the condition) means looking again rather than waiting."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                seen = self._changed.count
            assignments = self.lease(farm_id, slots)
            left = deadline - time.monotonic()
            if assignments or left <= 0:
                return assignments
            with self._lock:
                if self._changed.count == seen:
                    self._changed.wait(left)

    def _start_task(
        self, queue: QueueRuntime, farm_id: str, slot: int, lease: Lease, now: datetime, records: list[TaskRecord]
    ) -> Assignment:
        entries = queue.take(lease.messages)
        leased = tuple(entries)
        task_id = os.urandom(16).hex()  # as random as a uuid4's hex, without building a UUID per task
        settings = queue.record.settings
        record = TaskRecord(
            id=task_id,
            topic=queue.topic,
            farm_id=farm_id,
            slot=slot,
            messages=leased,
            leased_at=now,
            deadline_at=now + timedelta(seconds=settings.timeout_s + self.options.lease_grace_s),
        )
        records.append(record)
        self._tasks[task_id] = TaskRuntime(record, queue, entries)
        queue.running.add(task_id)
        queue.activity.running(now, len(queue.running))
        queue.last_served = now
        queue.hold_keys(e.key for e in entries)
        self._top_up(queue, {e.partition for e in entries})
        self._dirty.add(queue.topic)
        return Assignment(
            task_id=task_id,
            topic=queue.name,
            slot=slot,
            settings=settings,
            messages=leased,
            deadline_at=record.deadline_at,
        )

    def _top_up(self, queue: QueueRuntime, partitions: Iterable[int]) -> None:
        """After a lease took from ``partitions``: on a local log, while the queue holds less than a batch, they
        are read now (the lock held: the next slot's task would come out short); otherwise one at half its
        read-ahead or less is left to ``top_up_wanted``, which reads without the lock while what is left serves
        the next leases. On Kafka a read is a round trip, which the lock is never held across: a short queue
        hands out what it holds until the read lands, which wakes the long-polls."""
        short = self.broker.local and sum(queue.buffered.values()) < queue.record.settings.batch_size
        for partition in partitions:
            if short:
                with suppress(BrokerUnavailable):  # read fully or not at all; the background loop retries
                    self._intake.read(queue, partition)
            elif queue.half_read(partition):
                self._reads_wanted.add(queue.topic)
                self._read_wake.set()

    def top_up_wanted(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for leases to bring a queue's read-ahead to half, then read those queues
        ahead without the lock (``refresh``); the messages made pending. For a thread of its own."""
        if not self._read_wake.wait(timeout_s):
            return 0
        self._read_wake.clear()
        with self._lock:
            topics, self._reads_wanted = self._reads_wanted, set()
        return self.refresh(topics)

    def _current_snapshot(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = Snapshot.build(
                (q.state() for q in self._queues.values()), self.catalog.base_states(), self.options.zone
            )
            self._dirty.clear()
        elif self._dirty:
            snapshot = self._snapshot
            for topic in self._dirty:
                queue = self._queues.get(topic)
                snapshot = snapshot.with_queue(queue.state()) if queue else snapshot.without_queue(topic)
            self._snapshot = snapshot
            self._dirty.clear()
        return self._snapshot

    def _queue_changed(self, topic: str) -> None:
        self._dirty.add(topic)

    def _bases_changed(self) -> None:
        self._snapshot = None

    # -- completion -----------------------------------------------------------------------------

    def farm_of_task(self, task_id: str) -> str | None:
        """The farm ``task_id`` is (or was, until its lease expired lately) leased to; None for an unknown task."""
        with self._lock:
            task = self._tasks.get(task_id) or self._settlement.remembered(task_id)
            return None if task is None else task.record.farm_id

    def _check_owner(self, task_id: str, farm_id: str) -> None:
        """Raise TaskOfAnotherFarm when ``task_id`` is (or was lately) leased to a farm other than ``farm_id``."""
        farm = self.farm_of_task(task_id)
        if farm is not None and farm != farm_id:
            raise TaskOfAnotherFarm(f"task {task_id!r} is leased to farm {farm!r}, not to {farm_id!r}")

    def progress(self, task_id: str, done: int, total: int) -> bool:
        """Record a task's progress; False for an unknown (finished or expired) task."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return False
            task.done, task.total = done, total
            return True

    def complete(self, task_id: str, report: Report) -> Settled:
        """Settle a task with the farm's report. Idempotent: a repeated or late report changes no count,
        except that a late "ok" still finishes messages nobody has finished since (first outcome wins)."""
        settled: list[Settled] = []
        with self._lock:
            change = self._made(lambda: settled.append(self._complete_batched(task_id, report)))
        self._store(change)
        return settled[0]

    def _complete_batched(self, task_id: str, report: Report) -> Settled:
        """``_complete_all`` of one report, its results' appends begun, to be confirmed out of the lock (``_store``)."""
        with self._settlement.batched(overlap=True):
            return self._complete_all([(task_id, report)])[0]

    def _complete_all(self, completions: Sequence[tuple[str, Report]]) -> list[Settled]:
        """``complete`` of each of ``completions``, in order, their outcomes left for the caller to tell once they
        are durable. Each run of reports for distinct tasks still running is settled together
        (``Settlement.settle_all``); a report for a task no longer running (late, unknown, or sent twice) is settled
        after the reports before it, as it would be alone."""
        settled: list[Settled] = []
        with self._lock, self._consistent():
            now = self._clock()
            running: dict[str, tuple[TaskRuntime, Report]] = {}
            for task_id, report in completions:
                task = self._tasks.get(task_id)
                if task is not None and task_id not in running:
                    running[task_id] = (task, report)
                    continue
                self._settle_running(running, now, settled)
                settled.append(self._settlement.settle_late(task_id, report))
            self._settle_running(running, now, settled)
        return settled

    def _settle_running(
        self, running: dict[str, tuple[TaskRuntime, Report]], now: datetime, settled: list[Settled]
    ) -> None:
        """Settle the tasks of ``running`` (emptied), their answers added to ``settled``, and forget them."""
        if not running:
            return
        settled += self._settlement.settle_all(list(running.values()), now)
        # Forgotten only once settled: a settlement cut short leaves the tasks to be reported again (memory is
        # reloaded first, from the store, which still has them until the settlement commits).
        for task_id in running:
            del self._tasks[task_id]
        running.clear()
        self._changed.notify_all()

    def expire(self, now: datetime | None = None) -> int:
        """Expire tasks past their deadline and the tasks of lost farms; returns how many expired."""
        expired: list[int] = []
        with self._lock:
            change = self._made(lambda: expired.append(self._expire(now)))
        self._store(change)
        return expired[0]

    def _expire_and_finish_duplicates(self) -> int:
        """The background pass's change: the duplicates read as memory was loaded (a start, a reload), then
        ``_expire``."""
        self._finish_duplicates()
        return self._expire(self._clock())

    def _expire(self, now: datetime | None = None) -> int:
        """``expire`` in a change (``_made``): one append per result topic and one store write for all."""
        with self._lock, self._consistent(), self._settlement.batched(overlap=True):
            now = now or self._clock()
            lost = self._farms.find_lost(now)
            of_lost = [t for farm_id in lost for t in self._tasks.of_farm(farm_id).values()]
            for task in of_lost:
                del self._tasks[task.record.id]
            overdue = self._tasks.pop_overdue(now)
            for task in [*of_lost, *overdue]:
                self._settlement.expire(task, task.record.farm_id in lost, now)
            return len(of_lost) + len(overdue)

    # -- producers ------------------------------------------------------------------------------

    def publish(self, topic: str, records: Sequence[Record], partitions: int) -> Sequence[Position]:
        """Append ``records`` to the work topic ``topic`` (created when missing) and read them at once;
        returns where each record landed, in order."""
        name = str(TopicName.parse(topic))
        with self.broker_health.watching():
            self.broker.create_topic(name, partitions)
            positions = self.broker.append(name, records)
        with self._lock:
            known = name in self._queues
        if not known:
            self.discover()
        self.refresh([name], whole=True)
        with self._lock:
            self._changed.notify_all()
        return positions

    # -- figure history -------------------------------------------------------------------------

    def record_figures(self, *, partial: bool = False) -> int:
        """Write the minutes of figures ended since last time (``figure_history.py``), taken under the lock and
        written without it; with ``partial`` (as the coordinator stops) the minute under way too. Returns how
        many points were written."""
        now = self._clock()
        if not partial and not self._figure_history.due(now):
            return 0
        with self._lock:
            points = self._figure_history.take(self._queues.values(), self._current_snapshot(), now, partial=partial)
        failed = self._figure_history.write(points, now)
        if failed:
            with self._lock:
                self._figure_history.keep(failed)
        return len(points) - len(failed)

    def figure_points(self, scope: str, name: str, since: datetime) -> list[FigurePoint]:
        """The minutes of figures of the queue or base ``name`` (``scope``: queue | base) from ``since`` on, oldest
        first: those stored and those not written yet (the minute under way included). Raises QueueNotFound or
        BaseNotFound."""
        with self._lock:
            snapshot = self._current_snapshot()
            if scope == QUEUE:
                queues = [self.catalog.require(self._queues, name)]
            elif name in snapshot.bases:
                queues = [q for q in self._queues.values() if q.record.base == name]
            else:
                raise BaseNotFound(f"base {name!r} is not known")
            fresh = self._figure_history.unwritten(queues, snapshot, self._clock())
        stored = self.store.figure_points(scope, name, since)
        return summed([*stored, *(p for p in fresh if p.scope == scope and p.name == name and p.at >= since)])

    def recent_done(self, since: datetime) -> list[tuple[str, str, int, int]]:
        """``(scope, name, minute, done)`` of every queue's and base's figures from ``since`` on (``minute``:
        ``records.minute_of``): stored, then not written yet (a minute may come twice: add them)."""
        with self._lock:
            fresh = self._figure_history.unwritten(self._queues.values(), self._current_snapshot(), self._clock())
        stored = self.store.figures_done_since(since)
        return [*stored, *((p.scope, p.name, minute_of(p.at), p.done) for p in fresh if p.at >= since)]

    # -- reading state --------------------------------------------------------------------------

    def explain(self, topic: str) -> str:
        """Why ``topic`` is not being served now, in the operator's words ("runnable" when it is)."""
        with self._lock:
            busy = ((t.record.farm_id, t.record.slot) for t in self._tasks.values())
            slots = self._farms.live_slots(busy)
            return explain(self._current_snapshot(), topic, self._clock(), self._farms.live_labels(), slots)

    def queue(self, topic: str) -> QueueRuntime:
        with self._lock:
            return self.catalog.require(self._queues, topic)

    def figures(self) -> tuple[list[QueueFigures], list[BaseFigures]]:
        """The operator screen's rows: every queue and every base (its ETA left out), now."""
        with self._lock:
            return screen_figures(
                self._current_snapshot(), list(self._queues.values()), self._tasks.values(), self._clock()
            )

    def queue_row(self, topic: str, wait_s: float = SCREEN_WAIT_S) -> QueueFigures:
        """One queue's row of the screen now, or as the screen last took it when the lock is not free within
        ``wait_s`` (as ``screen``; -1: wait as long as it takes). Raises QueueNotFound."""
        if wait_s >= 0 and time.monotonic() - self._screen_taken < SCREEN_FRESH_S:
            wait_s = min(wait_s, SCREEN_BUSY_WAIT_S)
        if self._lock.acquire(timeout=wait_s):
            try:
                queue = self.catalog.require(self._queues, topic)
                now, snapshot = self._clock(), self._current_snapshot()
                base = one_base_figures(snapshot, queue.record.base, now)
                in_flight = sum(len(t.record.messages) for t in self._tasks.values() if t.record.topic == topic)
                return queue_figures(queue, base, in_flight, now)
            finally:
                self._lock.release()
        for row in self._screen.queues:
            if row.topic == topic:
                return row
        self.queue(topic)  # raises QueueNotFound, or the queue is new since: its figures now
        return self.queue_row(topic, wait_s=-1)

    def screen(self, wait_s: float = SCREEN_WAIT_S) -> Screen:
        """The operator screen's figures now, or the ones last taken when the lock is not free within
        ``wait_s`` (held across a broker or store round trip): the screen never waits on the broker. While
        the background pass keeps them fresh (``SCREEN_FRESH_S``), it waits ``SCREEN_BUSY_WAIT_S`` at most."""
        asked = self._screen_asked = time.monotonic()
        if asked - self._screen_taken < SCREEN_FRESH_S:
            wait_s = min(wait_s, SCREEN_BUSY_WAIT_S)
        if self._lock.acquire(timeout=wait_s):
            try:
                taken = self._screen_rows()
            finally:
                self._lock.release()
            self._screen, self._screen_taken = self._with_etas(*taken), asked
        return self._screen

    def _screen_now(self) -> Screen:
        with self._lock:
            return self._with_etas(*self._screen_rows())

    def _screen_rows(self) -> tuple[Screen, dict[str, list[QueueWork]] | None, Snapshot]:
        """The screen's figures without the bases' ETAs, and, when those are to be worked out again (``_with_etas``),
        what they are worked out from (the lock held)."""
        now, snapshot, queues = self._clock(), self._current_snapshot(), list(self._queues.values())
        rows, bases = screen_figures(snapshot, queues, self._tasks.values(), now, self._rows.row)
        worked_at, with_work, _ = self._etas
        due = time.monotonic() - worked_at >= ETA_INTERVAL_S
        work = eta_work(queues, rows, now) if due or _with_work(bases) != with_work else None
        return Screen(now, rows, bases, self.farms()), work, snapshot

    def _with_etas(self, screen: Screen, work: dict[str, list[QueueWork]] | None, snapshot: Snapshot) -> Screen:
        """``screen`` with each base's ETA, never holding the lock: worked out again from ``work`` when given
        (every ``ETA_INTERVAL_S``, walking time forward for every base being the costliest figure, or as soon as
        other bases have work), else as last worked out."""
        etas = self._etas[2]
        if work is not None:
            slots = sum(f.slots - (f.urgent_slots or 0) for f, lost, _ in screen.farms if not lost)
            timed = with_etas(screen.bases, work, snapshot, screen.at, slots)
            etas = {b.name: b.eta_at for b in timed if b.eta_at is not None}
            self._etas = (time.monotonic(), _with_work(screen.bases), etas)
        bases = [
            replace(b, eta_at=etas[b.name], eta_s=_seconds_until(etas[b.name], screen.at))
            if b.name in etas and b.pending and not b.paused
            else b
            for b in screen.bases
        ]
        return replace(screen, bases=bases)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._current_snapshot()

    def farms(self) -> list[tuple[FarmRecord, bool, int]]:
        """Each farm, whether it is lost, and how many of its slots run a task."""
        with self._lock:
            return self._farms.listing(self._clock(), Counter(t.record.farm_id for t in self._tasks.values()))

    def farm_detail(self, farm_id: str) -> tuple[FarmRecord, bool, int, list[SlotDetail]]:
        """A farm as ``farms()`` lists it, and each of its slots: the task leased to it (queue, progress, for how
        long) and what its last heartbeat said (state, memory). Raises FarmNotFound."""
        with self._lock:
            now = self._clock()
            farm = self._farms.require(farm_id)
            tasks = {t.record.slot: t for t in self._tasks.of_farm(farm_id).values()}
            record, lost, busy = next(f for f in self.farms() if f[0].id == farm_id)
            slots = [_slot_detail(farm, index, tasks.get(index), now) for index in range(record.slots)]
            return record, lost, busy, slots

    def now(self) -> datetime:
        return self._clock()


def _slot_detail(farm: FarmRuntime, index: int, task: TaskRuntime | None, now: datetime) -> SlotDetail:
    """Slot ``index`` of ``farm``: its leased ``task`` says what it runs (its progress as last reported), its last
    heartbeat says its state and memory (a slot stopping a task no longer leased to it has none of ours)."""
    seen = farm.slots_seen.get(index)
    urgent = farm.min_priority(index) > 0
    rss_bytes = seen.rss_bytes if seen is not None else None
    if task is None:
        state = seen.state if seen is not None and seen.state == "stopping" else "idle"
        return SlotDetail(index, state, urgent, rss_bytes=rss_bytes if state == "stopping" else None)
    record = task.record
    state = "stopping" if seen is not None and seen.state == "stopping" else "running"
    return SlotDetail(
        index, state, urgent, record.id, record.topic, task.done, task.total,
        rss_bytes if seen is not None and seen.task_id == record.id else None,
        round(max(0.0, (now - record.leased_at).total_seconds()), 1),
    )  # fmt: skip


def _with_work(bases: Iterable[BaseFigures]) -> frozenset[str]:
    """The bases with pending work."""
    return frozenset(b.name for b in bases if b.pending)


def _seconds_until(at: datetime, now: datetime) -> float:
    return round(max(0.0, (at - now).total_seconds()), 1)


def _check_slots(farm: FarmRuntime, slots: Iterable[int]) -> None:
    """Raise InvalidSlot for a slot outside the farm's ``0..slots-1`` or named twice in one request."""
    count, seen = farm.record.slots, set()
    for slot in slots:
        if not 0 <= slot < count:
            raise InvalidSlot(f"farm {farm.record.id!r} registered slots 0..{count - 1}: it has no slot {slot}")
        if slot in seen:
            raise InvalidSlot(f"slot {slot} is named twice: each slot is one worker")
        seen.add(slot)
