"""Profile and queue-settings commands: how queues get their worker, each one call to the coordinator's API.

A worker command is given as a JSON list of strings (``'["MultcobWorker.exe", "IMPORTAR", "{input}"]'``):
exact on every platform, where a shell-like string would have its Windows backslashes eaten by quoting rules.
Bad input is refused with one line on stderr and exit code 2, before anything is sent.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Final, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from xtreaming.coordinator.patterns import compile_pattern
from xtreaming.errors import InvalidInput
from xtreaming.operator_commands import TokenOption, UrlOption, client
from xtreaming.screen_words import number, seconds, word

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
profile_app = typer.Typer(
    no_args_is_help=True, help="Profiles: topic pattern → worker and settings of the queues it matches."
)

#: The exit code of bad usage (``cli.py`` gives the same for typer's own errors).
EXIT_USAGE: Final = 2
#: What ``xtreaming settings`` shows of a queue's settings, in this order (``screen_words``: ``setting.<name>``).
SHOWN_SETTINGS: Final = (
    "command", "handler", "batch_size", "priority", "timeout_s", "max_attempts", "backoff_s", "required_labels",
    "max_workers", "one_per_key",
)  # fmt: skip
#: As the API accepts it (``api.schemas.SettingsChange.handler``): ``module:function``.
HANDLER: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

Command = Annotated[
    str | None,
    typer.Option(
        "--command",
        help='Worker command template as a JSON list, e.g. \'["MultcobWorker.exe", "--entrada", "{input}"]\'.',
    ),
]
Handler = Annotated[str | None, typer.Option("--handler", help="Python handler module:function, instead of a command.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", min=1, help="Messages per task.")]
Priority = Annotated[int | None, typer.Option("--priority", min=0, max=9, help="0..9, higher first.")]
Timeout = Annotated[float | None, typer.Option("--timeout", min=0.001, help="Seconds a task may run.")]
MaxAttempts = Annotated[int | None, typer.Option("--max-attempts", min=1, help="Attempts before the DLQ.")]
Backoff = Annotated[float | None, typer.Option("--backoff", min=0, help="Seconds before the first retry (doubling).")]
Labels = Annotated[list[str] | None, typer.Option("--label", help="Required farm label k=v (repeatable).")]
MaxWorkers = Annotated[int | None, typer.Option("--max-workers", min=0, help="Most tasks of one queue at once.")]
OnePerKey = Annotated[
    bool | None,
    typer.Option(
        "--one-per-key/--no-one-per-key",
        help="Finish a message as a duplicate when one with its key is pending or running in the queue "
        "(left out of a profile: each queue's kind decides, on for IMPORTACAO, off for COBSINC).",
    ),
]


@profile_app.command("add")
def profile_add(
    pattern: Annotated[str, typer.Argument(help=r"Regular expression matching whole topics, e.g. 'MULTCOB03\..*'.")],
    command: Command = None,
    handler: Handler = None,
    batch_size: BatchSize = None,
    priority: Priority = None,
    timeout: Timeout = None,
    max_attempts: MaxAttempts = None,
    backoff: Backoff = None,
    label: Labels = None,
    max_workers: MaxWorkers = None,
    one_per_key: OnePerKey = None,
    position: Annotated[int | None, typer.Option("--position", min=0, help="Place among profiles (0: first).")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Add a profile: every queue it matches first follows it (now and when discovered), except settings
    set on the queue itself (`xtreaming settings`). Settings left out take the built-in defaults."""
    try:
        compile_pattern(pattern)  # the coordinator's own rule (RE2), told before anything is sent
    except InvalidInput as exc:
        _refuse(f"profile {exc}")
    settings = _settings(
        command, handler, batch_size, priority, timeout, max_attempts, backoff, label, max_workers, one_per_key
    )
    body: dict[str, Any] = {"pattern": pattern, "settings": settings}
    if position is not None:
        body["position"] = position
    with client(url, token) as api:
        profile = api.post("/api/profiles", body)
    added = word("profile.added").format(
        id=profile["id"], position=profile["position"], pattern=profile["pattern"], worker=_worker(profile)
    )
    out.print(escape(added))
    if not (settings.get("command") or settings.get("handler")):
        out.print(word("profile.no-worker"))


@profile_app.command("list")
def profile_list(url: UrlOption = None, token: TokenOption = None) -> None:
    """Profiles in the order they are tried (the first match wins)."""
    with client(url, token) as api:
        profiles = api.get("/api/profiles")
    table = Table(
        "ID", "Pos", word("col.pattern"), "Worker", word("col.batch"), word("col.prio"), word("col.timeout"),
        *(word(f"col.{c}") for c in ("tries", "labels", "max", "one-per-key")),
    )  # fmt: skip
    for p in profiles:
        s = p["settings"]
        table.add_row(
            str(p["id"]),
            str(p["position"]),
            escape(p["pattern"]),
            escape(_worker(p)),
            number(s["batch_size"]),
            str(s["priority"]),
            seconds(s["timeout_s"]),
            number(s["max_attempts"]),
            escape(_labels(s["required_labels"])),
            "-" if s["max_workers"] is None else number(s["max_workers"]),
            _one_per_key(s["one_per_key"]),
        )
    out.print(table)


