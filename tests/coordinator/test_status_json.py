"""The status answer pieced together from rows serialized once (``api/status_json.py``) is, byte for byte, the
answer serialized whole (``plain_json``), whatever rows were kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from xtreaming.coordinator.api.schemas import BaseRow, FarmRow, LeaderRow, WindowOut
from xtreaming.coordinator.api.status_json import StatusBody, StatusJson, plain_json
from xtreaming.coordinator.figures import QueueFigures

AT = datetime(2026, 3, 3, 13, 0, 5, 250_000, tzinfo=UTC)


def queue_row(topic: str, **changes: object) -> QueueFigures:
    row = QueueFigures(
        topic=topic, base="MULTCOB03", kind="IMPORTACAO", priority=5, state="running", workers=2, max_workers=None,
        base_in_use=2, base_limit=4, base_window="08:00–18:00", consumed=120, pending=880, in_flight=40, failures=3,
        dead=1, duplicates=0, speed=12.5, eta_s=70.4, speed_10s=11.0, speed_1h=9.9,
        last_error='worker: "CRM" recusou a conexão\nde novo', finished_at=None,
    )  # fmt: skip
    return replace(row, **changes)  # type: ignore[arg-type]


def body(queues: list[QueueFigures], *, broker_error: str | None = None, leader: LeaderRow | None = None) -> StatusBody:
    window = WindowOut(id=7, base="MULTCOB03", weekdays=[0, 1, 2, 3, 4], start="08:00", end="18:00", max_workers=4)
    base = BaseRow(
        name="MULTCOB03", in_use=2, limit=4, window="08:00–18:00", default_max_workers=8, min_workers=1,
        paused=False, windows=[window], pending=880, eta_s=70.4, eta_at=AT,
    )  # fmt: skip
    farm = FarmRow(id="farm-a", labels={"os": "windows"}, slots=16, busy=2, last_heartbeat_at=AT, lost=False)
    return StatusBody(
        now=AT, broker_ok=broker_error is None, broker_error=broker_error, queues=queues, bases=[base],
        farms=[farm], time_zone="America/Sao_Paulo", leader=leader,
    )  # fmt: skip


def test_the_answer_is_the_plain_serialization_byte_for_byte_read_after_read() -> None:
    rows = [queue_row(f"MULTCOB03.{1000 + i}.IMPORTACAO.CARGA") for i in range(3)]
    done = queue_row("MULTCOB02.1.COBSINC.SYNC", state="done", finished_at=AT, eta_s=None, last_error=None)
    status_json = StatusJson()
    first = body([*rows, done])
    second = body(
        [rows[0], replace(rows[1], pending=879), done],  # a row changed, one kept, one gone
        broker_error='log "x": database is locked',
        leader=LeaderRow(url="http://coordenador-2:8700", since=AT, epoch=3),
    )

    assert status_json.dump(first) == plain_json(first)
    assert status_json.dump(second) == plain_json(second)
    assert status_json.dump(body([])) == plain_json(body([]))


def test_a_row_kept_is_serialized_once_and_a_new_one_again() -> None:
    kept, changed = queue_row("MULTCOB03.1.IMPORTACAO.CARGA"), queue_row("MULTCOB03.2.IMPORTACAO.CARGA")
    status_json = StatusJson()
    status_json.dump(body([kept, changed]))
    before = dict(status_json._rows)

    status_json.dump(body([kept, replace(changed, pending=1)]))

    assert status_json._rows[kept.topic][1] is before[kept.topic][1]
    assert status_json._rows[changed.topic][1] is not before[changed.topic][1]
    assert b'"pending":1,' in status_json._rows[changed.topic][1]
