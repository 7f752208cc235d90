"""``xtreaming demo``: forms queues from generated portfolios on the embedded log and shows them."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from rich.console import Console
from rich.table import Table

from xtreaming.broker import open_broker
from xtreaming.csv_source import CsvFile
from xtreaming.demo.portfolio import write_portfolio
from xtreaming.publishing import publish_csv

#: (topic, seed): three import loads on two bases, as the operator screen would show them.
DEMO_LOADS: Final = (
    ("MULTCOB02.1186.IMPORTACAO.MAILING_PORTO_NOVO", 1),
    ("MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU", 2),
    ("MULTCOB03.1190.IMPORTACAO.CARGA_TOTAL", 3),
)


def run_demo(data_dir: Path, *, clients: int, console: Console) -> None:
    """Generate the portfolios, publish each (one message per CPF), and print the queues formed."""
    log_path = data_dir / "log.db"
    for stale in data_dir.glob("log.db*"):  # each demo run starts from an empty log
        stale.unlink()
    broker_url = f"sqlite:///{log_path.resolve()}"
    console.print(f"[bold]Xtreaming demo[/] — embedded log at {log_path}")
    for topic, seed in DEMO_LOADS:
        path = data_dir / f"{topic}.csv"
        if not path.exists():
            console.print(f"generating {path.name} ({clients:,} clients)")
            write_portfolio(path, clients, seed=seed)
        outcome = publish_csv(CsvFile(path, "cpf"), topic, broker_url, console=console)
        console.print(
            f"  {topic}: {outcome.report.published:,} published, "
            f"{outcome.report.duplicates:,} duplicate CPFs dropped, {outcome.rate:,.0f} rows/s"
        )
    log = open_broker(broker_url)
    try:
        table = Table("Fila", "Tipo", "Partições", "Mensagens", title="Filas formadas")
        for name in log.list_topics():
            kind = name.split(".")[2]
            table.add_row(name, kind, str(log.partition_count(name)), f"{sum(log.end_offsets(name).values()):,}")
    finally:
        log.close()
    console.print(table)
