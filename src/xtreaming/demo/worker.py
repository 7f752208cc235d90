"""The sample worker: "imports" clients into a SQLite database per base, as the CRM's importer would.

Run by a farm as an external command (``python -m xtreaming.demo.worker --base {base} --input
{input} --output {output}``; the flags default to the farm's ``XTREAMING_*`` variables), or as
a Python handler (``xtreaming.demo.worker:handle``). Each message's value is a JSON object
(a portfolio row, or a COBSINC request); importing is idempotent (a redelivered client is
written again, not twice). For the demo it fails on purpose: ``--fail-rate`` of the messages
get ``retry`` (most succeed on a later attempt), ``--error-rate`` get ``error`` (DLQ at once),
and ``--slow-ms`` is spent per message. Defaults also come from ``XTREAMING_DEMO_*`` variables.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from xtreaming.farm.batch import Batch
from xtreaming.wire.message_id import parse_message_id

#: A progress line every this many messages.
PROGRESS_EVERY: Final = 100
DEFAULT_DB_DIR: Final = ".xtreaming/demo/bases"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the sample worker misbehaves: shares of failed messages and time spent per message."""

    fail_rate: float = 0.0
    error_rate: float = 0.0
    slow_ms: float = 0.0

    def verdict(self, message_id: str, attempt: int) -> str:
        """ok, retry or error; the same for the same message and attempt (reruns are reproducible)."""
        draw = random.Random(f"{message_id}#{attempt}").random()
        if draw < self.error_rate:
            return "error"
        return "retry" if draw < self.error_rate + self.fail_rate else "ok"


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    key: str | None
    value: bytes
    attempt: int


def import_items(
    db_dir: Path,
    base: str,
    kind: str,
    items: Iterable[Item],
    behaviour: Behaviour,
    progress: Callable[[int, int], None],
) -> list[tuple[str, str, str]]:
    """Write the items into ``<db_dir>/<base>.db`` in one transaction; returns (id, status, detail)
    for each item that is not ok, and reports ``progress(done, total)`` as it goes."""
    db_dir.mkdir(parents=True, exist_ok=True)
    items = list(items)
    failures = []
    with closing(sqlite3.connect(db_dir / f"{base}.db", timeout=60)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        _create_tables(db)
        now = time.time()
        for done, item in enumerate(items, start=1):
            status = behaviour.verdict(item.id, item.attempt)
            if status == "ok":
                try:
                    _write(db, kind, item, now)
                except ValueError as exc:
                    status = "error"
                    failures.append((item.id, status, f"value is not a JSON object: {exc}"))
            else:
                detail = "simulated failure: CRM busy" if status == "retry" else "simulated rejection: invalid client"
                failures.append((item.id, status, detail))
            if behaviour.slow_ms and done % 10 == 0:
                time.sleep(behaviour.slow_ms * 10 / 1000)
            if done % PROGRESS_EVERY == 0 or done == len(items):
                progress(done, len(items))
        db.commit()
    return failures


def _create_tables(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS clientes (cpf TEXT PRIMARY KEY, nome TEXT, valor_divida TEXT, vencimento TEXT,"
        " fila TEXT, tentativa INTEGER, importado_em REAL)"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS sincronizacoes (id TEXT PRIMARY KEY, cpf TEXT, pedido TEXT, recebido_em REAL)"
    )


def _write(db: sqlite3.Connection, kind: str, item: Item, now: float) -> None:
    row: Any = json.loads(item.value)
    if not isinstance(row, dict):
        raise ValueError(f"got {type(row).__name__}")
    topic, _, _ = parse_message_id(item.id)
    if kind == "COBSINC":
        db.execute(
            "INSERT OR REPLACE INTO sincronizacoes VALUES (?, ?, ?, ?)",
            (item.id, item.key, json.dumps(row, ensure_ascii=False), now),
        )
        return
    db.execute(
        "INSERT OR REPLACE INTO clientes VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            row.get("cpf", item.key),
            row.get("nome"),
            row.get("valor_divida"),
            row.get("vencimento"),
            topic,
            item.attempt,
            now,
        ),
    )


def handle(batch: Batch) -> dict[str, tuple[str, str]] | None:
    """Handler mode: the same import, configured by ``XTREAMING_DEMO_*`` variables."""
    items = (Item(m.id, None if m.key is None else m.key.decode(), m.value, m.attempt) for m in batch.messages)
    db_dir = Path(os.environ.get("XTREAMING_DEMO_DB_DIR", DEFAULT_DB_DIR))
    failures = import_items(db_dir, batch.base, batch.kind, items, _behaviour_from_env(), batch.progress)
    return {message_id: (status, detail) for message_id, status, detail in failures} or None


def noop(batch: Batch) -> None:
    """A handler that does nothing: every message is ok (for benchmarks and smoke tests)."""


def _print_progress(done: int, total: int) -> None:
    sys.stdout.write(f"XTREAMING-PROGRESS {done}/{total}\n")
    sys.stdout.flush()


def _behaviour_from_env() -> Behaviour:
    return Behaviour(
        fail_rate=float(os.environ.get("XTREAMING_DEMO_FAIL_RATE", 0)),
        error_rate=float(os.environ.get("XTREAMING_DEMO_ERROR_RATE", 0)),
        slow_ms=float(os.environ.get("XTREAMING_DEMO_SLOW_MS", 0)),
    )


def _read_input(path: Path) -> Iterator[Item]:
    with path.open(encoding="utf-8") as file:
        for line in file:
            m = json.loads(line)
            text = m["value"]
            value = base64.b64decode(text) if m.get("value_encoding") == "base64" else text.encode()
            yield Item(m["id"], m.get("key"), value, m["attempt"])


def main(argv: list[str] | None = None) -> int:
    env, defaults = os.environ, _behaviour_from_env()
    parser = argparse.ArgumentParser(prog="python -m xtreaming.demo.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=env.get("XTREAMING_BASE"), help="target base (default: XTREAMING_BASE)")
    parser.add_argument("--kind", default=env.get("XTREAMING_KIND", "IMPORTACAO"))
    parser.add_argument("--input", type=Path, default=env.get("XTREAMING_INPUT"), help="input.jsonl")
    parser.add_argument("--output", type=Path, default=env.get("XTREAMING_OUTPUT"), help="output.jsonl")
    parser.add_argument("--db-dir", type=Path, default=Path(env.get("XTREAMING_DEMO_DB_DIR", DEFAULT_DB_DIR)))
    parser.add_argument("--fail-rate", type=float, default=defaults.fail_rate, help="share of messages retried")
    parser.add_argument("--error-rate", type=float, default=defaults.error_rate, help="share sent to the DLQ")
    parser.add_argument("--slow-ms", type=float, default=defaults.slow_ms, help="milliseconds per message")
    args = parser.parse_args(argv)
    if not (args.base and args.input and args.output):
        parser.error("--base, --input and --output are required (or XTREAMING_BASE, _INPUT, _OUTPUT)")
    behaviour = Behaviour(args.fail_rate, args.error_rate, args.slow_ms)
    failures = import_items(args.db_dir, args.base, args.kind, _read_input(args.input), behaviour, _print_progress)
    with args.output.open("w", encoding="utf-8") as out:
        for message_id, status, detail in failures:
            out.write(json.dumps({"id": message_id, "status": status, "detail": detail}) + "\n")
    if failures:
        sys.stderr.write(f"{len(failures)} message(s) not imported\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
