"""What the coordinator holds in memory between requests, and loading it from the state store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from xtreaming.broker import Broker
from xtreaming.coordinator.farms import Farms
from xtreaming.coordinator.intake import Intake
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.outcomes import Outcome
from xtreaming.coordinator.result_recovery import Loaded, recover_results
from xtreaming.coordinator.runtime import QueueRuntime
from xtreaming.coordinator.settlement import Settlement
from xtreaming.coordinator.store import Store
from xtreaming.coordinator.task_table import TaskTable


@dataclass(frozen=True, slots=True)
class Memory:
    """The site as the coordinator knows it, and the helpers that change it (they share these objects).

    Replaced as a whole when it is reloaded: no part of an old memory mixes with a new one."""

    queues: dict[str, QueueRuntime]
    farms: Farms
    #: The tasks in flight, by id.
    tasks: TaskTable
    #: The queues changed since the scheduler's snapshot was last brought up to date.
    dirty: set[str]
    intake: Intake
    settlement: Settlement
    #: The outcomes of the messages settled from the log as it was loaded (``result_recovery.py``).
    recovered: Sequence[Outcome] = ()

    @classmethod
    def load(cls, store: Store, broker: Broker, options: CoordinatorOptions, clock: Callable[[], datetime]) -> Memory:
        """Memory rebuilt from the store, as at a start: queues, farms, ledgers, retries, and the tasks in flight;
        first, results in the log the store missed are settled (``result_recovery.py``)."""
        queues: dict[str, QueueRuntime] = {}
        tasks = TaskTable()
        dirty: set[str] = set()
        intake = Intake(broker, queues, tasks, dirty, store.dead_letters.indexed)
        farms = Farms(store, options)
        records = store.list_queues()
        stored = Loaded(
            {(r.topic, r.partition): r.state for r in store.load_ledgers()}, store.active_tasks(), store.load_retries()
        )
        loaded = recover_results(store, broker, [record.topic for record in records], stored)
        for record in records:
            intake.adopt(record, loaded.ledgers)
        farms.load()
        intake.restore(loaded.tasks, loaded.retries)
        settlement = Settlement(broker, store, options, clock, dirty, intake.scout)
        return cls(queues, farms, tasks, dirty, intake, settlement, loaded.outcomes)
