"""Publish-and-wait end to end: a real coordinator over HTTP and real ``xtreaming farm`` processes running
``by_key`` (below) in handler mode. The API's wait, the ``Producer``'s (reading ``.ACK`` from the embedded
log) and ``xtreaming publish --wait`` return each message's outcome: ok, ok after a retry, dead after its
attempts; a wait that times out answers with the messages still running, which go on and are ACKed once."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_kafka import KafkaSite
from tests.farm.site import Site
from tests.services import Tansu
from xtreaming.coordinator.waiters import Waiters
from xtreaming.errors import InvalidInput
from xtreaming.farm.batch import Batch
from xtreaming.producer import Producer
from xtreaming.screen_words import code_word
from xtreaming.wire.acks import MessageOutcome

TOPIC = "MULTCOB02.1186.COBSINC.LOCALIZACAO"
#: A second topic, for the API's wait on Kafka.
OTHER = "MULTCOB03.1189.COBSINC.LOCALIZACAO"
#: A topic of the same kind, for the farm's first tasks: its slots' handler processes start there.
WARM_UP = "MULTCOB02.1186.COBSINC.AQUECIMENTO"
#: Slots of the site's farm.
SLOTS = 2
HANDLER = "tests.e2e.test_publish_wait:by_key"
#: The attempts a message gets before it is dead.
ATTEMPTS = 3
#: How long ``by_key`` works on a "slow-" key: well past the short waits below.
SLOW_S = 1.5


def by_key(batch: Batch) -> dict[str, tuple[str, str]]:
    """The handler under test, by the key's prefix: "ok-" succeeds (not named: ok, with no detail); "once-"
    fails its first attempt, then succeeds; "never-" fails every attempt; "slow-" succeeds after ``SLOW_S``
    seconds."""
    verdicts = {}
    for m in batch.messages:
        key = (m.key or b"").decode()
        if key.startswith("ok-"):
            continue
        if key.startswith("never-"):
            verdicts[m.id] = ("retry", f"banco fora do ar (tentativa {m.attempt})")
        elif key.startswith("once-") and m.attempt == 1:
            verdicts[m.id] = ("retry", "timeout no banco")
        else:
            if key.startswith("slow-"):
                time.sleep(SLOW_S)
            verdicts[m.id] = ("ok", f"localizado na tentativa {m.attempt}")
    return verdicts


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    """A site whose queues run ``by_key`` one message a task, retried at once, found within 0.2 s of a publish."""
    site = make_site(discovery_interval_s=0.2)
    settings = {"handler": HANDLER, "batch_size": 1, "max_attempts": ATTEMPTS, "backoff_s": 0}
    site.profile(".*", **settings)
    site.farm("farm-sp1", slots=SLOTS)
    return site


def warm_up(site: Site) -> None:
    """Run a message on each slot of the farm, so that its handler processes are started (a second or two
    each): a short wait then measures the work, not the farm's start."""
    keys = [f"ok-{i}" for i in range(SLOTS)]
    answer = site.call("POST", f"/api/topics/{WARM_UP}/messages?wait_s=30", {"messages": messages(*keys)})
    assert not answer["timed_out"], answer


def messages(*keys: str) -> list[dict[str, str]]:
    return [{"key": key, "value": f"<localizar cpf='{key}'/>"} for key in keys]


def publish(site: Site, keys: list[str], wait_s: float) -> dict[str, Any]:
    body = {"messages": messages(*keys), "partitions": 1}
    answer = site.api.post(f"/api/topics/{TOPIC}/messages", params={"wait_s": wait_s}, json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def waiters_of(site: Site) -> Waiters:
    waiters: Waiters = site.coordinator.app.state.waiters
    return waiters


EXPECTED: list[dict[str, Any]] = [
    {"id": f"{TOPIC}/0/0", "key": "ok-1", "status": "ok", "attempts": 1, "detail": None},
    {"id": f"{TOPIC}/0/1", "key": "once-1", "status": "ok", "attempts": 2, "detail": "localizado na tentativa 2"},
    {
        "id": f"{TOPIC}/0/2",
        "key": "never-1",
        "status": "dead",
        "attempts": ATTEMPTS,
        "detail": f"banco fora do ar (tentativa {ATTEMPTS})",
    },
]


def test_the_api_answers_with_each_outcome_once_final_ok_retried_then_ok_and_dead(site: Site) -> None:
    started = time.monotonic()
    answer = publish(site, ["ok-1", "once-1", "never-1"], wait_s=30)
    waited_s = time.monotonic() - started

    assert answer == {"topic": TOPIC, "published": 3, "outcomes": EXPECTED, "running": [], "timed_out": False}
    assert waited_s < 15, "answered when the last outcome was final, not at the timeout"
    assert [m.key for m in site.dlq(TOPIC)] == [b"never-1"]
    assert waiters_of(site).waiting == 0


def test_a_wait_that_times_out_names_the_message_still_running_which_is_then_acked_once(site: Site) -> None:
    warm_up(site)
    answer = publish(site, ["ok-2", "slow-1"], wait_s=1)
    waiting_after_the_answer = waiters_of(site).waiting
    acks = site.wait_acked(TOPIC, 2, timeout_s=20)
    time.sleep(SLOW_S)  # room for a second ACK, were the message run again: there must be none

    assert answer["timed_out"] is True
    assert answer["running"] == [f"{TOPIC}/0/1"]
    assert [(o["key"], o["status"]) for o in answer["outcomes"]] == [("ok-2", "ok")]
    assert waiting_after_the_answer == 0
    assert Counter((a["offset"], a["status"], a["attempts"]) for a in site.acks(TOPIC)) == {
        (0, "ok", 1): 1,
        (1, "ok", 1): 1,
    }
    assert len(acks) == 2


def test_the_producer_waits_for_the_outcomes_reading_the_embedded_log(site: Site) -> None:
    with Producer(f"sqlite:///{site.root}/log.db", partitions=1) as producer:
        report = producer.publish(TOPIC, [("ok-1", "<c/>"), ("once-1", "<c/>"), ("never-1", "<c/>")], wait_s=30)

    assert report.outcomes == [MessageOutcome(**o) for o in EXPECTED]
    assert (report.running, report.timed_out, report.published) == ([], False, 3)


def test_the_producer_wait_times_out_with_the_ids_still_running(site: Site) -> None:
    with Producer(f"sqlite:///{site.root}/log.db", partitions=1) as producer:
        report = producer.publish(TOPIC, [("slow-1", "<c/>")], wait_s=0.3)

    assert (report.outcomes, report.running, report.timed_out) == ([], [f"{TOPIC}/0/0"], True)
    assert [(a["key"], a["status"]) for a in site.wait_acked(TOPIC, 1, timeout_s=20)] == [("slow-1", "ok")]


def run_cli(site: Site, csv_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "xtreaming", "publish", TOPIC, "--csv", str(csv_path), "--partitions", "1"]
    command += ["--broker", f"sqlite:///{site.root}/log.db", *options]
    env = {**os.environ, "COLUMNS": "200", "XTREAMING_LANG": "pt-BR"}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)


