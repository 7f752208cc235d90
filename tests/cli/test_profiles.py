"""Profiles and queue settings from the CLI: real ``xtreaming`` processes, a coordinator process killed
with SIGKILL in the middle, its API between."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.waiting import wait_until
from xtreaming.localhost import free_port

OWN = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"  # gets overrides of its own
PLAIN = "MULTCOB04.1190.IMPORTACAO.CARGA"  # follows profiles only
NOOP = "xtreaming.demo.worker:noop"


class Site:
    def __init__(self, root: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.env = {
            **os.environ,
            "XTREAMING_BROKER_URL": f"sqlite:///{root}/log.db",
            "XTREAMING_DATABASE_URL": f"sqlite:///{root}/state.db",
            "XTREAMING_PORT": self.url.rsplit(":", 1)[1],
            "XTREAMING_URL": self.url,
            "COLUMNS": "250",
        }
        self.server: subprocess.Popen[bytes] | None = None

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "xtreaming", *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        return result.stdout

    def start(self) -> None:
        server = self.server = subprocess.Popen([sys.executable, "-m", "xtreaming", "coordinator"], env=self.env)

        def has_both_queues() -> bool:
            assert server.poll() is None, f"the coordinator exited with {server.returncode}"
            return bool(httpx.get(f"{self.url}/api/queues").json()["total"] == 2)

        wait_until(
            has_both_queues, 20, "the coordinator with both queues", every_s=0.1, ignoring=(httpx.TransportError,)
        )

    def kill(self) -> None:
        assert self.server is not None
        self.server.send_signal(signal.SIGKILL)
        self.server.wait(timeout=20)

    def settings(self, topic: str) -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(f"{self.url}/api/queues/{topic}/settings").raise_for_status().json()
        return found

    def state(self, topic: str) -> str:
        state: str = httpx.get(f"{self.url}/api/queues/{topic}").raise_for_status().json()["state"]
        return state


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf;nome\n111;Ana\n222;Bruno\n")
    for topic in (OWN, PLAIN):
        site.ok("publish", topic, "--csv", str(csv))
    site.start()
    yield site
    if site.server is not None and site.server.poll() is None:
        site.server.terminate()
        site.server.wait(timeout=20)


@pytest.mark.slow
def test_a_profile_reaches_registered_queues_but_never_a_setting_set_on_one_even_across_a_sigkill(site: Site) -> None:
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
    site.start()
    assert site.settings(OWN) == own
    assert site.settings(PLAIN) == plain

    assert site.ok("profile", "remove", str(profile_id)).strip() == f"profile {profile_id} removed"

    own, plain = site.settings(OWN), site.settings(PLAIN)
    assert (own["handler"], own["batch_size"], own["priority"], own["profile_id"]) == (None, 7, 2, None)
    assert (plain["handler"], plain["batch_size"], plain["priority"], plain["profile_id"]) == (None, 500, 5, None)
    assert site.state(OWN) == site.state(PLAIN) == "no-worker"
    shown = site.ok("settings", OWN)
    assert "batch_size*: 7" in shown
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
