"""What the watch of the urgent queues' ends (``coordinator/log_watch.py``) costs the coordinator, idle and busy.

Run: .venv/bin/python bench/log_watch.py [--queues 2000] [--urgent 20 2000] [--seconds 10] [--appends-per-s 1000]

A coordinator in this process (SQLite state, embedded log) tracks ``--queues`` queues of 4 partitions, the first
``--urgent`` of them COBSINC queues of priority 9 (urgent), the others imports of priority 3. The watch polls on a
thread of its own, as the coordinator's background loop runs it, for ``--seconds``: on an idle log, then while a
thread appends one record every ``1 / --appends-per-s`` seconds to an import topic (producers and ACKs: every
append makes the next poll read the urgent topics' ends again). Figures: polls a second, the watch thread's CPU
(its own time, all told: polls, waits, wake-ups) in % of one core and per poll. For scale, the background pass
(``run_once``, every ``poll_interval_s`` = 50 ms by default) on the same queues, idle: its CPU per pass and in %
of one core at that interval.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from xtreaming.broker import Record, open_broker
from xtreaming.coordinator.log_watch import LogWatch
from xtreaming.coordinator.records import WorkSettings
from xtreaming.coordinator.service import Coordinator
from xtreaming.coordinator.store import Store

PARTITIONS = 4
#: The default ``poll_interval_s`` (``xtreaming.config``): the background pass's interval.
PASS_INTERVAL_S = 0.05


def topic(number: int, urgent: int) -> str:
    kind = "COBSINC.ATUALIZA" if number < urgent else "IMPORTACAO.CARGA"
    return f"MULTCOB{number % 90 + 10:02d}.{1000 + number}.{kind}"


def watch_cpu(coordinator: Coordinator, seconds: float) -> tuple[float, float]:
    """Run the watch's loop on a thread for ``seconds``: (polls a second, the thread's CPU seconds)."""
    watch = LogWatch(coordinator.broker, coordinator.urgent_topics, coordinator.refresh)
    watch.run_once()  # the first poll reads every urgent topic ahead: not the steady cost
    figures: list[float] = []

    def loop() -> None:
        polls, started, cpu = 0, time.monotonic(), time.thread_time()
        while (left := started + seconds - time.monotonic()) > 0:
            watch.run_once()
            polls += 1
            time.sleep(min(left, watch.next_wait_s))
        figures.extend([polls / seconds, time.thread_time() - cpu])

    thread = threading.Thread(target=loop)
    thread.start()
    thread.join()
    return figures[0], figures[1]


def pass_cpu(coordinator: Coordinator, passes: int = 40) -> float:
    """CPU seconds of one background pass on an idle log (mean of ``passes``)."""
    coordinator.run_once()
    cpu = time.thread_time()
    for _ in range(passes):
        coordinator.run_once()
    return (time.thread_time() - cpu) / passes


def measure(root: Path, queues: int, urgent: int, seconds: float, appends_per_s: float) -> list[list[str]]:
    url = f"sqlite:///{root}/log.db"
    log = open_broker(url)
    for number in range(queues):
        name = topic(number, urgent)
        log.create_topic(name, PARTITIONS)
        log.append(name, [Record(f"{k:011d}".encode(), b"<cliente/>") for k in range(PARTITIONS)])
    store = Store.open(f"sqlite:///{root}/state.db")
    coordinator = Coordinator(store, log)
    coordinator.controls.add_profile(r".*\.COBSINC\..*", WorkSettings(priority=9, batch_size=1), None, "bench")
    coordinator.controls.add_profile(r".*\.IMPORTACAO\..*", WorkSettings(priority=3), None, "bench")
    coordinator.run_once()
    assert len(coordinator.urgent_topics()) == urgent, "every urgent queue registered"
    rows = []
    one_pass_s = pass_cpu(coordinator)

    def append(stop: threading.Event) -> None:
        writer = open_broker(url)
        busy = topic(queues - 1, urgent)
        next_at = time.monotonic()
        while not stop.is_set():
            writer.append(busy, [Record(b"00000000000", b"<cliente/>")])
            next_at += 1 / appends_per_s
            stop.wait(max(0.0, next_at - time.monotonic()))
        writer.close()

    for state in ("idle", "busy"):
        stop = threading.Event()
        appender = threading.Thread(target=append, args=(stop,)) if state == "busy" else None
        if appender is not None:
            appender.start()
        polls_per_s, cpu_s = watch_cpu(coordinator, seconds)
        stop.set()
        if appender is not None:
            appender.join()
        label = "idle" if state == "idle" else f"{appends_per_s:,.0f} appends/s"
        rows.append([
            f"{queues:,}", f"{urgent:,}", label, f"{polls_per_s:,.0f}", f"{cpu_s / seconds:.2%}",
            f"{cpu_s / (polls_per_s * seconds) * 1e6:,.0f}", f"{one_pass_s * 1e3:,.2f}",
            f"{one_pass_s / PASS_INTERVAL_S:.1%}",
        ])  # fmt: skip
    store.close()
    log.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=2000)
    parser.add_argument("--urgent", type=int, nargs="+", default=[20, 2000], help="how many of them are urgent")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the watch runs, idle and busy")
    parser.add_argument("--appends-per-s", type=float, default=1000.0, help="appends to an import topic, busy")
    args = parser.parse_args()
    if args.queues < 1 or not all(0 < u <= args.queues for u in args.urgent) or args.seconds <= 0:
        parser.error("--queues and --seconds must be positive, each --urgent from 1 to --queues")
    table = Table(title="The urgent queues' watch (coordinator/log_watch.py) on the embedded log")
    for column in ("queues", "urgent", "log", "polls /s", "watch CPU\n% of a core", "µs /poll",
                   "pass CPU ms\n(idle)", "pass CPU at 50 ms\n% of a core"):  # fmt: skip
        table.add_column(column, justify="right")
    for urgent in args.urgent:
        with tempfile.TemporaryDirectory() as tmp:
            for row in measure(Path(tmp), args.queues, urgent, args.seconds, args.appends_per_s):
                table.add_row(*row)
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
