"""Every bad request is a 4xx ``Problem`` naming what was refused, and changes nothing: lone surrogates,
nulls where a value is needed, booleans for numbers and strings for numbers, ids past 64 bits, methods a
path does not take, bodies over the limit sent in chunks, records too large for the broker, empty keys.
Through real HTTP, against a coordinator on the embedded log (and on tansu, for the broker's record limit).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.coordinator.server import RunningCoordinator
from tests.coordinator.test_api import TOPIC, publish, register
from tests.services import Tansu

MESSAGES = 5
#: Small limits, so that bodies over them are quick to send.
MAX_BODY_BYTES = 4096
MAX_PUBLISH_BYTES = 64_000
WINDOW = {"weekdays": [0, 1], "start": "08:00", "end": "18:00", "max_workers": 2}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    """A coordinator with a queue of ``MESSAGES`` messages, a farm, a profile and a window."""
    server = RunningCoordinator(tmp_path, max_body_bytes=MAX_BODY_BYTES, max_publish_bytes=MAX_PUBLISH_BYTES)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            publish(client, TOPIC, [f"{i:011d}" for i in range(MESSAGES)])
            register(client)
            answer = client.post("/api/profiles", json={"pattern": "MULTCOB09\\..*", "settings": {"priority": 7}})
            assert answer.status_code == 201, answer.text
            assert client.post("/api/bases/MULTCOB03/windows", json=WINDOW).status_code == 201
            yield client
    finally:
        server.stop()


def picture(api: httpx.Client) -> dict[str, Any]:
    """What a refused request must leave as it was: queues, their settings, profiles, bases, farms, the
    audit log."""
    return {
        path: api.get(path).raise_for_status().json()
        for path in ("/api/queues", f"/api/queues/{TOPIC}/settings", "/api/profiles", "/api/bases", "/api/audit")
    } | {"farms": [(f["id"], f["slots"], f["labels"]) for f in api.get("/api/farms").json()]}


def send(api: httpx.Client, method: str, path: str, body: object) -> httpx.Response:
    """``body`` as JSON with every non-ASCII character escaped: ``"\\ud800"`` stays a lone surrogate."""
    return api.request(method, path, content=json.dumps(body), headers={"Content-Type": "application/json"})


def assert_refused(response: httpx.Response, status: int, loc: list[str | int]) -> None:
    """A ``Problem`` with ``status`` naming the field at ``loc`` (or inside it) in its errors and in its words."""
    assert response.status_code == status, response.text
    problem = response.json()
    assert isinstance(problem["detail"], str)
    assert loc in [e["loc"][: len(loc)] for e in problem["errors"]], problem
    named = ".".join(str(part) for part in (loc[1:] if loc[0] == "body" else loc))
    assert named in problem["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("POST", "/api/farms/register", {"name": "farm-b", "labels": {"os": "\ud800"}, "slots": 1}, ["labels", "os"]),
        (
            "POST",
            f"/api/topics/{TOPIC}/messages",
            {"messages": [{"key": "\udfff", "value": "x"}]},
            ["messages", 0, "key"],
        ),
        ("POST", f"/api/topics/{TOPIC}/messages", {"messages": [{"value": "a\ud800b"}]}, ["messages", 0, "value"]),
        ("POST", "/api/profiles", {"pattern": "\ud83d.*"}, ["pattern"]),
        ("PATCH", f"/api/queues/{TOPIC}/settings", {"command": ["worker.exe", "\ud800"]}, ["command", 1]),
        ("POST", "/api/bases/MULTCOB03/windows", {**WINDOW, "start": "\ud800"}, ["start"]),
        ("POST", "/api/farms/register", {"name": "farm-b", "labels": {"\ud800": "x"}, "slots": 1}, ["labels"]),
    ],
)
def test_a_lone_surrogate_in_any_string_is_refused_with_422_naming_the_field(
    api: httpx.Client, method: str, path: str, body: object, loc: list[str | int]
) -> None:
    before = picture(api)

    refused = send(api, method, path, body)

    assert_refused(refused, 422, ["body", *loc])
    assert picture(api) == before


@pytest.mark.parametrize(
    "field", ["priority", "batch_size", "command", "timeout_s", "max_attempts", "backoff_s", "backoff_max_s",
              "required_labels"]
)  # fmt: skip
def test_null_for_a_queue_setting_is_refused_with_422_naming_it(api: httpx.Client, field: str) -> None:
    before = picture(api)

    refused = send(api, "PATCH", f"/api/queues/{TOPIC}/settings", {"priority": 8, field: None})

    assert_refused(refused, 422, ["body", field])
    assert refused.json()["detail"].endswith(", not null")
    assert "state store" not in refused.text
    assert picture(api) == before


@pytest.mark.parametrize("field", ["batch_size", "command", "timeout_s", "max_attempts", "required_labels"])
def test_null_for_a_profile_setting_is_refused_with_422_naming_it(api: httpx.Client, field: str) -> None:
    before = picture(api)

    refused = send(api, "POST", "/api/profiles", {"pattern": "MULTCOB03\\..*", "settings": {field: None}})

    assert_refused(refused, 422, ["body", "settings", field])
    assert refused.json()["detail"].endswith(", not null")
    assert "state store" not in refused.text
    assert picture(api) == before


def test_null_where_it_means_none_is_taken(api: httpx.Client) -> None:
    """``max_workers`` and ``handler`` may be null: no limit, no handler."""
    answer = send(api, "PATCH", f"/api/queues/{TOPIC}/settings", {"max_workers": None, "handler": None})

    assert answer.status_code == 200, answer.text
    assert (answer.json()["max_workers"], answer.json()["handler"]) == (None, None)


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("PATCH", f"/api/queues/{TOPIC}/settings", {"batch_size": True}, ["batch_size"]),
        ("PATCH", f"/api/queues/{TOPIC}/settings", {"priority": False}, ["priority"]),
        ("POST", f"/api/queues/{TOPIC}/priority", {"priority": True}, ["priority"]),
        ("POST", f"/api/queues/{TOPIC}/priority", {"delta": True}, ["delta"]),
        ("POST", "/api/queues/bulk/priority", {"base": "MULTCOB03", "delta": True}, ["delta"]),
        ("PATCH", "/api/bases/MULTCOB03", {"max_workers": True}, ["max_workers"]),
        ("POST", "/api/farms/register", {"name": "farm-b", "slots": True}, ["slots"]),
        ("POST", f"/api/topics/{TOPIC}/messages", {"messages": [{"value": "x"}], "partitions": True}, ["partitions"]),
        ("POST", "/api/queues/bulk/pause", {"base": "MULTCOB03", "dry_run": 0}, ["dry_run"]),
    ],
)
def test_a_boolean_for_a_number_or_a_number_for_a_boolean_is_refused(
    api: httpx.Client, method: str, path: str, body: object, loc: list[str | int]
) -> None:
    before = picture(api)

    refused = send(api, method, path, body)

    assert_refused(refused, 422, ["body", *loc])
    assert "not a boolean" in refused.text or "boolean, not a number" in refused.text
    assert picture(api) == before


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("PATCH", f"/api/queues/{TOPIC}/settings", {"batch_size": "5"}, ["batch_size"]),
        ("PATCH", f"/api/queues/{TOPIC}/settings", {"timeout_s": "1.5"}, ["timeout_s"]),
        ("POST", f"/api/queues/{TOPIC}/priority", {"priority": "0"}, ["priority"]),
        ("POST", "/api/bases/MULTCOB03/windows", {**WINDOW, "weekdays": ["1"]}, ["weekdays", 0]),
        ("POST", "/api/farms/register", {"name": "farm-b", "slots": "2"}, ["slots"]),
    ],
)
def test_a_string_for_a_number_is_refused(
    api: httpx.Client, method: str, path: str, body: object, loc: list[str | int]
) -> None:
    before = picture(api)

    refused = send(api, method, path, body)

    assert_refused(refused, 422, ["body", *loc])
    assert refused.json()["detail"].endswith(", not a string")
    assert picture(api) == before


def test_a_farm_report_with_a_boolean_or_a_string_for_a_number_changes_nothing(api: httpx.Client) -> None:
    farm_id = register(api)
    before = picture(api)

    lease = send(api, "POST", f"/api/farms/{farm_id}/lease", {"slots": [True], "wait_s": 0})
    waiting = send(api, "POST", f"/api/farms/{farm_id}/lease", {"slots": [0], "wait_s": "0"})
    slot = {"index": 0, "state": "idle", "pid": "7"}
    heartbeat = send(api, "POST", f"/api/farms/{farm_id}/heartbeat", {"slots": [slot]})

    assert_refused(lease, 422, ["body", "slots", 0])
    assert_refused(waiting, 422, ["body", "wait_s"])
    assert_refused(heartbeat, 422, ["body", "slots", 0, "pid"])
    assert picture(api) == before


@pytest.mark.parametrize(
    ("method", "path", "loc"),
    [
        ("DELETE", f"/api/profiles/{2**63}", ["path", "profile_id"]),
        ("DELETE", f"/api/windows/{2**64}", ["path", "window_id"]),
        ("GET", f"/api/audit?before_id={2**63}", ["query", "before_id"]),
    ],
)
def test_an_id_past_64_bits_is_refused_naming_it_not_with_the_databases_words(
    api: httpx.Client, method: str, path: str, loc: list[str | int]
) -> None:
    before = picture(api)

    refused = api.request(method, path)

    assert_refused(refused, 422, loc)
    assert "SQLite" not in refused.text
    assert picture(api) == before


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", f"/api/queues/{TOPIC}/settings", "GET, PATCH"),
        ("PUT", "/api/profiles", "GET, POST"),
        ("GET", "/api/profiles/1", "DELETE"),
        ("GET", f"/api/topics/{TOPIC}/messages", "POST"),
    ],
)
def test_a_405_lists_every_method_the_path_takes(api: httpx.Client, method: str, path: str, allowed: str) -> None:
    before = picture(api)

    refused = api.request(method, path)

    assert refused.status_code == 405, refused.text
    assert refused.headers["allow"] == allowed
    assert refused.json() == {"detail": f"{method} is not allowed here; allowed: {allowed}", "errors": []}
    assert picture(api) == before


@pytest.mark.parametrize(
    ("path", "limit"), [(f"/api/topics/{TOPIC}/messages", MAX_PUBLISH_BYTES), ("/api/farms/register", MAX_BODY_BYTES)]
)
def test_a_chunked_body_over_the_limit_is_refused_with_413(api: httpx.Client, path: str, limit: int) -> None:
    before = picture(api)
    if path.endswith("/messages"):
        body = json.dumps({"messages": [{"key": f"{i:011d}", "value": "x" * 100} for i in range(1000)]}).encode()
    else:
        body = json.dumps({"name": "farm-b", "labels": {f"k{i}": "v" * 100 for i in range(100)}, "slots": 1}).encode()
    assert len(body) > limit

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server learns the size as it reads
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    refused = api.post(path, content=chunks(), headers={"Content-Type": "application/json"})

    assert refused.status_code == 413, refused.text
    assert f"over the limit of {limit} bytes" in refused.json()["detail"]
    assert picture(api) == before


def test_an_empty_key_is_refused_as_the_cli_refuses_it(api: httpx.Client) -> None:
    before = picture(api)

    messages = [{"key": "1", "value": "a"}, {"key": "", "value": "b"}]

    refused = send(api, "POST", f"/api/topics/{TOPIC}/messages", {"messages": messages})

    assert_refused(refused, 422, ["body", "messages", 1, "key"])
    assert picture(api) == before


def test_a_key_over_the_limit_in_bytes_is_refused_with_the_limit(api: httpx.Client) -> None:
    """600 characters, but 1,200 bytes in UTF-8: the limit is the CLI's, in bytes."""
    before = picture(api)

    refused = send(api, "POST", f"/api/topics/{TOPIC}/messages", {"messages": [{"key": "é" * 600, "value": "a"}]})

    assert_refused(refused, 422, ["body", "messages", 0, "key"])
    assert "1,200 bytes long; a key is at most 1,024 bytes" in refused.json()["detail"]
    assert picture(api) == before


@pytest.mark.kafka
def test_a_record_too_large_for_the_broker_is_refused_with_413_and_nothing_is_written(
    tansu: Tansu, tmp_path: Path
) -> None:
    """librdkafka refuses records over its ``message.max.bytes`` (1,000,000 by default): once the others
    of the batch are written. The whole batch is refused before, naming the record."""
    topic = "MULTCOB03.1189.IMPORTACAO.TOO_LARGE"
    server = RunningCoordinator(tmp_path, broker_url=tansu.url).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            small = {"key": "00000000001", "value": "<cliente/>"}
            large = {"key": "00000000002", "value": "x" * 1_100_000}

            refused = send(api, "POST", f"/api/topics/{topic}/messages", {"messages": [small, large]})
            published = send(api, "POST", f"/api/topics/{topic}/messages", {"messages": [small]})

            assert refused.status_code == 413, refused.text
            assert refused.json()["detail"].startswith("messages[1] is a record of 1,100,0")
            assert "the broker takes records of at most 1,000,000 bytes; nothing was published" in refused.text
            assert published.status_code == 200, published.text
            assert api.get(f"/api/queues/{topic}").json()["pending"] == 1  # the refused batch wrote nothing
    finally:
        server.stop()
