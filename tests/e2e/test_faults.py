"""Faults end to end: killed and hanging workers, failing and garbage-writing workers, a killed farm."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable

from tests.farm.builders import worker
from tests.farm.site import Site, is_alive, once_each
from tests.waiting import wait_until

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
STDERR = "importer: base MULTCOB03 refused the connection (ORA-12541)"


def test_a_worker_killed_mid_task_has_its_messages_retried_and_acked(site: Site) -> None:
    site.profile(".*", command=worker("stuck-once"), batch_size=10, backoff_s=0)
    site.publish(TOPIC, 10)
    farm = site.farm("farm-a", slots=1)
    [[pid]] = wait_until(site.pid_files, 10, "the worker to start")

    os.kill(pid, signal.SIGKILL)

    acks = site.wait_acked(TOPIC, 10)
    assert len(acks) == 10
    assert once_each(acks)
    assert {(a["status"], a["attempts"]) for a in acks} == {("ok", 2)}
    assert "10 message(s) retry: worker exited with code -9" in farm.output()


def test_a_hanging_worker_is_killed_with_its_children_at_its_timeout_and_retried(site: Site) -> None:
    site.profile(".*", command=worker("hang-once"), batch_size=10, backoff_s=0, timeout_s=1)
    site.publish(TOPIC, 10)
    farm = site.farm("farm-a", slots=1)

    acks = site.wait_acked(TOPIC, 10)

    assert len(acks) == 10
    assert once_each(acks)
    assert {(a["status"], a["attempts"]) for a in acks} == {("ok", 2)}
    [pids] = site.pid_files()
    assert len(pids) == 2
    assert not any(is_alive(pid) for pid in pids)
    assert "timed out after 1 s: worker process tree killed" in farm.output()


def test_a_worker_exiting_3_every_time_ends_in_the_dlq_with_its_stderr_tail(site: Site) -> None:
    site.profile(".*", command=worker("exit3"), batch_size=5, backoff_s=0.05, max_attempts=3)
    site.publish(TOPIC, 5)
    site.farm("farm-a", slots=1)

    acks = site.wait_acked(TOPIC, 5)

    assert {(a["status"], a["attempts"]) for a in acks} == {("dead", 3)}
    dead = site.dlq(TOPIC)
    assert len(dead) == 5
    headers = dict(dead[0].headers)
    errors = json.loads(headers["xtreaming-errors"])
    assert errors == [f"attempt {n}: worker exited with code 3; stderr tail: {STDERR}" for n in (1, 2, 3)]
    assert dead[0].key is not None
    assert json.loads(dead[0].value)["cpf"] == dead[0].key.decode()


def test_garbage_in_output_jsonl_is_a_clear_error_and_the_farm_carries_on(site: Site) -> None:
    garbage, fine = "MULTCOB02.1186.IMPORTACAO.LIXO", "MULTCOB02.1186.IMPORTACAO.CARGA"
    site.profile(r".*\.LIXO", command=worker("garbage"), batch_size=5)
    site.profile(".*", command=worker("ok"), batch_size=5)
    site.publish(garbage, 10)
    farm = site.farm("farm-a", slots=1)
    site.wait_acked(garbage, 10)
    site.publish(fine, 10)

    fine_acks = site.wait_acked(fine, 10)

    assert Counter(a["status"] for a in site.acks(garbage)) == {"dead": 10}
    [error] = {json.loads(dict(m.headers)["xtreaming-errors"])[0] for m in site.dlq(garbage)}
    assert error.startswith(
        "attempt 1: output.jsonl line 1: not JSON (Expecting value: line 1 column 1 (char 0)): 'this is not json' "
        "(worker exited with code 0)"
    )
    assert Counter(a["status"] for a in fine_acks) == {"ok": 10}
    assert farm.process.poll() is None


def test_a_farm_killed_with_sigkill_loses_its_leases_and_the_other_farm_finishes(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(heartbeat_interval_s=0.3)
    site.profile(".*", command=worker("stuck-on", "farm-a"), batch_size=5, backoff_s=5)
    site.publish(TOPIC, 20, partitions=1)
    farm_a = site.farm("farm-a", slots=2)
    wait_until(lambda: len(site.pid_files()) == 2, 10, "farm-a's two workers to start")

    farm_a.signal(signal.SIGKILL)
    farm_a.wait(5)
    site.farm("farm-b", slots=2)

    acks = site.wait_acked(TOPIC, 20)
    assert len(acks) == 20
    assert once_each(acks)
    assert {a["farm"] for a in acks} == {"farm-b"}
    assert Counter(a["attempts"] for a in acks) == {2: 10, 1: 10}  # the lost leases are retried at once
    farms = {f["id"]: f for f in site.call("GET", "/api/farms")}
    assert farms["farm-a"]["lost"]
    assert not farms["farm-b"]["lost"]
