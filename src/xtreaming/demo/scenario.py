"""What the demo sets up through the coordinator's API: profiles running the sample worker, a base
limit and a time window, three generated import loads, and a steady trickle of COBSINC requests."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rich.console import Console

from xtreaming import screen_words
from xtreaming.client import CoordinatorClient, CoordinatorUnreachable
from xtreaming.csv_source import CsvFile
from xtreaming.demo.portfolio import cpf_digits, write_portfolio
from xtreaming.errors import XtreamingError
from xtreaming.publishing import publish_csv

#: (topic, seed): three import loads on two bases, as the operator screen would show them.
DEMO_LOADS: Final = (
    ("MULTCOB02.1186.IMPORTACAO.MAILING_PORTO_NOVO", 1),
    ("MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU", 2),
    ("MULTCOB03.1190.IMPORTACAO.CARGA_TOTAL", 3),
)
#: The urgent lane: single synchronisation requests, dispatched as soon as they arrive.
URGENT_TOPIC: Final = "MULTCOB02.1186.COBSINC.LOCALIZACAO"
#: (name, labels): the CARGA_TOTAL load requires os=linux, so only the first farm takes it.
DEMO_FARMS: Final = (
    ("farm-poa-linux", {"site": "POA", "os": "linux"}),
    ("farm-poa-windows", {"site": "POA", "os": "windows"}),
)
#: The sample worker as a Python handler (the COBSINC lane).
HANDLER: Final = "xtreaming.demo.worker:handle"
#: MULTCOB03 takes at most this many importers at once.
MULTCOB03_LIMIT: Final = 3


@dataclass(frozen=True, slots=True)
class WorkerBehaviour:
    """How the sample worker misbehaves, so that the screen shows retries and the DLQ."""

    fail_rate: float
    error_rate: float
    slow_ms: float


def worker_command(bases_dir: Path, behaviour: WorkerBehaviour) -> list[str]:
    """The sample worker as a queue's command template, as an operator would configure ``MultcobWorker.exe``."""
    return [
        "{python}", "-m", "xtreaming.demo.worker", "--base", "{base}", "--kind", "{kind}",
        "--input", "{input}", "--output", "{output}", "--db-dir", str(bases_dir),
        "--fail-rate", f"{behaviour.fail_rate:g}", "--error-rate", f"{behaviour.error_rate:g}",
        "--slow-ms", f"{behaviour.slow_ms:g}",
    ]  # fmt: skip


def add_profiles(api: CoordinatorClient, command: list[str]) -> None:
    """Profiles for the queues about to appear (added first, so no queue is ever without a worker):
    imports run the sample worker as an external command per batch of 500; COBSINC requests, one
    at a time, run it as a Python handler in long-lived processes (no process start per request)."""
    imports = {"command": command, "batch_size": 500, "timeout_s": 300, "max_attempts": 3, "backoff_s": 2}
    urgent = {"handler": HANDLER, "batch_size": 1, "priority": 8, "timeout_s": 30, "max_attempts": 5, "backoff_s": 1}
    profiles = [
        (r"MULTCOB03\.1190\.IMPORTACAO\.[A-Z0-9_]+", {**imports, "priority": 4, "required_labels": {"os": "linux"}}),
        (r"[A-Z0-9_]+\.[0-9]+\.IMPORTACAO\.[A-Z0-9_]+", imports),
        (r"[A-Z0-9_]+\.[0-9]+\.COBSINC\.[A-Z0-9_]+", urgent),
    ]
    for pattern, settings in profiles:
        api.post("/api/profiles", {"pattern": pattern, "settings": settings})


def handler_environment(bases_dir: Path, behaviour: WorkerBehaviour) -> dict[str, str]:
    """What the sample worker's handler mode reads: it has no command line to take flags from."""
    return {
        "XTREAMING_DEMO_DB_DIR": str(bases_dir),
        "XTREAMING_DEMO_FAIL_RATE": f"{behaviour.fail_rate:g}",
        "XTREAMING_DEMO_ERROR_RATE": f"{behaviour.error_rate:g}",
        "XTREAMING_DEMO_SLOW_MS": f"{behaviour.slow_ms:g}",
    }


def limit_bases(api: CoordinatorClient) -> None:
    """A base limit on MULTCOB03, and fewer workers on MULTCOB02 during business hours."""
    api.patch("/api/bases/MULTCOB03", {"max_workers": MULTCOB03_LIMIT})
    window = {"weekdays": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00", "max_workers": 2}
    api.post("/api/bases/MULTCOB02/windows", window)


def form_queues(data_dir: Path, clients: int, broker_url: str, console: Console) -> dict[str, int]:
    """Generate each portfolio (once per size) and publish it, one message per CPF; returns the counts."""
    published = {}
    for topic, seed in DEMO_LOADS:
        path = data_dir / "portfolios" / f"{topic}-{clients}.csv"
        if not path.exists():
            write_portfolio(path, clients, seed=seed)
        outcome = publish_csv(CsvFile(path, "cpf"), topic, broker_url, console=console)
        published[topic] = outcome.report.published
        report = outcome.report
        published_text, duplicates_text = screen_words.number(report.published), screen_words.number(report.duplicates)
        line = screen_words.word("demo.published")
        console.print(line.format(topic=topic, published=published_text, duplicates=duplicates_text))
    return published


class Trickle:
    """Publishes COBSINC requests through the API at a steady rate, in a thread, until stopped."""

    def __init__(self, api: CoordinatorClient, per_s: float) -> None:
        self.api = api
        self.per_s = per_s
        self.published = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cobsinc-trickle", daemon=True)

    def start(self) -> None:
        if self.per_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        for number in itertools.count(1):
            if self._stop.wait(1 / self.per_s):
                return
            cpf = cpf_digits(700_000_000 + number)
            request = {"cpf": cpf, "pedido": "LOCALIZACAO", "origem": "CRM"}
            message = {"key": cpf, "value": json.dumps(request)}
            try:
                self.api.post(f"/api/topics/{URGENT_TOPIC}/messages", {"messages": [message]})
                self.published += 1
            except (CoordinatorUnreachable, XtreamingError):
                self.errors += 1
