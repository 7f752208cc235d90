"""Small builders for the farm tests: tasks as a lease would carry them, and worker commands."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

from xtreaming.farm.leased import LeasedMessages
from xtreaming.farm.protocol import Task
from xtreaming.wire.lease_frame import MessageColumns

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

    def raw(text: str | None, encoding: str) -> bytes | None:
        return None if text is None else base64.b64decode(text) if encoding == "base64" else text.encode()

    columns = MessageColumns(
        [r["partition"] for r in rows],
        [r["offset"] for r in rows],
        [r["attempt"] for r in rows],
        [raw(r["key"], r["key_encoding"]) for r in rows],
        [raw(r["value"], r["value_encoding"]) or b"" for r in rows],
    )
    return LeasedMessages.from_lease(TOPIC, {"count": len(rows), "headers": [r["headers"] for r in rows]}, columns)


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
