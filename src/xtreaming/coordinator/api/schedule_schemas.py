"""Bodies of ``/api/schedules``: a topic, a cron expression, what to publish, the misfire policy."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from xtreaming.coordinator.api.schemas import Body
from xtreaming.coordinator.schedule_records import (
    CallableSource,
    CsvSource,
    FixedMessage,
    Misfire,
    Source,
    Tick,
    TickState,
)
from xtreaming.keys import MAX_KEY_BYTES

Column = Annotated[str, Field(min_length=1, max_length=256)]


class CsvSourceIn(Body):
    """A CSV file on the coordinator's machine, read at each tick as ``xtreaming publish --csv`` reads it."""

    path: Annotated[str, Field(min_length=1, max_length=4096)]
    key_column: Column = "cpf"
    value_format: Literal["json", "raw"] = "json"
    value_column: Column | None = None
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] | None = None
    encoding: Annotated[str, Field(min_length=1, max_length=64)] = "utf-8"


class MessageIn(Body):
    """The same message at every tick."""

    key: Annotated[str, Field(min_length=1, max_length=MAX_KEY_BYTES)] | None = None
    value: Annotated[str, Field(max_length=1 << 20)]


class ScheduleIn(Body):
    """A schedule: exactly one of ``csv``, ``message`` and ``callable`` says what each tick publishes."""

    topic: Annotated[str, Field(min_length=1, max_length=249)]
    cron: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            description="Minute hour day month weekday in the site's time zone ('0 8 * * mon-fri'); a sixth field "
            "is seconds ('* * * * * */10').",
        ),
    ]
    misfire: Misfire = Field(
        default=Misfire.ONCE,
        strict=False,  # from its value ("once"): JSON has no enums
        description="Ticks missed during an outage: 'once' runs the latest of them once, 'skip' runs none.",
    )
    csv: CsvSourceIn | None = None
    message: MessageIn | None = None
    callable: (
        Annotated[
            str,
            Field(
                min_length=3,
                max_length=256,
                pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$",
                description="module:function, called with no argument at each tick; it yields (key, value) pairs.",
            ),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _one_source(self) -> ScheduleIn:
        given = [name for name in ("csv", "message", "callable") if getattr(self, name) is not None]
        if len(given) != 1:
            shown = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of csv, message and callable (what each tick publishes); got {shown}")
        return self

    def source(self) -> Source:
        if self.csv is not None:
            return CsvSource(**self.csv.model_dump())
        if self.message is not None:
            return FixedMessage(self.message.key, self.message.value)
        assert self.callable is not None  # _one_source
        return CallableSource(self.callable)


class TickOut(BaseModel):
    tick_at: datetime
    state: TickState
    published: int = Field(description="Records of the tick in the log (all of them once published).")
    missed: int = Field(description="Earlier ticks missed during an outage that this one ran for, or skipped.")
    error: str | None
    claimed_at: datetime
    finished_at: datetime | None


class ScheduleOut(BaseModel):
    id: int
    topic: str
    cron: str
    misfire: Misfire
    source: dict[str, Any] = Field(description="What each tick publishes: {'kind': 'csv' | 'message' | 'callable', …}.")
    created_at: datetime
    created_by: str
    last: TickOut | None = Field(description="The newest tick: when, and its outcome.")
    next_at: datetime | None = Field(description="The next tick (in the past when one is due and not run yet).")


def tick_out(tick: Tick) -> TickOut:
    return TickOut(
        tick_at=tick.tick_at,
        state=tick.state,
        published=tick.published,
        missed=tick.missed,
        error=tick.error,
        claimed_at=tick.claimed_at,
        finished_at=tick.finished_at,
    )
