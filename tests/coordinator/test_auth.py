"""Every route's role, and tokens checked over real HTTP."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from tests.coordinator.server import RunningCoordinator
from xtreaming.config import Role, Token
from xtreaming.coordinator.api.auth import hash_token

TOPIC = "MULTCOB03.1189.IMPORTACAO.X"

#: The role each route needs; a new route must be added here, so none is left open by mistake.
EXPECTED = {
    ("POST", "/api/farms/register"): Role.FARM,
    ("POST", "/api/farms/{farm_id}/heartbeat"): Role.FARM,
    ("POST", "/api/farms/{farm_id}/lease"): Role.FARM,
    ("POST", "/api/tasks/{task_id}/progress"): Role.FARM,
    ("POST", "/api/tasks/{task_id}/complete"): Role.FARM,
    ("GET", "/api/farms"): Role.VIEWER,
    ("GET", "/api/farms/{farm_id}"): Role.VIEWER,
    ("GET", "/api/figures/queues/{topic}"): Role.VIEWER,
    ("GET", "/api/figures/bases/{base}"): Role.VIEWER,
    ("GET", "/api/figures/sparklines"): Role.VIEWER,
    ("GET", "/api/queues"): Role.VIEWER,
    ("GET", "/api/queues/{topic}"): Role.VIEWER,
    ("POST", "/api/queues/bulk/pause"): Role.OPERATOR,
    ("POST", "/api/queues/bulk/resume"): Role.OPERATOR,
    ("POST", "/api/queues/bulk/priority"): Role.OPERATOR,
    ("POST", "/api/queues/{topic}/pause"): Role.OPERATOR,
    ("POST", "/api/queues/{topic}/resume"): Role.OPERATOR,
    ("POST", "/api/queues/{topic}/priority"): Role.OPERATOR,
    ("GET", "/api/queues/{topic}/explain"): Role.VIEWER,
    ("POST", "/api/topics/{topic}/messages"): Role.OPERATOR,
    ("GET", "/api/profiles"): Role.VIEWER,
    ("POST", "/api/profiles"): Role.ADMIN,
    ("DELETE", "/api/profiles/{profile_id}"): Role.ADMIN,
    ("GET", "/api/queues/{topic}/settings"): Role.VIEWER,
    ("PATCH", "/api/queues/{topic}/settings"): Role.ADMIN,
    ("GET", "/api/bases"): Role.VIEWER,
    ("GET", "/api/bases/{name}"): Role.VIEWER,
    ("PATCH", "/api/bases/{name}"): Role.OPERATOR,
    ("POST", "/api/bases/{name}/pause"): Role.OPERATOR,
    ("POST", "/api/bases/{name}/resume"): Role.OPERATOR,
    ("GET", "/api/bases/{name}/windows"): Role.VIEWER,
    ("POST", "/api/bases/{name}/windows"): Role.OPERATOR,
    ("DELETE", "/api/windows/{window_id}"): Role.OPERATOR,
    ("GET", "/api/messages"): Role.VIEWER,
    ("GET", "/api/messages/{topic}/{partition}/{offset}"): Role.VIEWER,
    ("GET", "/api/status"): Role.VIEWER,
    ("GET", "/api/audit"): Role.ADMIN,
    ("GET", "/api/dlq"): Role.VIEWER,
    ("GET", "/api/dlq/replays/{replay_id}"): Role.VIEWER,
    ("GET", "/api/dlq/{topic}"): Role.VIEWER,
    ("POST", "/api/dlq/{topic}/replay"): Role.OPERATOR,
    ("POST", "/api/dlq/{topic}/skip"): Role.OPERATOR,
    ("POST", "/api/dlq/{topic}/purge"): Role.ADMIN,
    ("GET", "/api/schedules"): Role.VIEWER,
    ("POST", "/api/schedules"): Role.ADMIN,
    ("DELETE", "/api/schedules/{schedule_id}"): Role.ADMIN,
    ("GET", "/api/schedules/{schedule_id}/ticks"): Role.VIEWER,
    ("GET", "/healthz"): None,
    ("GET", "/api/whoami"): Role.VIEWER,
    # The operator screen's page holds no data (it reads /api/status with the operator's token).
    ("GET", "/"): None,
    ("GET", "/metrics"): Role.VIEWER,
    # The API's page and its Swagger UI sign-in helper hold no data, like the OpenAPI document.
    ("GET", "/docs"): None,
    ("GET", "/docs/oauth2-redirect"): None,
}
SECRETS = {role: f"secret-{role.value}" for role in Role}


def required_role(dependant: Dependant) -> Role | None:
    for dependency in dependant.dependencies:
        role = getattr(dependency.call, "required_role", None)
        if role is not None:
            return Role(role)
        found = required_role(dependency)
        if found is not None:
            return found
    return None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningCoordinator]:
    tokens = [Token(name=f"{role.value}-user", role=role, sha256=hash_token(SECRETS[role])) for role in Role]
    running = RunningCoordinator(tmp_path, tokens=tokens).start()
    yield running
    running.stop()


def client(server: RunningCoordinator, role: Role | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {SECRETS[role]}"} if role else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, looking inside included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)


def test_every_route_requires_its_role(server: RunningCoordinator) -> None:
    found = {}
    for route in api_routes(server.app.routes):
        for method in route.methods or ():
            found[(method, route.path)] = required_role(route.dependant)

    assert found == EXPECTED


@pytest.mark.parametrize(
    ("role", "method", "path", "status"),
    [
        (None, "GET", "/api/queues", 401),
        (Role.VIEWER, "GET", "/api/queues", 200),
        (Role.VIEWER, "POST", f"/api/queues/{TOPIC}/pause", 403),
        (Role.FARM, "POST", f"/api/queues/{TOPIC}/pause", 403),
        (Role.OPERATOR, "POST", f"/api/queues/{TOPIC}/pause", 200),
        (Role.OPERATOR, "GET", "/api/audit", 403),
        (Role.ADMIN, "GET", "/api/audit", 200),
        (Role.VIEWER, "POST", "/api/farms/register", 403),
        (Role.FARM, "GET", "/api/queues", 403),
        (None, "GET", "/healthz", 200),
    ],
)
def test_tokens_admit_their_roles_only(
    server: RunningCoordinator, role: Role | None, method: str, path: str, status: int
) -> None:
    with client(server, Role.OPERATOR) as operator:
        operator.post(f"/api/topics/{TOPIC}/messages", json={"messages": [{"key": "1", "value": "x"}]})

    with client(server, role) as api:
        response = api.request(method, path)

    assert response.status_code == status, response.text


def test_an_unknown_token_is_refused(server: RunningCoordinator) -> None:
    with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer wrong"}) as api:
        response = api.get("/api/queues")

    assert response.status_code == 401
    assert response.json()["detail"] == "missing or unknown bearer token"


def test_the_audit_log_names_the_token_that_acted(server: RunningCoordinator) -> None:
    with client(server, Role.OPERATOR) as operator:
        operator.post(f"/api/topics/{TOPIC}/messages", json={"messages": [{"key": "1", "value": "x"}]})
        operator.post(f"/api/queues/{TOPIC}/pause")
    with client(server, Role.ADMIN) as admin:
        paused, published = admin.get("/api/audit").json()  # newest first

    assert (paused["actor"], paused["action"], paused["target"]) == ("operator-user", "queue.update", TOPIC)
    assert paused["details"] == {"paused": True}
    assert (published["actor"], published["action"], published["target"]) == ("operator-user", "topic.publish", TOPIC)
    assert published["details"] == {"messages": 1, "partitions": 4}
