"""Operator commands: each one call to the coordinator's API, its answer printed as a table or a line."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from xtreaming.client import CoordinatorClient
from xtreaming.config import ClientSettings, validated
from xtreaming.screen_words import counted, duration, number, reason_words, state_word, weekdays, word

out = Console(highlight=False)
window_app = typer.Typer(no_args_is_help=True, help="Time windows limiting a base's workers.")
bulk_app = typer.Typer(
    no_args_is_help=True,
    help="Pause, resume or reprioritize every queue matching a filter (--base, --kind, --pattern), in one action.",
)

UrlOption = Annotated[
    str | None, typer.Option("--url", help="Coordinator URL, or several comma-separated (default: XTREAMING_URL).")
]
TokenOption = Annotated[str | None, typer.Option("--token", help="Bearer token (default: XTREAMING_TOKEN).")]
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def client(url: str | None, token: str | None) -> CoordinatorClient:
    settings = validated(ClientSettings, {})
    return CoordinatorClient(url or settings.url, token or settings.token, ca_file=settings.ca_file)


def queues(
    base: Annotated[str | None, typer.Option(help="Only this base.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind (IMPORTACAO, COBSINC, …).")] = None,
    contains: Annotated[str | None, typer.Option("--filter", help="Only topics containing this text.")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Queues with their figures: priority, state, workers, consumed, pending, speed, ETA."""
    with client(url, token) as api:
        page = api.get("/api/queues", base=base, kind=kind, q=contains, limit=5000)
    columns = ("topic", "kind", "prio", "state", "workers", "on-base", "consumed", "pending", "failures", "dead")
    table = Table(*(word(f"col.{c}") for c in columns), "msgs/s", "ETA")
    for r in page["items"]:
        window = f" ({r['base_window']})" if r["base_window"] else ""
        table.add_row(
            r["topic"], r["kind"], str(r["priority"]), state_word(r["state"]), str(r["workers"]),
            f"{r['base_in_use']}/{r['base_limit']}{window}", number(r["consumed"]), number(r["pending"]),
            number(r["failures"]), number(r["dead"]), number(r["speed"], 1), duration(r["eta_s"]),
        )  # fmt: skip
    out.print(table)
    out.print(counted(page["total"], "queue"))


