"""One message per key from the CLI: shown by ``xtreaming settings`` and ``profile list``, set with
``--one-per-key/--no-one-per-key`` on a profile or a queue, and in force for the next load published."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.site import Site
from tests.waiting import wait_until

IMPORT = "MULTCOB03.1189.IMPORTACAO.CARTEIRA"
SYNC = "MULTCOB03.1189.COBSINC.LOCALIZACAO"
NOOP = "xtreaming.demo.worker:noop"


class KeySite(Site):
    def queue(self, topic: str) -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(f"{self.url}/api/queues/{topic}").raise_for_status().json()
        return found

    def one_per_key(self, topic: str) -> bool:
        found: bool = httpx.get(f"{self.url}/api/queues/{topic}/settings").raise_for_status().json()["one_per_key"]
        return found


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf;nome\n111;Ana\n222;Bruno\n")
    return csv


@pytest.fixture
def site(tmp_path: Path, csv: Path) -> Iterator[KeySite]:
    site = KeySite(tmp_path)
    site.env["XTREAMING_LANG"] = "en"  # the words of both languages: test_settings_language.py
    for topic in (IMPORT, SYNC):
        site.ok("publish", topic, "--csv", str(csv))
    site.start(lambda: site.queue_count() == 2, "the coordinator with both queues")
    yield site
    site.stop()


def test_the_kind_decides_until_a_profile_or_the_queue_says_otherwise(site: KeySite, csv: Path) -> None:
    assert "one per key: on" in site.ok("settings", IMPORT)
    assert "one per key: off" in site.ok("settings", SYNC)

    site.ok("profile", "add", r"MULTCOB03\..*", "--handler", NOOP)
    assert "by kind" in site.ok("profile", "list")
    assert (site.one_per_key(IMPORT), site.one_per_key(SYNC)) == (True, False)

    site.ok("profile", "add", r"MULTCOB03\..*", "--handler", NOOP, "--no-one-per-key", "--position", "0")
    assert site.one_per_key(IMPORT) is False

    shown = site.ok("settings", IMPORT, "--one-per-key")
    assert "one per key*: on" in shown
    site.ok("publish", IMPORT, "--csv", str(csv))  # both clients still pending: their copies are duplicates
    wait_until(lambda: site.queue(IMPORT)["duplicates"] == 2, 20, "the second load's copies finished as duplicates")
    assert site.queue(IMPORT)["pending"] == 2


def test_a_queue_is_either_on_or_off_null_is_refused_and_changes_nothing(site: KeySite) -> None:
    answer = httpx.patch(f"{site.url}/api/queues/{IMPORT}/settings", json={"one_per_key": None})

    assert answer.status_code == 422
    assert "one_per_key is true or false" in answer.json()["detail"]
    assert site.one_per_key(IMPORT) is True
