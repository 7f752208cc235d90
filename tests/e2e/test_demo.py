"""``xtreaming demo`` as a user runs it: a real process tree, stopped when done or by Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.waiting import wait_until
from xtreaming.broker import open_broker
from xtreaming.demo.scenario import DEMO_LOADS, URGENT_TOPIC

DEMO = [sys.executable, "-m", "xtreaming", "demo", "--port", "0", "--slots", "2"]


def test_the_demo_runs_end_to_end_until_every_message_is_finished(tmp_path: Path) -> None:
    result = subprocess.run(
        [*DEMO, "--clients", "400", "--data-dir", str(tmp_path), "--until-done", "--trickle", "20"],
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "/docs" in result.stdout
    assert "demonstração encerrada" in result.stdout
    log = open_broker(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        for topic in [*(t for t, _ in DEMO_LOADS), URGENT_TOPIC]:
            published = sum(log.end_offsets(topic).values())
            acks = [json.loads(m.value) for p in range(log.partition_count(f"{topic}.ACK"))
                    for m in log.read(f"{topic}.ACK", p, 0, max_records=100_000)]  # fmt: skip
            assert published > 0
            assert len(acks) == len({(a["partition"], a["offset"]) for a in acks}) == published, topic
    finally:
        log.close()
    with sqlite3.connect(tmp_path / "bases" / "MULTCOB03.db") as db:
        assert db.execute("SELECT count(*) FROM clientes").fetchone()[0] > 700
    assert not _processes_using(tmp_path)


def test_ctrl_c_stops_the_demo_and_everything_it_started(tmp_path: Path) -> None:
    output = tmp_path / "demo.out"
    with output.open("w") as out:
        demo = subprocess.Popen(
            [*DEMO, "--clients", "3000", "--slow-ms", "2", "--data-dir", str(tmp_path / "demo")],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    children: list[psutil.Process] = []
    try:
        wait_until(lambda: "consumidos" in output.read_text(), 60, "the demo to show progress", every_s=0.2)
        children = psutil.Process(demo.pid).children(recursive=True)

        started = time.monotonic()
        demo.send_signal(signal.SIGINT)

        assert demo.wait(timeout=60) == 0, output.read_text()
    finally:
        if demo.poll() is None:  # it did not stop: leave nothing of it running
            for process in [*children, psutil.Process(demo.pid)]:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            demo.wait()
    assert time.monotonic() - started < 30
    assert len(children) >= 3  # the coordinator and two farms, at least
    assert not [c for c in children if _running(c)]
    assert "Ctrl-C: encerrando" in output.read_text()


def _running(process: psutil.Process) -> bool:
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _processes_using(path: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(path) in arg for arg in process.info["cmdline"] or ()) and _running(process):
            found.append(process)
    return found


def test_the_demo_speaks_english_when_asked(tmp_path: Path) -> None:
    result = subprocess.run(
        [*DEMO, "--clients", "400", "--data-dir", str(tmp_path), "--until-done", "--lang", "en"],
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    for english in ("Xtreaming demo", "forming queues", "clients published", "demo finished", "Consumed"):
        assert english in result.stdout, english
    for portuguese in ("Demonstração", "formando filas", "clientes publicados", "encerrada", "Consumidos"):
        assert portuguese not in result.stdout, portuguese
    assert not _processes_using(tmp_path)


def test_an_unknown_demo_language_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([*DEMO, "--data-dir", str(tmp_path), "--lang", "fr"], capture_output=True, text=True)

    assert result.returncode == 2
    assert "'fr' is not known" in result.stderr
    assert not (tmp_path / "log.db").exists()
