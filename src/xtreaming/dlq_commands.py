"""Dead-letter commands: what died and why, and putting letters back on their work topic (or setting them aside),
each through the coordinator's API.

Replay, skip and purge ask first, with the number of letters the filter selects (a dry run), unless ``--yes``;
a filter that selects nothing says so and exits 1 having changed nothing. A replay is followed with a progress
bar until it ends; interrupting the command (Ctrl-C) does not stop the replay, which the coordinator runs.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from xtreaming.client import CoordinatorClient
from xtreaming.operator_commands import TokenOption, UrlOption, client
from xtreaming.screen_words import code_word, counted, number, word

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
dlq_app = typer.Typer(
    no_args_is_help=True,
    help="Dead letters: what died and why, replayed onto their work topic, skipped or purged by filter.",
)

#: Exit codes: the action ran into an error or matched nothing (1), bad usage (2).
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
#: How often a followed replay is asked how far it got.
FOLLOW_EVERY_S: Final = 0.5

Topic = Annotated[str, typer.Argument(help="The work topic, e.g. MULTCOB02.1186.IMPORTACAO.CARGA.")]
Error = Annotated[str | None, typer.Option("--error", help="Only letters whose error contains this text.")]
Keys = Annotated[list[str] | None, typer.Option("--key", help="Only letters of this key (repeatable).")]
Since = Annotated[
    str | None, typer.Option("--since", help="Died at or after (ISO 8601; local time unless a zone is given).")
]
Until = Annotated[
    str | None, typer.Option("--until", help="Died before (ISO 8601; local time unless a zone is given).")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Only say how many letters match.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@dlq_app.command("list")
def dlq_list(url: UrlOption = None, token: TokenOption = None) -> None:
    """Work topics with dead letters: open, replayed and skipped, and the open ones by error with samples."""
    with client(url, token) as api:
        topics = api.get("/api/dlq")
    table = Table(*(word(f"col.{c}") for c in ("topic", "open", "replayed", "skipped", "error", "count", "samples")))
    for row in topics:
        groups = row["errors"] or [{"error": "-", "count": 0, "samples": []}]
        for index, group in enumerate(groups):
            first = index == 0
            table.add_row(
                row["topic"] if first else "",
                number(row["open"]) if first else "",
                number(row["replayed"]) if first else "",
                number(row["skipped"]) if first else "",
                escape(group["error"]),
                number(group["count"]) if group["count"] else "-",
                escape(", ".join(s["key"] or "-" for s in group["samples"])),
            )
    out.print(table)
    letters = counted(sum(r["open"] for r in topics), "open-letter")
    out.print(word("dlq.summary").format(letters=letters, topics=counted(len(topics), "queue")))


@dlq_app.command("show")
def dlq_show(
    topic: Topic,
    error: Error = None,
    key: Keys = None,
    since: Since = None,
    until: Until = None,
    state: Annotated[str | None, typer.Option("--state", help="dead, queued, replaying, replayed or skipped.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="Most letters shown.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line instead of a table.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """A topic's dead letters the filter selects, in the order they died."""
    params: dict[str, Any] = {"error": error, "key": key or None, "state": state}
    params.update({k: v for k, v in _times(since, until).items() if v is not None})
    letters: list[dict[str, Any]] = []
    with client(url, token) as api:
        after, total = None, 0
        while len(letters) < limit:
            page = api.get(f"/api/dlq/{topic}", **params, after=after, limit=min(1000, limit - len(letters)))
            letters += page["items"]
            total, after = page["total"], page["next_after"]
            if after is None:
                break
    if as_json:
        for letter in letters:
            out.print(json.dumps(letter, ensure_ascii=False), soft_wrap=True)
        return
    columns = ("letter", "key", "error", "attempts", "died-at", "state", "replayed-as")
    table = Table(*(word(f"col.{c}") for c in columns))
    for letter in letters:
        table.add_row(
            letter["id"],
            escape(letter["key"] or "-"),
            escape(letter["error"]),
            str(letter["attempts"]),
            datetime.fromisoformat(letter["dead_at"]).astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            code_word("letter", letter["state"]),
            letter["replayed_as"] or "-",
        )
    out.print(table)
    out.print(word("dlq.shown").format(shown=number(len(letters)), letters=counted(total, "dead-letter")))


