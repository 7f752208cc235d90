"""The farms' lease request and heartbeat on their short path (``api/farm_path.py``): the usual request never
reaches the router, and every other one is answered by the route itself, its refusals word for word, having changed
nothing. Over real HTTP against a coordinator with tokens, and at the ASGI level with the route replaced by a
recorder (or with the app behind the short path called directly, to compare its answers with the short path's)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Message, Receive, Scope, Send

from tests.coordinator.server import RunningCoordinator
from tests.waiting import wait_until
from xtreaming.config import Role, Token
from xtreaming.coordinator.api.auth import hash_token
from xtreaming.coordinator.api.farm_path import FarmPath
from xtreaming.farm.protocol import read_lease
from xtreaming.wire import lease_frame

TOPIC = "MULTCOB03.1189.IMPORTACAO.X"
SECRETS = {"farm-a": "secret-of-farm-a", "farm-b": "secret-of-farm-b", "viewer": "secret-vw", "admin": "secret-adm"}
FRAMED = {"Accept": lease_frame.MEDIA_TYPE}
MESSAGES = 6


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningCoordinator]:
    tokens = [
        Token(name="farm-a", role=Role.FARM, sha256=hash_token(SECRETS["farm-a"]), farms=["farm-a"]),
        Token(name="farm-b", role=Role.FARM, sha256=hash_token(SECRETS["farm-b"]), farms=["farm-b"]),
        Token(name="viewer", role=Role.VIEWER, sha256=hash_token(SECRETS["viewer"])),
        Token(name="admin", role=Role.ADMIN, sha256=hash_token(SECRETS["admin"])),
    ]
    running = RunningCoordinator(tmp_path, tokens=tokens).start()
    with client(running, "admin") as admin:
        messages = [{"key": str(k), "value": "x"} for k in range(MESSAGES)]
        admin.post(f"/api/topics/{TOPIC}/messages", json={"messages": messages}).raise_for_status()
        admin.patch(f"/api/queues/{TOPIC}/settings", json={"batch_size": 1, "handler": "mod:fn"}).raise_for_status()
    with client(running, "farm-a") as farm:
        farm.post("/api/farms/register", json={"name": "farm-a", "labels": {}, "slots": 2}).raise_for_status()
    yield running
    running.stop()


def client(server: RunningCoordinator, token: str | None) -> httpx.Client:
    headers = {} if token is None else {"Authorization": f"Bearer {SECRETS.get(token, token)}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def in_flight(server: RunningCoordinator) -> int:
    with client(server, "admin") as admin:
        return int(admin.get(f"/api/queues/{TOPIC}").json()["in_flight"])


def behind_short_path(
    server: RunningCoordinator, token: str | None, farm: str, route: str, body: bytes, content_type: str
) -> Any:
    """The answer of the app behind the short path (every layer and the route) to a farm's request, as (status,
    content type, JSON)."""

    async def ask() -> httpx.Response:
        app: Any = server.app
        transport = httpx.ASGITransport(app=lambda scope, receive, send: FastAPI.__call__(app, scope, receive, send))
        headers = {"Content-Type": content_type, **FRAMED}
        if token is not None:
            headers["Authorization"] = f"Bearer {SECRETS.get(token, token)}"
        async with httpx.AsyncClient(transport=transport, base_url="http://coordinator") as api:
            return await api.post(f"/api/farms/{farm}/{route}", content=body, headers=headers)

    answer = asyncio.run(ask())
    return answer.status_code, answer.headers.get("content-type"), answer.json()


def farm_row(server: RunningCoordinator) -> dict[str, Any]:
    with client(server, "admin") as admin:
        row: dict[str, Any] = admin.get("/api/farms/farm-a").raise_for_status().json()
        return row


ASK = b'{"slots": [0], "wait_s": 0}'
IDLE = b'{"slots": [{"index": 0, "state": "idle"}, {"index": 1, "state": "idle"}]}'
JSON = "application/json"
#: Requests refused, each as (route, token, farm in the path, body as bytes, content type).
REFUSED = {
    "lease: no token": ("lease", None, "farm-a", ASK, JSON),
    "lease: an unknown token": ("lease", "not-a-token", "farm-a", ASK, JSON),
    "lease: another farm's token": ("lease", "farm-b", "farm-a", ASK, JSON),
    "lease: a viewer's token": ("lease", "viewer", "farm-a", ASK, JSON),
    "lease: an unknown farm": ("lease", "admin", "farm-x", ASK, JSON),
    "lease: a slot the farm lacks": ("lease", "farm-a", "farm-a", b'{"slots": [2], "wait_s": 0}', JSON),
    "lease: a slot of 2**63": ("lease", "farm-a", "farm-a", b'{"slots": [9223372036854775808], "wait_s": 0}', JSON),
    "lease: a slot as text": ("lease", "farm-a", "farm-a", b'{"slots": ["0"], "wait_s": 0}', JSON),
    "lease: a wait too long": ("lease", "farm-a", "farm-a", b'{"slots": [0], "wait_s": 61}', JSON),
    "lease: a wait of NaN": ("lease", "farm-a", "farm-a", b'{"slots": [0], "wait_s": NaN}', JSON),
    "lease: nothing asked": ("lease", "farm-a", "farm-a", b"{}", JSON),
    "lease: a field unknown": ("lease", "farm-a", "farm-a", b'{"slots": [0], "wait_s": 0, "x": 1}', JSON),
    "lease: not JSON": ("lease", "farm-a", "farm-a", b'{"slots": [0', JSON),
    "lease: not UTF-8": ("lease", "farm-a", "farm-a", b'{"slots": [0], "wait_s": 0, "completions": ["\xff"]}', JSON),
    "lease: a lone surrogate": (
        "lease", "farm-a", "farm-a", b'{"completions": [{"task_id": "\\ud800", "default": "ok"}]}', JSON
    ),
    "lease: a body not declared JSON": ("lease", "farm-a", "farm-a", ASK, "text/plain"),
    "heartbeat: no token": ("heartbeat", None, "farm-a", IDLE, JSON),
    "heartbeat: an unknown token": ("heartbeat", "not-a-token", "farm-a", IDLE, JSON),
    "heartbeat: another farm's token": ("heartbeat", "farm-b", "farm-a", IDLE, JSON),
    "heartbeat: a viewer's token": ("heartbeat", "viewer", "farm-a", IDLE, JSON),
    "heartbeat: an unknown farm": ("heartbeat", "admin", "farm-x", IDLE, JSON),
    "heartbeat: a slot the farm lacks": (
        "heartbeat", "farm-a", "farm-a", b'{"slots": [{"index": 2, "state": "idle"}]}', JSON
    ),
    "heartbeat: a slot of 2**63": (
        "heartbeat", "farm-a", "farm-a", b'{"slots": [{"index": 9223372036854775808, "state": "idle"}]}', JSON
    ),
    "heartbeat: a state unknown": (
        "heartbeat", "farm-a", "farm-a", b'{"slots": [{"index": 0, "state": "flying"}]}', JSON
    ),
    "heartbeat: a field unknown": ("heartbeat", "farm-a", "farm-a", b'{"slots": [], "x": 1}', JSON),
    "heartbeat: not JSON": ("heartbeat", "farm-a", "farm-a", b'{"slots": [', JSON),
    "heartbeat: not UTF-8": ("heartbeat", "farm-a", "farm-a", b'{"slots": [], "reporting": ["\xff"]}', JSON),
    "heartbeat: a lone surrogate": ("heartbeat", "farm-a", "farm-a", b'{"slots": [], "reporting": ["\\ud800"]}', JSON),
    "heartbeat: a body not declared JSON": ("heartbeat", "farm-a", "farm-a", IDLE, "text/plain"),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED)
def test_a_refused_request_is_answered_as_the_route_answers_it_and_changes_nothing(
    server: RunningCoordinator, case: str
) -> None:
    route, token, farm, body, content_type = REFUSED[case]
    before = farm_row(server)
    with client(server, token) as api:
        answer = api.post(f"/api/farms/{farm}/{route}", content=body, headers={"Content-Type": content_type, **FRAMED})
    short = answer.status_code, answer.headers.get("content-type"), answer.json()
    assert short[0] >= 400, short
    assert short == behind_short_path(server, token, farm, route, body, content_type)
    assert (in_flight(server), farm_row(server)) == (0, before)


def test_a_body_over_the_limit_is_refused_on_the_short_path_too(tmp_path: Path) -> None:
    server = RunningCoordinator(tmp_path, max_body_bytes=1024).start()
    try:
        with client(server, None) as api:
            farm_id = api.post("/api/farms/register", json={"name": "f", "labels": {}, "slots": 1}).json()["farm_id"]
            body = b'{"slots": [0], "wait_s": 0, "completions": [' + b" " * 2000 + b"]}"
            declared = api.post(f"/api/farms/{farm_id}/lease", content=body, headers=FRAMED)
            streamed = api.post(f"/api/farms/{farm_id}/lease", content=iter([body[:1000], body[1000:]]), headers=FRAMED)
    finally:
        server.stop()
    assert declared.status_code == streamed.status_code == 413
    assert "over the limit of 1024 bytes" in declared.json()["detail"]
    assert "over the limit of 1024 bytes" in streamed.json()["detail"]


def test_a_farm_leases_and_settles_on_the_short_path_each_lease_timed_under_the_route(
    server: RunningCoordinator,
) -> None:
    with client(server, "farm-a") as farm:
        first = farm.post("/api/farms/farm-a/lease", json={"slots": [0, 1], "wait_s": 0}, headers=FRAMED)
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == lease_frame.MEDIA_TYPE
        tasks = [data for data, _ in read_lease(first.content).tasks]
        assert len(tasks) == 2
        assert in_flight(server) == 2
        completions = [{"task_id": t["task_id"], "default": "ok"} for t in tasks]
        second = farm.post("/api/farms/farm-a/lease", json={"slots": [0], "completions": completions}, headers=FRAMED)
        assert second.status_code == 200, second.text
        answer = read_lease(second.content)
    assert [s["accepted"] for s in answer.settled] == [True, True]
    assert [s["task_id"] for s in answer.settled] == [t["task_id"] for t in tasks]
    assert len(answer.tasks) == 1
    assert in_flight(server) == 1
    registry: CollectorRegistry = server.app.state.metrics
    timed = registry.get_sample_value(
        "xtreaming_http_request_duration_seconds_count",
        {"method": "POST", "route": "/api/farms/{farm_id}/lease", "status": "200"},
    )
    assert timed == 2


class Recorder:
    """The route's stand-in: records each request that reaches it, with its body, and answers 299."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.bodies.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def through_short_path(
    server: RunningCoordinator, token: str, body: bytes, accept: str, route: str = "lease"
) -> tuple[int, Recorder]:
    recorder = Recorder()
    path = FarmPath(recorder, server.app)

    async def ask() -> int:
        transport = httpx.ASGITransport(app=path)
        headers = {"Authorization": f"Bearer {SECRETS[token]}", "Accept": accept, "Content-Type": "application/json"}
        async with httpx.AsyncClient(transport=transport, base_url="http://coordinator") as api:
            return (await api.post(f"/api/farms/farm-a/{route}", content=body, headers=headers)).status_code

    return asyncio.run(ask()), recorder


