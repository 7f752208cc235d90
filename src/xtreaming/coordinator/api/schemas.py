"""Request and response bodies: every field bounded, so bad input is refused naming the field."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Final, Literal, overload

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from xtreaming.config import Role
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.coordinator.farms import check_urgent_slots
from xtreaming.coordinator.figures import QueueFigures
from xtreaming.coordinator.records import WorkSettings
from xtreaming.defaults import MAX_PARTITIONS
from xtreaming.keys import MAX_KEY_BYTES, key_problem
from xtreaming.wire import lease_frame
from xtreaming.wire.acks import FinalStatus
from xtreaming.wire.verdict import Verdict

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$")]
LabelKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
LabelValue = Annotated[str, Field(min_length=1, max_length=128)]
Priority = Annotated[int, Field(ge=0, le=9)]
Workers = Annotated[int, Field(ge=0, le=100_000)]
Detail = Annotated[str, Field(max_length=16_384)]
#: The largest integer a signed 64-bit column holds: no count or id the API takes is larger.
INT64_MAX: Final = 2**63 - 1
#: A count or id a farm reports (a pid, progress, bytes): at most what a signed 64-bit column holds.
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
#: A farm's slot index: a farm registers at most 1,024 slots, numbered from 0.
SlotIndex = Annotated[int, Field(ge=0, le=1023)]


class Body(BaseModel):
    """Every request body: unknown fields refused, and strict types: ``true`` is not 1, ``"0"`` is not 0,
    ``1`` is not ``true`` (a number stands for a number only, a boolean for a boolean). A string UTF-8
    cannot carry (a lone surrogate) is refused by pydantic for every ``str``, naming the field."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _left_out() -> Any:
    """A field that may be left out (its setting stays as it is) but not sent as ``null``: its type has
    no None, so a ``null`` is refused naming the field, and the schema shows the type alone. Read such
    fields through ``model_dump(exclude_unset=True)``: unset ones are None on the model."""
    return Field(default=None, json_schema_extra=_without_default)


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _not_a_boolean(value: object) -> object:
    """For ``Literal`` numbers, which pydantic matches by equality (``true == 1``), strict or not."""
    if isinstance(value, bool):
        raise ValueError("a number is expected, not a boolean")
    return value


#: A verdict is sent as its text (``"ok"``): strict mode would want the enum object itself.
VerdictIn = Annotated[Verdict, Field(strict=False)]
#: A move of one step, down or up.
Step = Annotated[Literal[-1, 1], BeforeValidator(_not_a_boolean)]


# -- farms ----------------------------------------------------------------------------------------


#: A farm process's id (new at each start) and a task's id, as farms send them.
InstanceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
TaskId = Annotated[str, Field(min_length=1, max_length=64)]


class FarmRegistration(Body):
    name: Name
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=32)
    slots: int = Field(ge=1, le=1024)
    #: The farm process, new at each start: another instance of a known farm releases the tasks of the
    #: one before. Optional for farms that do not send one (they keep their tasks across registrations).
    instance: InstanceId | None = None
    #: The farm's last ``urgent_slots`` slots take only queues of priority ``urgent_priority`` or above; fewer
    #: than ``slots``. Left out: the site's setting (``XTREAMING_URGENT_SLOTS`` / ``XTREAMING_URGENT_PRIORITY``).
    urgent_slots: int | None = Field(default=None, ge=0, le=1023)
    urgent_priority: int | None = Field(default=None, ge=1, le=9)

    @model_validator(mode="after")
    def _one_ordinary_slot(self) -> FarmRegistration:
        check_urgent_slots(self.slots, self.urgent_slots, self.urgent_priority)
        return self


class FarmRegistered(BaseModel):
    farm_id: str
    heartbeat_interval_s: float
    #: A farm silent for this many heartbeat intervals is lost and its tasks are leased again: a farm
    #: that cannot renew stops its tasks before (see ``xtreaming.farm.links``).
    lost_after_heartbeats: int


