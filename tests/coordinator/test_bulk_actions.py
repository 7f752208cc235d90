"""Bulk actions through the REST API of a running coordinator: every queue matching a base, a kind and/or
an RE2 pattern paused, resumed or reprioritized in one audited change, or none of them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.broker.refused_writes import writes_refused
from tests.coordinator.server import RunningCoordinator
from tests.e2e.coordinator_process import CoordinatorProcess
from xtreaming.config import Role, Token
from xtreaming.coordinator.api.auth import hash_token

QUEUES = (
    "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU",
    "MULTCOB03.1190.IMPORTACAO.CARGA",
    "MULTCOB03.1189.COBSINC.LOCALIZACAO",
    "MULTCOB02.1186.IMPORTACAO.ATUALIZA_BUREAU",
    "MULTCOB02.1186.COBSINC.LOCALIZACAO",
)
SECRETS = {Role.ADMIN: "admin-secret", Role.OPERATOR: "operator-secret", Role.VIEWER: "viewer-secret"}
TOKENS = [Token(name=role.value, role=role, sha256=hash_token(secret)) for role, secret in SECRETS.items()]


def as_role(url: str, role: Role) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {SECRETS[role]}"}, timeout=10)


def publish(api: httpx.Client, topics: tuple[str, ...] = QUEUES) -> None:
    """Publish to ``topics`` with a worker command for their queues (a queue with none shows "no-worker")."""
    profile = api.post("/api/profiles", json={"pattern": ".*", "settings": {"command": ["true"]}})
    assert profile.status_code == 201, profile.text
    for topic in topics:
        body = {"messages": [{"key": "111", "value": "<cliente/>"}], "partitions": 1}
        response = api.post(f"/api/topics/{topic}/messages", json=body)
        assert response.status_code == 200, response.text


def states(api: httpx.Client) -> dict[str, tuple[str, int]]:
    """Each queue's (state, priority) as the server shows it."""
    response = api.get("/api/queues")
    assert response.status_code == 200, response.text
    return {
        r["topic"]: ("paused" if r["state"] == "paused" else "active", r["priority"]) for r in response.json()["items"]
    }


def paused(api: httpx.Client) -> set[str]:
    return {topic for topic, (state, _) in states(api).items() if state == "paused"}


def bulk_entries(api: httpx.Client) -> list[dict[str, Any]]:
    response = api.get("/api/audit")
    assert response.status_code == 200, response.text
    return [e for e in response.json() if e["action"] == "queues.bulk"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningCoordinator]:
    server = RunningCoordinator(tmp_path, TOKENS).start()
    with as_role(server.url, Role.ADMIN) as api:
        publish(api)
    yield server
    server.stop()


@pytest.fixture
def api(server: RunningCoordinator) -> Iterator[httpx.Client]:
    with as_role(server.url, Role.OPERATOR) as api:
        yield api


@pytest.fixture
def admin(server: RunningCoordinator) -> Iterator[httpx.Client]:
    with as_role(server.url, Role.ADMIN) as admin:
        yield admin


def test_bulk_pause_by_base_pauses_that_bases_queues_only_and_resume_undoes_it(api: httpx.Client) -> None:
    response = api.post("/api/queues/bulk/pause", json={"base": "MULTCOB03"})

    assert response.status_code == 200, response.text
    outcome = response.json()
    multcob03 = {t for t in QUEUES if t.startswith("MULTCOB03.")}
    assert {q["topic"] for q in outcome["queues"]} == multcob03
    assert all(q["paused"] and q["changed"] for q in outcome["queues"])
    assert (outcome["filter"], outcome["action"], outcome["changed"]) == ("base=MULTCOB03 kind=* pattern=*", "pause", 3)
    assert paused(api) == multcob03

    again = api.post("/api/queues/bulk/pause", json={"base": "MULTCOB03"}).json()
    assert again["changed"] == 0  # already paused: matched, nothing to change
    assert api.post("/api/queues/bulk/resume", json={"base": "MULTCOB03"}).json()["changed"] == 3
    assert paused(api) == set()


def test_bulk_pause_by_kind_and_by_pattern(api: httpx.Client) -> None:
    by_kind = api.post("/api/queues/bulk/pause", json={"kind": "COBSINC"})
    assert by_kind.status_code == 200, by_kind.text
    assert paused(api) == {t for t in QUEUES if ".COBSINC." in t}

    pattern = r"^MULTCOB0[23]\.\d+\.IMPORTACAO\.ATUALIZA_"
    by_pattern = api.post("/api/queues/bulk/pause", json={"pattern": pattern})
    assert by_pattern.status_code == 200, by_pattern.text
    assert {q["topic"] for q in by_pattern.json()["queues"]} == {
        "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU",
        "MULTCOB02.1186.IMPORTACAO.ATUALIZA_BUREAU",
    }
    assert paused(api) == set(QUEUES) - {"MULTCOB03.1190.IMPORTACAO.CARGA"}

    both = api.post("/api/queues/bulk/resume", json={"base": "MULTCOB02", "kind": "IMPORTACAO", "pattern": "BUREAU$"})
    assert [q["topic"] for q in both.json()["queues"]] == ["MULTCOB02.1186.IMPORTACAO.ATUALIZA_BUREAU"]
    assert "MULTCOB02.1186.IMPORTACAO.ATUALIZA_BUREAU" not in paused(api)


