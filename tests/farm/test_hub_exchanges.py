"""Results of handler tasks sent by the thread that reads them (``FarmNode._handler_ended``): once no slot runs a task
the hub sends them itself, in one request; a quick task's result waits for tasks begun with it up to ``HOLD_S``, then
goes by an exchanger while they run; it does not wait for tasks begun long before. A real coordinator over HTTP and
real handler processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.farm.site import Site
from tests.farm.test_node import TOPIC, registered_node
from tests.waiting import wait_until
from xtreaming.farm import node as node_module
from xtreaming.farm.handler_hub import WAITS_TOGETHER
from xtreaming.farm.node import FarmNode
from xtreaming.farm.reporting import Report

pytestmark = pytest.mark.skipif(not WAITS_TOGETHER, reason="handler pipes are waited on by each slot here")

FIRST_HANGS = "tests.farm.handlers:first_hangs"


class Request(NamedTuple):
    thread: str
    results: int
    sent_at: float


def recorded(node: FarmNode, monkeypatch: pytest.MonkeyPatch) -> list[Request]:
    """Each lease request ``node`` sends from now on: the thread sending it, the results it carries, when."""
    requests: list[Request] = []
    send = node._request

    def request(idle: list[int], wait_s: float, reports: list[Report], **options: Any) -> bool:
        requests.append(Request(threading.current_thread().name, len(reports), time.monotonic()))
        return send(idle, wait_s, reports, **options)

    monkeypatch.setattr(node, "_request", request)
    return requests


@pytest.fixture
def stopped_after() -> Iterator[list[FarmNode]]:
    """Nodes stopped at the end of the test, their running tasks killed."""
    nodes: list[FarmNode] = []
    yield nodes
    for node in nodes:
        node.stop_tasks(None, "the test is over")
        node.stop()
        node.finish()


def test_results_of_handler_tasks_that_end_together_go_in_one_request_the_hub_sends(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopped_after: list[FarmNode]
) -> None:
    monkeypatch.setattr(node_module, "HOLD_S", 30.0)  # held until the last ends, however slow the machine
    monkeypatch.setattr(node_module, "QUICK_TASK_S", 30.0)
    node = registered_node(site, tmp_path, 12, slots=4, handler="tests.farm.handlers:echo", batch_size=1)
    stopped_after.append(node)
    requests = recorded(node, monkeypatch)

    node.run_once(wait_s=0)  # the dispatcher leases the first four; the hub carries on alone

    site.wait_acked(TOPIC, 12)
    carrying = [r for r in requests if r.results]
    assert [r.results for r in carrying] == [4, 4, 4]
    # The first round's may go by an exchanger: its tasks can end before the dispatcher's request is done with.
    assert [r.thread for r in carrying[1:]] == ["handler-hub", "handler-hub"]


def test_a_quick_result_waits_for_a_task_begun_with_it_then_goes_while_that_one_runs(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopped_after: list[FarmNode]
) -> None:
    monkeypatch.setattr(node_module, "HOLD_S", 0.3)
    monkeypatch.setattr(node_module, "QUICK_TASK_S", 30.0)
    node = registered_node(site, tmp_path, 2, slots=2, handler=FIRST_HANGS, batch_size=1)
    stopped_after.append(node)
    requests = recorded(node, monkeypatch)
    began = time.monotonic()

    node.run_once(wait_s=0)  # two tasks: the first message's hangs, the second's is ok at once

    acks = site.wait_acked(TOPIC, 1)
    assert [a["offset"] for a in acks] == [1]
    assert not node.slots[0].idle  # the hanging task still runs
    [carrying] = [r for r in requests if r.results]
    assert carrying.thread.startswith("exchanger-")
    assert carrying.sent_at - began >= 0.3


def test_a_quick_result_does_not_wait_for_tasks_begun_long_before(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopped_after: list[FarmNode]
) -> None:
    monkeypatch.setattr(node_module, "HOLD_S", 60.0)  # were it held, the wait below would time out first
    monkeypatch.setattr(node_module, "QUICK_TASK_S", 0.3)
    node = registered_node(site, tmp_path, 1, slots=2, handler=FIRST_HANGS, batch_size=1)
    stopped_after.append(node)
    node.run_once(wait_s=0)  # the first message's task hangs on one slot; no work for the other
    wait_until(lambda: time.monotonic() - node.slots[0].started > 0.5, 10, "the hanging task to be no longer young")
    site.publish(TOPIC, 1, partitions=1, first=1)
    requests = recorded(node, monkeypatch)

    node.run_once(wait_s=10)  # the dispatcher leases the new message's task to the idle slot

    acks = site.wait_acked(TOPIC, 1, timeout_s=20)
    assert [a["offset"] for a in acks] == [1]
    [carrying] = [r for r in requests if r.results]
    assert carrying.thread.startswith("exchanger-")  # the hub reads on: another thread sends at once
