"""A queue whose settings give neither a command nor a handler: never a contender, and said so."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from tests.coordinator.builders import at, farms, leased, make_queue, slot, snapshot
from xtreaming.coordinator.core.scheduler import Idle, explain, schedule

NOW = at("2025-03-04T10:00")
BULK = "MULTCOB03.1186.IMPORTACAO.CARGA"
OTHER = "MULTCOB03.1187.IMPORTACAO.CARGA"
bulk = partial(make_queue, BULK)


def test_a_queue_without_a_worker_gets_no_slot_even_at_the_highest_priority() -> None:
    idle = replace(bulk(priority=9), has_worker=False)
    state = snapshot(idle, make_queue(OTHER, priority=1))

    assert leased(schedule(state, slot(), NOW))[0] == OTHER


def test_a_slot_with_only_queues_without_a_worker_stays_idle() -> None:
    state = snapshot(replace(bulk(), has_worker=False))

    assert isinstance(schedule(state, slot(), NOW), Idle)


def test_explain_says_no_worker_configured_before_any_other_rule() -> None:
    state = snapshot(replace(bulk(paused=True), has_worker=False))

    assert explain(state, BULK, NOW, farms({"os": "windows"})) == "no worker configured"
    assert explain(state, BULK, NOW, []) == "no worker configured"


def test_a_worker_set_later_makes_the_queue_a_contender_again() -> None:
    without = snapshot(replace(bulk(), has_worker=False))

    again = without.with_queue(bulk())

    assert leased(schedule(again, slot(), NOW))[0] == BULK
