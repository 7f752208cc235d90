"""Small builders for the farm tests: tasks as a lease would carry them, and worker commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from xtreaming.farm.protocol import Task

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"
IDS = [f"{TOPIC}/0/{offset}" for offset in range(3)]
#: The misbehaving workers (see workers.py), as a command template.
WORKERS = str(Path(__file__).with_name("workers.py"))


def worker(mode: str, *args: str) -> tuple[str, ...]:
    return (sys.executable, WORKERS, mode, *args)


def message(offset: int, *, key: str | None = None, value: str = '{"cpf": "1"}', attempt: int = 2) -> dict[str, Any]:
    return {
        "id": f"{TOPIC}/0/{offset}",
        "topic": TOPIC,
        "partition": 0,
        "offset": offset,
        "key": key or f"{10_000_000_000 + offset}",
        "key_encoding": "utf-8",
        "value": value,
        "value_encoding": "utf-8",
        "headers": [],
        "attempt": attempt,
    }


def make_task(
    *,
    command: tuple[str, ...] = (),
    handler: str | None = None,
    timeout_s: float = 30.0,
    messages: int = 3,
    task_id: str = "task-1",
) -> Task:
    return Task(
        task_id=task_id,
        topic=TOPIC,
        base="MULTCOB03",
        convenio="1189",
        kind="IMPORTACAO",
        process="ATUALIZA_BUREAU",
        slot=0,
        attempt=2,
        command=command,
        handler=handler,
        timeout_s=timeout_s,
        messages=[message(offset) for offset in range(messages)],
    )
