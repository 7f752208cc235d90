"""The demo's terminal view of ``/api/status``: the queue table of "Acompanhamento de MultCobXtreaming", the bases
and the farms, refreshed while the demo runs; in pt-BR with the screen's column names and words."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from xtreaming.screen_words import duration, number, state_word

#: The screen's columns (messages.pt-BR.json ``col.*``), left-aligned for text and right-aligned for figures.
TEXT_COLUMNS = ("Fila", "Tipo", "Estado")
FIGURE_COLUMNS = ("Prioridade", "Workers", "Workers na base", "Consumidos", "Pendentes", "Falhas", "DLQ")
SPEED_COLUMNS = ("Velocidade (msgs/s)", "ETA")


def status_view(status: dict[str, Any], header: str) -> RenderableType:
    """Queues, bases and farms as rich tables under ``header``."""
    queues = Table(title="Acompanhamento de MultCobXtreaming", title_justify="left", expand=False)
    for column in TEXT_COLUMNS:
        queues.add_column(column)
    for column in FIGURE_COLUMNS + SPEED_COLUMNS:
        queues.add_column(column, justify="right")
    for q in status["queues"]:
        window = f" · {q['base_window']}" if q["base_window"] else ""
        queues.add_row(
            q["topic"], q["kind"], state_word(q["state"]), str(q["priority"]), number(q["workers"]),
            f"{number(q['base_in_use'])}/{number(q['base_limit'])}{window}", number(q["consumed"]),
            number(q["pending"]), number(q["failures"]), number(q["dead"]),
            number(q.get("speed_10s", q["speed"])), duration(q["eta_s"]),
        )  # fmt: skip
    bases = ", ".join(
        f"{b['name']} {b['in_use']}/{b['limit']}" + (f" (janela {b['window']})" if b["window"] else "")
        for b in status["bases"]
    )
    farms = ", ".join(
        f"{f['id']} {f['busy']}/{f['slots']}" + (" PERDIDA" if f["lost"] else "") for f in status["farms"]
    )
    return Group(
        Text(header),
        queues,
        Text(f"Bases: {bases or '-'}"),
        Text(f"Farms: {farms or '-'}"),
        Text("Ctrl-C para encerrar", style="dim"),
    )


def progress_line(status: dict[str, Any]) -> str:
    """One line for logs and non-terminal output: consumed of all queues, DLQ, speed."""
    consumed = sum(q["consumed"] for q in status["queues"])
    pending = sum(q["pending"] for q in status["queues"])
    dead = sum(q["dead"] for q in status["queues"])
    speed = sum(q.get("speed_10s", q["speed"]) for q in status["queues"])
    busy = sum(f["busy"] for f in status["farms"])
    return (
        f"consumidos {number(consumed)}, pendentes {number(pending)}, DLQ {number(dead)}, "
        f"{number(speed)} msgs/s, {busy} workers ocupados"
    )
