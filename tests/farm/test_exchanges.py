"""When a farm sends a second lease request beside one that is out (``node.MAX_EXCHANGES``,
``SECOND_EXCHANGE_AFTER_S``): only beside one whose answer is slow to come, never while the thread that sent it is
starting the tasks of its answer (those tasks' results go in its next request, together), never beside one just
sent, never beyond the most."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from xtreaming.farm.config import FarmConfig
from xtreaming.farm.node import MAX_EXCHANGES, FarmNode
from xtreaming.farm.reporting import Report

Sent = list[tuple[list[str], list[int]]]


@pytest.fixture
def farm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FarmNode, Sent]]:
    """A farm with a result waiting to go and no slot to ask work for; its requests recorded, not sent."""
    farm = FarmNode(FarmConfig("http://127.0.0.1:9", "farm-x", slots=2, work_dir=tmp_path / "farm-x"))
    sent: Sent = []

    def request(idle: list[int], wait_s: float, reports: list[Report], **options: Any) -> bool:
        answered: Callable[[], None] = options.get("answered", lambda: None)
        answered()
        sent.append(([r.task_id for r in reports], idle))
        farm.outbox.done(len(reports))
        return True

    monkeypatch.setattr(farm, "_request", request)
    farm._starved = True  # the coordinator had no work: the idle slots are the dispatcher's
    farm.outbox.put(Report("task-0", {"default": "ok"}))
    yield farm, sent
    farm.lifeline.close()


def out(farm: FarmNode, requests: int, *, awaiting: int, sent_s_ago: float) -> None:
    """``requests`` sent as tasks ended are out, the oldest ``sent_s_ago``; ``awaiting`` of them have no answer yet."""
    farm._exchanges, farm._awaiting = requests, awaiting
    farm._first_sent = time.monotonic() - sent_s_ago


def test_a_second_request_goes_beside_one_whose_answer_is_slow(farm: tuple[FarmNode, Sent]) -> None:
    node, sent = farm
    out(node, 1, awaiting=1, sent_s_ago=1.0)

    assert node._exchange_ready(None)
    assert sent == [(["task-0"], [])]
    assert len(node.outbox) == 0


def test_no_second_request_while_the_first_is_answered_and_its_tasks_start(farm: tuple[FarmNode, Sent]) -> None:
    node, sent = farm
    out(node, 1, awaiting=0, sent_s_ago=1.0)  # answered: the thread that sent it is starting its tasks

    assert not node._exchange_ready(None)
    assert sent == []
    assert len(node.outbox) == 1  # for that thread's next request


def test_no_second_request_beside_one_just_sent(farm: tuple[FarmNode, Sent]) -> None:
    node, sent = farm
    out(node, 1, awaiting=1, sent_s_ago=0.0)

    assert not node._exchange_ready(None)
    assert sent == []


def test_no_more_requests_than_the_most(farm: tuple[FarmNode, Sent]) -> None:
    node, sent = farm
    out(node, MAX_EXCHANGES, awaiting=MAX_EXCHANGES, sent_s_ago=1.0)

    assert not node._exchange_ready(None)
    assert sent == []