@profile_app.command("remove")
def profile_remove(
    profile_id: Annotated[int, typer.Argument(help="The profile's id (see `xtreaming profile list`).")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Remove a profile: its queues follow the next matching profile, else their kind's defaults."""
    with client(url, token) as api:
        api.delete(f"/api/profiles/{profile_id}")
    out.print(word("profile.removed").format(id=profile_id))


def settings(
    queue: Annotated[str, typer.Argument(help="The queue's topic.")],
    command: Command = None,
    handler: Handler = None,
    batch_size: BatchSize = None,
    priority: Priority = None,
    timeout: Timeout = None,
    max_attempts: MaxAttempts = None,
    backoff: Backoff = None,
    label: Labels = None,
    max_workers: MaxWorkers = None,
    one_per_key: OnePerKey = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show a queue's settings, or override some: an override stays over any profile, added or removed later."""
    changes = _settings(
        command, handler, batch_size, priority, timeout, max_attempts, backoff, label, max_workers, one_per_key
    )
    with client(url, token) as api:
        shown = (
            api.patch(f"/api/queues/{queue}/settings", changes) if changes else api.get(f"/api/queues/{queue}/settings")
        )
    own = set(shown["overridden"])
    source = word("settings.kind") if shown["profile_id"] is None else word("settings.profile")
    out.print(escape(word("settings.follows").format(queue=queue, source=source.format(id=shown["profile_id"]))))
    for name in SHOWN_SETTINGS:
        out.print(f"  {word(f'setting.{name}')}{'*' if name in own else ''}: {escape(_setting(name, shown[name]))}")
    if not (shown["command"] or shown["handler"]):
        out.print(f"  {word('settings.no-worker')}")


def _settings(
    command: str | None,
    handler: str | None,
    batch_size: int | None,
    priority: int | None,
    timeout: float | None,
    max_attempts: int | None,
    backoff: float | None,
    labels: list[str] | None,
    max_workers: int | None,
    one_per_key: bool | None,
) -> dict[str, Any]:
    """The API's settings body from the options given; refuses bad input (exit 2)."""
    if command is not None and handler is not None:
        _refuse("give --command or --handler, not both")
    if handler is not None and not HANDLER.match(handler):
        _refuse(f"--handler {handler!r} is not module:function (e.g. xtreaming.demo.worker:handle)")
    values: dict[str, Any] = {
        "command": None if command is None else _command(command),
        "handler": handler,
        "batch_size": batch_size,
        "priority": priority,
        "timeout_s": timeout,
        "max_attempts": max_attempts,
        "backoff_s": backoff,
        "required_labels": None if labels is None else _label_pairs(labels),
        "max_workers": max_workers,
        "one_per_key": one_per_key,
    }
    return {name: value for name, value in values.items() if value is not None}


def _command(text: str) -> list[str]:
    example = '\'["MultcobWorker.exe", "IMPORTAR", "--entrada", "{input}"]\''
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        _refuse(f"--command must be a JSON list of strings, e.g. {example}: {exc.msg} at character {exc.pos}")
    if not isinstance(parsed, list) or not parsed or not all(isinstance(part, str) and part for part in parsed):
        _refuse(f"--command must be a non-empty JSON list of non-empty strings, e.g. {example}")
    return parsed


def _label_pairs(labels: list[str]) -> dict[str, str]:
    pairs = {}
    for text in labels:
        name, sep, value = text.partition("=")
        if not sep or not name or not value:
            _refuse(f"--label {text!r} is not name=value (e.g. os=windows)")
        pairs[name] = value
    return pairs


def _refuse(reason: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {reason}")
    raise typer.Exit(EXIT_USAGE)


def _worker(profile: dict[str, Any]) -> str:
    s = profile["settings"]
    if s["handler"]:
        return word("worker.handler").format(handler=s["handler"])
    return word("worker.command").format(command=json.dumps(s["command"])) if s["command"] else word("worker.none")


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


def _one_per_key(value: bool | None) -> str:
    """A queue's or profile's ``one_per_key``: None (a profile's) leaves it to each queue's kind."""
    return word(f"one-per-key.{'kind' if value is None else 'on' if value else 'off'}")


def _setting(name: str, value: Any) -> str:
    """A setting's value as ``xtreaming settings`` shows it, numbers and seconds in the session's language."""
    if name == "required_labels":
        return _labels(value)
    if name == "one_per_key":
        return _one_per_key(value)
    if value is None or value == []:
        return "-"
    if isinstance(value, list):
        return json.dumps(value)
    if name in ("timeout_s", "backoff_s"):
        return seconds(value)
    return number(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)
