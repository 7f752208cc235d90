"""``xtreaming history KEY``: what happened to a client's messages, attempt by attempt, from the coordinator."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from xtreaming.config import ClientSettings, validated
from xtreaming.operator_commands import TokenOption, UrlOption, client
from xtreaming.screen_words import code_word, counted, number, word

out = Console(highlight=False)


def history(
    key: Annotated[str, typer.Argument(help="The messages' key, e.g. a CPF.")],
    topic: Annotated[str | None, typer.Option(help="Only this queue (topic).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="The newest attempts to show.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="The API's answer as JSON, for scripts.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Every attempt of the messages with KEY in every queue, newest first, over the history's retention."""
    with client(url, token) as api:
        page: dict[str, Any] = api.get("/api/messages", key=key, topic=topic, limit=limit)
    if as_json:
        typer.echo(json.dumps(page, ensure_ascii=False))
        return
    attempts = page["attempts"]
    if not attempts:
        out.print(word("history.none").format(key=escape(key)))
        return
    zone = ZoneInfo(validated(ClientSettings, {}).time_zone)
    columns = [word(f"col.{c}") for c in ("time", "topic", "message", "attempt", "result")]
    table = Table(*columns, "Farm/slot", word("col.duration"), word("col.detail"))
    for a in attempts:
        at = datetime.fromisoformat(a["at"]).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        farm = f"{a['farm']}/{a['slot']}" if a["farm"] else "-"  # a duplicate is finished by no farm
        table.add_row(
            at, escape(a["topic"]), escape(a["message_id"]), str(a["attempt"]), code_word("result", a["result"]),
            escape(farm), f"{number(a['duration_s'], 2)} s", escape(a["detail"] or ""),
        )  # fmt: skip
    out.print(table)
    more = word("history.more").format(limit=limit) if page["next"] else ""
    out.print(word("history.summary").format(attempts=counted(len(attempts), "attempt"), key=escape(key)) + more)
