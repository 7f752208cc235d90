"""``POST /api/topics/{topic}/messages``: a topic it creates gets the server's default partitions unless told."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.coordinator.server import RunningCoordinator
from xtreaming.broker import open_broker

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
TOLD = "MULTCOB03.1189.IMPORTACAO.TOLD"
BODY = {"messages": [{"key": "1", "value": "<cliente/>"}]}


def test_a_topic_created_by_publishing_gets_the_configured_partitions_unless_the_request_says(tmp_path: Path) -> None:
    server = RunningCoordinator(tmp_path, default_partitions=3).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            by_default = api.post(f"/api/topics/{TOPIC}/messages", json=BODY)
            told = api.post(f"/api/topics/{TOLD}/messages", json={**BODY, "partitions": 2})
            schema = api.get("/openapi.json").json()["components"]["schemas"]["PublishRequest"]
    finally:
        server.stop()

    assert (by_default.status_code, told.status_code) == (200, 200), by_default.text + told.text
    log = open_broker(server.settings().broker_url)
    try:
        assert (log.partition_count(TOPIC), log.partition_count(TOLD)) == (3, 2)
    finally:
        log.close()
    partitions = schema["properties"]["partitions"]
    assert partitions.get("default") is None
    assert "XTREAMING_DEFAULT_PARTITIONS" in partitions["description"]