def write_csv(path: Path, keys: list[str]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["cpf", "nome"])
        writer.writerows([key, f"Cliente {key}"] for key in keys)
    return path


def test_the_cli_prints_each_outcome_and_exits_4_when_a_message_is_dead(site: Site, tmp_path: Path) -> None:
    done = run_cli(site, write_csv(tmp_path / "c.csv", ["ok-1", "once-1", "never-1"]), "--wait", "30")

    assert done.returncode == 4, done.stdout + done.stderr
    rows = [line.split("│") for line in done.stdout.splitlines() if line.startswith("│")]
    cells = [[cell.strip() for cell in row[1:5]] for row in rows]  # message, key, status, attempts
    shown = [[o["id"], o["key"], code_word("result", o["status"], "pt-BR"), str(o["attempts"])] for o in EXPECTED]
    assert cells == shown  # the status in the screen's words: "DLQ" for dead
    assert "3 concluídas (1 na DLQ); 0 ainda rodando" in done.stdout


def test_the_cli_exits_5_when_a_message_is_still_running_at_the_timeout(site: Site, tmp_path: Path) -> None:
    done = run_cli(site, write_csv(tmp_path / "c.csv", ["slow-1"]), "--wait", "0.3")

    assert done.returncode == 5, done.stdout + done.stderr
    assert f"{TOPIC}/0/0" in done.stdout
    assert "0 concluídas (0 na DLQ); 1 ainda rodando" in done.stdout


@pytest.mark.parametrize(
    ("wait", "refused"),
    [("0", "wait more than 0 seconds"), ("61", "less than or equal to 60"), ("5", "at most 10,000 messages")],
)
def test_the_cli_refuses_a_wait_it_cannot_keep_and_publishes_nothing(
    site: Site, tmp_path: Path, wait: str, refused: str
) -> None:
    keys = [f"{i:011d}" for i in range(10_001 if wait == "5" else 1)]
    done = run_cli(site, write_csv(tmp_path / "c.csv", keys), "--wait", wait)

    assert done.returncode == 2, done.stdout + done.stderr
    assert refused in " ".join(done.stderr.split())
    assert TOPIC not in httpx.get(f"{site.url}/api/queues", timeout=10).text


def expected(topic: str) -> list[dict[str, Any]]:
    return [{**o, "id": o["id"].replace(TOPIC, topic)} for o in EXPECTED]


@pytest.mark.kafka
def test_the_api_and_the_producer_wait_for_the_outcomes_on_kafka(tmp_path: Path, fresh_tansu: Tansu) -> None:
    site = KafkaSite(tmp_path, fresh_tansu.url, f"sqlite:///{tmp_path}/state.db")
    try:
        site.start_coordinator()
        settings = {"handler": HANDLER, "batch_size": 1, "max_attempts": ATTEMPTS, "backoff_s": 0}
        site.call("POST", "/api/profiles", {"pattern": ".*", "settings": settings})
        site.farm("farm-poa", slots=SLOTS)
        with Producer(fresh_tansu.url, partitions=1) as producer:
            report = producer.publish(TOPIC, [("ok-1", "<c/>"), ("once-1", "<c/>"), ("never-1", "<c/>")], wait_s=30)
        body = {"messages": messages("ok-1", "once-1", "never-1"), "partitions": 1}
        answer = site.call("POST", f"/api/topics/{OTHER}/messages?wait_s=30", body)
    finally:
        site.close()

    assert (report.outcomes, report.running) == ([MessageOutcome(**o) for o in EXPECTED], [])
    assert answer == {"topic": OTHER, "published": 3, "outcomes": expected(OTHER), "running": [], "timed_out": False}


def test_the_producer_waits_for_at_most_its_cap_of_messages_and_says_what_it_wrote(tmp_path: Path) -> None:
    rows = [(f"{i:011d}", "<c/>") for i in range(12_000)]
    with Producer(f"sqlite:///{tmp_path}/log.db", partitions=1, batch_size=4000) as producer:
        with pytest.raises(InvalidInput, match=r"messages from 8,001 on were not published \(the first 8,000 were\)"):
            producer.publish(TOPIC, rows, wait_s=1)
        with pytest.raises(ValueError, match="wait_s must be more than 0 and at most 60 seconds, got 0"):
            producer.publish(TOPIC, rows[:1], wait_s=0)
        written = producer.broker.end_offsets(TOPIC)

    assert written == {0: 8000}
