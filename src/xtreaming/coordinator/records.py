"""The coordinator's records as plain values: what its state store keeps and returns, and what farms report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from xtreaming.coordinator.core.ledger import LedgerState

#: IMPORTACAO batches of hundreds of clients; COBSINC is an urgent lane of single requests.
DEFAULT_BATCH_SIZE: Final = 500
DEFAULT_PRIORITY: Final = 5


@dataclass(frozen=True, slots=True)
class WorkSettings:
    """How a queue's tasks run: from the first matching profile, overridable per queue.

    ``command`` is the worker command template (``{base} {convenio} {kind} {process} {topic}
    {input} {output} {task_id} {attempt} {python}``, the farm's placeholders); ``handler``
    (``module:function``) runs Python workers instead. Retry ``n`` waits ``backoff_s * 2**(n-1)``
    seconds, at most ``backoff_max_s``. With ``one_per_key``, a message whose key another message of the
    topic holds, unfinished, is finished at once as a duplicate of it (``key_scout.py``);
    None, in a profile only, means each queue's kind decides (``catalog.KIND_DEFAULTS``).
    """

    priority: int = DEFAULT_PRIORITY
    batch_size: int = DEFAULT_BATCH_SIZE
    command: tuple[str, ...] = ()
    handler: str | None = None
    timeout_s: float = 600.0
    max_attempts: int = 3
    backoff_s: float = 5.0
    backoff_max_s: float = 600.0
    required_labels: Mapping[str, str] = field(default_factory=dict)
    max_workers: int | None = None
    one_per_key: bool | None = False

    def backoff_after(self, attempts: int) -> float:
        """Seconds to wait before attempt ``attempts + 1``, after ``attempts`` failed ones."""
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** max(0, attempts - 1)))


#: A profile's settings where an operator gives none: the built-in defaults, and one message per key left to
#: each queue's kind.
PROFILE_DEFAULTS: Final = WorkSettings(one_per_key=None)


@dataclass(frozen=True, slots=True)
class Profile:
    """Settings for every queue whose topic fully matches ``pattern`` (a regex); the lowest ``position`` wins."""

    id: int
    position: int
    pattern: str
    settings: WorkSettings


@dataclass(frozen=True, slots=True)
class QueueRecord:
    """A registered queue (one work topic)."""

    topic: str
    base: str
    kind: str
    settings: WorkSettings
    paused: bool = False
    profile_id: int | None = None
    discovered_at: datetime | None = None
    #: The settings an operator set on this queue (``WorkSettings`` field names): they win over any
    #: profile; the others follow the first matching profile, else the kind's defaults.
    overridden: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class BaseRecord:
    """A target database: its default worker limit, reserved minimum and pause flag."""

    name: str
    max_workers: int
    min_workers: int = 0
    paused: bool = False


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """A time window of a base (see ``core.windows.Window``); ``id`` is 0 until stored."""

    id: int
    base: str
    weekdays: frozenset[int]
    start: str
    end: str
    max_workers: int


@dataclass(frozen=True, slots=True)
class FarmRecord:
    """A registered farm agent."""

    id: str
    name: str
    labels: Mapping[str, str]
    slots: int
    heartbeat_interval_s: float
    registered_at: datetime
    last_heartbeat_at: datetime
    #: The farm process's id, new at each start (None: a farm that does not send one).
    instance: str | None = None
    #: The farm's own urgent slots: its last ``urgent_slots`` slots take only queues of ``urgent_priority`` or
    #: above. None: as the site says (``CoordinatorOptions.urgent_slots`` / ``urgent_priority``).
    urgent_slots: int | None = None
    urgent_priority: int | None = None


@dataclass(frozen=True, slots=True)
class SlotRecord:
    """A farm's worker slot as a heartbeat reports it; not stored (its task's progress is kept in memory)."""

    farm_id: str
    index: int
    state: str
    task_id: str | None = None
    pid: int | None = None
    done: int | None = None
    total: int | None = None
    rss_bytes: int | None = None


class LeasedMessage(Protocol):
    """What the store keeps of each message of a task: where it is in the log, its key, and which
    attempt this is. The coordinator stores its pending messages as they are (no copy per message);
    the store reads back ``TaskMessage``s."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def attempt(self) -> int: ...


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """One message of a task as read back from the store (see ``LeasedMessage``)."""

    partition: int
    offset: int
    key: bytes | None
    attempt: int


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A lease of messages of one queue to one farm slot, until ``deadline_at``."""

    id: str
    topic: str
    farm_id: str
    slot: int
    messages: tuple[LeasedMessage, ...]
    leased_at: datetime
    deadline_at: datetime


@dataclass(frozen=True, slots=True)
class RetryRecord:
    """A message that failed ``attempts`` times and waits until ``not_before`` for its next attempt."""

    topic: str
    partition: int
    offset: int
    attempts: int
    not_before: datetime
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """A partition's ledger (watermark and finished offsets above it), persisted on every completion."""

    topic: str
    partition: int
    state: LedgerState


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An operator's action: who did what to which target, when."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FigurePoint:
    """One minute of a queue's or a base's figures (``scope``: queue | base), as the figure history keeps it:
    messages finished ok (``done``), failed attempts (retried or dead), workers running, and the limit on them
    (a queue's max workers, None for none; a base's limit in force)."""

    scope: str
    name: str
    at: datetime
    done: int
    failed: int
    workers: int
    limit: int | None


def minute_of(at: datetime) -> int:
    """Minutes since the Unix epoch of ``at`` (aware): how the figure history numbers its minutes."""
    return int(at.timestamp()) // 60


def minute_start(minute: int) -> datetime:
    """The start of ``minute`` (``minute_of``), in UTC."""
    return datetime.fromtimestamp(minute * 60, UTC)
