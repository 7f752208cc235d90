"""Queue overrides in the store: kept apart from what profiles give, and absent from queues stored before 0005."""

from __future__ import annotations

from dataclasses import replace

from tests.coordinator.store.builders import TOPIC, migrate, revision
from tests.coordinator.store.test_migrations import NEWEST
from xtreaming.coordinator.records import QueueRecord, WorkSettings
from xtreaming.coordinator.store import Store

#: An IMPORTACAO queue's, one message per key on as its kind gives it (0008 gives it again to rows from before).
SETTINGS = WorkSettings(batch_size=7, command=("worker.exe", "{input}"), one_per_key=True)


def queue() -> QueueRecord:
    return QueueRecord(TOPIC, "MULTCOB03", "IMPORTACAO", WorkSettings())


def test_overrides_are_stored_and_following_a_profile_keeps_them(store: Store) -> None:
    store.add_queue(queue())
    profile = store.add_profile(".*", WorkSettings(handler="m:f"))

    store.update_queue(TOPIC, settings=SETTINGS, overridden=frozenset({"batch_size", "command"}))
    followed = store.follow_profile(TOPIC, replace(SETTINGS, priority=9), profile.id)

    assert followed == store.get_queue(TOPIC)
    assert (followed.settings.priority, followed.profile_id) == (9, profile.id)
    assert followed.overridden == {"batch_size", "command"}


def test_a_queue_stored_before_0005_keeps_its_settings_and_has_no_overrides(store_url: str) -> None:
    with Store.open(store_url) as store:
        store.add_queue(replace(queue(), settings=SETTINGS))
    migrate(store_url, "downgrade", "0004")

    with Store.open(store_url) as store:
        found = store.get_queue(TOPIC)
    assert (found.settings, found.overridden) == (SETTINGS, frozenset())
    assert revision(store_url) == NEWEST
