"""Small builders for the state store's tests: records, moments, and a plain connection to the store's database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from xtreaming.coordinator.records import FarmRecord, QueueRecord, RetryRecord, TaskMessage, TaskRecord, WorkSettings
from xtreaming.coordinator.store import MIGRATIONS

SITE = ZoneInfo("America/Sao_Paulo")
#: A site-local moment with microseconds: it must come back equal, in UTC.
T0 = datetime(2025, 3, 4, 10, 0, 0, 123456, tzinfo=SITE)
TOPIC = "MULTCOB03.1186.IMPORTACAO.CARGA"
FULL_SETTINGS = WorkSettings(
    priority=9,
    batch_size=1,
    command=("MultcobWorker.exe", "IMPORTAR", "--base", "{base}", "--entrada", "{input}"),
    handler="workers.cobsinc:handle",
    timeout_s=12.5,
    max_attempts=7,
    backoff_s=0.25,
    backoff_max_s=30.0,
    required_labels={"os": "windows", "site": "sp"},
    max_workers=4,
)


def queue(topic: str = TOPIC, **changes: Any) -> QueueRecord:
    base, _, kind, _ = topic.split(".")
    return replace(QueueRecord(topic, base, kind, WorkSettings(), discovered_at=T0), **changes)


def farm(farm_id: str = "farm-1", **changes: Any) -> FarmRecord:
    record = FarmRecord(farm_id, f"Farm {farm_id}", {"os": "linux"}, 4, 2.5, T0, T0 + timedelta(seconds=1))
    return replace(record, **changes)


def task(task_id: str = "task-1", offsets: range = range(3), **changes: Any) -> TaskRecord:
    messages = tuple(TaskMessage(0, o, f"cpf-{o}".encode(), 1) for o in offsets)
    return replace(TaskRecord(task_id, TOPIC, "farm-1", 0, messages, T0, T0 + timedelta(minutes=10)), **changes)


def retry(offset: int, attempts: int = 1, topic: str = TOPIC) -> RetryRecord:
    return RetryRecord(topic, 0, offset, attempts, T0 + timedelta(seconds=5 * attempts), ("exit code 3",) * attempts)


@contextmanager
def connected(url: str) -> Iterator[Connection]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def revision(url: str) -> str | None:
    with connected(url) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(url: str, direction: str, target: str) -> None:
    """Run Alembic's ``upgrade`` or ``downgrade`` to ``target`` on the database at ``url``."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, direction)(config, target)
    engine.dispose()
