"""Profiles and queue settings from the CLI: real ``xtreaming`` processes, a coordinator process killed
with SIGKILL in the middle, its API between."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.site import Site

OWN = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"  # gets overrides of its own
PLAIN = "MULTCOB04.1190.IMPORTACAO.CARGA"  # follows profiles only
NOOP = "xtreaming.demo.worker:noop"


class ProfileSite(Site):
    """The CLI site, and what these tests read of a queue over the API."""

    def start_with_both_queues(self) -> None:
        self.start(lambda: self.queue_count() == 2, "the coordinator with both queues")

    def settings(self, topic: str) -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(f"{self.url}/api/queues/{topic}/settings").raise_for_status().json()
        return found

    def state(self, topic: str) -> str:
        state: str = httpx.get(f"{self.url}/api/queues/{topic}").raise_for_status().json()["state"]
        return state


@pytest.fixture
def site(tmp_path: Path) -> Iterator[ProfileSite]:
    site = ProfileSite(tmp_path)
    site.env["XTREAMING_LANG"] = "en"  # the words of both languages: test_settings_language.py
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf;nome\n111;Ana\n222;Bruno\n")
    for topic in (OWN, PLAIN):
        site.ok("publish", topic, "--csv", str(csv))
    site.start_with_both_queues()
    yield site
    site.stop()


@pytest.mark.slow
def test_a_profile_reaches_registered_queues_but_never_a_setting_set_on_one_even_across_a_sigkill(
    site: ProfileSite,
) -> None:
    assert site.state(OWN) == site.state(PLAIN) == "no-worker"
    site.ok("settings", OWN, "--batch-size", "7", "--priority", "2")

    added = site.ok("profile", "add", ".*", "--handler", NOOP, "--batch-size", "50", "--label", "os=linux")
    profile_id = int(added.split()[1])

    own, plain = site.settings(OWN), site.settings(PLAIN)
    assert (own["handler"], own["batch_size"], own["priority"], own["required_labels"]) == (NOOP, 7, 2, {"os": "linux"})
    assert (own["profile_id"], own["overridden"]) == (profile_id, ["batch_size", "priority"])
    assert (plain["handler"], plain["batch_size"], plain["priority"], plain["profile_id"]) == (NOOP, 50, 5, profile_id)
    assert site.state(PLAIN) != "no-worker"
    assert ".*" in site.ok("profile", "list")

    site.kill()  # what was stored survives; nothing is worked out again at start that would undo it
    site.start_with_both_queues()
    assert site.settings(OWN) == own
    assert site.settings(PLAIN) == plain

    assert site.ok("profile", "remove", str(profile_id)).strip() == f"profile {profile_id} removed"

    own, plain = site.settings(OWN), site.settings(PLAIN)
    assert (own["handler"], own["batch_size"], own["priority"], own["profile_id"]) == (None, 7, 2, None)
    assert (plain["handler"], plain["batch_size"], plain["priority"], plain["profile_id"]) == (None, 500, 5, None)
    assert site.state(OWN) == site.state(PLAIN) == "no-worker"
    shown = site.ok("settings", OWN)
    assert "batch size*: 7" in shown
    assert "no worker configured" in shown


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("profile", "add", ".*", "--command", "MultcobWorker.exe IMPORTAR"), "--command must be a JSON list"),
        (("profile", "add", ".*", "--command", '["MultcobWorker.exe", 3]'), "non-empty JSON list of non-empty strings"),
        (("profile", "add", ".*", "--command", '["w.exe"]', "--handler", NOOP), "--command or --handler, not both"),
        (("profile", "add", ".*", "--handler", "worker.py"), "is not module:function"),
        (("settings", OWN, "--label", "linux"), "is not name=value"),
    ],
)
def test_bad_input_is_refused_with_one_line_and_exit_2_before_anything_is_sent(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    result = Site(tmp_path).run(*args)  # no coordinator: nothing may be sent

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert says in result.stderr
