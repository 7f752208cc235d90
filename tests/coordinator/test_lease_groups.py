"""Lease requests settled in groups (``lease_groups.py``, ``Coordinator.settle_and_lease_together``): each request
answered as it would be alone, those arriving together settled in one store transaction and one append."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.coordinator.test_service import TOPIC, Site, farm, keys, ok
from tests.coordinator.test_service import site as site  # on both logs and stores
from tests.coordinator.workers import give_workers
from xtreaming.broker import Position, Record
from xtreaming.coordinator.api.lease_groups import Groups
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.service import LeaseAsk, Report
from xtreaming.errors import InvalidSlot, TaskOfAnotherFarm
from xtreaming.wire.verdict import Verdict


def test_requests_arriving_while_a_group_is_served_are_served_as_the_next_group_each_with_its_answer() -> None:
    served: list[list[int]] = []
    first_in, release = threading.Event(), threading.Event()

    def serve(asks: Sequence[int]) -> list[int | BaseException]:
        served.append(list(asks))
        first_in.set()
        release.wait(10)
        return [ValueError(f"odd {ask}") if ask % 2 else ask * 10 for ask in asks]

    async def scenario() -> list[object]:
        groups: Groups[int, int] = Groups(serve)
        first = asyncio.create_task(groups.answer(0))
        await asyncio.to_thread(first_in.wait, 10)
        rest = [asyncio.create_task(groups.answer(ask)) for ask in (1, 2, 3)]
        await asyncio.sleep(0)
        assert groups.waiting == 3
        release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    answers = asyncio.run(scenario())

    assert served == [[0], [1, 2, 3]]
    assert [str(a) if isinstance(a, ValueError) else a for a in answers] == [0, "odd 1", 20, "odd 3"]


def test_a_group_whose_serving_fails_fails_each_of_its_requests_and_the_next_group_is_served() -> None:
    def serve(asks: Sequence[str]) -> list[str | BaseException]:
        if "broken" in asks:
            raise OSError("commit failed: disk I/O error")
        return [ask.upper() for ask in asks]

    async def scenario() -> tuple[list[object], str]:
        groups: Groups[str, str] = Groups(serve)
        failed = await asyncio.gather(groups.answer("broken"), return_exceptions=True)
        return list(failed), await groups.answer("next")

    failed, after = asyncio.run(scenario())

    assert [str(f) for f in failed] == ["commit failed: disk I/O error"]
    assert after == "NEXT"


def test_a_caller_gone_before_its_group_is_served_leaves_the_others_answered() -> None:
    release = threading.Event()

    def serve(asks: Sequence[int]) -> list[int | BaseException]:
        release.wait(10)
        return list(asks)

    async def scenario() -> list[object]:
        groups: Groups[int, int] = Groups(serve)
        first = asyncio.create_task(groups.answer(1))
        await asyncio.sleep(0.05)
        gone, stays = asyncio.create_task(groups.answer(2)), asyncio.create_task(groups.answer(3))
        await asyncio.sleep(0)
        gone.cancel()
        release.set()
        return list(await asyncio.gather(first, gone, stays, return_exceptions=True))

    first, gone, stays = asyncio.run(scenario())

    assert (first, isinstance(gone, asyncio.CancelledError), stays) == (1, True, 3)


def test_requests_settled_together_refuse_alone_what_one_alone_would_and_share_one_append(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.store.add_profile(".*", WorkSettings(batch_size=2))
    site.publish(TOPIC, keys(16))
    a, b = farm(site, "farm-a", slots=2), farm(site, "farm-b", slots=2)
    a_tasks, b_tasks = site.coordinator.lease(a, [0, 1]), site.coordinator.lease(b, [0, 1])
    appends: Counter[str] = Counter()
    begin_append = site.broker.begin_append

    def counted(topic: str, records: Sequence[Record]) -> Callable[[], Sequence[Position]]:
        appends[topic] += 1
        return begin_append(topic, records)

    monkeypatch.setattr(site.broker, "begin_append", counted)
    answers = site.coordinator.settle_and_lease_together(
        [
            LeaseAsk(a, [(t.task_id, ok(t)) for t in a_tasks], [0, 1]),
            LeaseAsk(a, [(b_tasks[0].task_id, ok(b_tasks[0]))], []),  # another farm's task
            LeaseAsk(b, [(t.task_id, ok(t)) for t in b_tasks], [0]),
            LeaseAsk(b, [], [7]),  # a slot farm-b lacks
        ]
    )

    (a_settled, a_leased), refused_task, (b_settled, b_leased), refused_slot = answers  # type: ignore[misc]
    assert isinstance(refused_task, TaskOfAnotherFarm)
    assert isinstance(refused_slot, InvalidSlot)
    assert [(s.accepted, s.ok) for s in a_settled + b_settled] == [(True, 2)] * 4
    assert (len(a_leased), len(b_leased)) == (2, 1)
    assert appends == {f"{TOPIC}.ACK": 1}
    assert {t.id for t in site.store.active_tasks()} == {t.task_id for t in a_leased + b_leased}
    acked = Counter(r["offset"] for r in site.results(f"{TOPIC}.ACK"))
    assert acked == dict.fromkeys(range(8), 1)


URGENT = "MULTCOB03.1189.COBSINC.LOCALIZACAO"


def _ran(site: Site) -> dict[tuple[str, int], str]:
    """A site whose farm runs one task of one message per slot on two queues, and the task of each message."""
    site.store.add_profile(".*", WorkSettings(batch_size=1, max_attempts=3))
    site.publish(TOPIC, keys(5))
    site.publish(URGENT, keys(3, start=100))
    site.coordinator.discover()  # a topic made after the first pass
    site.coordinator.run_once()
    give_workers(site.coordinator)
    site.coordinator.controls.update_base("MULTCOB03", "test", max_workers=8)
    tasks = site.coordinator.lease(farm(site, slots=8), list(range(8)))
    return {(str(t.topic), t.messages[0].offset): t.task_id for t in tasks}


def _effects(site: Site) -> tuple[object, ...]:
    """What settling left, without the tasks' ids (each site makes its own): the results of each message, the
    tasks still running, the messages pending again, the ledgers stored and the queues' counts."""
    results = {
        topic: sorted((r["offset"], r["status"], r["attempts"], r["detail"]) for r in site.results(topic))
        for topic in (f"{TOPIC}.ACK", f"{URGENT}.ACK")
    }
    running = sorted((t.topic, [m.offset for m in t.messages]) for t in site.store.active_tasks())
    ledgers = sorted((r.topic, r.partition, r.state) for r in site.store.load_ledgers())
    retries = sorted((r.topic, r.offset, r.attempts, r.errors) for r in site.store.load_retries())
    queues = [site.coordinator.queue(topic) for topic in (TOPIC, URGENT)]
    counts = [
        (sorted(q.pending), len(q.running), q.failures, q.dead, q.activity.last_error, q.activity.minutes)
        for q in queues
    ]
    return results, running, ledgers, retries, counts


