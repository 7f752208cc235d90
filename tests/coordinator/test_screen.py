"""The operator screen's routes without a browser: the page, its assets and catalogs, whoami, status."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import TypeAdapter

from xtreaming.coordinator.api.routes.screen import preferred_language
from xtreaming.coordinator.api.schemas import Status
from xtreaming.coordinator.figures import QueueFigures
from xtreaming.dashboard import ASSETS

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "pt-BR"),
        ("", "pt-BR"),
        ("pt-BR,pt;q=0.9,en;q=0.8", "pt-BR"),
        ("en-US,en;q=0.9", "en"),
        ("en;q=0.5, pt;q=0.8", "pt-BR"),
        ("fr-FR, en;q=0.7", "en"),
        ("de-DE", "pt-BR"),
        ("en;q=0", "pt-BR"),
        ("*", "pt-BR"),
        ("en;q=abc, !!!", "pt-BR"),
    ],
)
def test_the_screen_language_follows_accept_language_with_pt_br_by_default(header: str | None, language: str) -> None:
    assert preferred_language(header) == language


def test_the_page_is_served_in_the_preferred_language_with_a_strict_policy(api: httpx.Client) -> None:
    portuguese = api.get("/")
    english = api.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})

    assert portuguese.status_code == english.status_code == 200
    assert portuguese.headers["content-type"].startswith("text/html")
    assert '<html lang="pt-BR">' in portuguese.text
    assert '<html lang="en">' in english.text
    assert "Acompanhamento de MultCobXtreaming" in portuguese.text
    assert portuguese.headers["content-security-policy"].startswith("default-src 'self'")


def test_the_assets_are_served_from_the_package(api: httpx.Client) -> None:
    script = api.get("/static/app.js")
    catalog = api.get("/static/messages.pt-BR.json")
    missing = api.get("/static/nothing.js")
    python = api.get("/static/__init__.py")

    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert catalog.json()["col.pending"] == "Pendentes"
    assert missing.status_code == python.status_code == 404


def test_both_catalogs_have_every_message() -> None:
    portuguese = json.loads((ASSETS / "messages.pt-BR.json").read_text(encoding="utf-8"))
    english = json.loads((ASSETS / "messages.en.json").read_text(encoding="utf-8"))

    assert sorted(portuguese) == sorted(english)
    assert len(portuguese["weekdays"]) == len(english["weekdays"]) == 7


def test_whoami_names_the_caller_and_its_role(api: httpx.Client) -> None:
    assert api.get("/api/whoami").json() == {"name": "anonymous", "role": "admin"}


def test_status_carries_the_same_queue_rows_as_the_queue_list(api: httpx.Client) -> None:
    body = {"messages": [{"key": str(i), "value": "x"} for i in range(7)], "partitions": 2}
    assert api.post(f"/api/topics/{TOPIC}/messages", json=body).status_code == 200
    assert api.post("/api/topics/MULTCOB02.1186.COBSINC.LOCALIZACAO/messages", json=body).status_code == 200

    status = Status.model_validate(api.get("/api/status").json())
    listed = TypeAdapter(list[QueueFigures]).validate_python(api.get("/api/queues").json()["items"])

    assert status.queues == listed
    assert [(q.topic, q.pending) for q in status.queues] == [
        ("MULTCOB02.1186.COBSINC.LOCALIZACAO", 7),
        (TOPIC, 7),
    ]
    assert [b.name for b in status.bases] == ["MULTCOB02", "MULTCOB03"]
