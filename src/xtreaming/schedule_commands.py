"""Scheduled publishing commands: ``xtreaming schedule add|list|remove``, each one call to the coordinator's API.

A schedule the coordinator refuses (an invalid cron expression or topic, a CSV file it cannot find, a callable
that does not import) exits 2 with its sentence, nothing stored; other failures exit 1.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from xtreaming.client import ApiError
from xtreaming.config import ClientSettings, validated
from xtreaming.operator_commands import TokenOption, UrlOption, client
from xtreaming.screen_words import code_word, counted, number, word

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
schedule_app = typer.Typer(
    no_args_is_help=True,
    help="Scheduled publishing: a CSV file, a fixed message or a Python callable published to a topic at each tick "
    "of a cron expression, by the leading coordinator, each tick at most once.",
)

#: Exit code of a schedule refused for what it says (nothing stored).
EXIT_USAGE: Final = 2


@schedule_app.command("add")
def schedule_add(
    topic: Annotated[str, typer.Argument(help="Work topic, e.g. MULTCOB02.1186.COBSINC.LOCALIZACAO.")],
    cron: Annotated[
        str,
        typer.Option(
            "--cron",
            help="In the site's time zone: minute hour day month weekday ('0 8 * * mon-fri'); a sixth field is "
            "seconds ('* * * * * */10').",
        ),
    ],
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="CSV file on the coordinator's machine, read at each tick.")
    ] = None,
    key_column: Annotated[str, typer.Option(help="With --csv: the key column.")] = "cpf",
    value_format: Annotated[str, typer.Option(help="With --csv: json (the row as an object) or raw (the line).")] = (
        "json"
    ),
    value_column: Annotated[str | None, typer.Option(help="With --csv: publish this column's text.")] = None,
    delimiter: Annotated[str | None, typer.Option(help="With --csv: guessed from the header when left out.")] = None,
    encoding: Annotated[str, typer.Option(help="With --csv: the file's encoding.")] = "utf-8",
    key: Annotated[str | None, typer.Option("--key", help="With --value: the fixed message's key.")] = None,
    value: Annotated[str | None, typer.Option("--value", help="A fixed message published at each tick.")] = None,
    function: Annotated[
        str | None,
        typer.Option("--callable", help="module:function yielding (key, value) pairs, called at each tick."),
    ] = None,
    misfire: Annotated[
        str, typer.Option(help="Ticks missed during an outage: once (run the latest once) or skip.")
    ] = "once",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Publish to TOPIC at each tick of --cron: a CSV file (--csv), a fixed message (--value) or a callable."""
    given = [name for name, v in (("--csv", csv_path), ("--value", value), ("--callable", function)) if v is not None]
    if len(given) != 1:
        _refused(f"give exactly one of --csv, --value and --callable (what each tick publishes); got {given or 'none'}")
    if key is not None and value is None:
        _refused("--key goes with --value (a fixed message)")
    body: dict[str, Any] = {"topic": topic, "cron": cron, "misfire": misfire}
    if csv_path is not None:
        csv: dict[str, Any] = {"path": str(csv_path.absolute()), "key_column": key_column, "value_format": value_format}
        csv.update({k: v for k, v in (("value_column", value_column), ("delimiter", delimiter)) if v is not None})
        body["csv"] = {**csv, "encoding": encoding}
    elif value is not None:
        body["message"] = {"key": key, "value": value}
    else:
        body["callable"] = function
    with client(url, token) as api:
        try:
            schedule = api.post("/api/schedules", body)
        except ApiError as exc:
            if exc.status == 422:
                _refused(str(exc))
            raise
    added = word("schedule.added").format(
        id=schedule["id"], topic=schedule["topic"], cron=schedule["cron"], next=_at(schedule["next_at"])
    )
    out.print(escape(added))


@schedule_app.command("list")
def schedule_list(url: UrlOption = None, token: TokenOption = None) -> None:
    """Every schedule: what it publishes, its last tick and outcome, and its next tick."""
    with client(url, token) as api:
        schedules = api.get("/api/schedules")
    columns = ("publishes", "misfire", "last", "result", "next")
    table = Table("Id", word("col.topic"), "Cron", *(word(f"col.{c}") for c in columns))
    for s in schedules:
        last = s["last"]
        table.add_row(
            str(s["id"]),
            escape(s["topic"]),
            escape(s["cron"]),
            escape(describe_source(s["source"])),
            code_word("misfire", s["misfire"]),
            _at(last["tick_at"]) if last else "-",
            escape(outcome(last)) if last else "-",
            _at(s["next_at"]),
        )
    out.print(table)
    out.print(counted(len(schedules), "schedule"))


@schedule_app.command("remove")
def schedule_remove(
    schedule_id: Annotated[int, typer.Argument(help="The schedule's id ('xtreaming schedule list').", min=1)],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Remove a schedule and its ticks."""
    with client(url, token) as api:
        api.delete(f"/api/schedules/{schedule_id}")
    out.print(word("schedule.removed").format(id=schedule_id))


def describe_source(source: dict[str, Any]) -> str:
    """What a schedule publishes, in a few words of the session's language."""
    if source["kind"] == "csv":
        return word("source.csv").format(path=source["path"], column=source["key_column"])
    if source["kind"] == "message":
        key = source["key"] or word("source.no-key")
        return word("source.message").format(key=key, value=source["value"][:40])
    return word("source.callable").format(target=source["target"])


def outcome(tick: dict[str, Any]) -> str:
    """A tick's outcome in words of the session's language: ``1.000 mensagens publicadas``, ``falhou após …``,
    ``publicando (…)``, ``pulada (…)``."""
    state, published = tick["state"], tick["published"]
    if state == "published":
        return counted(published, "published")
    if state == "failed":
        return word("tick.failed").format(messages=counted(published, "message"), error=tick["error"])
    if state == "claimed":
        return word("tick.publishing").format(count=number(published))
    missed = tick["missed"] + 1
    return word(f"tick.skipped.{'one' if missed == 1 else 'many'}").format(count=number(missed))


def _at(value: str | None) -> str:
    if value is None:
        return "-"
    zone = ZoneInfo(validated(ClientSettings, {}).time_zone)
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _refused(why: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(why)}", soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)
