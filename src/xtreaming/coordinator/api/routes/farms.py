"""Farm agents: register, heartbeat, long-poll for tasks, report progress and results."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response

from xtreaming.coordinator.api.auth import Farm, Principal, Viewer
from xtreaming.coordinator.api.deps import coordinator_of
from xtreaming.coordinator.api.lease_groups import Groups
from xtreaming.coordinator.api.schemas import (
    Completion,
    FarmDetail,
    FarmRegistered,
    FarmRegistration,
    FarmRow,
    Heartbeat,
    HeartbeatAnswer,
    LeaseRequest,
    LeaseResponse,
    Progress,
    SettledOut,
    SlotDetailOut,
    message_columns,
    packed_messages,
)
from xtreaming.coordinator.records import FarmRecord, SlotRecord
from xtreaming.coordinator.service import Assignment, Coordinator, LeaseAsk, Report, Settled
from xtreaming.errors import XtreamingError
from xtreaming.topics import TopicName
from xtreaming.wire import lease_frame

router = APIRouter(prefix="/api", tags=["farms"])

#: Long-polls (lease requests waiting for work) wait on worker threads of their own, so that farms waiting on the
#: coordinator never take the threads of the other routes (the screen's); this many at once.
MAX_WAITING_LEASES = 1024
_waiting = anyio.CapacityLimiter(MAX_WAITING_LEASES)


@router.post("/farms/register", response_model=FarmRegistered)
def register(body: FarmRegistration, request: Request, caller: Farm) -> FarmRegistered:
    caller.check_farm(body.name)
    coordinator = coordinator_of(request)
    record = coordinator.register_farm(
        body.name, body.labels, body.slots, body.instance, actor=caller.name,
        urgent_slots=body.urgent_slots, urgent_priority=body.urgent_priority,
    )  # fmt: skip
    return FarmRegistered(
        farm_id=record.id,
        heartbeat_interval_s=record.heartbeat_interval_s,
        lost_after_heartbeats=coordinator.options.lost_after_heartbeats,
    )


@router.post("/farms/{farm_id}/heartbeat", response_model=HeartbeatAnswer)
def heartbeat(farm_id: str, body: Heartbeat, request: Request, caller: Farm) -> HeartbeatAnswer:
    """The farm's slots now; answers the tasks it must stop (farms that ignore the answer keep working)."""
    caller.check_farm(farm_id)
    return serve_heartbeat(coordinator_of(request), farm_id, body)


def serve_heartbeat(coordinator: Coordinator, farm_id: str, body: Heartbeat) -> HeartbeatAnswer:
    """The answer to a heartbeat the caller may send, read and checked: what ``heartbeat`` answers. Farms' heartbeats
    usually take a shorter path to it (``farm_path.py``)."""
    slots = [SlotRecord(farm_id, s.index, s.state, s.task_id, s.pid, s.done, s.total, s.rss_bytes) for s in body.slots]
    reconciled = coordinator.heartbeat(farm_id, slots, reporting=body.reporting, instance=body.instance)
    return HeartbeatAnswer(stop=list(reconciled.stop), superseded=reconciled.superseded)


@router.post("/farms/{farm_id}/lease", response_model=LeaseResponse)
async def lease(farm_id: str, body: LeaseRequest, request: Request, caller: Farm) -> Response:
    """Tasks for the given idle slots; waits up to ``wait_s`` when there is no work (long-poll).

    JSON, or framed with the messages' columns in binary after it when the request accepts
    ``application/x-xtreaming-lease`` (``xtreaming.wire.lease_frame``: what farms ask for).

    Nothing here runs on the event loop but the hand-offs: the service takes its lock and may wait on
    the store and the broker, so it is called on a worker thread, the answer built there too; requests that
    arrive together are settled together (``lease_groups.py``), and a long-poll waits on a thread of
    ``_waiting``'s. Farms' requests usually take a shorter path to the same code (``farm_path.py``)."""
    caller.check_farm(farm_id)
    framed = lease_frame.MEDIA_TYPE in request.headers.get("accept", "")
    return await serve_lease(coordinator_of(request), farm_id, body, framed, request.app.state.lease_groups)