class SlotStatus(Body):
    index: SlotIndex
    state: Literal["idle", "running", "stopping"]
    task_id: str | None = Field(default=None, max_length=64)
    pid: Count | None = None
    done: Count | None = None
    total: Count | None = None
    rss_bytes: Count | None = None


class Heartbeat(Body):
    slots: list[SlotStatus] = Field(default_factory=list, max_length=1024)
    #: Tasks finished on the farm whose results are on their way: not running, yet not to be released.
    reporting: list[TaskId] = Field(default_factory=list, max_length=4096)
    #: The farm process sending it (``FarmRegistration.instance``), when it sends one.
    instance: InstanceId | None = None


class HeartbeatAnswer(BaseModel):
    """``stop``: tasks the farm runs that are not leased to it (unknown, or leased elsewhere): it kills
    them. ``superseded``: another process registered under the farm's name since this one did."""

    stop: list[str]
    superseded: bool = False


class TaskMessagesOut(BaseModel):
    """A task's messages as columns: message ``i`` is ``partitions[i]``, ``offsets[i]``, ``keys[i]``…;
    its id is ``topic/partition/offset``. Keys and values are text (UTF-8), except those at the
    indexes listed in ``base64_keys`` / ``base64_values``, which are base64. ``headers`` (per
    message, ``(name, base64 value)`` pairs) is null when no message has any. Columns, not one
    object per message: a lease carries thousands, and lists encode and decode at C speed. (Farms
    ask for the framed answer instead, its columns in binary: see ``xtreaming.wire.lease_frame``.)"""

    partitions: list[int]
    offsets: list[int]
    keys: list[str | None]
    values: list[str]
    attempts: list[int]
    headers: list[list[tuple[str, str]]] | None
    base64_keys: list[int]
    base64_values: list[int]


class TaskOut(BaseModel):
    task_id: str
    topic: str
    base: str
    convenio: str
    kind: str
    process: str
    slot: int
    attempt: int
    deadline_at: datetime
    command: list[str]
    handler: str | None
    timeout_s: float
    messages: TaskMessagesOut


class Progress(Body):
    done: Count
    total: Count


class MessageResult(Body):
    id: str = Field(min_length=1, max_length=512)
    status: VerdictIn
    detail: Detail | None = None


class Completion(Body):
    """A task's result: a verdict per message id; others take ``default`` (from the exit code)."""

    default: VerdictIn
    detail: Detail | None = None
    results: list[MessageResult] = Field(default_factory=list, max_length=100_000)


class SettledOut(BaseModel):
    accepted: bool
    ok: int
    retried: int
    dead: int
    ignored: int


class TaskCompletion(Completion):
    task_id: str = Field(min_length=1, max_length=64)


class TaskSettled(SettledOut):
    task_id: str


class LeaseRequest(Body):
    """Ask for tasks for idle ``slots``, after settling ``completions`` (one round trip for both); either may be
    empty, not both. A request without slots never waits."""

    slots: list[SlotIndex] = Field(default_factory=list, max_length=1024)
    wait_s: float = Field(default=20.0, ge=0, le=60)
    completions: list[TaskCompletion] = Field(default_factory=list, max_length=1024)

    @model_validator(mode="after")
    def _something_asked(self) -> LeaseRequest:
        if not self.slots and not self.completions:
            raise ValueError("a lease request names idle slots, completions, or both")
        return self


class LeaseResponse(BaseModel):
    tasks: list[TaskOut]
    settled: list[TaskSettled] = Field(default_factory=list, description="One per completion sent, in order.")


# -- queues, bases, windows -----------------------------------------------------------------------