def test_a_requests_results_settled_together_answer_and_leave_what_they_would_one_at_a_time(tmp_path: Path) -> None:
    together = Site(f"sqlite:///{tmp_path}/a/log.db", f"sqlite:///{tmp_path}/a/state.db")
    one_by_one = Site(f"sqlite:///{tmp_path}/b/log.db", f"sqlite:///{tmp_path}/b/state.db")
    retry, error = Report(Verdict.RETRY, {}, "busy"), Report(Verdict.ERROR, {}, "refused")
    #: By message: ok ones of both queues, one retried, one dead, one ok sent twice, a task nobody leased.
    reports = [
        ((TOPIC, 0), Report(Verdict.OK, {})),
        ((TOPIC, 1), retry),
        ((URGENT, 0), Report(Verdict.OK, {}, "done")),
        ((TOPIC, 0), Report(Verdict.OK, {})),
        (None, Report(Verdict.OK, {})),
        ((TOPIC, 2), Report(Verdict.OK, {})),
        ((URGENT, 1), error),
        ((TOPIC, 3), Report(Verdict.OK, {})),
    ]
    answers = []
    for each in (together, one_by_one):
        task_of = _ran(each)
        completions = [(task_of[at] if at else "0" * 32, report) for at, report in reports]
        farm_id = each.coordinator.farms()[0][0].id
        if each is together:
            [answer] = each.coordinator.settle_and_lease_together([LeaseAsk(farm_id, completions, [])])
            assert not isinstance(answer, Exception)
            answers.append(answer[0])
        else:
            answers.append([each.coordinator.complete(task_id, report) for task_id, report in completions])

    assert answers[0] == answers[1]
    assert [(a.accepted, a.ok, a.retried, a.dead) for a in answers[0]] == [
        (True, 1, 0, 0), (True, 0, 1, 0), (True, 1, 0, 0), (False, 0, 0, 0),
        (False, 0, 0, 0), (True, 1, 0, 0), (True, 0, 0, 1), (True, 1, 0, 0),
    ]  # fmt: skip
    assert _effects(together) == _effects(one_by_one)
    for each in (together, one_by_one):
        each.store.close()
        each.broker.close()
