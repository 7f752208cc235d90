"""``xtreaming schedule add|list|remove``: real ``xtreaming`` processes against a coordinator process; a schedule the
coordinator refuses exits 2 with its sentence and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.site import Site
from tests.waiting import wait_until

TOPIC = "MULTCOB02.1186.COBSINC.LOCALIZACAO"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    site.env["XTREAMING_LANG"] = "en"  # the words of both languages: test_settings_language.py
    site.start(lambda: httpx.get(f"{site.url}/healthz").status_code == 200, "the coordinator")
    yield site
    site.stop()


def schedules(site: Site) -> list[dict[str, object]]:
    found: list[dict[str, object]] = httpx.get(f"{site.url}/api/schedules").raise_for_status().json()
    return found


def test_a_csv_is_scheduled_listed_published_and_removed(site: Site, tmp_path: Path) -> None:
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf;nome\n111;Ana\n222;Bruno\n111;Ana de novo\n")
    added = site.ok("schedule", "add", TOPIC, "--cron", "* * * * * *", "--csv", str(csv), "--misfire", "skip")
    assert added.startswith("schedule 1 added: MULTCOB02.1186.COBSINC.LOCALIZACAO at '* * * * * *', next tick ")

    def published() -> bool:
        return "2 messages published" in site.ok("schedule", "list")

    wait_until(published, 15, "a tick publishing the file's two keys")
    listing = site.ok("schedule", "list")
    assert f"CSV {csv} (key cpf)" in listing
    assert "skip" in listing
    assert site.ok("schedule", "remove", "1") == "schedule 1 removed\n"
    assert schedules(site) == []
    again = site.run("schedule", "remove", "1")
    assert (again.returncode, again.stderr.strip()) == (1, "error: HTTP 404: schedule 1 does not exist")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--cron", "0 25 * * *", "--value", "x"), "cron expression '0 25 * * *' is not valid"),
        (("--cron", "* * * * *", "--csv", "/nowhere/carteira.csv"), "does not exist on the coordinator's machine"),
        (("--cron", "* * * * *", "--callable", "no_such_module:feed"), "module 'no_such_module' does not import"),
        (("--cron", "* * * * *"), "give exactly one of --csv, --value and --callable"),
        (("--cron", "* * * * *", "--value", "x", "--misfire", "never"), "misfire"),
    ],
)
def test_a_schedule_that_cannot_run_exits_2_and_stores_nothing(site: Site, args: tuple[str, ...], words: str) -> None:
    refused = site.run("schedule", "add", TOPIC, *args)
    assert refused.returncode == 2, refused.stderr
    assert words in " ".join(refused.stderr.split())
    assert schedules(site) == []