class SettingsChange(Body):
    """Queue or profile settings; fields left out keep their value (or the default, for a new profile).
    ``handler``, ``max_workers`` and ``one_per_key`` may be ``null`` (no handler, no limit, the kind's
    choice); the others are left out to keep them, and a ``null`` is refused naming the field."""

    priority: Priority = _left_out()
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = _left_out()
    command: Annotated[list[Annotated[str, Field(max_length=1024)]], Field(max_length=64)] = _left_out()
    handler: str | None = Field(default=None, max_length=256, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    timeout_s: Annotated[float, Field(gt=0, le=7 * 86_400)] = _left_out()
    max_attempts: Annotated[int, Field(ge=1, le=100)] = _left_out()
    backoff_s: Annotated[float, Field(ge=0, le=86_400)] = _left_out()
    backoff_max_s: Annotated[float, Field(ge=0, le=7 * 86_400)] = _left_out()
    required_labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=32)] = _left_out()
    max_workers: Workers | None = None
    one_per_key: bool | None = Field(
        default=None,
        description="Finish a message as a duplicate when one with its key is pending or running in the queue "
        "(a profile that leaves it out leaves it to each queue's kind: on for IMPORTACAO, off for COBSINC).",
    )

    def changes(self) -> dict[str, object]:
        """The fields given, as ``WorkSettings`` values."""
        given = self.model_dump(exclude_unset=True)
        if "command" in given:
            given["command"] = tuple(given["command"])
        return given


class ProfileIn(Body):
    pattern: str = Field(min_length=1, max_length=512, description="Regular expression matching whole topic names.")
    position: int | None = Field(default=None, ge=0, le=100_000)
    settings: SettingsChange = Field(default_factory=SettingsChange)


class SettingsOut(BaseModel):
    priority: int
    batch_size: int
    command: list[str]
    handler: str | None
    timeout_s: float
    max_attempts: int
    backoff_s: float
    backoff_max_s: float
    required_labels: dict[str, str]
    max_workers: int | None
    #: None only in a profile: each queue's kind decides.
    one_per_key: bool | None
    #: A queue's only: the profile its other settings follow (None: its kind's defaults) and the
    #: settings set on the queue itself, which no profile changes.
    profile_id: int | None = None
    overridden: list[str] = Field(default_factory=list)


class ProfileOut(BaseModel):
    id: int
    position: int
    pattern: str
    settings: SettingsOut


class PriorityChange(Body):
    """Set ``priority`` (0..9) or move it by ``delta`` (+1 up, -1 down); exactly one of them."""

    priority: Priority | None = None
    delta: Step | None = None

    @model_validator(mode="after")
    def _one_of(self) -> PriorityChange:
        if (self.priority is None) == (self.delta is None):
            raise ValueError("give exactly one of 'priority' (0..9) or 'delta' (+1 or -1)")
        return self


class QueueSelection(Body):
    """The queues a bulk action is for (at least one criterion; each one left out lets every queue through),
    and whether only to list what would change (``dry_run``)."""

    base: Name | None = None
    kind: Name | None = None
    pattern: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="RE2 expression searched for in the topic name (anchor with ^…$).",
        examples=["^MULTCOB0[23]\\..*\\.ATUALIZA_"],
    )
    dry_run: bool = False


class BulkPriorityChange(QueueSelection):
    """Set ``priority`` (0..9) or move it by ``delta`` (+1 up, -1 down, within 0..9) for every queue selected."""

    priority: Priority | None = None
    delta: Step | None = None

    @model_validator(mode="after")
    def _one_of(self) -> BulkPriorityChange:
        if (self.priority is None) == (self.delta is None):
            raise ValueError("give exactly one of 'priority' (0..9) or 'delta' (+1 or -1)")
        return self


class BulkQueue(BaseModel):
    topic: str
    paused: bool
    priority: int
    changed: bool = Field(
        description="Whether the action changes (or changed) this queue: its state, its priority, or its priority "
        "becoming its own (kept over profiles)."
    )


class BulkOutcome(BaseModel):
    """What a bulk action did (or would do, on a dry run): the filter, the action, each queue matched as after it."""

    filter: str
    action: str
    dry_run: bool
    queues: list[BulkQueue]
    changed: int


class BaseLimits(Body):
    max_workers: Workers | None = None
    min_workers: Workers | None = None


