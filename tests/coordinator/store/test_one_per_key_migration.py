"""Migration 0008: queues stored before it get their kind's one-message-per-key, profiles leave it to the kind."""

from __future__ import annotations

from tests.coordinator.store.builders import migrate, queue, revision
from tests.coordinator.store.test_migrations import NEWEST
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.store import Store

IMPORT = "MULTCOB03.1186.IMPORTACAO.CARGA"
SYNC = "MULTCOB03.1186.COBSINC.LOCALIZACAO"
OTHER = "MULTCOB03.1186.HIGIENIZACAO.CARGA"


def test_rows_from_before_0008_take_their_kinds_behaviour(store_url: str) -> None:
    with Store.open(store_url) as store:
        for topic in (IMPORT, SYNC, OTHER):
            store.add_queue(queue(topic))
        store.add_profile(r"MULTCOB03\..*", WorkSettings(batch_size=9))
    migrate(store_url, "downgrade", "0007")

    migrate(store_url, "upgrade", NEWEST)

    with Store.open(store_url) as store:
        found = {q.topic: q.settings.one_per_key for q in store.list_queues()}
        [profile] = store.list_profiles()
    assert found == {IMPORT: True, SYNC: False, OTHER: False}
    assert (profile.settings.batch_size, profile.settings.one_per_key) == (9, None)
    assert revision(store_url) == NEWEST


def test_the_setting_is_stored_on_queues_and_profiles(store: Store) -> None:
    store.add_queue(queue(SYNC, settings=WorkSettings(one_per_key=True)))
    store.add_profile(".*", WorkSettings(one_per_key=None))
    store.add_profile("X.*", WorkSettings(one_per_key=False))

    assert store.get_queue(SYNC).settings.one_per_key is True
    assert [p.settings.one_per_key for p in store.list_profiles()] == [None, False]
