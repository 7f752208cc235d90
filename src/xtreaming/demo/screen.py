"""The demo's terminal view of ``/api/status``: the queue table of "Acompanhamento de MultCobXtreaming", the bases
and the farms, refreshed while the demo runs; in one language (``XTREAMING_LANG``: pt-BR or English) with the
screen's column names and words."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from xtreaming.screen_words import counted, duration, number, state_word, word

#: The screen's columns (messages.*.json ``col.*``), left-aligned for text and right-aligned for figures.
TEXT_COLUMNS = ("topic", "kind", "state")
FIGURE_COLUMNS = ("priority", "workers", "base", "consumed", "pending", "failures", "dead", "speed", "eta")


def status_view(status: dict[str, Any], header: str) -> RenderableType:
    """Queues, bases and farms as rich tables under ``header``."""
    queues = Table(title=word("title"), title_justify="left", expand=False)
    for column in TEXT_COLUMNS:
        queues.add_column(word(f"col.{column}"))
    for column in FIGURE_COLUMNS:
        queues.add_column(word(f"col.{column}"), justify="right")
    for q in status["queues"]:
        window = f" · {q['base_window']}" if q["base_window"] else ""
        queues.add_row(
            q["topic"], q["kind"], state_word(q["state"]), str(q["priority"]), number(q["workers"]),
            f"{number(q['base_in_use'])}/{number(q['base_limit'])}{window}", number(q["consumed"]),
            number(q["pending"]), number(q["failures"]), number(q["dead"]),
            number(q.get("speed_10s", q["speed"])), duration(q["eta_s"]),
        )  # fmt: skip
    bases = ", ".join(
        f"{b['name']} {b['in_use']}/{b['limit']}" + (f" ({word('window')} {b['window']})" if b["window"] else "")
        for b in status["bases"]
    )
    farms = ", ".join(
        f"{f['id']} {f['busy']}/{f['slots']}" + (f" {word('lost')}" if f["lost"] else "") for f in status["farms"]
    )
    return Group(
        Text(header),
        queues,
        Text(f"Bases: {bases or '-'}"),
        Text(f"Farms: {farms or '-'}"),
        Text(word("quit"), style="dim"),
    )


def progress_line(status: dict[str, Any]) -> str:
    """One line for logs and non-terminal output: consumed of all queues, DLQ, speed."""
    consumed = sum(q["consumed"] for q in status["queues"])
    pending = sum(q["pending"] for q in status["queues"])
    dead = sum(q["dead"] for q in status["queues"])
    speed = sum(q.get("speed_10s", q["speed"]) for q in status["queues"])
    busy = sum(f["busy"] for f in status["farms"])
    return (
        f"{word('consumed')} {number(consumed)}, {word('pending')} {number(pending)}, DLQ {number(dead)}, "
        f"{number(speed)} msgs/s, {counted(busy, 'busy-worker')}"
    )