class WindowIn(Body):
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(min_length=1, max_length=7)
    start: str = Field(min_length=5, max_length=5, examples=["08:00"])
    end: str = Field(min_length=5, max_length=5, examples=["18:00"])
    max_workers: Workers


class WindowOut(BaseModel):
    id: int
    base: str
    weekdays: list[int]
    start: str
    end: str
    max_workers: int


class QueuePage(BaseModel):
    items: list[QueueFigures]
    total: int
    offset: int
    limit: int


class BaseRow(BaseModel):
    name: str
    in_use: int
    limit: int
    window: str | None
    default_max_workers: int
    min_workers: int
    paused: bool
    windows: list[WindowOut]
    #: Messages pending in its queues, and when it is expected to have finished them (None: nothing pending,
    #: or no speed known): in seconds from now and as a moment.
    pending: int = 0
    eta_s: float | None = None
    eta_at: datetime | None = None


class FarmRow(BaseModel):
    id: str
    labels: dict[str, str]
    slots: int
    busy: int
    last_heartbeat_at: datetime
    lost: bool
    #: Its last ``urgent_slots`` slots take only queues of ``urgent_priority`` or above (None: no urgent slots).
    urgent_slots: int = 0
    urgent_priority: int | None = None


class SlotDetailOut(BaseModel):
    """One slot of a farm: the task leased to it (queue, progress, for how long) and its last heartbeat's state
    and memory."""

    index: int
    state: Literal["idle", "running", "stopping"]
    urgent: bool = Field(description="Kept for urgent queues (the farm's last ``urgent_slots`` slots).")
    task_id: str | None
    topic: str | None
    done: int | None
    total: int | None
    rss_bytes: int | None
    running_s: float | None = Field(description="Seconds since the task was leased.")


class FarmDetail(FarmRow):
    """A farm's row and each of its slots."""

    slots_detail: list[SlotDetailOut]


class Explanation(BaseModel):
    topic: str
    reason: str


def _usable_key(key: str | None) -> str | None:
    """The key rules of ``xtreaming.keys``: the same as ``xtreaming publish`` and the ``Producer``."""
    if key is not None and (problem := key_problem(key.encode())) is not None:
        raise ValueError(f"the key {problem}")
    return key


class OutgoingMessage(Body):
    #: No key (null or left out): the records are spread over the partitions.
    key: Annotated[str | None, AfterValidator(_usable_key)] = Field(
        default=None, min_length=1, max_length=MAX_KEY_BYTES
    )
    value: str = Field(max_length=8 << 20)
    encoding: Literal["utf-8", "base64"] = "utf-8"
    headers: dict[Annotated[str, Field(max_length=256)], str] = Field(default_factory=dict, max_length=64)

    def value_bytes(self) -> bytes:
        if self.encoding == "utf-8":
            return self.value.encode()
        try:
            return base64.b64decode(self.value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"value is not valid base64: {exc}") from exc


class PublishRequest(Body):
    messages: list[OutgoingMessage] = Field(min_length=1, max_length=100_000)
    partitions: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PARTITIONS,
        description="Partitions if the topic is created (default: the server's XTREAMING_DEFAULT_PARTITIONS).",
    )


class PublishedOutcome(BaseModel):
    """A published message's final outcome (the fields of its ACK record)."""

    id: str = Field(description="The message's id, TOPIC/partition/offset.")
    key: str | None
    status: FinalStatus = Field(
        description="ok; dead: on the .DLQ topic after its attempts; duplicate: its key was pending or running."
    )
    attempts: int = Field(description="Attempts made (0 for a duplicate, which never ran).")
    detail: str | None


class Published(BaseModel):
    """Messages appended; with ``wait_s``, also each one's outcome once final, and those still running then."""

    topic: str
    published: int
    outcomes: list[PublishedOutcome] | None = Field(
        default=None, description="With wait_s: the final outcomes, in the order the messages were given."
    )
    running: list[str] | None = Field(
        default=None, description="With wait_s: the ids of the messages not finished when the wait ended."
    )
    timed_out: bool | None = Field(default=None, description="With wait_s: some message was still running.")