@dataclass(frozen=True, slots=True)
class FarmAsk:
    """A lease request the caller may make, read and checked, and whether it asked for the framed answer."""

    farm_id: str
    body: LeaseRequest
    framed: bool


#: A lease request settled: its answer (None: no task yet, it waits for work) and what its completions settled.
Served = tuple[Response | None, list[dict[str, Any]]]
LeaseGroups = Groups[FarmAsk, Served]


def lease_groups(coordinator: Callable[[], Coordinator]) -> LeaseGroups:
    """An app's lease requests, settled in groups (``lease_groups.py``) by the app's ``coordinator()``."""
    return Groups(lambda asks: _settle_and_lease(coordinator(), asks))


async def serve_lease(
    coordinator: Coordinator, farm_id: str, body: LeaseRequest, framed: bool, groups: LeaseGroups
) -> Response:
    """The answer to a lease request the caller may make, read and checked: what ``lease`` answers."""
    answer, settled = await groups.answer(FarmAsk(farm_id, body, framed))
    if answer is None:  # no task yet: wait for work
        answer = await anyio.to_thread.run_sync(
            _wait_for_work, coordinator, farm_id, body, framed, settled, limiter=_waiting, abandon_on_cancel=True
        )
    return answer


def _settle_and_lease(coordinator: Coordinator, asks: Sequence[FarmAsk]) -> list[Served | XtreamingError]:
    """Settle the completions and lease the slots of ``asks`` together; for each its answer, or its refusal."""
    together = coordinator.settle_and_lease_together(
        [LeaseAsk(a.farm_id, [(c.task_id, report_of(c)) for c in a.body.completions], a.body.slots) for a in asks]
    )
    served: list[Served | XtreamingError] = []
    for ask, answer in zip(asks, together, strict=True):
        if isinstance(answer, XtreamingError):
            served.append(answer)
            continue
        results, tasks = answer
        body = ask.body
        settled = [settled_out(s) | {"task_id": c.task_id} for s, c in zip(results, body.completions, strict=True)]
        waits = not tasks and body.slots and body.wait_s > 0
        served.append((None if waits else _lease_answer(tasks, settled, ask.framed), settled))
    return served


def _wait_for_work(
    coordinator: Coordinator, farm_id: str, body: LeaseRequest, framed: bool, settled: list[dict[str, Any]]
) -> Response:
    """The long-poll: lease the slots as soon as there is work, for up to ``wait_s``."""
    return _lease_answer(coordinator.lease_wait(farm_id, body.slots, body.wait_s), settled, framed)


def _lease_answer(tasks: list[Assignment], settled: list[dict[str, Any]], framed: bool) -> Response:
    if framed:
        packed = [packed_messages(task.messages) for task in tasks]
        content = _answer([_task_json(task, head) for task, (head, _) in zip(tasks, packed, strict=True)], settled)
        return Response(lease_frame.frame(content, [data for _, data in packed]), media_type=lease_frame.MEDIA_TYPE)
    content = _answer([_task_json(task, message_columns(task.messages)) for task in tasks], settled)
    return Response(content, media_type="application/json")


@router.post("/tasks/{task_id}/progress")
def progress(task_id: str, body: Progress, request: Request, caller: Farm) -> dict[str, bool]:
    coordinator = coordinator_of(request)
    _check_caller(coordinator, task_id, caller)
    return {"known": coordinator.progress(task_id, body.done, body.total)}