def test_the_usual_lease_never_reaches_the_route(server: RunningCoordinator) -> None:
    status, recorder = through_short_path(server, "farm-a", b'{"slots": [0, 1], "wait_s": 0}', lease_frame.MEDIA_TYPE)
    assert (status, recorder.bodies) == (200, [])
    assert in_flight(server) == 2


@pytest.mark.parametrize(
    ("route", "token", "body", "accept"),
    [
        ("lease", "farm-a", ASK, "application/json"),  # a JSON answer asked: the route's
        ("lease", "farm-b", ASK, lease_frame.MEDIA_TYPE),  # a farm it may not act as
        ("lease", "viewer", ASK, lease_frame.MEDIA_TYPE),  # a role that may not lease
        ("lease", "farm-a", b'{"slots": [0], "wait_s": "soon"}', lease_frame.MEDIA_TYPE),  # LeaseRequest refuses it
        ("heartbeat", "farm-b", IDLE, "*/*"),  # a farm it may not act as
        ("heartbeat", "viewer", IDLE, "*/*"),  # a role that may not heartbeat
        ("heartbeat", "farm-a", b'{"slots": [{"index": -1, "state": "idle"}]}', "*/*"),  # Heartbeat refuses it
    ],
)
def test_any_other_request_reaches_the_route_with_its_body_whole(
    server: RunningCoordinator, route: str, token: str, body: bytes, accept: str
) -> None:
    before = farm_row(server)
    status, recorder = through_short_path(server, token, body, accept, route)
    assert (status, recorder.bodies) == (299, [body])
    assert (in_flight(server), farm_row(server)) == (0, before)


