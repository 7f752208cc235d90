"""The coordinator's state store: its configuration, farms, tasks, ledgers and audit log, in SQL.

``Store`` is what the coordinator holds: one ``Database`` (``database.py``: the engine, transactions,
errors, migrations) and, built on it, one part per group of tables: ``catalog.py`` (profiles, queues,
bases, windows), ``farms.py``, ``tasks.py``, ``ledger.py`` (ledgers, retries, settling) and
``audit.py``. Each method is one transaction: it lands whole or not at all, or joins the thread's
open ``Store.transaction()``. ``Store.open`` brings the schema to the newest Alembic revision
(``migrations/``, shipped inside the package) before anything else runs.

Values. Timestamps are stored in UTC and come back timezone-aware in UTC; a naive one is refused.
A task's messages are packed (``tasks.pack_messages``); labels, commands, weekdays, errors, audit
details and ledger ranges are JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection

from xtreaming.coordinator.records import (
    AuditEntry,
    BaseRecord,
    FarmRecord,
    FigurePoint,
    LedgerRecord,
    Profile,
    QueueRecord,
    RetryRecord,
    TaskRecord,
    WindowRecord,
    WorkSettings,
)
from xtreaming.coordinator.store.audit import AuditLog
from xtreaming.coordinator.store.catalog import CatalogTables
from xtreaming.coordinator.store.database import (
    BUSY_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    MIGRATION_LOCK_KEY,
    MIGRATIONS,
    Database,
)
from xtreaming.coordinator.store.dead_letters import DeadLetterTables
from xtreaming.coordinator.store.farms import FarmTable
from xtreaming.coordinator.store.figures import FigureTable
from xtreaming.coordinator.store.leadership import LeadershipTable
from xtreaming.coordinator.store.ledger import LedgerTables
from xtreaming.coordinator.store.schedules import ScheduleTables
from xtreaming.coordinator.store.tasks import TaskTable

__all__ = ["BUSY_TIMEOUT_S", "CONNECT_TIMEOUT_S", "MIGRATIONS", "MIGRATION_LOCK_KEY", "Store"]


class Store:
    """The coordinator's durable state; see the module docstring. Safe to share between threads."""

    def __init__(self, url: str) -> None:
        """Connect lazily to ``url``; ``Store.open`` also creates the schema. Raises InvalidStoreUrl."""
        self._database = Database(url)
        self._catalog = CatalogTables(self._database)
        self._farms = FarmTable(self._database)
        self._tasks = TaskTable(self._database)
        self._ledger = LedgerTables(self._database)
        self._audit = AuditLog(self._database)
        self._figures = FigureTable(self._database)
        #: The dead-letter index and replays (``dead_letters.py``): used by ``coordinator.dead_letters`` only.
        self.dead_letters = DeadLetterTables(self._database)
        #: Scheduled publishing's schedules and ticks (``schedules.py``): used by ``coordinator.schedules`` only.
        self.schedules = ScheduleTables(self._database)
        #: The leadership row (``leadership.py``): used by ``coordinator.leadership`` only.
        self.leadership = LeadershipTable(self._database)

    @classmethod
    def open(cls, url: str) -> Store:
        """Open the store at ``url``, creating a SQLite file's folder and migrating the schema to the newest.

        Raises StoreUnavailable, within about ``CONNECT_TIMEOUT_S``, when the database cannot be reached.
        """
        store = cls(url)
        try:
            store._database.create_folder()
            store._database.migrate()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._database.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def is_shared(self) -> bool:
        """Whether several coordinators may use this store (PostgreSQL), electing a leader; a SQLite file
        belongs to one coordinator."""
        return self._database.dialect != "sqlite"

    def fence_writes(self, fence: Callable[[Connection], None], idle_transaction_s: float) -> None:
        """Run ``fence`` first in every write transaction from now on (it raises NotLeader to refuse it), and
        have PostgreSQL end this store's transactions left idle for ``idle_transaction_s`` (a paused process's)."""
        self._database.fence = fence
        self._database.end_idle_transactions_after(idle_transaction_s)

    def transaction(self) -> AbstractContextManager[None]:
        """Group this thread's writes until the block ends into one transaction (all or none).

        The hot path uses it to store a farm's completions and its next leases with one commit.
        Nested blocks join the outer one.
        """
        return self._database.transaction()

    def wait_before_writes(self, wait: Callable[[], None]) -> None:
        """Call ``wait`` before every write transaction begins (outside it) from now on."""
        self._database.before_write = wait

    def deferred(self) -> AbstractContextManager[list[Callable[[], None]]]:
        """Collect this thread's ``add_tasks`` and ``settle`` calls while the block runs, rather than run them: the
        caller runs the list later, in order, in one ``transaction()`` (the coordinator commits out of its lock,
        ``commit_order.py``). Any other write in the block raises RuntimeError: it would land before them."""
        return self._database.deferred()

    # -- profiles ---------------------------------------------------------------------------

    def list_profiles(self) -> list[Profile]:
        """Every profile, the one to try first (lowest position) first."""
        return self._catalog.list_profiles()

    def add_profile(self, pattern: str, settings: WorkSettings, position: int | None = None) -> Profile:
        """Add a profile at ``position`` (profiles there and after move down one), or after the last one.

        Raises InvalidProfile when ``pattern`` is not a regular expression or ``position`` is negative.
        """
        return self._catalog.add_profile(pattern, settings, position)

    def remove_profile(self, profile_id: int) -> None:
        """Remove a profile; queues it configured keep their settings. Raises ProfileNotFound."""
        self._catalog.remove_profile(profile_id)

    # -- queues -----------------------------------------------------------------------------

    def list_queues(self) -> list[QueueRecord]:
        return self._catalog.list_queues()

    def get_queue(self, topic: str) -> QueueRecord:
        """The queue of ``topic``; raises QueueNotFound."""
        return self._catalog.get_queue(topic)

    def add_queue(self, record: QueueRecord) -> QueueRecord:
        """Register a queue, stamping ``discovered_at`` now when it is None; an existing queue is returned unchanged."""
        return self._catalog.add_queue(record)

    def update_queue(
        self,
        topic: str,
        *,
        paused: bool | None = None,
        settings: WorkSettings | None = None,
        overridden: frozenset[str] | None = None,
    ) -> QueueRecord:
        """Pause or resume a queue and/or replace its settings and the names of those an operator set; the
        queue as stored. Raises QueueNotFound."""
        return self._catalog.update_queue(topic, paused, settings, overridden)

    def follow_profile(self, topic: str, settings: WorkSettings, profile_id: int | None) -> QueueRecord:
        """Give a queue the settings worked out from ``profile_id`` (None: its kind's defaults) and its own
        overrides; the queue as stored. Raises QueueNotFound."""
        return self._catalog.follow_profile(topic, settings, profile_id)

    # -- bases and their windows ------------------------------------------------------------

    def list_bases(self) -> list[BaseRecord]:
        return self._catalog.list_bases()

    def get_base(self, name: str) -> BaseRecord:
        """The base called ``name``; raises BaseNotFound."""
        return self._catalog.get_base(name)

    def put_base(self, record: BaseRecord) -> BaseRecord:
        """Create the base or replace its limits and pause flag."""
        return self._catalog.put_base(record)

    def list_windows(self, base: str | None = None) -> list[WindowRecord]:
        """The windows of ``base`` (of every base when None), by base then id."""
        return self._catalog.list_windows(base)

    def add_window(self, record: WindowRecord) -> WindowRecord:
        """Store a window of an existing base; the record with its new id (``record.id`` is ignored).

        Raises InvalidWindow (see ``Window.parse``) or BaseNotFound, changing nothing.
        """
        return self._catalog.add_window(record)

    def remove_window(self, window_id: int) -> None:
        """Raises WindowNotFound."""
        self._catalog.remove_window(window_id)

    # -- farms ------------------------------------------------------------------------------

    def put_farm(self, record: FarmRecord) -> FarmRecord:
        """Register a farm, or replace every field of a registered one."""
        return self._farms.put_farm(record)

    def get_farm(self, farm_id: str) -> FarmRecord:
        """Raises FarmNotFound."""
        return self._farms.get_farm(farm_id)

    def list_farms(self) -> list[FarmRecord]:
        return self._farms.list_farms()

    def record_heartbeat(self, farm_id: str, at: datetime) -> None:
        """Set the farm's last heartbeat to ``at``. Raises FarmNotFound."""
        self._farms.record_heartbeat(farm_id, at)

    # -- tasks, ledgers and retries: the hot path ---------------------------------------------

    def add_task(self, record: TaskRecord) -> None:
        """Store a lease before it is handed out. Raises InvalidRecord when its id is taken."""
        self.add_tasks([record])

    def add_tasks(self, records: Sequence[TaskRecord]) -> None:
        """Store several leases in one statement (a farm asking for many slots)."""
        if not records:
            return
        if (later := self._database.later()) is not None:
            later.append(partial(self._tasks.add_tasks, records))
            return
        self._tasks.add_tasks(records)

    def active_tasks(self) -> list[TaskRecord]:
        """Every stored task (leased and not settled), oldest lease first."""
        return self._tasks.active_tasks()

    def settle(
        self,
        *,
        finished_tasks: Sequence[str] = (),
        ledgers: Sequence[LedgerRecord] = (),
        retries: Sequence[RetryRecord] = (),
        cleared_retries: Sequence[tuple[str, int, int]] = (),
    ) -> None:
        """In one transaction: delete ``finished_tasks`` (unknown ids are ignored), store ``ledgers`` and
        ``retries`` (replacing those of the same partition / message), and delete ``cleared_retries``
        given as ``(topic, partition, offset)``. Raises InvalidRecord, changing nothing, for a refused row.
        """
        if not (finished_tasks or ledgers or retries or cleared_retries):
            return
        if (later := self._database.later()) is not None:
            later.append(partial(self._ledger.settle, finished_tasks, ledgers, retries, cleared_retries))
            return
        self._ledger.settle(finished_tasks, ledgers, retries, cleared_retries)

    def load_ledgers(self) -> list[LedgerRecord]:
        """Every partition's ledger, by topic then partition."""
        return self._ledger.load_ledgers()

    def load_retries(self) -> list[RetryRecord]:
        """Every message waiting for a retry, by topic, partition and offset."""
        return self._ledger.load_retries()

    # -- figure history ---------------------------------------------------------------------

    def add_figure_points(self, points: Sequence[FigurePoint]) -> None:
        """Store minutes of figures in one transaction; a point already stored for the same scope, name and
        minute is added to (its counts summed, workers and limit replaced)."""
        self._figures.add_points(points)

    def figure_points(self, scope: str, name: str, since: datetime) -> list[FigurePoint]:
        """The points of one queue or base (``scope``: queue | base) from ``since`` on, oldest first."""
        return self._figures.points(scope, name, since)

    def figures_done_since(self, since: datetime) -> list[tuple[str, str, int, int]]:
        """``(scope, name, minute, done)`` of every point from ``since`` on (``minute``: ``records.minute_of``), in no
        particular order."""
        return self._figures.done_since(since)

    def trim_figures(self, before: datetime, limit: int) -> int:
        """Delete the oldest points older than ``before``, whole minutes, about ``limit`` at most (a minute with
        more goes whole), in one short transaction; returns how many went."""
        return self._figures.trim(before, limit)

    # -- audit log --------------------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, details: Mapping[str, Any]) -> AuditEntry:
        """Record an admin action now; ``details`` must be JSON-serializable."""
        return self._audit.audit(actor, action, target, details)

    def list_audit(self, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        """Up to ``limit`` entries, newest first; pass the last one's id as ``before_id`` for the next page."""
        return self._audit.list_audit(limit, before_id)