@router.post("/tasks/{task_id}/complete", response_model=SettledOut)
def complete(task_id: str, body: Completion, request: Request, caller: Farm) -> SettledOut:
    """Settle a task. Idempotent: repeating it, or reporting an expired task, never double counts."""
    coordinator = coordinator_of(request)
    _check_caller(coordinator, task_id, caller)
    return SettledOut(**settled_out(coordinator.complete(task_id, report_of(body))))


def _check_caller(coordinator: Coordinator, task_id: str, caller: Principal) -> None:
    """Refuse (403) a report on a task leased to a farm the caller's token may not act as."""
    farm = coordinator.farm_of_task(task_id)
    if farm is not None:
        caller.check_farm(farm)


def report_of(body: Completion) -> Report:
    return Report(body.default, {r.id: (r.status, r.detail) for r in body.results}, body.detail)


def settled_out(settled: Settled) -> dict[str, Any]:
    return {
        "accepted": settled.accepted,
        "ok": settled.ok,
        "retried": settled.retried,
        "dead": settled.dead,
        "ignored": settled.ignored,
    }


@router.get("/farms", response_model=list[FarmRow])
def farms(request: Request, _: Viewer) -> list[FarmRow]:
    return farm_rows(request)


@router.get("/farms/{farm_id}", response_model=FarmDetail)
def farm_detail(farm_id: str, request: Request, _: Viewer) -> FarmDetail:
    """The farm's row and each of its slots (404 for an unknown farm)."""
    record, lost, busy, slots = coordinator_of(request).farm_detail(farm_id)
    [row] = rows_of_farms([(record, lost, busy)])
    details = [SlotDetailOut.model_validate(asdict(slot)) for slot in slots]
    return FarmDetail(**row.model_dump(), slots_detail=details)


def farm_rows(request: Request) -> list[FarmRow]:
    return rows_of_farms(coordinator_of(request).farms())


def rows_of_farms(farms: Iterable[tuple[FarmRecord, bool, int]]) -> list[FarmRow]:
    """``Coordinator.farms()`` (each farm, whether it is lost, its busy slots) as the API's rows."""
    return [
        FarmRow(
            id=record.id,
            labels=dict(record.labels),
            slots=record.slots,
            busy=busy,
            last_heartbeat_at=record.last_heartbeat_at,
            lost=lost,
            urgent_slots=record.urgent_slots or 0,
            urgent_priority=record.urgent_priority if record.urgent_slots else None,
        )
        for record, lost, busy in farms
    ]


def _answer(tasks: list[str], settled: list[dict[str, Any]]) -> str:
    """A lease answer's JSON (``LeaseResponse``) from its tasks' JSON."""
    return f'{{"tasks":[{",".join(tasks)}],"settled":{json.dumps(settled)}}}'


def _task_json(task: Assignment, messages: dict[str, Any]) -> str:
    """One task of a lease answer as JSON (``TaskOut``), with ``messages`` as given."""
    settings = task.settings
    shared = _shared_task_json(task.topic, settings.command, settings.handler, settings.timeout_s)
    attempt = max(m.attempt for m in task.messages)
    return (
        f'{{"task_id":{json.dumps(task.task_id)},"slot":{task.slot},"attempt":{attempt},'
        f'"deadline_at":"{task.deadline_at.isoformat()}",{shared},'
        f'"messages":{json.dumps(messages, ensure_ascii=False)}}}'
    )


@functools.lru_cache(maxsize=1024)
def _shared_task_json(topic: TopicName, command: tuple[str, ...], handler: str | None, timeout_s: float) -> str:
    """The members of a task's JSON every task of a queue (with these settings) has alike, computed once: a lease
    answer of one-message tasks spent as long writing these again for each task as the rest of its answer."""
    shared = {
        "topic": str(topic),
        "base": topic.base,
        "convenio": topic.convenio,
        "kind": topic.kind,
        "process": topic.process,
        "command": list(command),
        "handler": handler,
        "timeout_s": timeout_s,
    }
    return json.dumps(shared, ensure_ascii=False)[1:-1]