class LeaderRow(BaseModel):
    """The coordinator that leads: where it answers, since when, and its epoch (one more at each takeover; 0 for a
    coordinator alone on its own store)."""

    url: str | None
    since: datetime | None
    epoch: int


class Status(BaseModel):
    """Everything the operator screen shows, in one request."""

    now: datetime
    broker_ok: bool
    broker_error: str | None
    queues: list[QueueFigures]
    bases: list[BaseRow]
    farms: list[FarmRow]
    #: The site's time zone (IANA name): the screen shows times in it.
    time_zone: str
    leader: LeaderRow | None = Field(default=None, description="The coordinator that leads, and since when.")


class WhoAmI(BaseModel):
    """The caller as its token names it: the actor in the audit log, and what it may do."""

    name: str
    role: Role


class AuditRow(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, object]


def settings_out(settings: WorkSettings) -> SettingsOut:
    """A queue's or a profile's settings as the API shows them."""
    values = asdict(settings)
    values["command"] = list(settings.command)
    values["required_labels"] = dict(settings.required_labels)
    return SettingsOut(**values)


Encoding = Literal["utf-8", "base64"]


@overload
def encode_bytes(data: bytes) -> tuple[str, Encoding]: ...
@overload
def encode_bytes(data: None) -> tuple[None, Encoding]: ...
def encode_bytes(data: bytes | None) -> tuple[str | None, Encoding]:
    """Bytes for JSON: the text when they decode as UTF-8, else base64."""
    if data is None:
        return None, "utf-8"
    try:
        return data.decode(), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def message_columns(messages: Sequence[PendingMessage]) -> dict[str, Any]:
    """A task's messages as ``TaskMessagesOut``, ready for ``json.dumps``."""
    keys, base64_keys = _texts([m.key for m in messages])
    values, base64_values = _texts([m.value for m in messages])
    return {
        "partitions": [m.partition for m in messages],
        "offsets": [m.offset for m in messages],
        "keys": keys,
        "values": values,
        "attempts": [m.attempt for m in messages],
        "headers": _headers(messages),
        "base64_keys": base64_keys,
        "base64_values": base64_values,
    }


def packed_messages(messages: Sequence[PendingMessage]) -> tuple[dict[str, Any], bytes]:
    """A task's messages for a framed answer (``xtreaming.wire.lease_frame``): the head's ``messages``
    object, and the columns packed."""
    columns = lease_frame.MessageColumns(
        [m.partition for m in messages],
        [m.offset for m in messages],
        [m.attempt for m in messages],
        [m.key for m in messages],
        [m.value for m in messages],
    )
    return {"count": len(messages), "headers": _headers(messages)}, lease_frame.pack(columns)


def _headers(messages: Sequence[PendingMessage]) -> list[list[tuple[str, str]]] | None:
    """Each message's headers as ``(name, base64 value)`` pairs, or None when no message has any."""
    if not any(m.headers for m in messages):
        return None
    return [[(name, base64.b64encode(value).decode("ascii")) for name, value in m.headers] for m in messages]


def _texts(data: Sequence[bytes | None]) -> tuple[list[str | None], list[int]]:
    """``data`` as text, and the indexes of the items that are not UTF-8 (given as base64 instead)."""
    try:
        return [None if item is None else item.decode() for item in data], []
    except UnicodeDecodeError:
        texts, binary = [], []
        for index, item in enumerate(data):
            text, encoding = encode_bytes(item)
            texts.append(text)
            if encoding == "base64":
                binary.append(index)
        return texts, binary


# -- per-message history --------------------------------------------------------------------------


class AttemptRow(BaseModel):
    """One settled attempt of a message (``coordinator/history.py``)."""

    at: datetime
    message_id: str
    topic: str
    partition: int
    offset: int
    #: The message's key as text (bytes that are not UTF-8 shown as U+FFFD); None for a message without one.
    key: str | None
    attempt: int
    result: str
    farm: str
    slot: int
    task_id: str
    duration_s: float
    detail: str | None


