"""``xtreaming bulk pause|resume|priority`` as an operator runs them: real CLI processes, a real coordinator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.site import Site

QUEUES = (
    "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU",
    "MULTCOB03.1189.COBSINC.LOCALIZACAO",
    "MULTCOB02.1186.IMPORTACAO.ATUALIZA_BUREAU",
)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    try:
        site.start(lambda: httpx.get(f"{site.url}/healthz").status_code == 200, f"the coordinator on {site.url}")
        profile = httpx.post(f"{site.url}/api/profiles", json={"pattern": ".*", "settings": {"command": ["true"]}})
        assert profile.status_code == 201, profile.text
        for topic in QUEUES:
            published = httpx.post(
                f"{site.url}/api/topics/{topic}/messages", json={"messages": [{"key": "1", "value": "x"}]}
            )
            assert published.status_code == 200, published.text
        yield site
    finally:
        site.stop()


def states(site: Site) -> dict[str, tuple[str, int]]:
    rows = httpx.get(f"{site.url}/api/queues").json()["items"]
    return {r["topic"]: (r["state"], r["priority"]) for r in rows}


@pytest.mark.slow
def test_bulk_commands_pause_resume_and_reprioritize_the_matching_queues(site: Site) -> None:
    dry = site.run("bulk", "pause", "--base", "MULTCOB03", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "pausar base=MULTCOB03 kind=* pattern=*: 2 filas no filtro; seriam alteradas: 2" in dry.stdout
    assert all(state != "paused" for state, _ in states(site).values())

    paused = site.run("bulk", "pause", "--base", "MULTCOB03", "--kind", "IMPORTACAO")
    assert paused.returncode == 0, paused.stderr
    assert "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU" in paused.stdout
    assert "pausar base=MULTCOB03 kind=IMPORTACAO pattern=*: 1 fila no filtro; alteradas: 1" in paused.stdout
    assert states(site)["MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"][0] == "paused"
    assert states(site)["MULTCOB02.1186.IMPORTACAO.ATUALIZA_BUREAU"][0] != "paused"

    raised = site.run("bulk", "priority", "--up", "--pattern", r"\.ATUALIZA_BUREAU$")
    assert raised.returncode == 0, raised.stderr
    assert {t: p for t, (_, p) in states(site).items()} == {
        "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU": 6,
        "MULTCOB03.1189.COBSINC.LOCALIZACAO": 5,
        "MULTCOB02.1186.IMPORTACAO.ATUALIZA_BUREAU": 6,
    }

    resumed = site.run("bulk", "resume", "--kind", "IMPORTACAO")
    assert resumed.returncode == 0, resumed.stderr
    assert all(state != "paused" for state, _ in states(site).values())


@pytest.mark.slow
def test_bulk_commands_refuse_what_matches_nothing_a_bad_pattern_and_no_filter(site: Site) -> None:
    nothing = site.run("bulk", "pause", "--base", "MULTCOB09")
    assert nothing.returncode == 1
    assert "no queue matches base=MULTCOB09 kind=* pattern=*" in nothing.stderr

    bad = site.run("bulk", "resume", "--pattern", "MULTCOB(03")
    assert bad.returncode == 1
    assert "pattern 'MULTCOB(03' is not a valid RE2 expression: missing )" in bad.stderr

    unfiltered = site.run("bulk", "pause")
    assert unfiltered.returncode == 2
    assert "give at least one of --base, --kind, --pattern" in unfiltered.stderr
    assert all(state != "paused" for state, _ in states(site).values())
