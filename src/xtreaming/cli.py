"""The ``xtreaming`` command: parse arguments, call one function, map errors to exit codes."""

from __future__ import annotations

import typer
from rich.console import Console

from xtreaming.config import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Xtreaming: one message per client, at scale.")
err = Console(stderr=True)


@app.command()
def topics(
    broker: str | None = typer.Option(None, help="Broker URL (default: XTREAMING_BROKER_URL or the embedded log)."),
) -> None:
    """List topics with their message counts."""
    from xtreaming.broker import open_broker

    settings = Settings()
    log = open_broker(broker or settings.broker_url)
    out = Console()
    for name in log.list_topics():
        out.print(f"{name}\t{sum(log.end_offsets(name).values())}")
    log.close()


def main() -> None:
    app()
