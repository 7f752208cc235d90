"""Profile patterns run on RE2: a pattern that would backtrack for ever under Python's ``re`` matches in
linear time inside a real coordinator process, and what RE2 cannot run is refused with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.site import Site
from tests.waiting import wait_until

#: 40 A's: Python's ``re`` tries about 2^40 ways to match ``(A+)+B`` against this name before failing.
TOPIC = "A" * 40 + ".1.IMPORTACAO.CARGA"
NOOP = "xtreaming.demo.worker:noop"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    site.env["XTREAMING_DISCOVERY_INTERVAL_S"] = "0.2"
    site.start(lambda: site.queue_count() == 0, "the coordinator")
    yield site
    site.stop()


@pytest.mark.slow
def test_a_backtracking_pattern_is_matched_in_linear_time_and_the_next_profile_wins(site: Site, tmp_path: Path) -> None:
    site.ok("profile", "add", "(A+)+B", "--handler", NOOP, "--priority", "1")
    site.ok("profile", "add", r"A+\..*", "--handler", NOOP, "--priority", "7")
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf\n111\n")

    site.ok("publish", TOPIC, "--csv", str(csv))

    wait_until(lambda: site.queue_count() == 1, 20, "the queue to be discovered", every_s=0.1)
    settings = httpx.get(f"{site.url}/api/queues/{TOPIC}/settings").raise_for_status().json()
    assert (settings["priority"], settings["handler"]) == (7, NOOP)
    assert httpx.get(f"{site.url}/api/status").status_code == 200  # the coordinator still answers


@pytest.mark.slow
def test_a_pattern_re2_cannot_run_is_refused_by_the_api_with_its_reason(site: Site) -> None:
    answer = httpx.post(f"{site.url}/api/profiles", json={"pattern": r"(MULTCOB\d+)\.\1", "settings": {}})

    assert answer.status_code == 422
    assert "is not a valid RE2 expression: invalid escape sequence: \\1" in answer.json()["detail"]
    assert httpx.get(f"{site.url}/api/profiles").json() == []


def test_a_pattern_re2_cannot_run_exits_2_with_its_reason_before_anything_is_sent(tmp_path: Path) -> None:
    result = Site(tmp_path).run("profile", "add", "(?=MULTCOB03).*", "--handler", NOOP)  # no coordinator

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "profile pattern '(?=MULTCOB03).*' is not a valid RE2 expression: invalid perl operator: (?=" in (
        result.stderr
    )
