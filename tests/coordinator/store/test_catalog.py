"""Profiles, queues, bases and windows in the state store, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.coordinator.store.builders import FULL_SETTINGS, TOPIC, queue
from xtreaming.coordinator.records import BaseRecord, WindowRecord, WorkSettings
from xtreaming.coordinator.store import Store
from xtreaming.errors import BaseNotFound, InvalidProfile, InvalidWindow, ProfileNotFound, QueueNotFound, WindowNotFound

# -- profiles ------------------------------------------------------------------------------------


def test_profiles_append_in_order_and_insert_at_a_position(store: Store) -> None:
    first = store.add_profile(r"MULTCOB03\..*", WorkSettings())
    last = store.add_profile(r".*\.IMPORTACAO\..*", WorkSettings())
    urgent = store.add_profile(r".*\.COBSINC\..*", WorkSettings(priority=9, batch_size=1), position=0)

    assert [p.pattern for p in store.list_profiles()] == [urgent.pattern, first.pattern, last.pattern]
    assert [p.position for p in store.list_profiles()] == [0, 1, 2]


def test_a_profile_round_trips_every_setting(store: Store) -> None:
    added = store.add_profile(r"MULTCOB0[23]\..*", FULL_SETTINGS)

    assert store.list_profiles() == [added]
    assert added.settings == FULL_SETTINGS


@pytest.mark.parametrize(
    ("pattern", "position", "message"),
    [
        ("MULTCOB(03", None, "profile pattern 'MULTCOB(03' is not a valid RE2 expression: missing )"),
        (r"(MULTCOB\d+)\.\1", None, "is not a valid RE2 expression: invalid escape sequence: \\1"),
        (r"(?=MULTCOB).*", None, "is not a valid RE2 expression: invalid perl operator: (?="),
        (".*", -1, "profile position -1 is negative; give 0 or more"),
    ],
    ids=["unbalanced", "backreference", "lookahead", "negative-position"],
)
def test_an_invalid_profile_is_refused(store: Store, pattern: str, position: int | None, message: str) -> None:
    with pytest.raises(InvalidProfile, match=re.escape(message)):
        store.add_profile(pattern, WorkSettings(), position)

    assert store.list_profiles() == []


def test_removing_a_profile_keeps_the_queues_it_configured(store: Store) -> None:
    profile = store.add_profile(".*", FULL_SETTINGS)
    store.add_queue(queue(settings=FULL_SETTINGS, profile_id=profile.id))

    store.remove_profile(profile.id)

    assert store.list_profiles() == []
    assert store.get_queue(TOPIC) == queue(settings=FULL_SETTINGS, profile_id=None)


def test_removing_an_unknown_profile_raises(store: Store) -> None:
    with pytest.raises(ProfileNotFound, match="profile 42 does not exist"):
        store.remove_profile(42)


# -- queues --------------------------------------------------------------------------------------


def test_a_queue_round_trips_in_utc(store: Store) -> None:
    profile = store.add_profile(".*", FULL_SETTINGS)
    record = queue(settings=FULL_SETTINGS, paused=True, profile_id=profile.id)

    store.add_queue(record)

    got = store.get_queue(TOPIC)
    assert got == record
    assert got.discovered_at is not None
    assert got.discovered_at.utcoffset() == timedelta(0)


def test_adding_an_existing_queue_returns_it_unchanged(store: Store) -> None:
    original = store.add_queue(queue())

    again = store.add_queue(queue(settings=FULL_SETTINGS, paused=True))

    assert again == original
    assert store.list_queues() == [original]


def test_a_new_queue_without_discovery_time_is_stamped_now(store: Store) -> None:
    before = datetime.now(UTC)

    record = store.add_queue(queue(discovered_at=None))

    assert record.discovered_at is not None
    assert before <= record.discovered_at <= datetime.now(UTC)
    assert store.get_queue(TOPIC) == record


def test_updating_a_queue_pauses_it_and_replaces_its_settings(store: Store) -> None:
    store.add_queue(queue())

    paused = store.update_queue(TOPIC, paused=True)
    changed = store.update_queue(TOPIC, settings=FULL_SETTINGS)

    assert paused == queue(paused=True)
    assert changed == queue(paused=True, settings=FULL_SETTINGS)
    assert store.get_queue(TOPIC) == changed


def test_queues_are_listed_by_topic(store: Store) -> None:
    topics = ["MULTCOB03.9.COBSINC.SYNC", "MULTCOB02.1.IMPORTACAO.CARGA", TOPIC]
    for topic in topics:
        store.add_queue(queue(topic))

    assert [q.topic for q in store.list_queues()] == sorted(topics)


def test_an_unknown_queue_raises(store: Store) -> None:
    with pytest.raises(QueueNotFound, match=r"queue 'NOPE\.1\.X\.Y' does not exist"):
        store.get_queue("NOPE.1.X.Y")
    with pytest.raises(QueueNotFound, match=r"queue 'NOPE\.1\.X\.Y' does not exist"):
        store.update_queue("NOPE.1.X.Y", paused=True)


# -- bases and windows ---------------------------------------------------------------------------


def test_putting_a_base_creates_then_replaces_it(store: Store) -> None:
    store.put_base(BaseRecord("MULTCOB03", 8))
    store.put_base(BaseRecord("MULTCOB02", 2))

    store.put_base(BaseRecord("MULTCOB03", 6, min_workers=2, paused=True))

    assert store.get_base("MULTCOB03") == BaseRecord("MULTCOB03", 6, 2, True)
    assert store.list_bases() == [BaseRecord("MULTCOB02", 2), BaseRecord("MULTCOB03", 6, 2, True)]


def test_an_unknown_base_raises(store: Store) -> None:
    with pytest.raises(BaseNotFound, match="base 'MULTCOB99' does not exist"):
        store.get_base("MULTCOB99")


def test_windows_get_ids_and_round_trip(store: Store) -> None:
    store.put_base(BaseRecord("MULTCOB03", 8))
    store.put_base(BaseRecord("MULTCOB02", 8))

    business = store.add_window(WindowRecord(0, "MULTCOB03", frozenset({0, 1, 2, 3, 4}), "08:00", "18:00", 4))
    night = store.add_window(WindowRecord(0, "MULTCOB03", frozenset({4}), "22:00", "06:00", 0))
    other = store.add_window(WindowRecord(0, "MULTCOB02", frozenset(range(7)), "00:00", "24:00", 1))

    assert len({business.id, night.id, other.id}) == 3
    assert business == WindowRecord(business.id, "MULTCOB03", frozenset({0, 1, 2, 3, 4}), "08:00", "18:00", 4)
    assert store.list_windows("MULTCOB03") == [business, night]
    assert store.list_windows() == [other, business, night]


def test_a_window_of_an_unknown_base_is_refused(store: Store) -> None:
    with pytest.raises(BaseNotFound, match="base 'MULTCOB99' does not exist"):
        store.add_window(WindowRecord(0, "MULTCOB99", frozenset({0}), "08:00", "18:00", 4))

    assert store.list_windows() == []


def test_an_invalid_window_is_refused_and_nothing_stored(store: Store) -> None:
    store.put_base(BaseRecord("MULTCOB03", 8))

    with pytest.raises(InvalidWindow, match="end equals start"):
        store.add_window(WindowRecord(0, "MULTCOB03", frozenset({0}), "08:00", "08:00", 4))

    assert store.list_windows() == []


def test_removing_windows(store: Store) -> None:
    store.put_base(BaseRecord("MULTCOB03", 8))
    kept = store.add_window(WindowRecord(0, "MULTCOB03", frozenset({0}), "08:00", "18:00", 4))
    removed = store.add_window(WindowRecord(0, "MULTCOB03", frozenset({1}), "08:00", "18:00", 4))

    store.remove_window(removed.id)

    assert store.list_windows() == [kept]
    with pytest.raises(WindowNotFound, match=f"window {removed.id} does not exist"):
        store.remove_window(removed.id)


def test_a_window_id_is_never_given_again_after_a_removal(store: Store) -> None:
    store.put_base(BaseRecord("MULTCOB03", 8))
    kept = store.add_window(WindowRecord(0, "MULTCOB03", frozenset({0}), "08:00", "18:00", 4))
    newest = store.add_window(WindowRecord(0, "MULTCOB03", frozenset({1}), "08:00", "18:00", 4))
    store.remove_window(newest.id)

    added = store.add_window(WindowRecord(0, "MULTCOB03", frozenset({2}), "08:00", "18:00", 2))

    assert added.id not in {kept.id, newest.id}
    with pytest.raises(WindowNotFound, match=f"window {newest.id} does not exist"):
        store.remove_window(newest.id)  # a removal read from the older listing: nothing else goes
    assert store.list_windows() == [kept, added]