@dlq_app.command("replay")
def dlq_replay(
    topic: Topic,
    error: Error = None,
    key: Keys = None,
    since: Since = None,
    until: Until = None,
    rate: Annotated[
        float | None, typer.Option("--rate", min=0.001, help="Letters per second (default: the site's, 500).")
    ] = None,
    dry_run: DryRun = False,
    yes: Yes = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Put the open letters the filter selects back on their work topic, as new messages, at a capped rate;
    each letter is replayed once. Follows the replay until it ends."""
    body: dict[str, Any] = {"filter": _filter(error, key, since, until)}
    if rate is not None:
        body["rate_per_s"] = rate
    with client(url, token) as api:
        if not _confirmed(api, topic, "replay", body, dry_run, yes):
            return
        started = api.post(f"/api/dlq/{topic}/replay", body)
        out.print(started["detail"])
        _follow(api, started["replay_id"], started["matched"])


@dlq_app.command("skip")
def dlq_skip(
    topic: Topic,
    error: Error = None,
    key: Keys = None,
    since: Since = None,
    until: Until = None,
    dry_run: DryRun = False,
    yes: Yes = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Set aside the open letters the filter selects: never replayed, no longer counted as open (audited)."""
    _act_on_letters("skip", topic, _filter(error, key, since, until), dry_run, yes, client(url, token))


@dlq_app.command("purge")
def dlq_purge(
    topic: Topic,
    error: Error = None,
    key: Keys = None,
    since: Since = None,
    until: Until = None,
    dry_run: DryRun = False,
    yes: Yes = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Forget skipped and replayed letters the filter selects (admin; audited): the index drops them, while
    their records stay in the .DLQ topic, which is append-only."""
    _act_on_letters("purge", topic, _filter(error, key, since, until), dry_run, yes, client(url, token))


def _act_on_letters(
    action: str, topic: str, selection: dict[str, Any], dry_run: bool, yes: bool, coordinator: CoordinatorClient
) -> None:
    """Skip or purge the letters ``selection`` picks, once counted and confirmed (``_confirmed``)."""
    body: dict[str, Any] = {"filter": selection}
    with coordinator as api:
        if _confirmed(api, topic, action, body, dry_run, yes):
            out.print(api.post(f"/api/dlq/{topic}/{action}", body)["detail"])


def _confirmed(api: CoordinatorClient, topic: str, action: str, body: dict[str, Any], dry_run: bool, yes: bool) -> bool:
    """Count what ``action`` would touch and say it; True when it should go ahead (not a dry run, something
    matches, and the operator agreed or gave ``--yes``). Exits 1 when nothing matches."""
    counted = api.post(f"/api/dlq/{topic}/{action}", {**body, "dry_run": True})
    if not counted["matched"]:
        if not dry_run:
            api.post(f"/api/dlq/{topic}/{action}", body)  # refused, in the coordinator's words: nothing changed
        err.print(f"[bold red]error:[/] {escape(counted['detail'])}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
    if dry_run:
        out.print(counted["detail"])
        return False
    if not yes and not typer.confirm(f"{counted['detail']}. Go ahead?"):
        err.print("nothing changed")
        raise typer.Exit(EXIT_FAILED)
    return True


def _follow(api: CoordinatorClient, replay_id: int, total: int) -> None:
    """A progress bar of the replay until it ends; exits 1 when it failed."""
    columns = (TextColumn("replay {task.fields[replay]}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        bar = progress.add_task("replay", total=total, replay=replay_id)
        while True:
            replay = api.get(f"/api/dlq/replays/{replay_id}")
            progress.update(bar, completed=replay["done"])
            if replay["state"] != "running":
                break
            time.sleep(FOLLOW_EVERY_S)
    if replay["state"] == "failed":
        err.print(f"[bold red]error:[/] replay {replay_id} failed: {escape(replay['error'] or '')}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
    letters = counted(replay["done"], "dead-letter")
    out.print(word("replay.finished").format(id=replay_id, letters=letters, topic=replay["topic"]))


def _filter(error: str | None, keys: list[str] | None, since: str | None, until: str | None) -> dict[str, Any]:
    selection: dict[str, Any] = {"error": error, "keys": keys or None, **_times(since, until)}
    return {name: value for name, value in selection.items() if value is not None}


def _times(since: str | None, until: str | None) -> dict[str, str | None]:
    """``--since``/``--until`` as ISO 8601 with a zone (the machine's when none is given); exits 2 when unreadable."""
    times: dict[str, str | None] = {}
    for name, text in (("since", since), ("until", until)):
        if text is None:
            times[name] = None
            continue
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            err.print(
                f"[bold red]error:[/] --{name} {escape(text)!r} is not a time such as 2026-12-06T10:00 or 2026-12-06"
            )
            raise typer.Exit(EXIT_USAGE) from None
        times[name] = (at if at.utcoffset() is not None else at.astimezone()).isoformat()
    return times
