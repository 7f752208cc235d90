"""A queue's dead figure (the screen's "DLQ") counts only the records the coordinator wrote to its ``.DLQ``: junk
a person or another tool wrote there is taken off once the dead-letter index finds it, is never counted after a
restart, and is logged at warning."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.coordinator.dead_letters.letters import DLQ, TOPIC, cpf, kill
from tests.coordinator.test_service import Site
from xtreaming.broker import Record


@pytest.fixture
def site(tmp_path: Path, store_url: str) -> Iterator[Site]:
    site = Site(f"sqlite:///{tmp_path}/log.db", store_url)
    yield site
    site.store.close()
    site.broker.close()


def junk(site: Site, count: int) -> None:
    site.broker.append(DLQ, [Record(f"junk-{i}".encode(), b"<not ours/>", (("origem", b"crm"),)) for i in range(count)])


def dead_figure(site: Site) -> int:
    rows, _ = site.coordinator.figures()
    [row] = [r for r in rows if r.topic == TOPIC]
    return row.dead


def test_junk_in_a_dlq_topic_is_not_counted_as_dead(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    kill(site.broker, [cpf(i) for i in range(3)], partitions=1)  # three letters the coordinator wrote
    junk(site, 2)  # before the queue is known: counted when its topic is found, taken off once indexed

    with caplog.at_level(logging.WARNING, logger="xtreaming.coordinator"):
        site.coordinator.run_once()  # finds the topic, then indexes its DLQ
    found = dead_figure(site)
    junk(site, 4)  # after: never counted
    site.coordinator.dead_letters.index()
    later = dead_figure(site)
    site.restart()  # the index knows the junk already: the figure starts without it
    site.coordinator.run_once()

    assert (found, later, dead_figure(site)) == (3, 3, 3)
    assert "2 record(s) not written by Xtreaming" in caplog.text
