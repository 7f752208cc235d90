"""The ``xtreaming`` command: parse arguments, call one function, map errors to exit codes.

Exit codes: 0 done; 1 the run failed (the message says what, where, and what was written);
2 bad usage; 3 done, but some input rows were rejected (listed with their line numbers); after
``publish --wait``: 4 some message is dead, 5 some message was still running when the wait ended.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from xtreaming import (
    dlq_commands,
    history_commands,
    operator_commands,
    profile_commands,
    schedule_commands,
    screen_words,
)
from xtreaming.config import ClientSettings, Role, Settings, validated
from xtreaming.csv_source import CsvFile, ValueFormat
from xtreaming.defaults import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    MAX_PARTITIONS,
    MAX_PUBLISH_WAIT_S,
    MAX_WAITED_MESSAGES,
    SERVER_KEEPALIVE_S,
)
from xtreaming.errors import InvalidBrokerUrl, InvalidInput, InvalidTopicName, XtreamingError
from xtreaming.farm.config import (
    DEFAULT_KEEP_FAILED,
    DEFAULT_LEASE_WAIT_S,
    DEFAULT_SLOTS,
    DEFAULT_WORK_ROOT,
    FarmConfig,
)
from xtreaming.producer import DEFAULT_BATCH_SIZE

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REJECTED_ROWS = 3
EXIT_DEAD_MESSAGES = 4
EXIT_STILL_RUNNING = 5

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Xtreaming: one message per client, at scale.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

BrokerOption = Annotated[
    str | None, typer.Option("--broker", help="Broker URL (default: XTREAMING_BROKER_URL or the embedded log).")
]


@contextmanager
def _failures(usage: tuple[type[XtreamingError], ...] = ()) -> Iterator[None]:
    """Our errors become one line on stderr and exit code 1, or 2 for the ``usage`` errors (what was given
    cannot work: nothing was done); anything else is a bug and shows its traceback."""
    try:
        yield
    except XtreamingError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE if isinstance(exc, usage) else EXIT_FAILED) from exc


@app.command()
def publish(
    topic: Annotated[
        str, typer.Argument(help="Work topic BASE.CONVENIO.KIND.PROCESS, e.g. MULTCOB02.1186.IMPORTACAO.CARGA")
    ],
    csv_path: Annotated[Path, typer.Option("--csv", help="CSV file with a header line.")],
    key_column: Annotated[str, typer.Option(help="Column with the client id: one message per distinct key.")] = "cpf",
    value_format: Annotated[
        ValueFormat, typer.Option(help="json: the row as an object; raw: the line exactly as in the file.")
    ] = ValueFormat.JSON,
    value_column: Annotated[
        str | None, typer.Option(help="Publish this column's text untouched (e.g. an XML column).")
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help="Field delimiter (default: guessed: , ; | tab).")] = None,
    encoding: Annotated[str, typer.Option(help="File encoding, e.g. utf-8 or cp1252.")] = "utf-8",
    partitions: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_PARTITIONS,
            help="Partitions when the topic is created (default: XTREAMING_DEFAULT_PARTITIONS).",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per atomic append.")] = DEFAULT_BATCH_SIZE,
    from_line: Annotated[
        int,
        typer.Option(
            min=2,
            help="Publish only rows from this line on (the whole file is still checked): to finish a run the "
            "broker stopped, from the line its message names. Keys are then deduplicated from that line on.",
        ),
    ] = 2,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            max=MAX_PUBLISH_WAIT_S,
            help=f"Then wait up to SECONDS (at most {MAX_PUBLISH_WAIT_S:g}) for each message's outcome, read from "
            f"the topic's .ACK records, and print them; for files of at most {MAX_WAITED_MESSAGES:,} rows. "
            "Exits 4 when some message is dead, 5 when some is still running at the timeout (it goes on).",
        ),
    ] = None,
    broker: BrokerOption = None,
) -> None:
    """Form a queue: publish one message per key of a CSV file, with a progress bar.

    A file, topic or option that cannot work exits 2 with nothing written; a run the broker stops exits 1
    saying which lines were written; rows rejected exit 3. With --wait: 4 when some message is dead (on the
    .DLQ topic), else 5 when some message was still running at the timeout.
    """
    from xtreaming.publishing import outcome_table, publish_csv

    if wait is not None and wait <= 0:
        raise typer.BadParameter(f"{wait:g} seconds: wait more than 0 seconds", param_hint="--wait")
    with _failures(usage=(InvalidInput, InvalidTopicName, InvalidBrokerUrl)):
        source = CsvFile(csv_path, key_column, value_format, value_column, delimiter, encoding, from_line)
        settings = _settings()
        outcome = publish_csv(
            source,
            topic,
            broker or settings.broker_url,
            partitions=partitions or settings.default_partitions,
            batch_size=batch_size,
            console=err,
            wait_s=wait,
        )
    report, rejects = outcome.report, outcome.rejects
    out.print(
        f"{report.topic}: published {report.published:,} messages from {csv_path} "
        f"in {outcome.elapsed_s:.1f} s ({outcome.rate:,.0f}/s); "
        f"duplicates dropped: {report.duplicates:,}; rows rejected: {rejects.count:,}"
    )
    if report.duplicates:
        out.print(f"  duplicate keys (first {len(report.duplicate_samples)}): {', '.join(report.duplicate_samples)}")
    for sample in rejects.samples:
        out.print(f"  rejected {sample}")
    if rejects.count > len(rejects.samples):
        out.print(f"  … and {rejects.count - len(rejects.samples):,} more rejected rows")
    if wait is not None:
        out.print(outcome_table(report))
        dead = sum(o.status == "dead" for o in report.outcomes)
        finished, running = screen_words.number(len(report.outcomes)), screen_words.number(len(report.running))
        summary = screen_words.word("wait.summary")
        out.print(summary.format(finished=finished, dead=screen_words.number(dead), running=running))
        if dead:
            raise typer.Exit(EXIT_DEAD_MESSAGES)
        if report.running:
            raise typer.Exit(EXIT_STILL_RUNNING)
    if rejects.count:
        raise typer.Exit(EXIT_REJECTED_ROWS)


@app.command()
def topics(broker: BrokerOption = None) -> None:
    """List topics with their partitions and message counts."""
    from xtreaming.broker import open_broker

    with _failures():
        log = open_broker(broker or _settings().broker_url)
        try:
            table = Table("Tópico", "Partições", "Mensagens")
            for name in log.list_topics():
                table.add_row(name, str(log.partition_count(name)), f"{sum(log.end_offsets(name).values()):,}")
        finally:
            log.close()
    out.print(table)


@app.command()
def demo(
    clients: Annotated[int, typer.Option(min=1, help="Clients per generated portfolio.")] = 100_000,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its log, state and databases.")] = Path(
        ".xtreaming/demo"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Coordinator port (0: any free port).")] = DEFAULT_PORT,
    slots: Annotated[int, typer.Option(min=1, max=64, help="Worker slots of each of the two farms.")] = 3,
    fail_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of messages the sample worker fails (retried).")
    ] = 0.01,
    error_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of messages the sample worker rejects (DLQ at once).")
    ] = 0.001,
    slow_ms: Annotated[float, typer.Option(min=0, help="Milliseconds the sample worker spends per client.")] = 0.2,
    trickle: Annotated[float, typer.Option(min=0, help="COBSINC requests published per second.")] = 2.0,
    until_done: Annotated[bool, typer.Option(help="Stop once every import is finished.")] = False,
    duration: Annotated[float | None, typer.Option(min=0, help="Stop after this many seconds.")] = None,
    lang: Annotated[
        str | None, typer.Option("--lang", help="Language of the live view: pt-BR (default) or en (XTREAMING_LANG).")
    ] = None,
) -> None:
    """Run the whole system on the embedded defaults: coordinator, two farms, generated portfolios."""
    from xtreaming.demo.launcher import DemoOptions, run_demo

    if lang is not None:
        try:
            os.environ["XTREAMING_LANG"] = screen_words.language(lang)
        except screen_words.UnknownLanguage as error:
            raise typer.BadParameter(str(error), param_hint="--lang") from None

    options = DemoOptions(
        data_dir=data_dir,
        clients=clients,
        port=port,
        slots=slots,
        fail_rate=fail_rate,
        error_rate=error_rate,
        slow_ms=slow_ms,
        trickle_per_s=trickle,
        until_done=until_done,
        duration_s=duration,
    )
    with _failures():
        code = run_demo(options, console=out)
    raise typer.Exit(code)


@app.command()
def farm(
    coordinator: Annotated[
        str | None,
        typer.Option("--coordinator", help="Coordinator URL, or several comma-separated (default: XTREAMING_URL)."),
    ] = None,
    slots: Annotated[int, typer.Option(min=1, max=1024, help="Worker slots: tasks run at once.")] = DEFAULT_SLOTS,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="A label k=v queues may require; repeat for more.")
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help=f"Task directories (default: {DEFAULT_WORK_ROOT.as_posix()}/<name>).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Farm name, unique per site (default: this host's name).")] = None,
    keep_failed: Annotated[
        int, typer.Option(min=0, help="Failed task directories kept for inspection.")
    ] = DEFAULT_KEEP_FAILED,
    lease_wait: Annotated[
        float, typer.Option(min=0.1, max=60, help="Seconds an idle farm's lease request waits for work.")
    ] = DEFAULT_LEASE_WAIT_S,
    keep_running_when_unreachable: Annotated[
        bool,
        typer.Option(
            "--keep-running-when-unreachable",
            help="Keep tasks running while the coordinator does not answer, however long (by default they are "
            "stopped before it would count the farm lost). It may then lease them again: a key may run twice.",
        ),
    ] = False,
    ca_file: Annotated[
        Path | None,
        typer.Option(help="PEM certificates to trust for an https:// coordinator (default: XTREAMING_CA_FILE)."),
    ] = None,
    urgent_slots: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=1023,
            envvar="XTREAMING_FARM_URGENT_SLOTS",
            help="Keep the last N slots for urgent work (see --urgent-priority); fewer than --slots "
            "(default: the coordinator's XTREAMING_URGENT_SLOTS).",
        ),
    ] = None,
    urgent_priority: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=9,
            envvar="XTREAMING_FARM_URGENT_PRIORITY",
            help="The least priority the urgent slots take (default: the coordinator's XTREAMING_URGENT_PRIORITY, 8).",
        ),
    ] = None,
) -> None:
    """Run a farm agent: take tasks from the coordinator and run them on this machine's worker slots.

    The token comes from XTREAMING_TOKEN_FILE (a file only its owner may read: best, as the processes the farm
    starts cannot see it) or XTREAMING_TOKEN. Ctrl-C (or SIGTERM) once: no new tasks, running ones
    finish; twice: running tasks are killed and reported for retry.
    """
    import logging
    import socket

    from xtreaming.client import CoordinatorClient
    from xtreaming.farm.node import FarmNode

    labels = _labels(label or [])
    if urgent_slots is not None and urgent_slots >= slots:
        raise typer.BadParameter(
            f"{urgent_slots} urgent slot(s) of {slots}: keep at least one ordinary slot (fewer than --slots)",
            param_hint="--urgent-slots",
        )
    farm_name = name or socket.gethostname()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns what matters
    with _failures():
        settings = validated(ClientSettings, {} if ca_file is None else {"ca_file": ca_file})
        config = FarmConfig(
            coordinator_url=coordinator or settings.url,
            name=farm_name,
            slots=slots,
            labels=labels,
            work_dir=work_dir or DEFAULT_WORK_ROOT / farm_name,
            token=settings.token,
            keep_failed=keep_failed,
            lease_wait_s=lease_wait,
            keep_running_when_unreachable=keep_running_when_unreachable,
            urgent_slots=urgent_slots,
            urgent_priority=urgent_priority,
        )
        code = FarmNode(config, client_factory=functools.partial(CoordinatorClient, ca_file=settings.ca_file)).run()
    raise typer.Exit(code)


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"label {pair!r} is not key=value, e.g. site=POA", param_hint="--label")
        labels[key.strip()] = value.strip()
    return labels


@app.command()
def coordinator(
    host: Annotated[
        str | None, typer.Option(help=f"Address to bind (default: XTREAMING_HOST, {DEFAULT_HOST}).")
    ] = None,
    port: Annotated[int | None, typer.Option(help=f"Port (default: XTREAMING_PORT, {DEFAULT_PORT}).")] = None,
    certfile: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this PEM certificate (default: XTREAMING_CERTFILE).")
    ] = None,
    keyfile: Annotated[
        Path | None, typer.Option(help="The certificate's PEM private key (default: XTREAMING_KEYFILE).")
    ] = None,
) -> None:
    """Run the coordinator: API, operator screen and scheduling loop, on the configured broker and state."""
    import uvicorn

    from xtreaming.coordinator.api.app import create_app
    from xtreaming.coordinator.heap import settle_heap

    with _failures():
        settings = _settings(host=host, port=port, certfile=certfile, keyfile=keyfile)
        application = create_app(settings)
    settle_heap()  # state loaded: keep full garbage collections from stalling decisions
    scheme = "http" if settings.certfile is None else "https"
    out.print(f"coordinator on {scheme}://{settings.host}:{settings.port} (API docs at /docs)")
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_keep_alive=SERVER_KEEPALIVE_S,
        ssl_certfile=settings.certfile,
        ssl_keyfile=settings.keyfile,
    )


@app.command()
def token(
    name: Annotated[str, typer.Option(help="Who uses it (shown as the actor in the audit log).")],
    role: Annotated[Role, typer.Option(help="viewer, operator, admin or farm.")],
    farm: Annotated[
        list[str] | None,
        typer.Option(
            help="For a farm token (required there): a farm name it may act as, or a pattern like 'poa-*' "
            "('*': any farm); repeat for several."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object {name, role, token, entry} (the default when piped).")
    ] = False,
) -> None:
    """Make a new bearer token: give the token to its user, add the entry to XTREAMING_TOKENS."""
    from xtreaming.coordinator.api.auth import hash_token, new_token

    if role is Role.FARM and not farm:
        raise typer.BadParameter(
            "a farm token is bound to the farms it may act as: give --farm NAME", param_hint="--farm"
        )
    if farm and role is not Role.FARM:
        raise typer.BadParameter("only a farm token is bound to farms", param_hint="--farm")
    secret = new_token()
    entry: dict[str, object] = {"name": name, "role": role.value, "sha256": hash_token(secret)}
    if farm:
        entry["farms"] = farm
    if as_json or not sys.stdout.isatty():  # a script reads it: one line, never wrapped, no prose
        sys.stdout.write(json.dumps({"name": name, "role": role.value, "token": secret, "entry": entry}) + "\n")
        return
    out.print(f"token (give it to {name}; it is not stored): {secret}", soft_wrap=True)
    out.print(f"XTREAMING_TOKENS entry: {json.dumps(entry)}", soft_wrap=True)


def _settings(**overrides: object) -> Settings:
    """Settings from the environment with command-line values on top; invalid ones fail in a sentence."""
    return validated(Settings, {k: v for k, v in overrides.items() if v is not None})


def _mapped(command: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(command)
    def run(*args: object, **kwargs: object) -> None:
        with _failures():
            command(*args, **kwargs)

    return run


for _command in (
    operator_commands.queues,
    operator_commands.pause,
    operator_commands.resume,
    operator_commands.priority,
    operator_commands.farms,
    operator_commands.explain,
    history_commands.history,
):
    app.command()(_mapped(_command))
app.command("base-limit")(_mapped(operator_commands.base_limit))
app.command()(_mapped(profile_commands.settings))


def _add_group(group: typer.Typer, name: str) -> None:
    """Add a group of commands (``xtreaming NAME …``), each failing in a sentence as the others do (``_mapped``)."""
    for command in group.registered_commands:
        assert command.callback is not None
        command.callback = _mapped(command.callback)
    app.add_typer(group, name=name)


_add_group(operator_commands.window_app, "window")
_add_group(operator_commands.bulk_app, "bulk")
_add_group(profile_commands.profile_app, "profile")
_add_group(dlq_commands.dlq_app, "dlq")
_add_group(schedule_commands.schedule_app, "schedule")


@app.callback()
def _check_language() -> None:
    """Refuse an unknown ``XTREAMING_LANG`` before any command runs, so no view prints half in a default language."""
    try:
        screen_words.language()
    except screen_words.UnknownLanguage as error:
        typer.echo(f"Error: {error} (XTREAMING_LANG)", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    app()
