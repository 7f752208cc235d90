"""The demo's terminal view of ``/api/status``: the queue table of "Acompanhamento de
MultCobXtreaming", the bases and the farms, refreshed while the demo runs."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


def status_view(status: dict[str, Any], header: str) -> RenderableType:
    """Queues, bases and farms as rich tables under ``header``."""
    queues = Table(title="Acompanhamento de MultCobXtreaming", title_justify="left", expand=False)
    for column in ("Fila", "Tipo", "Prio", "Estado", "Workers", "Na base", "Consumidos", "Pendentes"):
        queues.add_column(column, justify="left" if column in ("Fila", "Tipo", "Estado") else "right")
    for column in ("Retry", "DLQ", "msgs/s", "ETA"):
        queues.add_column(column, justify="right")
    for q in status["queues"]:
        window = f" ({q['base_window']})" if q["base_window"] else ""
        queues.add_row(
            q["topic"], q["kind"], str(q["priority"]), q["state"], str(q["workers"]),
            f"{q['base_in_use']}/{q['base_limit']}{window}", f"{q['consumed']:,}", f"{q['pending']:,}",
            str(q["failures"]), str(q["dead"]), f"{q['speed']:,.0f}", _eta(q["eta_s"]),
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
    speed = sum(q["speed"] for q in status["queues"])
    busy = sum(f["busy"] for f in status["farms"])
    return f"consumed {consumed:,}, pending {pending:,}, DLQ {dead:,}, {speed:,.0f} msgs/s, {busy} workers busy"


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
