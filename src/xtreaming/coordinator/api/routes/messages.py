"""Per-message history: what happened to a key (a CPF) across every topic, and to one message, attempt by attempt."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime

from xtreaming.coordinator.api.auth import Viewer
from xtreaming.coordinator.api.deps import coordinator_of
from xtreaming.coordinator.api.schemas import AttemptRow, HistoryPage
from xtreaming.coordinator.attempt_errors import split_attempt_error
from xtreaming.coordinator.history import MessageHistory
from xtreaming.coordinator.store.history import MAX_PAGE_ROWS, Attempt, Position
from xtreaming.errors import InvalidInput
from xtreaming.wire.message_id import message_id, parse_message_id

router = APIRouter(prefix="/api", tags=["history"])

#: A key longer than this is no key any message carries (CPFs have 11 digits, CNPJs 14).
MAX_KEY_CHARS: Final = 1024
#: A partition or an offset beyond what the history's columns hold is no message's.
_MAX_PARTITION: Final = 2**31 - 1
_MAX_OFFSET: Final = 2**63 - 1


@router.get("/messages", response_model=HistoryPage)
def by_key(
    request: Request,
    _: Viewer,
    key: Annotated[str, Query(min_length=1, max_length=MAX_KEY_CHARS, description="The messages' key, e.g. a CPF.")],
    topic: Annotated[str | None, Query(min_length=1, max_length=249, description="Only this topic's.")] = None,
    since: Annotated[AwareDatetime | None, Query(description="From this time (default: the retention ago).")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before this time (default: now).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_ROWS)] = 100,
    before: Annotated[str | None, Query(max_length=2048, description="The previous page's 'next'.")] = None,
) -> HistoryPage:
    """Every attempt of the messages with ``key``, newest first, settled in ``[since, until)``."""
    history = _history(request)
    end = _utc(until, "until") if until is not None else datetime.now(UTC)
    try:
        start = _utc(since, "since") if since is not None else end - history.retention
    except OverflowError as exc:
        raise InvalidInput(f"until {end.isoformat()} is out of range") from exc
    if start >= end:
        raise InvalidInput(f"since {start.isoformat()} is not before until {end.isoformat()}")
    cursor = None if before is None else parse_cursor(before)
    attempts = history.table.by_key(_key_bytes(key), start, end, limit + 1, topic, cursor)
    more = len(attempts) > limit
    shown = attempts[:limit]
    return HistoryPage(attempts=rows(shown), next=make_cursor(shown[-1].position) if more else None)


@router.get("/messages/{topic}/{partition}/{offset}", response_model=list[AttemptRow])
def by_message(topic: str, partition: str, offset: str, request: Request, _: Viewer) -> list[AttemptRow]:
    """Every attempt of the message ``topic/partition/offset`` kept, oldest first; 404 when there is none."""
    parsed_topic, parsed_partition, parsed_offset = parse_message_id(f"{topic}/{partition}/{offset}")
    if parsed_partition > _MAX_PARTITION or parsed_offset > _MAX_OFFSET:
        raise InvalidInput(f"message id {topic}/{partition}/{offset}: partition or offset out of range")
    broker = coordinator_of(request).broker
    return rows(_history(request).of_message(broker, parsed_topic, parsed_partition, parsed_offset))


def rows(attempts: Iterable[Attempt]) -> list[AttemptRow]:
    return [_row(a) for a in attempts]


def _row(a: Attempt) -> AttemptRow:
    key = None if a.key is None else a.key.decode(errors="replace")
    return AttemptRow(
        at=a.at, message_id=message_id(a.topic, a.partition, a.offset), topic=a.topic, partition=a.partition,
        offset=a.offset, key=key, attempt=a.attempt, result=a.result, farm=a.farm, slot=a.slot, task_id=a.task_id,
        duration_s=a.duration_s, detail=_detail(a),
    )  # fmt: skip


def _detail(a: Attempt) -> str | None:
    """A retried attempt's detail is kept as its error history entry, ``attempt 2: …``: shown without the attempt,
    which the row gives apart (each view words it in its own language)."""
    if a.detail is None:
        return None
    attempt, detail = split_attempt_error(a.detail)
    return detail if attempt == a.attempt else a.detail


def make_cursor(position: Position) -> str:
    """A page's ``next``: where its last attempt sorts, opaque to clients."""
    fields = [position.at.isoformat(), position.topic, position.partition, position.offset, position.attempt]
    return base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode("ascii")


def parse_cursor(text: str) -> Position:
    """The position ``make_cursor`` encoded; raises InvalidInput for anything else."""
    try:
        at, topic, partition, offset, attempt = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
        if not (isinstance(topic, str) and all(type(n) is int for n in (partition, offset, attempt))):
            raise ValueError("not a position")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("a naive time")
        return Position(_utc(moment, "before"), topic, partition, offset, attempt)
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError) as exc:
        raise InvalidInput("before: not a 'next' value this API gave; pass the previous page's 'next'") from exc


def _history(request: Request) -> MessageHistory:
    history: MessageHistory = request.app.state.history
    return history


def _key_bytes(key: str) -> bytes:
    try:
        return key.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate: no message's key
        raise InvalidInput(f"key {key!r} is not valid Unicode text") from exc


def _utc(at: datetime, name: str) -> datetime:
    try:
        return at.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # year 9999 ahead of UTC, for one
        raise InvalidInput(f"{name} {at.isoformat()} is out of range") from exc