def test_bulk_priority_sets_raises_and_lowers_within_0_to_9(api: httpx.Client) -> None:
    imports = {t for t in QUEUES if ".IMPORTACAO." in t}
    set_to = api.post("/api/queues/bulk/priority", json={"kind": "IMPORTACAO", "priority": 9})
    assert set_to.status_code == 200, set_to.text
    assert {t: p for t, (_, p) in states(api).items() if t in imports} == dict.fromkeys(imports, 9)

    up = api.post("/api/queues/bulk/priority", json={"kind": "IMPORTACAO", "delta": 1}).json()
    assert up["changed"] == 0  # already at 9
    down = api.post("/api/queues/bulk/priority", json={"base": "MULTCOB02", "delta": -1}).json()
    assert {(q["topic"], q["priority"]) for q in down["queues"]} == {
        ("MULTCOB02.1186.IMPORTACAO.ATUALIZA_BUREAU", 8),
        ("MULTCOB02.1186.COBSINC.LOCALIZACAO", 4),  # the profile's 5, lowered
    }
    both = api.post("/api/queues/bulk/priority", json={"kind": "IMPORTACAO", "priority": 3, "delta": 1})
    assert both.status_code == 422
    assert "exactly one of 'priority'" in both.text


def test_a_priority_set_in_bulk_is_the_queues_own_and_a_later_profile_leaves_it(
    api: httpx.Client, admin: httpx.Client
) -> None:
    assert api.post("/api/queues/bulk/priority", json={"base": "MULTCOB03", "priority": 9}).status_code == 200

    profile = {"pattern": ".*", "position": 0, "settings": {"command": ["true"], "priority": 2}}
    assert admin.post("/api/profiles", json=profile).status_code == 201

    assert {t: p for t, (_, p) in states(api).items()} == {t: 9 if t.startswith("MULTCOB03.") else 2 for t in QUEUES}


def test_a_dry_run_lists_what_would_change_and_changes_nothing(api: httpx.Client, admin: httpx.Client) -> None:
    before = states(api)

    response = api.post("/api/queues/bulk/priority", json={"base": "MULTCOB03", "priority": 1, "dry_run": True})

    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["dry_run"] is True
    assert {(q["topic"], q["priority"], q["changed"]) for q in outcome["queues"]} == {
        (t, 1, True) for t in QUEUES if t.startswith("MULTCOB03.")
    }
    assert states(api) == before
    assert bulk_entries(admin) == []


def test_a_filter_matching_nothing_says_so_and_changes_nothing(api: httpx.Client, admin: httpx.Client) -> None:
    response = api.post("/api/queues/bulk/pause", json={"base": "MULTCOB09", "kind": "IMPORTACAO", "pattern": "X$"})

    assert response.status_code == 404
    assert response.json()["detail"] == "no queue matches base=MULTCOB09 kind=IMPORTACAO pattern=X$"
    assert paused(api) == set()
    assert bulk_entries(admin) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"pattern": "MULTCOB(03"}, "pattern 'MULTCOB(03' is not a valid RE2 expression: missing ): MULTCOB(03"),
        ({"pattern": r"(\w)\1"}, "invalid escape sequence: \\1"),
        ({"pattern": "(?<=MULTCOB)03"}, "invalid perl operator: (?<="),
        ({"dry_run": True}, "a bulk action needs a filter: give a base, a kind and/or a pattern"),
    ],
)
def test_a_bad_filter_is_refused_with_422_naming_the_problem(
    api: httpx.Client, body: dict[str, object], problem: str
) -> None:
    response = api.post("/api/queues/bulk/pause", json=body)

    assert response.status_code == 422
    assert problem in response.json()["detail"]
    assert paused(api) == set()


def test_only_operators_act_in_bulk(server: RunningCoordinator) -> None:
    with as_role(server.url, Role.VIEWER) as viewer:
        response = viewer.post("/api/queues/bulk/pause", json={"base": "MULTCOB03"})
        assert response.status_code == 403
        assert paused(viewer) == set()


