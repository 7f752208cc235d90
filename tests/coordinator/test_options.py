"""``CoordinatorOptions``: the coordinator's share of ``Settings``, with the same defaults."""

from __future__ import annotations

from dataclasses import fields

from xtreaming.config import Settings
from xtreaming.coordinator.options import CoordinatorOptions

#: A value unlike each default, for every option that is also a setting.
CHANGED = {
    "group": "site-b",
    "time_zone": "Europe/Lisbon",
    "default_base_max_workers": 7,
    "heartbeat_interval_s": 2.5,
    "discovery_interval_s": 9.0,
    "default_partitions": 6,
    "history_enabled": False,
    "history_retention_days": 90,
    "history_database_url": "postgresql+psycopg://xtreaming@history/db",
    "dlq_replay_rate_per_s": 50.0,
    "dlq_replay_max_rate_per_s": 100.0,
    "urgent_slots": 1,
    "urgent_priority": 9,
}


def test_every_option_that_is_a_setting_comes_from_the_settings() -> None:
    shared = {f.name for f in fields(CoordinatorOptions)} & set(Settings.model_fields)
    assert shared == set(CHANGED)

    options = CoordinatorOptions.from_settings(Settings.model_validate(CHANGED))

    assert {name: getattr(options, name) for name in shared} == CHANGED


def test_the_options_default_to_what_the_settings_default_to() -> None:
    assert CoordinatorOptions.from_settings(Settings.model_construct()) == CoordinatorOptions()
