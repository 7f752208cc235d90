"""``GET /metrics`` of a running coordinator, parsed as Prometheus parses it, after real work through its API."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.coordinator.server import RunningCoordinator
from tests.services import Tansu
from tests.waiting import wait_until
from xtreaming.config import Role, Token
from xtreaming.coordinator.api.auth import hash_token

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
LEASE_ROUTE = "/api/farms/{farm_id}/lease"
COMPLETE_ROUTE = "/api/tasks/{task_id}/complete"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def call(api: httpx.Client, path: str, body: dict[str, Any], expected: int = 200) -> Any:
    response = api.post(path, json=body)
    assert response.status_code == expected, response.text
    return response.json()


def lease(api: httpx.Client, farm_id: str, slots: list[int]) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = call(api, f"/api/farms/{farm_id}/lease", {"slots": slots, "wait_s": 0})["tasks"]
    return tasks


def scrape(api: httpx.Client) -> Samples:
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_show_the_queue_base_farm_and_request_figures_after_real_work(server: RunningCoordinator) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as api:
        settings = {"batch_size": 2, "handler": "xtreaming.demo.worker:noop", "backoff_s": 600}
        call(api, "/api/profiles", {"pattern": ".*", "settings": settings}, expected=201)
        messages = [{"key": f"{10_000_000_000 + i}", "value": "<cliente/>"} for i in range(7)]
        call(api, f"/api/topics/{TOPIC}/messages", {"messages": messages, "partitions": 1})
        farm_id = call(api, "/api/farms/register", {"name": "farm-poa", "slots": 4})["farm_id"]
        first, second, third = lease(api, farm_id, [0, 1, 2])
        call(api, f"/api/tasks/{first['task_id']}/complete", {"default": "ok"})
        call(api, f"/api/tasks/{second['task_id']}/complete", {"default": "error", "detail": "CPF inválido"})
        call(api, f"/api/tasks/{third['task_id']}/complete", {"default": "retry", "detail": "exit code 3"})
        [fourth] = lease(api, farm_id, [3])  # the seventh message (the retries wait), running when scraped

        samples = scrape(api)

    queue = {"queue": TOPIC, "base": "MULTCOB03", "kind": "IMPORTACAO"}
    assert value(samples, "xtreaming_queue_pending_messages", **queue) == 3
    assert value(samples, "xtreaming_queue_consumed_messages", **queue) == 4
    assert value(samples, "xtreaming_queue_retrying_messages", **queue) == 2
    assert value(samples, "xtreaming_queue_dlq_messages", **queue) == 2
    assert value(samples, "xtreaming_queue_running_tasks", **queue) == 1
    assert value(samples, "xtreaming_queue_in_flight_messages", **queue) == 1
    assert value(samples, "xtreaming_queue_rate_messages_per_second", **queue) > 0
    assert value(samples, "xtreaming_queue_state", **queue, state="running") == 1
    assert value(samples, "xtreaming_outcomes_total", queue=TOPIC, result="ok") == 2
    assert value(samples, "xtreaming_outcomes_total", queue=TOPIC, result="dead") == 2
    assert value(samples, "xtreaming_outcomes_total", queue=TOPIC, result="retry") == 2
    assert value(samples, "xtreaming_task_duration_seconds_count") == 3  # three tasks settled
    assert value(samples, "xtreaming_base_workers_in_use", base="MULTCOB03") == 1
    assert value(samples, "xtreaming_base_workers_limit", base="MULTCOB03") >= 1
    assert value(samples, "xtreaming_farm_slots", farm=farm_id) == 4
    assert value(samples, "xtreaming_farm_slots_busy", farm=farm_id) == 1
    assert value(samples, "xtreaming_farm_lost", farm=farm_id) == 0
    requests = "xtreaming_http_request_duration_seconds_count"
    assert value(samples, requests, method="POST", route=LEASE_ROUTE, status="200") == 2
    assert value(samples, requests, method="POST", route=COMPLETE_ROUTE, status="200") == 3
    assert value(samples, "xtreaming_broker_up") == 1
    assert value(samples, "xtreaming_store_up") == 1
    assert fourth["messages"]["offsets"] == [6]


def test_metrics_need_a_viewer_token_when_tokens_are_configured(tmp_path: Path) -> None:
    tokens = [Token(name="grafana", role=Role.VIEWER, sha256=hash_token("v-secret"))]
    server = RunningCoordinator(tmp_path, tokens=tokens).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            anonymous = api.get("/metrics")
            viewer = api.get("/metrics", headers={"Authorization": "Bearer v-secret"})
    finally:
        server.stop()

    assert anonymous.status_code == 401
    assert viewer.status_code == 200
    assert "xtreaming_broker_up 1.0" in viewer.text


@pytest.mark.kafka
@pytest.mark.slow
def test_broker_up_follows_a_frozen_broker_and_the_scrape_keeps_answering(tmp_path: Path, fresh_tansu: Tansu) -> None:
    server = RunningCoordinator(tmp_path, broker_url=f"{fresh_tansu.url}?timeout_s=1").start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            wait_until(lambda: value(scrape(api), "xtreaming_broker_up") == 1, 15, "the broker counted up")
            fresh_tansu.pause()  # SIGSTOP: connections stay open and nothing answers
            try:
                wait_until(lambda: value(scrape(api), "xtreaming_broker_up") == 0, 15, "the broker counted down")
                started = time.monotonic()
                down = scrape(api)
                scrape_s = time.monotonic() - started
            finally:
                fresh_tansu.resume()
            wait_until(lambda: value(scrape(api), "xtreaming_broker_up") == 1, 15, "the broker counted up again")
    finally:
        server.stop()

    assert value(down, "xtreaming_store_up") == 1
    assert scrape_s < 1  # from memory: a scrape never waits on the frozen broker


def test_the_grafana_dashboard_asks_only_for_series_the_coordinator_exports(server: RunningCoordinator) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as api:
        settings = {"handler": "xtreaming.demo.worker:noop"}
        call(api, "/api/profiles", {"pattern": ".*", "settings": settings}, expected=201)
        call(api, f"/api/topics/{TOPIC}/messages", {"messages": [{"key": "1", "value": "<cliente/>"}]})
        farm_id = call(api, "/api/farms/register", {"name": "farm-poa", "slots": 1})["farm_id"]
        [task] = lease(api, farm_id, [0])
        call(api, f"/api/tasks/{task['task_id']}/complete", {"default": "ok"})
        exported = {name for name, _ in scrape(api)}
    dashboard = (Path(__file__).parents[2] / "deploy" / "grafana" / "xtreaming.json").read_text()

    asked = set(re.findall(r"\bxtreaming_\w+", dashboard))

    assert asked, "the dashboard queries no xtreaming series"
    assert asked - exported == set()
