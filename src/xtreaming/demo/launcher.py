"""``xtreaming demo``: the whole system on one machine, on the embedded defaults.

A coordinator process and two farm processes (each in its own process group, so Ctrl-C reaches
the demo alone and it shuts them down in order: farms finish their running tasks, then the
coordinator stops). Queues are formed from generated portfolios, a COBSINC trickle runs, a
base limit and a time window are set through the API, and the terminal shows live progress.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final

from rich.console import Console
from rich.live import Live
from rich.table import Table

from xtreaming.client import CoordinatorClient, CoordinatorUnreachable
from xtreaming.defaults import DEFAULT_PORT
from xtreaming.demo.scenario import (
    DEMO_FARMS,
    DEMO_LOADS,
    Trickle,
    WorkerBehaviour,
    add_profiles,
    form_queues,
    handler_environment,
    limit_bases,
    worker_command,
)
from xtreaming.demo.screen import progress_line, status_view
from xtreaming.errors import XtreamingError
from xtreaming.farm.processes import isolated_group, request_stop
from xtreaming.localhost import free_port
from xtreaming.screen_words import number, word

#: How long farms may take to finish their running tasks after the demo is stopped.
FARM_STOP_S: Final = 60.0
#: How long the coordinator may take to start (it creates its state on first start).
START_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    data_dir: Path
    clients: int = 100_000
    port: int = DEFAULT_PORT
    slots: int = 3
    fail_rate: float = 0.01
    error_rate: float = 0.001
    slow_ms: float = 0.2
    trickle_per_s: float = 2.0
    until_done: bool = False
    duration_s: float | None = None


class Site:
    """The demo's child processes, their logs, and their orderly shutdown."""

    def __init__(self, data_dir: Path, env: Mapping[str, str]) -> None:
        self.data_dir = data_dir
        self.env = dict(env)
        self.coordinator: subprocess.Popen[bytes] | None = None
        self.farms: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.data_dir / f"{name}.log").open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "xtreaming", *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **isolated_group(),
            )

    def start_coordinator(self, url: str, port: int) -> None:
        self.coordinator = self.start("coordinator", "coordinator", "--host", "127.0.0.1", "--port", str(port))
        deadline = time.monotonic() + START_S
        with CoordinatorClient(url, timeout_s=2) as api:
            while True:
                try:
                    api.get("/healthz")
                    return
                except CoordinatorUnreachable:
                    if self.coordinator.poll() is not None or time.monotonic() > deadline:
                        tail = (self.data_dir / "coordinator.log").read_text(errors="replace")[-2000:]
                        raise XtreamingError(f"the coordinator did not start on {url}:\n{tail}") from None
                    time.sleep(0.1)

    def start_farm(self, name: str, labels: Mapping[str, str], slots: int, url: str) -> None:
        args = ["farm", "--coordinator", url, "--name", name, "--slots", str(slots), "--lease-wait", "2"]
        args += ["--work-dir", str(self.data_dir / "farms" / name)]
        for key, value in labels.items():
            args += ["--label", f"{key}={value}"]
        self.farms.append(self.start(name, *args))

    def stop(self, console: Console) -> None:
        """Farms first (running tasks finish; a second Ctrl-C kills them), then the coordinator."""
        running = [p for p in self.farms if p.poll() is None]
        if running:
            console.print(word("demo.stopping"))
        for farm in running:
            request_stop(farm)
        try:
            _wait_all(running, FARM_STOP_S)
        except KeyboardInterrupt:
            console.print(word("demo.killing"))
            for farm in running:
                if farm.poll() is None:
                    request_stop(farm)  # the second signal: a farm kills its tasks and reports them
            _wait_all(running, 15)
        for farm in running:
            _kill(farm)
        if self.coordinator is not None and self.coordinator.poll() is None:
            request_stop(self.coordinator)
            _wait_all([self.coordinator], 15)
            _kill(self.coordinator)