def pause(
    target: Annotated[str, typer.Argument(help="Queue (topic), or base with --base.")],
    base: Annotated[bool, typer.Option("--base", help="TARGET is a base: pause all its queues.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Pause a queue or a base: no new tasks; running ones finish."""
    _switch(target, base, "pause", url, token)


def resume(
    target: Annotated[str, typer.Argument(help="Queue (topic), or base with --base.")],
    base: Annotated[bool, typer.Option("--base", help="TARGET is a base.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Resume a paused queue or base."""
    _switch(target, base, "resume", url, token)


def _switch(target: str, base: bool, action: str, url: str | None, token: str | None) -> None:
    path = f"/api/bases/{target}/{action}" if base else f"/api/queues/{target}/{action}"
    with client(url, token) as api:
        api.post(path)
    out.print(word(f"done.{'base' if base else 'queue'}.{action}").format(target=target))


def priority(
    queue: Annotated[str, typer.Argument(help="Queue (topic).")],
    set_to: Annotated[int | None, typer.Option("--set", min=0, max=9, help="New priority, 0..9.")] = None,
    up: Annotated[bool, typer.Option("--up", help="Raise by one.")] = False,
    down: Annotated[bool, typer.Option("--down", help="Lower by one.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Set, raise or lower a queue's priority (higher runs first)."""
    chosen = [set_to is not None, up, down].count(True)
    if chosen != 1:
        raise typer.BadParameter("give exactly one of --set N, --up, --down")
    body: dict[str, int] = {"priority": set_to} if set_to is not None else {"delta": 1 if up else -1}
    with client(url, token) as api:
        row = api.post(f"/api/queues/{queue}/priority", body)
    out.print(word("done.priority").format(queue=queue, priority=row["priority"]))


BaseFilter = Annotated[str | None, typer.Option("--base", help="Queues of this base, e.g. MULTCOB03.")]
KindFilter = Annotated[str | None, typer.Option("--kind", help="Queues of this kind (IMPORTACAO, COBSINC, …).")]
PatternFilter = Annotated[
    str | None, typer.Option("--pattern", help="RE2 expression searched for in the topic (anchor with ^…$).")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Only list the queues and what would change.")]


@bulk_app.command("pause")
def bulk_pause(
    base: BaseFilter = None,
    kind: KindFilter = None,
    pattern: PatternFilter = None,
    dry_run: DryRun = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Pause every matching queue: no new tasks; running ones finish."""
    _bulk("pause", _selection(base, kind, pattern, dry_run), url, token)


@bulk_app.command("resume")
def bulk_resume(
    base: BaseFilter = None,
    kind: KindFilter = None,
    pattern: PatternFilter = None,
    dry_run: DryRun = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Resume every matching queue."""
    _bulk("resume", _selection(base, kind, pattern, dry_run), url, token)


@bulk_app.command("priority")
def bulk_priority(
    set_to: Annotated[int | None, typer.Option("--set", min=0, max=9, help="New priority, 0..9.")] = None,
    up: Annotated[bool, typer.Option("--up", help="Raise each by one.")] = False,
    down: Annotated[bool, typer.Option("--down", help="Lower each by one.")] = False,
    base: BaseFilter = None,
    kind: KindFilter = None,
    pattern: PatternFilter = None,
    dry_run: DryRun = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Set, raise or lower the priority of every matching queue (within 0..9)."""
    if [set_to is not None, up, down].count(True) != 1:
        raise typer.BadParameter("give exactly one of --set N, --up, --down")
    change: dict[str, object] = {"priority": set_to} if set_to is not None else {"delta": 1 if up else -1}
    _bulk("priority", {**_selection(base, kind, pattern, dry_run), **change}, url, token)


def _selection(base: str | None, kind: str | None, pattern: str | None, dry_run: bool) -> dict[str, object]:
    if base is None and kind is None and pattern is None:
        raise typer.BadParameter("give at least one of --base, --kind, --pattern")
    given = {"base": base, "kind": kind, "pattern": pattern}
    return {**{k: v for k, v in given.items() if v is not None}, "dry_run": dry_run}


def _bulk(action: str, body: dict[str, object], url: str | None, token: str | None) -> None:
    with client(url, token) as api:
        outcome = api.post(f"/api/queues/bulk/{action}", body)
    table = Table(*(word(f"col.{c}") for c in ("topic", "prio", "state", "changes")))
    for row in outcome["queues"]:
        state = state_word("paused") if row["paused"] else word("active")
        table.add_row(row["topic"], str(row["priority"]), state, word("yes") if row["changed"] else "-")
    out.print(table)
    summary = word("bulk.would-change" if outcome["dry_run"] else "bulk.changed")
    matched, changed = counted(len(outcome["queues"]), "queue"), number(outcome["changed"])
    out.print(summary.format(action=word(f"bulk.{action}"), filter=outcome["filter"], queues=matched, changed=changed))


def base_limit(
    base: Annotated[str, typer.Argument(help="Base (database), e.g. MULTCOB03.")],
    max_workers: Annotated[int | None, typer.Option("--max", min=0, help="Most workers at once.")] = None,
    min_workers: Annotated[int | None, typer.Option("--min", min=0, help="Workers reserved while it has work.")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show or set a base's worker limit and reserved minimum."""
    with client(url, token) as api:
        if max_workers is None and min_workers is None:
            row = api.get(f"/api/bases/{base}")
        else:
            row = api.patch(f"/api/bases/{base}", {"max_workers": max_workers, "min_workers": min_workers})
    window = word("base.window").format(window=row["window"]) if row["window"] else ""
    limits = word("base.limits").format(
        name=row["name"], in_use=row["in_use"], limit=row["limit"], window=window,
        max=row["default_max_workers"], min=row["min_workers"],
    )  # fmt: skip
    out.print(limits + (word("base.paused") if row["paused"] else ""))


@window_app.command("add")
def window_add(
    base: Annotated[str, typer.Argument(help="Base, e.g. MULTCOB03.")],
    days: Annotated[str, typer.Option("--days", help="Weekdays: 0-4, mon-fri, 5,6 (Monday=0).")],
    start: Annotated[str, typer.Option("--from", help="Start, HH:MM (site time zone).")],
    end: Annotated[str, typer.Option("--to", help="End, HH:MM; earlier than --from crosses midnight.")],
    max_workers: Annotated[int, typer.Option("--max", min=0, help="Most workers during the window.")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Limit a base's workers during a time window."""
    body = {"weekdays": parse_weekdays(days), "start": start, "end": end, "max_workers": max_workers}
    with client(url, token) as api:
        row = api.post(f"/api/bases/{base}/windows", body)
    out.print(word("window.added").format(id=row["id"], base=base, window=_window_text(row)))


@window_app.command("list")
def window_list(
    base: Annotated[str, typer.Argument(help="Base, e.g. MULTCOB03.")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """A base's time windows."""
    with client(url, token) as api:
        rows = api.get(f"/api/bases/{base}/windows")
    table = Table("Id", word("col.window"))
    for row in rows:
        table.add_row(str(row["id"]), _window_text(row))
    out.print(table)


@window_app.command("remove")
def window_remove(
    window_id: Annotated[int, typer.Argument(help="Window id (see 'window list').")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Remove a time window."""
    with client(url, token) as api:
        api.delete(f"/api/windows/{window_id}")
    out.print(word("window.removed").format(id=window_id))


def farms(url: UrlOption = None, token: TokenOption = None) -> None:
    """Farms: labels, busy/total slots, slots reserved for urgent work, last heartbeat; lost farms marked."""
    with client(url, token) as api:
        rows = api.get("/api/farms")
    table = Table(*(word(f"col.{c}") for c in ("farm", "labels", "slots", "urgent", "heartbeat", "state")))
    for r in rows:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(r["labels"].items()))
        at_least = word("priority-at-least")
        urgent = f"{r['urgent_slots']} ({at_least} {r['urgent_priority']})" if r.get("urgent_slots") else "—"
        state = f"[bold red]{word('lost')}[/]" if r["lost"] else word("active")
        table.add_row(r["id"], labels, f"{r['busy']}/{r['slots']}", urgent, r["last_heartbeat_at"], state)
    out.print(table)


def explain(
    queue: Annotated[str, typer.Argument(help="Queue (topic).")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Why is this queue not being served?"""
    with client(url, token) as api:
        answer = api.get(f"/api/queues/{queue}/explain")
    out.print(f"{queue}: {reason_words(answer['reason'])}")


def parse_weekdays(text: str) -> list[int]:
    """``0-4``, ``mon-fri``, ``5,6``, ``sat,sun`` → weekday numbers (Monday=0)."""
    days: set[int] = set()
    for part in text.lower().split(","):
        match = re.fullmatch(r"\s*(\w+)\s*(?:-\s*(\w+)\s*)?", part)
        if match is None:
            raise typer.BadParameter(f"weekdays {text!r}: use 0-4, mon-fri or 5,6 (Monday=0)")
        first, last = _day(match[1], text), _day(match[2] or match[1], text)
        if last < first:
            raise typer.BadParameter(f"weekdays {text!r}: range {part.strip()!r} runs backwards")
        days.update(range(first, last + 1))
    return sorted(days)


def _day(token: str, text: str) -> int:
    if token.isdigit() and int(token) < 7:
        return int(token)
    if token[:3] in DAY_NAMES:
        return DAY_NAMES.index(token[:3])
    raise typer.BadParameter(f"weekdays {text!r}: {token!r} is not a day (0-6 or mon..sun)")


def _window_text(row: dict[str, Any]) -> str:
    return word("window.text").format(
        days=weekdays(row["weekdays"]), start=row["start"], end=row["end"], max=row["max_workers"]
    )
