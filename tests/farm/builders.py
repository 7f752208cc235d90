"""Small builders for the farm tests: tasks as a lease would carry them, and worker commands."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

from xtreaming.farm.leased import LeasedMessages
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


def binary_message(offset: int) -> dict[str, Any]:
    """A message without a key, whose value is not UTF-8 (so base64) and that carries headers."""
    return {
        **message(offset),
        "key": None,
        "value": base64.b64encode(b"\xff\x00\xfe").decode(),
        "value_encoding": "base64",
        "headers": [["trace", base64.b64encode(b"\x01\x02").decode()], ["origem", base64.b64encode(b"CRM").decode()]],
    }


def leased(rows: list[dict[str, Any]]) -> LeasedMessages:
    """Messages given as ``input.jsonl`` objects (``message``, ``binary_message``), as a lease carries them."""
    data = {
        "partitions": [r["partition"] for r in rows],
        "offsets": [r["offset"] for r in rows],
        "keys": [r["key"] for r in rows],
        "attempts": [r["attempt"] for r in rows],
        "headers": [r["headers"] for r in rows],
        "base64_keys": [i for i, r in enumerate(rows) if r["key_encoding"] == "base64"],
    }
    values = [base64.b64decode(r["value"]) if r["value_encoding"] == "base64" else r["value"].encode() for r in rows]
    return LeasedMessages.from_json(TOPIC, data, values)


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
        messages=leased([message(offset) for offset in range(messages)]),
    )
