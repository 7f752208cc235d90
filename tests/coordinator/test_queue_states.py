"""The screen's truthful figures in the service: speeds over 10 s / 1 min / 1 h, "failing" with its last error, "done"
with when it finished, and each base's pending work and ETA."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.coordinator.test_service import Site, farm, keys
from xtreaming.coordinator import service
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.service import Report
from xtreaming.errors import QueueNotFound
from xtreaming.wire.verdict import Verdict

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"


def test_a_queue_whose_attempts_only_fail_is_failing_with_its_last_error_and_no_eta(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=2, max_attempts=5, backoff_s=0))
    site.publish(TOPIC, keys(6))
    farm_id = farm(site, slots=2)
    first, second = site.coordinator.lease(farm_id, [0, 1])
    site.clock.advance(2)
    site.coordinator.complete(first.task_id, Report(Verdict.RETRY, {}, "CRM recusou a conexão"))
    site.coordinator.complete(second.task_id, Report(Verdict.RETRY, {}, "CRM recusou a conexão de novo"))
    site.coordinator.lease(farm_id, [0, 1])

    [row], _ = site.coordinator.figures()

    assert row.state == "failing"
    assert row.workers == 2
    assert (row.last_error, row.last_error_attempt) == ("CRM recusou a conexão de novo", 1)
    assert (row.eta_s, row.speed, row.speed_10s) == (None, 0.0, 0.0)


def test_a_queue_that_also_succeeds_keeps_running(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=2, max_attempts=5, backoff_s=0))
    site.publish(TOPIC, keys(8))
    farm_id = farm(site, slots=2)
    good, bad = site.coordinator.lease(farm_id, [0, 1])
    site.clock.advance(2)
    site.coordinator.complete(good.task_id, Report(Verdict.OK, {}))
    site.coordinator.complete(bad.task_id, Report(Verdict.RETRY, {}, "timeout"))
    site.coordinator.lease(farm_id, [0, 1])

    [row], _ = site.coordinator.figures()

    assert row.state == "running"
    assert (row.last_error, row.last_error_attempt) == ("timeout", 1)
    assert row.speed_10s > 0
    assert row.eta_s is not None


def test_a_finished_queue_is_done_with_its_time_and_its_10_s_speed_falls_to_0(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=10))
    site.publish(TOPIC, keys(10))
    farm_id = farm(site)
    [task] = site.coordinator.lease(farm_id, [0])
    site.clock.advance(1)
    site.coordinator.complete(task.task_id, Report(Verdict.OK, {}))
    finished_at = site.clock.now

    [just_done], _ = site.coordinator.figures()
    site.clock.advance(15)
    [row], _ = site.coordinator.figures()

    assert (just_done.state, just_done.speed_10s) == ("done", 10.0)
    assert (row.state, row.finished_at, row.eta_s, row.speed_10s) == ("done", finished_at, None, 0.0)
    assert row.speed > 0  # the one-minute figure still counts it
    assert row.speed_1h > 0


def test_the_screen_gives_each_base_its_pending_work_and_when_it_should_finish(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=10))
    site.publish(TOPIC, keys(40))
    farm_id = farm(site, slots=1)
    [task] = site.coordinator.lease(farm_id, [0])
    site.clock.advance(10)  # one worker: 10 messages in 10 s
    site.coordinator.complete(task.task_id, Report(Verdict.OK, {}))

    [base] = site.coordinator.screen().bases

    assert base.pending == 30
    assert base.eta_s == 30.0  # base limit 4, but the farms have a single slot: 30 messages at 1/s
    assert base.eta_at is not None
    assert (base.eta_at - site.clock.now).total_seconds() == 30.0


def test_status_carries_the_site_zone_the_new_queue_figures_and_each_bases_pending_work(api: httpx.Client) -> None:
    body = {"messages": [{"key": str(i), "value": "x"} for i in range(7)], "partitions": 2}
    api.post(f"/api/topics/{TOPIC}/messages", json=body).raise_for_status()

    status = api.get("/api/status").json()

    assert status["time_zone"] == "America/Sao_Paulo"
    [queue] = status["queues"]
    assert queue["state"] == "no-worker"
    assert {k: queue[k] for k in ("speed_10s", "speed_1h", "last_error", "finished_at", "eta_s")} == {
        "speed_10s": 0.0, "speed_1h": 0.0, "last_error": None, "finished_at": None, "eta_s": None,
    }  # fmt: skip
    [base] = status["bases"]
    assert (base["name"], base["pending"], base["eta_s"], base["eta_at"]) == ("MULTCOB03", 7, None, None)


def test_one_queue_row_is_the_screen_row_without_working_out_every_queue(site: Site) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=4))
    site.publish(TOPIC, keys(10))
    site.publish("MULTCOB02.1186.COBSINC.LOCALIZACAO", keys(3))
    site.coordinator.lease(farm(site), [0])

    rows, _ = site.coordinator.figures()

    assert site.coordinator.queue_row(TOPIC) == next(r for r in rows if r.topic == TOPIC)
    with pytest.raises(QueueNotFound):
        site.coordinator.queue_row("A.1.B.C")


def test_while_a_screen_watches_the_background_pass_keeps_its_figures_fresh_for_reads_finding_the_lock_held(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SCREEN_FRESH_S", 0.0)  # every pass takes them again, while a screen watches
    site.store.add_profile(".*", WorkSettings(batch_size=4))
    site.publish(TOPIC, keys(10))
    coordinator = site.coordinator
    [before] = coordinator.screen().queues
    coordinator.lease(farm(site), [0])
    coordinator.run_once()
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with coordinator._lock:  # a farm's request across a store round trip
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    held.wait(10)
    try:
        started = time.monotonic()
        [row] = coordinator.screen(wait_s=0.05).queues
        waited_s = time.monotonic() - started
    finally:
        release.set()
        holder.join()

    assert (before.workers, row.workers, row.in_flight) == (0, 1, 4)
    assert waited_s < 1
