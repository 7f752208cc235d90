"""The election among coordinators sharing a store, and the fence on their writes: on a SQLite file (which one
coordinator owns, but whose row and fence work the same) and on PostgreSQL. Each coordinator is a ``Store``
and a ``Leadership`` of its own on the same database, with a clock the test moves."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from xtreaming.coordinator.leadership import Leadership, Role
from xtreaming.coordinator.records import BaseRecord
from xtreaming.coordinator.store import Store
from xtreaming.coordinator.store.database import Database
from xtreaming.coordinator.store.leadership import LeadershipTable
from xtreaming.errors import NotLeader

LEASE_S = 3.0


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Node:
    """One coordinator's store, fenced by its own election, with its own clock."""

    def __init__(self, store_url: str, name: str) -> None:
        self.store = Store.open(store_url)
        self.clock = Clock()
        self.leadership = Leadership(self.store.leadership, f"http://{name}:8700", LEASE_S, monotonic=self.clock)
        self.store.fence_writes(self.leadership.fence, idle_transaction_s=LEASE_S)

    def step(self, after_s: float = 0.0) -> None:
        self.clock.now += after_s
        self.leadership.step()

    def write(self, name: str) -> None:
        self.store.put_base(BaseRecord(name=name, max_workers=4, min_workers=0, paused=False))


@pytest.fixture
def nodes(store_url: str) -> Iterator[tuple[Node, Node]]:
    with ExitStack() as stack:
        a, b = Node(store_url, "a"), Node(store_url, "b")
        stack.callback(a.store.close)
        stack.callback(b.store.close)
        yield a, b


def epoch(node: Node) -> int | None:
    """The epoch ``node`` leads in (a function: mypy would keep an attribute narrowed across steps)."""
    return node.leadership.epoch


def bases(node: Node) -> set[str]:
    return {b.name for b in node.store.list_bases()}


def test_the_first_coordinator_leads_at_once_and_the_second_stands_by_while_it_renews(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.step()
    for _ in range(10):  # 10 s: the leader renews every second, the standby watches as often
        b.step(1.0)
        a.step(1.0)

    assert (a.leadership.role(), epoch(a)) == (Role.LEADER, 1)
    assert (b.leadership.role(), epoch(b)) == (Role.STANDBY, None)
    leader = b.leadership.leader()
    assert leader is not None
    assert (leader.url, leader.epoch) == ("http://a:8700", 1)


def test_a_standby_takes_over_once_the_leader_stops_renewing_for_the_lease(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.step()
    b.step()  # sees the lead: counts from now
    b.step(LEASE_S - 0.1)
    assert epoch(b) is None  # not yet: the lease has not run out on its clock

    b.step(0.2)

    assert (b.leadership.role(), epoch(b)) == (Role.LEADER, 2)
    b.write("MULTCOB03")
    assert "MULTCOB03" in bases(b)


def test_a_leader_paused_past_its_lease_writes_nothing_then_steps_down(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.step()
    a.write("BEFORE")
    b.step()
    a.clock.now += 10  # paused: its clock goes on, it renews nothing
    b.step(LEASE_S + 0.1)
    assert epoch(b) == 2

    with pytest.raises(NotLeader, match="not the leader"):  # its own clock says the lead lapsed
        a.write("AFTER")
    a.leadership._valid_until = a.clock.now + LEASE_S  # as if it believed it still led: the database says no
    with pytest.raises(NotLeader, match="has passed to epoch 2") as refused:
        a.write("AFTER")
    a.step()

    assert refused.value.leader_url == "http://b:8700"
    assert bases(b) == {"BEFORE"}
    assert (a.leadership.role(), epoch(a)) == (Role.STANDBY, None)


def test_a_leader_cut_off_from_the_store_stops_serving_as_its_lead_lapses_and_is_replaced(
    nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    a, b = nodes
    a.step()
    b.step()
    a.leadership._table = LeadershipTable(Database(f"sqlite:///{tmp_path}/no/such/folder/state.db"))  # unreachable

    a.step(1.0)
    leading_while_cut_off = a.leadership.role()
    a.clock.now += LEASE_S
    b.step(LEASE_S + 0.1)

    assert leading_while_cut_off == Role.LEADER  # for the rest of its lease
    assert a.leadership.role() == Role.DOWN
    assert not a.leadership.holds()
    assert epoch(b) == 2


def test_a_leader_that_lets_go_is_replaced_at_the_next_look(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.step()
    b.step()

    a.leadership.release()
    b.step(0.1)

    assert epoch(b) == 2
    with pytest.raises(NotLeader):
        a.write("GONE")


def test_a_standby_writes_nothing(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.step()
    b.step()

    with pytest.raises(NotLeader):
        b.write("STANDBY")

    assert bases(a) == set()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_a_takeover_waits_for_the_old_leaders_open_write_which_commits_before_the_epoch_moves(
    nodes: tuple[Node, Node], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = nodes
    a.step()
    b.step()
    opened, release = threading.Event(), threading.Event()

    def slow_write() -> None:
        with a.store.transaction():
            a.write("IN_FLIGHT")
            opened.set()
            release.wait(10)

    writer = threading.Thread(target=slow_write)
    writer.start()
    assert opened.wait(10)
    b.clock.now += LEASE_S + 0.1
    b.leadership.step()
    assert epoch(b) is None  # the row is held FOR KEY SHARE by the open write: the takeover waited
    assert "could not take over from epoch 1 yet" in caplog.text
    assert "lock timeout" in caplog.text
    release.set()
    writer.join(10)
    b.step()

    assert epoch(b) == 2
    assert bases(b) == {"IN_FLIGHT"}  # it committed in epoch 1, before the takeover
