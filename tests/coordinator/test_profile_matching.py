"""Which profile a topic follows: patterns matched on RE2, in the coordinator's catalog, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.coordinator.store.builders import connected
from tests.coordinator.test_service import Site
from xtreaming.coordinator.catalog import Catalog
from xtreaming.coordinator.options import CoordinatorOptions
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.schema import PROFILES
from xtreaming.coordinator.store import Store

#: Python's ``re`` tries about 2^40 ways to match ``(A+)+B`` against this name before failing.
MANY_AS = "A" * 40 + ".1.IMPORTACAO.CARGA"


def test_a_backtracking_pattern_fails_in_linear_time_and_the_next_profile_wins(store: Store) -> None:
    store.add_profile("(A+)+B", WorkSettings(priority=1))
    wanted = store.add_profile(r"A+\..*", WorkSettings(priority=7))

    assert Catalog(store, CoordinatorOptions()).matching_profile(MANY_AS) == wanted


def test_a_stored_pattern_re2_refuses_matches_nothing_with_a_warning(
    store: Store, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    old = store.add_profile(r"MULTCOB03\..*", WorkSettings(priority=1))
    wanted = store.add_profile(r"MULTCOB03\..*", WorkSettings(priority=7))
    with connected(store_url) as conn:  # as stored before patterns were RE2: a backreference
        conn.execute(update(PROFILES).where(PROFILES.c.id == old.id).values(pattern=r"(MULTCOB03)\.\d+\..*\1?"))
        conn.commit()
    catalog = Catalog(store, CoordinatorOptions())

    with caplog.at_level(logging.WARNING, logger="xtreaming.coordinator"):
        found = [catalog.matching_profile("MULTCOB03.1189.IMPORTACAO.CARGA") for _ in range(2)]

    assert found == [wanted, wanted]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per pattern, not per topic
    assert "is not a valid RE2 expression" in warnings[0]
    assert "it matches no topic until it is replaced" in warnings[0]


def test_patterns_never_run_under_the_coordinators_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = Site(f"sqlite:///{tmp_path}/log.db", f"sqlite:///{tmp_path}/state.db")
    coordinator = site.coordinator
    held: list[bool] = []
    fullmatch = Catalog._fullmatch

    def watched(catalog: Catalog, pattern: str, topic: str) -> bool:
        held.append(coordinator._lock._is_owned())  # type: ignore[attr-defined]  # RLock's own check
        return fullmatch(catalog, pattern, topic)

    monkeypatch.setattr(Catalog, "_fullmatch", watched)
    try:
        coordinator.controls.add_profile(r"MULTCOB02\..*", WorkSettings(priority=7), None, "ana")
        site.publish("MULTCOB02.1186.IMPORTACAO.CARGA", ["00000000001"])  # discovered: its profile matched
        coordinator.controls.add_profile(r".*\.COBSINC\..*", WorkSettings(priority=9), None, "ana")
        profile = coordinator.controls.profiles()[0]
        coordinator.controls.remove_profile(profile.id, "ana")
    finally:
        site.store.close()
        site.broker.close()

    assert held, "no pattern was matched: the test would prove nothing"
    assert not any(held)