def test_the_audit_entry_names_the_filter_the_action_and_the_queues(api: httpx.Client, admin: httpx.Client) -> None:
    api.post("/api/queues/bulk/pause", json={"base": "MULTCOB03", "kind": "COBSINC"})
    api.post("/api/queues/bulk/priority", json={"base": "MULTCOB03", "delta": -1})

    newest, oldest = bulk_entries(admin)
    assert (oldest["actor"], oldest["target"]) == ("operator", "base=MULTCOB03 kind=COBSINC pattern=*")
    assert oldest["details"] == {
        "action": "pause",
        "filter": {"base": "MULTCOB03", "kind": "COBSINC", "pattern": None},
        "queues": ["MULTCOB03.1189.COBSINC.LOCALIZACAO"],
        "changed": ["MULTCOB03.1189.COBSINC.LOCALIZACAO"],
    }
    multcob03 = sorted(t for t in QUEUES if t.startswith("MULTCOB03."))
    assert newest["details"]["action"] == "priority"
    assert newest["details"]["delta"] == -1
    assert sorted(newest["details"]["queues"]) == multcob03
    assert sorted(newest["details"]["changed"]) == multcob03
    assert len(bulk_entries(admin)) == 2  # one entry per action, however many queues


# -- a coordinator in its own process: a fault (a full disk, a pattern built to stall) hits it alone --


@pytest.fixture
def process(tmp_path: Path) -> Iterator[CoordinatorProcess]:
    coordinator = CoordinatorProcess(tmp_path, f"sqlite:///{tmp_path}/log.db", f"sqlite:///{tmp_path}/state.db")
    try:
        yield coordinator.start()
    finally:
        coordinator.close()  # a kill: a coordinator stalled in a pattern would not stop on SIGTERM


@pytest.mark.slow
def test_a_pattern_built_to_stall_a_backtracking_engine_is_answered_at_once(process: CoordinatorProcess) -> None:
    # Python's re takes about 19 s for (A+)+$ over 26 A's and a mismatch, doubling with each A; here 200.
    long_topic = "MULTCOB03.1189.IMPORTACAO." + "A" * 200 + "1"
    with httpx.Client(base_url=process.url, timeout=5) as api:
        publish(api, (long_topic, QUEUES[0]))
        started = time.perf_counter()
        response = api.post("/api/queues/bulk/pause", json={"pattern": "(A+)+$", "dry_run": True})
        elapsed_s = time.perf_counter() - started

        assert response.status_code == 404, response.text
        assert response.json()["detail"] == "no queue matches base=* kind=* pattern=(A+)+$"
        assert elapsed_s < 1.0
        assert api.get("/healthz").status_code == 200


@pytest.mark.slow
def test_a_full_disk_during_a_bulk_action_changes_no_queue_and_the_action_works_once_it_clears(
    process: CoordinatorProcess,
) -> None:
    with httpx.Client(base_url=process.url, timeout=10) as api:
        publish(api)
        with writes_refused(process.pid):
            refused = api.post("/api/queues/bulk/pause", json={"base": "MULTCOB03"})
            assert refused.status_code == 503, refused.text
            assert "disk I/O error" in refused.json()["detail"]
        assert paused(api) == set()
        assert bulk_entries(api) == []

        done = api.post("/api/queues/bulk/pause", json={"base": "MULTCOB03"})
        assert done.status_code == 200, done.text
        assert paused(api) == {t for t in QUEUES if t.startswith("MULTCOB03.")}
        assert len(bulk_entries(api)) == 1


def test_a_store_too_full_for_the_audit_entry_leaves_every_queue_as_it_was(tmp_path: Path) -> None:
    """The database may not grow (``PRAGMA max_page_count``): pausing in place fits, the audit entry naming
    forty long topics does not, so the store refuses the change at its end, and no queue may stay paused."""
    topics = tuple(f"MULTCOB04.{n}.IMPORTACAO.{'CARGA_COMPLETA_' * 14}{n}" for n in range(40))
    server = RunningCoordinator(tmp_path, None).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as api:
            publish(api, topics)
            engine = server.app.state.coordinator.store._database._engine

            def no_growth(dbapi_connection: Any, _record: object) -> None:
                pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
                dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

            event.listen(engine, "connect", no_growth)
            engine.dispose()  # every connection from now on is one that cannot grow the file
            try:
                refused = api.post("/api/queues/bulk/pause", json={"base": "MULTCOB04"})
            finally:
                event.remove(engine, "connect", no_growth)
                engine.dispose()

            assert refused.status_code == 503, refused.text
            assert "full" in refused.json()["detail"]
            assert paused(api) == set()
        server.stop()
        server.start()  # the store, as a restart reads it, agrees: not one queue paused, no entry
        with httpx.Client(base_url=server.url, timeout=10) as api:
            assert paused(api) == set()
            assert bulk_entries(api) == []
            assert api.post("/api/queues/bulk/pause", json={"base": "MULTCOB04"}).json()["changed"] == len(topics)
            assert paused(api) == set(topics)
    finally:
        server.stop()
