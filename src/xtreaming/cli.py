"""The ``xtreaming`` command: parse arguments, call one function, map errors to exit codes.

Exit codes: 0 done; 1 the run failed (the message says what, where, and what was written);
2 bad usage; 3 done, but some input rows were rejected (listed with their line numbers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from xtreaming.config import Settings
from xtreaming.csv_source import CsvFile, ValueFormat
from xtreaming.errors import XtreamingError

EXIT_FAILED = 1
EXIT_REJECTED_ROWS = 3

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Xtreaming: one message per client, at scale.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

BrokerOption = Annotated[
    str | None, typer.Option("--broker", help="Broker URL (default: XTREAMING_BROKER_URL or the embedded log).")
]


@contextmanager
def _failures() -> Iterator[None]:
    """Our errors become one line on stderr and exit code 1; anything else is a bug and shows its traceback."""
    try:
        yield
    except XtreamingError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(EXIT_FAILED) from exc


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
    partitions: Annotated[int | None, typer.Option(min=1, help="Partitions when the topic is created.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per atomic append.")] = 1000,
    broker: BrokerOption = None,
) -> None:
    """Form a queue: publish one message per key of a CSV file, with a progress bar."""
    from xtreaming.publishing import publish_csv

    settings = Settings()
    source = CsvFile(csv_path, key_column, value_format, value_column, delimiter, encoding)
    with _failures():
        outcome = publish_csv(
            source, topic, broker or settings.broker_url, partitions=partitions, batch_size=batch_size, console=err
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
    if rejects.count:
        raise typer.Exit(EXIT_REJECTED_ROWS)


@app.command()
def topics(broker: BrokerOption = None) -> None:
    """List topics with their partitions and message counts."""
    from xtreaming.broker import open_broker

    with _failures():
        log = open_broker(broker or Settings().broker_url)
        try:
            table = Table("topic", "partitions", "messages")
            for name in log.list_topics():
                table.add_row(name, str(log.partition_count(name)), f"{sum(log.end_offsets(name).values()):,}")
        finally:
            log.close()
    out.print(table)


@app.command()
def demo(
    clients: Annotated[int, typer.Option(min=1, help="Clients per generated portfolio.")] = 100_000,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its log and files.")] = Path(".xtreaming/demo"),
) -> None:
    """Run the system on the embedded defaults with generated portfolios."""
    from xtreaming.demo.launcher import run_demo

    with _failures():
        run_demo(data_dir, clients=clients, console=out)


def main() -> None:
    app()