def run_demo(options: DemoOptions, *, console: Console) -> int:
    """Run the demo until Ctrl-C (or ``until_done`` / ``duration_s``); returns the exit code."""
    data_dir = options.data_dir.absolute()
    port = options.port or free_port()
    _check_port(port)  # before cleaning: the port may belong to a demo running on this very directory
    _start_fresh(data_dir)
    url = f"http://127.0.0.1:{port}"
    broker_url = f"sqlite:///{data_dir / 'log.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("XTREAMING_TOKEN", "XTREAMING_TOKENS")}
    behaviour = WorkerBehaviour(options.fail_rate, options.error_rate, options.slow_ms)
    env |= {
        "XTREAMING_BROKER_URL": broker_url,
        "XTREAMING_DATABASE_URL": f"sqlite:///{data_dir / 'state.db'}",
        "XTREAMING_DISCOVERY_INTERVAL_S": "0.5",  # the portfolios are published just after the start
        **handler_environment(data_dir / "bases", behaviour),
    }
    site = Site(data_dir, env)
    trickle: Trickle | None = None
    console.print(word("demo.title").format(data_dir=data_dir))
    with _interrupt_on_terminate(), CoordinatorClient(url) as api:
        try:
            site.start_coordinator(url, port)
            console.print(word("demo.coordinator").format(url=url, log=data_dir / "coordinator.log"))
            add_profiles(api, worker_command(data_dir / "bases", behaviour))
            console.print(word("demo.forming").format(loads=len(DEMO_LOADS), clients=number(options.clients)))
            form_queues(data_dir, options.clients, broker_url, console)
            _wait_for_queues(api, [topic for topic, _ in DEMO_LOADS])
            limit_bases(api)
            trickle = Trickle(CoordinatorClient(url), options.trickle_per_s)
            trickle.start()
            for name, labels in DEMO_FARMS:
                site.start_farm(name, labels, options.slots, url)
            console.print(word("demo.farms").format(names=", ".join(n for n, _ in DEMO_FARMS), slots=options.slots))
            _watch(api, options, console, trickle, url)
        except KeyboardInterrupt:
            console.print(word("demo.interrupted"))
        finally:
            if trickle is not None:
                trickle.stop()
            site.stop(console)
    console.print(word("demo.finished").format(bases=data_dir / "bases", logs=f"{data_dir}/*.log"))
    return 0


def _watch(api: CoordinatorClient, options: DemoOptions, console: Console, trickle: Trickle, url: str) -> None:
    """Show progress until Ctrl-C, the duration, or (``until_done``) every message is finished."""
    started = time.monotonic()
    header = word("demo.header").format(url=url)
    live = Live(console=console, refresh_per_second=2, transient=False) if console.is_terminal else None
    last_line = 0.0
    with live or contextlib.nullcontext():
        while True:
            status: dict[str, Any] = api.get("/api/status")
            elapsed = time.monotonic() - started
            if live is not None:
                live.update(status_view(status, f"{header} · {number(elapsed)} s"))
            elif elapsed - last_line >= 2:
                console.print(f"[{elapsed:5.0f} s] {progress_line(status)}")
                last_line = elapsed
            if options.until_done and _imports_done(status):
                trickle.stop()  # then let the last requests finish
                if all(q["pending"] == 0 for q in status["queues"]):
                    break
            if options.duration_s is not None and elapsed >= options.duration_s:
                break
            time.sleep(0.5)
    _print_summary(status, console, time.monotonic() - started)


def _imports_done(status: dict[str, Any]) -> bool:
    imports = [q for q in status["queues"] if q["kind"] == "IMPORTACAO"]
    return len(imports) == len(DEMO_LOADS) and all(q["pending"] == 0 for q in imports)


def _print_summary(status: dict[str, Any], console: Console, elapsed_s: float) -> None:
    columns = (word("col.topic"), word("col.consumed"), word("col.dead"))
    table = Table(*columns, title=word("demo.after").format(seconds=number(elapsed_s)), title_justify="left")
    for q in status["queues"]:
        table.add_row(q["topic"], number(q["consumed"]), number(q["dead"]))
    console.print(table)


def _wait_for_queues(api: CoordinatorClient, topics: list[str]) -> None:
    """The coordinator discovers new topics every few seconds; wait for the demo's."""
    deadline = time.monotonic() + START_S
    while True:
        known = {q["topic"] for q in api.get("/api/queues", limit=5000)["items"]}
        if set(topics) <= known:
            return
        if time.monotonic() > deadline:
            raise XtreamingError(f"the coordinator did not register {sorted(set(topics) - known)}")
        time.sleep(0.2)


def _start_fresh(data_dir: Path) -> None:
    """Each run starts from an empty log and state; generated portfolios are kept (they take a while)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for pattern in ("log.db*", "state.db*", "*.log"):
        for stale in data_dir.glob(pattern):
            stale.unlink()
    for folder in ("bases", "farms"):
        shutil.rmtree(data_dir / folder, ignore_errors=True)


def _check_port(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise XtreamingError(
                f"port {port} on 127.0.0.1 is taken ({exc.strerror}): is another coordinator or demo running? "
                "Use --port 0 for any free port."
            ) from None


def _wait_all(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


@contextlib.contextmanager
def _interrupt_on_terminate() -> Iterator[None]:
    """Ctrl-C and SIGTERM (SIGBREAK on Windows) stop the demo. Ctrl-C is set here too: a process
    started in the background by a script inherits SIGINT ignored, and Python keeps it so."""
    if sys.platform == "win32":
        numbers = [signal.SIGINT, signal.SIGBREAK]
    else:
        numbers = [signal.SIGINT, signal.SIGTERM]

    def interrupt(_: int, __: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
