"""The OpenAPI document is the API: its security, its error answers, and a bounded schemathesis run over
a real coordinator (with an admin, a viewer and no token) finding no server error and no answer outside
the document."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.coordinator.server import RunningCoordinator
from tests.coordinator.test_auth import EXPECTED, SECRETS
from xtreaming.config import Role, Token
from xtreaming.coordinator.api.auth import hash_token

#: What the run checks on every answer: no 5xx, and status, media type and body as the document says.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Examples per operation and generation mode, by caller: a caller without a token or with a viewer's
#: is refused early by most operations, so fewer of its examples are worth the time.
EXAMPLES = {Role.ADMIN: 10, Role.VIEWER: 4, None: 2}
PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCoordinator]:
    """One coordinator for the module, with a token per role (the run's requests share its state)."""
    tokens = [Token(name=f"{role.value}-user", role=role, sha256=hash_token(SECRETS[role])) for role in Role]
    running = RunningCoordinator(tmp_path_factory.mktemp("openapi"), tokens=tokens).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def document(coordinator: RunningCoordinator) -> dict[str, Any]:
    response = httpx.get(f"{coordinator.url}/openapi.json", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, by_method in document["paths"].items():
        for method, operation in by_method.items():
            yield method.upper(), path, operation


def test_the_document_declares_the_bearer_token_and_the_role_each_operation_needs(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    required = {(method, path): operation.get("security") for method, path, operation in operations(document)}

    assert {name: (s["type"], s["scheme"]) for name, s in schemes.items()} == {"HTTPBearer": ("http", "bearer")}
    # test_auth's table says each route's role (and that no route is missing from it)
    assert {key: security for key, security in required.items() if key in EXPECTED} == {
        key: [{"HTTPBearer": [role.value]}] if role else None for key, role in EXPECTED.items() if key in required
    }
    assert required[("PATCH", "/api/queues/{topic}/settings")] == [{"HTTPBearer": ["admin"]}]


def test_every_error_answer_is_documented_as_a_problem(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    errors = {
        (method, path, status): answer["content"]["application/json"]["schema"]
        for method, path, operation in operations(document)
        for status, answer in operation["responses"].items()
        if int(status) >= 400
    }
    documented = {(method, path, status) for method, path, status in errors}

    assert errors
    assert all(schema == PROBLEM for schema in errors.values())
    assert schemas["Problem"]["required"] == ["detail"]
    assert "HTTPValidationError" not in schemas
    for status in ("401", "403", "404", "413", "422", "503"):
        assert ("POST", "/api/topics/{topic}/messages", status) in documented
    for status in ("401", "403", "422", "503"):
        assert ("GET", "/api/audit", status) in documented
    assert ("GET", "/api/status", "422") not in documented  # no parameters, nothing to refuse
    assert not any(path == "/healthz" for _, path, _ in documented)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("role", [Role.ADMIN, Role.VIEWER, None], ids=["admin", "viewer", "no-token"])
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(
    coordinator: RunningCoordinator, role: Role | None
) -> None:
    """Valid and invalid examples of every operation, derandomized (the same cases each run)."""
    schema = schemathesis.openapi.from_url(f"{coordinator.url}/openapi.json")
    headers = {"Authorization": f"Bearer {SECRETS[role]}"} if role else {}
    run = Run(coordinator.url, headers, EXAMPLES[role])
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the document is a valid OpenAPI one
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run.operation(result.ok(), mode)

    assert run.failures == [], "\n\n".join(run.failures[:10])
    assert not any(status >= 500 for status in run.statuses), run.statuses
    assert sum(run.statuses.values()) > 100, run.statuses


class Run:
    """Calls each operation with examples schemathesis makes, and keeps every check that failed."""

    def __init__(self, url: str, headers: dict[str, str], examples: int) -> None:
        self.url = url
        self.headers = headers
        self.examples = examples
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []

    def operation(self, operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode) -> None:
        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis.settings(
            max_examples=self.examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Case[Any]) -> None:
            if operation.path.endswith("/lease") and isinstance(case.body, dict):
                case.body["wait_s"] = 0  # a long-poll would wait for work that never comes
            if operation.path.endswith("/messages") and isinstance(case.query, dict) and "wait_s" in case.query:
                case.query["wait_s"] = 0.01  # a publish-and-wait would wait for outcomes that never come
            response = case.call(base_url=self.url, headers=self.headers, timeout=30)
            self.statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=self.headers)
            except (AssertionError, FailureGroup) as exc:
                self.failures.append(f"{operation.label} [{mode.value}]: {exc}"[:2000])

        try:
            call()
        except hypothesis.errors.Unsatisfiable:  # nothing to make invalid in an operation without input
            assert mode is GenerationMode.NEGATIVE, operation.label