class HistoryPage(BaseModel):
    """Attempts newest first; ``next``, when there may be more, goes in ``before=`` for the next page."""

    attempts: list[AttemptRow]
    next: str | None


# -- dead letters ---------------------------------------------------------------------------------

#: A key a dead-letter filter names (a client id: CPF, CNPJ, a contract number).
LetterKey = Annotated[str, Field(min_length=1, max_length=256)]


class LetterSelection(Body):
    """Which dead letters of the path's topic: those whose error contains ``error`` (any case), that died in
    ``[since, until)``, and whose key is one of ``keys``; a criterion left out lets every letter through."""

    error: str | None = Field(default=None, min_length=1, max_length=512, examples=["timeout"])
    # Times come as ISO 8601 text in JSON, which strict mode would refuse.
    since: datetime | None = Field(default=None, strict=False)
    until: datetime | None = Field(default=None, strict=False)
    keys: list[LetterKey] = Field(default_factory=list, max_length=1000)


class LetterAction(Body):
    """Skip or purge the letters ``filter`` selects, or only count them (``dry_run``)."""

    filter: LetterSelection = Field(default_factory=LetterSelection)
    dry_run: bool = False


class ReplayRequest(LetterAction):
    """Replay the open letters ``filter`` selects at ``rate_per_s`` letters a second (the site's default when
    left out, at most its ``XTREAMING_DLQ_REPLAY_MAX_RATE_PER_S``)."""

    rate_per_s: float | None = Field(default=None, gt=0, le=1_000_000)


class LetterActionOut(BaseModel):
    """What a replay, skip or purge matched (and did, unless ``dry_run``), in a sentence too."""

    topic: str
    action: Literal["replay", "skip", "purge"]
    dry_run: bool
    matched: int
    replay_id: int | None = None
    detail: str


class LetterSample(BaseModel):
    id: str = Field(description="The message id of the letter's record on the .DLQ topic.")
    key: str | None


class ErrorGroupOut(BaseModel):
    error: str
    count: int
    samples: list[LetterSample]


class DlqTopicOut(BaseModel):
    """A work topic's dead letters: open (not replayed nor skipped), replayed, skipped, and the open ones by error."""

    topic: str
    open: int
    replayed: int
    skipped: int
    errors: list[ErrorGroupOut]


class DeadLetterOut(BaseModel):
    id: str = Field(description="The message id of the letter's record on the .DLQ topic.")
    source: str | None = Field(description="The message id it had on its work topic (None: not written by us).")
    key: str | None
    key_encoding: Encoding
    error: str
    attempts: int
    dead_at: datetime
    state: str
    replay_id: int | None
    replayed_as: str | None = Field(description="The message id of its copy on the work topic, once replayed.")


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    total: int
    next_after: int | None = Field(description="Pass as ``after`` for the next page (None: this is the last).")


class ReplayOut(BaseModel):
    id: int
    topic: str
    filter: dict[str, Any]
    actor: str
    created_at: datetime
    total: int
    done: int
    rate_per_s: float
    state: Literal["running", "finished", "failed"]
    error: str | None


# -- figure history -------------------------------------------------------------------------------


class FigurePointOut(BaseModel):
    """One minute of a queue's or a base's figures (``coordinator/figure_history.py``)."""

    at: datetime = Field(description="The minute's start (UTC).")
    done: int = Field(description="Messages finished ok in the minute.")
    failed: int = Field(description="Attempts that failed in the minute (retried or dead).")
    workers: int = Field(description="The most workers seen running in the minute.")
    limit: int | None = Field(description="A queue's max workers (None: none); a base's limit in force that minute.")


class FigureSeries(BaseModel):
    """A queue's or a base's minutes with activity or a running worker, oldest first (minutes left out: idle)."""

    name: str
    points: list[FigurePointOut]


class Sparklines(BaseModel):
    """Messages finished ok per minute, oldest first and one number per minute up to the current one, for each
    queue and base with any in the period."""

    queues: dict[str, list[int]]
    bases: dict[str, list[int]]
