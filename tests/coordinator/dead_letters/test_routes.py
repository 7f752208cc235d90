"""The dead-letter API over HTTP: bad filters refused naming what is wrong, a filter matching nothing answered
in a sentence with nothing changed, letters in pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.coordinator.dead_letters.letters import TOPIC, cpf, kill
from tests.coordinator.server import RunningCoordinator
from tests.waiting import wait_until
from xtreaming.broker import open_broker


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    log = open_broker(f"sqlite:///{tmp_path}/log.db")
    kill(log, [cpf(n) for n in range(5)], error="timeout", partitions=1)
    log.close()
    server = RunningCoordinator(tmp_path).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        wait_until(lambda: client.get("/api/dlq").json(), 30, "the dead letters indexed")
        yield client
    server.stop()


def test_a_filter_matching_nothing_says_so_and_changes_nothing(api: httpx.Client) -> None:
    before = api.get("/api/dlq").json()
    nothing: dict[str, Any] = {"filter": {"error": "disco cheio"}}

    dry = api.post(f"/api/dlq/{TOPIC}/replay", json={**nothing, "dry_run": True})
    replay = api.post(f"/api/dlq/{TOPIC}/replay", json=nothing)
    skip = api.post(f"/api/dlq/{TOPIC}/skip", json=nothing)

    assert dry.status_code == 200
    assert dry.json() == {
        "topic": TOPIC,
        "action": "replay",
        "dry_run": True,
        "matched": 0,
        "replay_id": None,
        "detail": f"0 open dead letters match {TOPIC}; error contains 'disco cheio': nothing would change",
    }
    assert (replay.status_code, skip.status_code) == (404, 404)
    assert (
        replay.json()["detail"] == f"0 open dead letters match {TOPIC}; error contains 'disco cheio': nothing changed"
    )
    assert api.get("/api/dlq").json() == before
    assert api.get("/api/audit").json() == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"filter": {"since": "2026-12-06T10:00:00"}}, "since 2026-12-06T10:00:00 has no time zone"),
        (
            {"filter": {"since": "2026-12-06T10:00:00Z", "until": "2026-12-06T09:00:00Z"}},
            "since 2026-12-06T10:00:00+00:00 is not before until 2026-12-06T09:00:00+00:00",
        ),
        ({"rate_per_s": 5001}, "rate 5001/s: a replay runs at more than 0 and at most 5000 letters/s"),
        ({"filter": {"keys": ["1"] * 1001}}, "filter.keys"),
        ({"filter": {"colour": "red"}}, "filter.colour"),
    ],
)
def test_a_bad_replay_request_is_refused_naming_what_is_wrong(
    api: httpx.Client, body: dict[str, Any], detail: str
) -> None:
    answer = api.post(f"/api/dlq/{TOPIC}/replay", json=body)

    assert answer.status_code == 422
    assert detail in str(answer.json()["detail"])
    assert api.get("/api/dlq").json()[0]["open"] == 5


def test_letters_come_in_pages_of_at_most_1000(api: httpx.Client) -> None:
    first = api.get(f"/api/dlq/{TOPIC}", params={"limit": 2}).json()
    rest = api.get(f"/api/dlq/{TOPIC}", params={"limit": 1000, "after": first["next_after"]}).json()

    assert [x["key"] for x in first["items"] + rest["items"]] == [cpf(n) for n in range(5)]
    assert (first["total"], rest["next_after"]) == (5, None)
    assert api.get(f"/api/dlq/{TOPIC}", params={"limit": 1001}).status_code == 422
    assert api.get("/api/dlq/replays/999").status_code == 404