@pytest.mark.parametrize(
    ("route", "body", "accept"),
    [("lease", b'{"slots": [0, 1], "wait_s": 0}', lease_frame.MEDIA_TYPE), ("heartbeat", IDLE, "*/*")],
)
def test_a_coordinator_that_does_not_serve_leaves_the_request_to_the_leader_gate_behind(
    server: RunningCoordinator, monkeypatch: pytest.MonkeyPatch, route: str, body: bytes, accept: str
) -> None:
    before = farm_row(server)
    monkeypatch.setattr(server.app.state.serving, "is_serving", lambda: False)
    status, recorder = through_short_path(server, "farm-a", body, accept, route)
    monkeypatch.undo()
    assert (status, recorder.bodies) == (299, [body])
    assert (in_flight(server), farm_row(server)) == (0, before)


def test_a_lease_failing_for_a_reason_of_the_coordinators_own_is_answered_500_and_changes_nothing(
    server: RunningCoordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(asks: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.app.state.coordinator, "settle_and_lease_together", broken)
    with client(server, "farm-a") as farm:
        answer = farm.post("/api/farms/farm-a/lease", json={"slots": [0, 1], "wait_s": 0}, headers=FRAMED)
    monkeypatch.undo()
    assert answer.status_code == 500
    assert answer.json()["detail"] == "internal error on POST /api/farms/farm-a/lease; the coordinator's log says why"
    assert in_flight(server) == 0


def test_a_caller_gone_before_its_body_came_whole_is_not_served(server: RunningCoordinator) -> None:
    recorder = Recorder()
    path = FarmPath(recorder, server.app)
    sent: list[Message] = []
    parts: list[Message] = [
        {"type": "http.request", "body": b'{"slots": [0', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return parts.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    headers: list[tuple[bytes, bytes]] = [
        (b"authorization", f"Bearer {SECRETS['farm-a']}".encode()),
        (b"accept", lease_frame.MEDIA_TYPE.encode()),
        (b"content-type", b"application/json"),
    ]
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/api/farms/farm-a/lease", "headers": headers}
    asyncio.run(path(scope, receive, send))
    assert (sent, recorder.bodies) == ([], [])
    assert in_flight(server) == 0


def test_lease_requests_arriving_while_a_group_settles_wait_without_a_thread_and_then_settle_as_one_group(
    server: RunningCoordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = server.app.state.coordinator
    original = coordinator.settle_and_lease_together
    groups: list[int] = []
    entered, release = threading.Semaphore(0), threading.Event()

    def held(asks: Any) -> Any:
        groups.append(len(asks))
        entered.release()
        release.wait(30)
        return original(asks)

    monkeypatch.setattr(coordinator, "settle_and_lease_together", held)
    answers: list[int] = []

    def ask() -> None:
        with client(server, "farm-a") as farm:
            response = farm.post("/api/farms/farm-a/lease", json={"slots": [0], "wait_s": 0}, headers=FRAMED)
            answers.append(response.status_code)

    first = threading.Thread(target=ask)
    first.start()
    assert entered.acquire(timeout=10)
    askers = [threading.Thread(target=ask) for _ in range(4)]
    for asker in askers:
        asker.start()
    wait_until(lambda: server.app.state.lease_groups.waiting == 4, 10, "the other four requests to wait")
    assert not entered.acquire(timeout=0.2)  # they wait on the event loop, not inside
    with client(server, "viewer") as viewer:
        assert viewer.get("/api/queues").status_code == 200  # the API answers meanwhile
    release.set()
    for asker in [first, *askers]:
        asker.join(30)
    assert (groups, answers) == ([1, 4], [200] * 5)


# -- the heartbeat ----------------------------------------------------------------------------------


def test_a_farm_heartbeats_on_the_short_path_each_timed_under_the_route(server: RunningCoordinator) -> None:
    with client(server, "farm-a") as farm:
        [task] = read_lease(farm.post("/api/farms/farm-a/lease", json={"slots": [0]}, headers=FRAMED).content).tasks
        running = {"index": 0, "state": "running", "task_id": task[0]["task_id"], "done": 3, "total": 7}
        stranger = {"index": 1, "state": "running", "task_id": "not-leased-here"}
        answer = farm.post("/api/farms/farm-a/heartbeat", json={"slots": [running, stranger]})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"stop": ["not-leased-here"], "superseded": False}
    slots = {slot["index"]: slot for slot in farm_row(server)["slots_detail"]}
    assert (slots[0]["task_id"], slots[0]["done"], slots[0]["total"]) == (task[0]["task_id"], 3, 7)
    registry: CollectorRegistry = server.app.state.metrics
    timed = registry.get_sample_value(
        "xtreaming_http_request_duration_seconds_count",
        {"method": "POST", "route": "/api/farms/{farm_id}/heartbeat", "status": "200"},
    )
    assert timed == 1


def test_the_usual_heartbeat_never_reaches_the_route(server: RunningCoordinator) -> None:
    before = farm_row(server)["last_heartbeat_at"]
    status, recorder = through_short_path(server, "farm-a", IDLE, "*/*", route="heartbeat")
    assert (status, recorder.bodies) == (200, [])
    assert farm_row(server)["last_heartbeat_at"] != before


def test_a_heartbeat_failing_for_a_reason_of_the_coordinators_own_is_answered_500(
    server: RunningCoordinator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    before = farm_row(server)
    monkeypatch.setattr(server.app.state.coordinator, "heartbeat", broken)
    with client(server, "farm-a") as farm:
        answer = farm.post("/api/farms/farm-a/heartbeat", content=IDLE, headers={"Content-Type": "application/json"})
    monkeypatch.undo()
    assert answer.status_code == 500
    assert answer.json()["detail"] == (
        "internal error on POST /api/farms/farm-a/heartbeat; the coordinator's log says why"
    )
    assert "/api/farms/{farm_id}/heartbeat of farm farm-a failed" in caplog.text
    assert farm_row(server) == before
