"""Replay, skip and purge by filter: each letter replayed once, a dry run or a filter matching nothing changes
nothing, a replay cut short resumes without appending twice, every action audited; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from tests.coordinator.dead_letters.letters import DLQ, TOPIC, cpf, kill, replayed_copies, total, value_of
from xtreaming.broker import Broker
from xtreaming.coordinator.dead_letter_records import (
    REPLAY_OF,
    DeadLetter,
    InvalidLetterFilter,
    LetterFilter,
    LetterState,
    NoDeadLetters,
    ReplayState,
)
from xtreaming.coordinator.dead_letters import DeadLetters
from xtreaming.coordinator.store import Store
from xtreaming.wire.message_id import parse_message_id

EVERYTHING = LetterFilter(TOPIC)


def states(letters: DeadLetters) -> Counter[LetterState]:
    return Counter(letter.state for letter in letters.find(EVERYTHING, limit=1000)[0])


def test_a_replay_appends_each_letter_once_as_a_new_message_linked_to_it(
    letters: DeadLetters, broker: Broker, store: Store
) -> None:
    kill(broker, [cpf(n) for n in range(1200)], headers=(("origem", b"crm"),))
    letters.index()

    count, replay = letters.replay(EVERYTHING, "ana", rate_per_s=5000)
    letters.replays.drain()

    assert replay is not None
    assert count == 1200
    copies = replayed_copies(broker)
    assert sorted(Counter(dlq_id for dlq_id, _ in copies).values()) == [1] * 1200
    for dlq_id, copy in copies:
        assert copy.value == value_of(copy.key.decode())  # type: ignore[union-attr]
        assert copy.headers == (("origem", b"crm"), (REPLAY_OF, dlq_id.encode()))  # our DLQ headers taken off
    page, _ = letters.find(EVERYTHING, limit=1000)
    for letter in page:
        topic, partition, offset = parse_message_id(letter.replayed_as or "")
        assert (topic, letter.state, letter.replay_id) == (TOPIC, LetterState.REPLAYED, replay.id)
        assert dict(broker.read(TOPIC, partition, offset, 1)[0].headers)[REPLAY_OF] == letter.dlq_id.encode()
    done = letters.replay_of(replay.id)
    assert (done.state, done.total, done.done, done.actor) == (ReplayState.FINISHED, 1200, 1200, "ana")
    [entry] = store.list_audit()
    assert (entry.actor, entry.action, entry.target) == ("ana", "dlq.replay", TOPIC)
    assert entry.details["letters"] == 1200
    assert entry.details["filter"]["topic"] == TOPIC


def test_a_second_replay_of_the_same_letters_finds_none(letters: DeadLetters, broker: Broker, store: Store) -> None:
    kill(broker, [cpf(n) for n in range(10)])
    letters.index()
    letters.replay(EVERYTHING, "ana")

    with pytest.raises(NoDeadLetters, match=r"0 open dead letters match .*: nothing changed"):
        letters.replay(EVERYTHING, "bruno")  # reserved by the first, not yet appended

    letters.replays.drain()
    with pytest.raises(NoDeadLetters):
        letters.replay(EVERYTHING, "bruno")
    assert len(replayed_copies(broker)) == 10
    assert [e.actor for e in store.list_audit()] == ["ana"]


def test_a_dry_run_counts_and_changes_nothing(letters: DeadLetters, broker: Broker, store: Store) -> None:
    kill(broker, [cpf(n) for n in range(10)], error="timeout")
    kill(broker, [cpf(n) for n in range(10, 13)], error="CPF inválido")
    letters.index()
    before = total(broker, TOPIC)

    assert letters.replay(LetterFilter(TOPIC, error="inválido"), "ana", dry_run=True) == (3, None)
    assert letters.skip(LetterFilter(TOPIC, error="timeout"), "ana", dry_run=True) == 10
    assert letters.purge(EVERYTHING, "ana", dry_run=True) == 0

    letters.replays.drain()  # no replay to run
    assert states(letters) == {LetterState.DEAD: 13}
    assert store.dead_letters.running_replays() == []
    assert total(broker, TOPIC) == before
    assert store.list_audit() == []


def test_a_filter_matching_nothing_says_so_and_changes_nothing(
    letters: DeadLetters, broker: Broker, store: Store
) -> None:
    kill(broker, [cpf(n) for n in range(5)], error="timeout")
    letters.index()
    nothing = LetterFilter(TOPIC, error="no such error", keys=(b"00000000000",))

    with pytest.raises(NoDeadLetters, match=r"0 open dead letters match .*no such error.*: nothing changed"):
        letters.replay(nothing, "ana")
    with pytest.raises(NoDeadLetters, match="nothing changed"):
        letters.skip(nothing, "ana")
    with pytest.raises(NoDeadLetters, match="0 skipped or replayed dead letters match"):
        letters.purge(EVERYTHING, "ana")

    assert states(letters) == {LetterState.DEAD: 5}
    assert store.dead_letters.running_replays() == []
    assert store.list_audit() == []
    assert total(broker, TOPIC) == 5


def test_skipped_letters_are_never_replayed_and_purge_removes_only_closed_ones(
    letters: DeadLetters, broker: Broker, store: Store
) -> None:
    kill(broker, [cpf(n) for n in range(4)], error="timeout")
    kill(broker, [cpf(n) for n in range(4, 6)], error="CPF inválido")
    kill(broker, [cpf(6)], error="banco fora do ar")
    letters.index()

    assert letters.skip(LetterFilter(TOPIC, error="inválido"), "ana") == 2
    assert letters.replay(EVERYTHING, "bruno")[0] == 5
    letters.replays.drain()
    assert letters.purge(LetterFilter(TOPIC, error="timeout"), "carla") == 4

    assert {c.key for _, c in replayed_copies(broker)} == {cpf(n).encode() for n in (0, 1, 2, 3, 6)}
    assert states(letters) == {LetterState.SKIPPED: 2, LetterState.REPLAYED: 1}
    [summary] = letters.summary()
    assert (summary.open, summary.replayed, summary.skipped, summary.errors) == (0, 1, 2, [])
    assert [(e.actor, e.action, e.details["letters"]) for e in reversed(store.list_audit())] == [
        ("ana", "dlq.skip", 2),
        ("bruno", "dlq.replay", 5),
        ("carla", "dlq.purge", 4),
    ]
    assert total(broker, DLQ) == 7  # the log is append-only: purging only forgets


def test_a_rate_over_the_sites_cap_is_refused(letters: DeadLetters, broker: Broker, store: Store) -> None:
    kill(broker, [cpf(1)])
    letters.index()

    with pytest.raises(InvalidLetterFilter, match="at most 5000 letters/s"):
        letters.replay(EVERYTHING, "ana", rate_per_s=5001)
    assert states(letters) == {LetterState.DEAD: 1}


@pytest.mark.parametrize("appended", [False, True], ids=["before the append", "after the append"])
def test_a_replay_cut_short_resumes_and_appends_each_letter_once(
    letters: DeadLetters, broker: Broker, store: Store, appended: bool
) -> None:
    kill(broker, [cpf(n) for n in range(30)])
    letters.index()
    _, replay = letters.replay(EVERYTHING, "ana", rate_per_s=10)
    assert replay is not None
    letters.replays.run_batch(replay)  # the first 10
    # The process dies in the middle of the second batch: its letters are taken, maybe appended, not settled.
    batch = store.dead_letters.claim(replay.id, 10, broker.end_offsets(TOPIC))
    if appended:
        broker.append(TOPIC, letters.replays.records_of(TOPIC, batch))
    kill(broker, [cpf(n) for n in range(100, 105)])  # meanwhile, other messages reach the work topic, and die
    letters.index()

    letters.replays.drain()  # as the next process does

    copies = Counter(dlq_id for dlq_id, _ in replayed_copies(broker))
    assert sorted(copies.values()) == [1] * 30
    assert states(letters) == {LetterState.REPLAYED: 30, LetterState.DEAD: 5}
    done = letters.replay_of(replay.id)
    assert (done.state, done.done) == (ReplayState.FINISHED, 30)


def test_a_record_cut_to_fit_the_dlq_is_replayed_whole_from_its_work_topic(
    letters: DeadLetters, broker: Broker
) -> None:
    kill(broker, [cpf(1)], headers=(("nota", b"n" * 3000),), max_record_bytes=1000)
    letters.index()

    letters.replay(EVERYTHING, "ana")
    letters.replays.drain()

    [(_, copy)] = replayed_copies(broker)
    assert copy.value == value_of(cpf(1))
    assert copy.headers == (("nota", b"n" * 3000), (REPLAY_OF, f"{DLQ}/{copy.partition}/0".encode()))


def test_a_replay_whose_dlq_record_is_gone_fails_and_reopens_its_letters(
    letters: DeadLetters, broker: Broker, store: Store
) -> None:
    kill(broker, [cpf(1), cpf(2)], partitions=1)
    letters.index()
    # An index row whose record the log no longer holds (Kafka's retention removed it).
    gone = DeadLetter(0, TOPIC, 0, 99, 0, 99, b"99", "timeout", 3, datetime.now(UTC), LetterState.DEAD)
    store.dead_letters.add_letters(DLQ, 0, 2, [gone])

    _, replay = letters.replay(EVERYTHING, "ana")
    letters.replays.drain()

    assert replay is not None
    failed = letters.replay_of(replay.id)
    assert (failed.state, failed.done, failed.error) == (
        ReplayState.FAILED,
        0,
        f"DLQ record {DLQ}/0/99 is no longer in the log",
    )
    assert states(letters) == {LetterState.DEAD: 3}
    assert replayed_copies(broker) == []
