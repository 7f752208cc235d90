"""``xtreaming publish`` of a large CSV: records per second and peak memory of the real command.

Run: .venv/bin/python bench/publish.py [--rows 1000000]

Generates a portfolio CSV (CPF;nome;valor;vencimento, ~1% repeated CPFs) once, then runs the
real command line in a child process against a fresh embedded log and reports wall time,
rows per second and the child's peak RSS: the kernel's high-water mark VmHWM (Linux), read
until the child exits. (``wait4``'s ru_maxrss would also count the parent's image at fork.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from xtreaming.demo.portfolio import write_portfolio

TOPIC = "MULTCOB02.1186.IMPORTACAO.BENCH"


def run_publish(csv: Path, log: Path, extra: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB, and the command's summary line."""
    env = {**os.environ, "XTREAMING_BROKER_URL": f"sqlite:///{log}"}
    command = [sys.executable, "-m", "xtreaming", "publish", TOPIC, "--csv", str(csv), *extra]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:
        child = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.DEVNULL, text=True)
        peak_kib = 0
        while child.poll() is None:
            peak_kib = max(peak_kib, high_water_kib(child.pid))
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        output.seek(0)
        summary = output.read()
    if child.returncode != 0:
        raise SystemExit(f"publish failed ({child.returncode}): {summary}")
    return elapsed, peak_kib / 1024, summary.strip().splitlines()[0]


def high_water_kib(pid: int) -> int:
    """The process's peak resident set so far (0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    table = Table(title=f"xtreaming publish, {args.rows:,} clients (+~1% repeated rows)")
    for column in ("value format", "rows in file", "seconds", "rows/s", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "value format" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv = root / "carteira.csv"
        write_portfolio(csv, args.rows, seed=7)
        lines = sum(1 for _ in csv.open("rb")) - 1
        for label, extra in (("json", []), ("raw", ["--value-format", "raw"])):
            elapsed, rss_mb, summary = run_publish(csv, root / f"log-{label}.db", extra)
            table.add_row(label, f"{lines:,}", f"{elapsed:.1f}", f"{lines / elapsed:,.0f}", f"{rss_mb:.0f}")
            Console(stderr=True).print(summary)
    Console().print(table)


if __name__ == "__main__":
    main()
