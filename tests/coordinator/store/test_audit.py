"""The audit log in the state store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.coordinator.store.builders import TOPIC
from xtreaming.coordinator.store import Store


def test_audit_entries_page_newest_first(store: Store) -> None:
    entries = [store.audit("admin", "queue.update", TOPIC, {"priority": n}) for n in range(5)]

    first_page = store.list_audit(limit=2)
    second_page = store.list_audit(limit=2, before_id=first_page[-1].id)
    last_page = store.list_audit(limit=2, before_id=second_page[-1].id)

    assert first_page == [entries[4], entries[3]]
    assert second_page == [entries[2], entries[1]]
    assert last_page == [entries[0]]
    assert store.list_audit(before_id=entries[0].id) == []


def test_an_audit_entry_round_trips(store: Store) -> None:
    before = datetime.now(UTC)

    entry = store.audit("ana", "window.add", "MULTCOB03", {"weekdays": [0, 1], "start": "08:00", "max": 4})

    assert store.list_audit() == [entry]
    assert entry.details == {"weekdays": [0, 1], "start": "08:00", "max": 4}
    assert before <= entry.at <= datetime.now(UTC)
    assert entry.at.utcoffset() == timedelta(0)
