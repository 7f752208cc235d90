"""Queues: the screen's figures, priority, pause/resume, settings, "why is it not running?", publishing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request

from xtreaming.broker import Position, Record
from xtreaming.broker.port import record_size
from xtreaming.coordinator.api.auth import Admin, Operator, Viewer
from xtreaming.coordinator.api.deps import coordinator_of
from xtreaming.coordinator.api.schemas import (
    BulkOutcome,
    BulkPriorityChange,
    BulkQueue,
    Explanation,
    PriorityChange,
    Published,
    PublishedOutcome,
    PublishRequest,
    QueuePage,
    QueueSelection,
    SettingsChange,
    SettingsOut,
    settings_out,
)
from xtreaming.coordinator.figures import QueueFigures
from xtreaming.coordinator.queue_filter import QueueFilter
from xtreaming.coordinator.records import QueueRecord
from xtreaming.coordinator.waiters import Waiter, Waiters
from xtreaming.defaults import MAX_PUBLISH_WAIT_S, MAX_WAITED_MESSAGES
from xtreaming.errors import InvalidInput, RecordTooLarge, StoreUnavailable

log = logging.getLogger("xtreaming.coordinator")

router = APIRouter(prefix="/api", tags=["queues"])


@router.get("/queues", response_model=QueuePage)
def list_queues(
    request: Request,
    _: Viewer,
    base: Annotated[str | None, Query(max_length=128)] = None,
    kind: Annotated[str | None, Query(max_length=128)] = None,
    q: Annotated[str | None, Query(max_length=256, description="Text the topic contains.")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> QueuePage:
    rows = queue_rows(request)
    rows = [
        r
        for r in rows
        if (base is None or r.base == base) and (kind is None or r.kind == kind) and (not q or q.upper() in r.topic)
    ]
    return QueuePage(items=rows[offset : offset + limit], total=len(rows), offset=offset, limit=limit)


@router.get("/queues/{topic}", response_model=QueueFigures)
def get_queue(topic: str, request: Request, _: Viewer) -> QueueFigures:
    """The queue's row of the screen (404 for an unknown queue): from memory, whatever the broker does."""
    return coordinator_of(request).queue_row(topic)


# The bulk routes come before the per-queue ones, whose "{topic}" would otherwise take "bulk".
@router.post("/queues/bulk/pause", response_model=BulkOutcome)
def bulk_pause(body: QueueSelection, request: Request, who: Operator) -> BulkOutcome:
    """Pause every queue matching the filter, in one audited change (404 when none matches)."""
    return _bulk(request, who.name, body, "pause", paused=True)


@router.post("/queues/bulk/resume", response_model=BulkOutcome)
def bulk_resume(body: QueueSelection, request: Request, who: Operator) -> BulkOutcome:
    """Resume every queue matching the filter, in one audited change (404 when none matches)."""
    return _bulk(request, who.name, body, "resume", paused=False)


@router.post("/queues/bulk/priority", response_model=BulkOutcome)
def bulk_priority(body: BulkPriorityChange, request: Request, who: Operator) -> BulkOutcome:
    """Set or move the priority of every queue matching the filter, in one audited change."""
    return _bulk(request, who.name, body, "priority", priority=body.priority, delta=body.delta)


def _bulk(
    request: Request,
    actor: str,
    body: QueueSelection,
    action: str,
    *,
    paused: bool | None = None,
    priority: int | None = None,
    delta: int | None = None,
) -> BulkOutcome:
    queues = QueueFilter.parse(body.base, body.kind, body.pattern)  # a bad pattern: 422 before anything
    pairs = coordinator_of(request).controls.update_matching(
        queues, actor, paused=paused, priority=priority, delta=delta, dry_run=body.dry_run
    )
    rows = [
        BulkQueue(topic=a.topic, paused=a.paused, priority=a.settings.priority, changed=a != b)
        for b, a in sorted(pairs, key=lambda pair: (-pair[1].settings.priority, pair[1].topic))
    ]
    return BulkOutcome(
        filter=str(queues), action=action, dry_run=body.dry_run, queues=rows, changed=sum(r.changed for r in rows)
    )


@router.post("/queues/{topic}/pause", response_model=QueueFigures)
def pause(topic: str, request: Request, who: Operator) -> QueueFigures:
    coordinator_of(request).controls.update_queue(topic, who.name, paused=True)
    return get_queue(topic, request, who)


@router.post("/queues/{topic}/resume", response_model=QueueFigures)
def resume(topic: str, request: Request, who: Operator) -> QueueFigures:
    coordinator_of(request).controls.update_queue(topic, who.name, paused=False)
    return get_queue(topic, request, who)


@router.post("/queues/{topic}/priority", response_model=QueueFigures)
def priority(topic: str, body: PriorityChange, request: Request, who: Operator) -> QueueFigures:
    controls = coordinator_of(request).controls
    if body.delta is not None:
        controls.move_priority(topic, body.delta, who.name)
    else:
        controls.update_queue(topic, who.name, priority=body.priority)
    return get_queue(topic, request, who)


@router.get("/queues/{topic}/settings", response_model=SettingsOut)
def queue_settings(topic: str, request: Request, _: Viewer) -> SettingsOut:
    """A queue's settings, the profile it follows (None: its kind's defaults) and those set on the queue."""
    return queue_settings_out(coordinator_of(request).queue(topic).record)


@router.patch("/queues/{topic}/settings", response_model=SettingsOut)
def override_settings(topic: str, body: SettingsChange, request: Request, who: Admin) -> SettingsOut:
    """Override a queue's settings: kept over any profile, added or removed later; takes effect on the next task."""
    record = coordinator_of(request).controls.configure_queue(topic, who.name, body.changes())
    return queue_settings_out(record)


def queue_settings_out(record: QueueRecord) -> SettingsOut:
    return settings_out(record.settings).model_copy(
        update={"profile_id": record.profile_id, "overridden": sorted(record.overridden)}
    )


@router.get("/queues/{topic}/explain", response_model=Explanation)
def explain(topic: str, request: Request, _: Viewer) -> Explanation:
    return Explanation(topic=topic, reason=coordinator_of(request).explain(topic))


@router.post("/topics/{topic}/messages", response_model=Published, response_model_exclude_unset=True)
async def publish(
    topic: str,
    body: PublishRequest,
    request: Request,
    who: Operator,
    wait_s: Annotated[
        float | None,
        Query(
            gt=0,
            le=MAX_PUBLISH_WAIT_S,
            description="Answer once every message's outcome is final (its ACK written), or after this many "
            f"seconds with the ids still running (timed_out); at most {MAX_WAITED_MESSAGES:,} messages.",
        ),
    ] = None,
) -> Published:
    """Publish a batch of messages to a work topic (for producers that are not Python); audited once written.

    With ``wait_s``, a request/response: the answer comes when every message is finished, or at the timeout
    (an answer like any other: the messages still running go on and are ACKed as usual)."""
    records = []
    for index, message in enumerate(body.messages):
        try:
            value = message.value_bytes()
        except ValueError as exc:
            raise InvalidInput(f"messages[{index}]: {exc}") from exc
        headers = tuple((k, v.encode()) for k, v in message.headers.items())
        records.append(Record(None if message.key is None else message.key.encode(), value, headers))
    coordinator = coordinator_of(request)
    refuse_too_large(records, coordinator.broker.max_record_bytes)
    partitions = coordinator.options.default_partitions if body.partitions is None else body.partitions
    if wait_s is None:
        positions = await anyio.to_thread.run_sync(_publish, request, who.name, topic, records, partitions)
        return Published(topic=topic, published=len(positions))
    if len(records) > MAX_WAITED_MESSAGES:
        raise InvalidInput(
            f"a publish may wait for at most {MAX_WAITED_MESSAGES:,} messages, got {len(records):,}; publish "
            "them in several requests, or without wait_s; nothing was published"
        )
    return await _publish_and_wait(request, who.name, topic, records, partitions, wait_s)


async def _publish_and_wait(
    request: Request, actor: str, topic: str, records: list[Record], partitions: int, wait_s: float
) -> Published:
    """Publish armed (``waiters.py``), then wait on the event loop, holding no thread, until every outcome is
    final, ``wait_s`` passes or the caller goes away; the waiter is forgotten in every case."""
    waiters: Waiters = request.app.state.waiters
    loop, finished = asyncio.get_running_loop(), asyncio.Event()

    def wake() -> None:  # called on the thread that settled the last message
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(finished.set)

    def publish_armed() -> Waiter:
        with waiters.armed(topic) as arming:  # before the append: a fast farm may settle a message at once
            return arming.watch(_publish(request, actor, topic, records, partitions), wake)

    waiter = await anyio.to_thread.run_sync(publish_armed)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_disconnect, request, group.cancel_scope)
            with anyio.move_on_after(wait_s):
                await finished.wait()
            group.cancel_scope.cancel()
    finally:
        waiters.forget(waiter)
    running = waiter.running()
    return Published(
        topic=topic,
        published=len(records),
        outcomes=[PublishedOutcome.model_validate(asdict(o)) for o in waiter.outcomes()],
        running=running,
        timed_out=bool(running),
    )


async def _cancel_on_disconnect(request: Request, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` when the caller goes away (its body is read: the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def _publish(request: Request, actor: str, topic: str, records: list[Record], partitions: int) -> Sequence[Position]:
    """Append and audit (on a worker thread: this waits on the broker and the store); where each record landed."""
    coordinator = coordinator_of(request)
    positions = coordinator.publish(topic, records, partitions)
    count = len(positions)
    try:  # the messages are in the log: a store that cannot take the audit entry must not make the caller retry
        coordinator.store.audit(actor, "topic.publish", topic, {"messages": count, "partitions": partitions})
    except StoreUnavailable as exc:
        log.error("publish of %d message(s) to %s by %s not audited: %s", count, topic, actor, exc)
    return positions


def refuse_too_large(records: list[Record], limit: int | None) -> None:
    """413 naming the first record over the broker's record limit, before anything is written (the broker
    would take the others and refuse it: a half-written batch)."""
    if limit is None:
        return
    for index, record in enumerate(records):
        if (size := record_size(record)) > limit:
            raise RecordTooLarge(
                f"messages[{index}] is a record of {size:,} bytes (key, value and headers); the broker takes "
                f"records of at most {limit:,} bytes; nothing was published"
            )


def queue_rows(request: Request) -> list[QueueFigures]:
    return in_screen_order(coordinator_of(request).screen().queues)  # from memory, whatever the broker does


def in_screen_order(rows: list[QueueFigures]) -> list[QueueFigures]:
    """Highest priority first, then by topic: the order the screen and the CLI list queues in."""
    return sorted(rows, key=lambda r: (-r.priority, r.topic))
