"""Dead letters: each topic's letters grouped by error, finding them by filter, replay, skip and purge.

A replay, skip or purge whose filter selects nothing answers 404 saying so ("0 open dead letters match …:
nothing changed"), as a bulk action matching no queue does; its dry run answers 200 with ``matched: 0``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from xtreaming.coordinator.api.auth import Admin, Operator, Viewer
from xtreaming.coordinator.api.deps import coordinator_of
from xtreaming.coordinator.api.schemas import (
    DeadLetterOut,
    DeadLetterPage,
    DlqTopicOut,
    ErrorGroupOut,
    LetterAction,
    LetterActionOut,
    LetterKey,
    LetterSample,
    LetterSelection,
    ReplayOut,
    ReplayRequest,
    encode_bytes,
)
from xtreaming.coordinator.dead_letter_records import (
    DeadLetter,
    InvalidLetterFilter,
    LetterFilter,
    LetterState,
    Replay,
    TopicLetters,
)
from xtreaming.coordinator.dead_letters import DeadLetters
from xtreaming.wire.message_id import message_id

router = APIRouter(prefix="/api/dlq", tags=["dead letters"])
Action = Literal["replay", "skip", "purge"]


@router.get("", response_model=list[DlqTopicOut])
def summary(request: Request, _: Viewer) -> list[DlqTopicOut]:
    """Every work topic with dead letters: how many are open, replayed and skipped, and the open ones grouped
    by error (the largest groups first) with a few samples each."""
    return [_topic_out(t) for t in _letters(request).summary()]


@router.get("/replays/{replay_id}", response_model=ReplayOut)
def replay_state(replay_id: int, request: Request, _: Viewer) -> ReplayOut:
    return _replay_out(_letters(request).replay_of(replay_id))


@router.get("/{topic}", response_model=DeadLetterPage)
def find(
    topic: str,
    request: Request,
    _: Viewer,
    error: Annotated[str | None, Query(min_length=1, max_length=512, description="Text the error contains.")] = None,
    since: Annotated[datetime | None, Query(description="Died at or after (with a time zone).")] = None,
    until: Annotated[datetime | None, Query(description="Died before (with a time zone).")] = None,
    key: Annotated[list[LetterKey] | None, Query(max_length=1000, description="Any of these keys.")] = None,
    state: Annotated[LetterState | None, Query()] = None,
    after: Annotated[int | None, Query(ge=0, description="The previous page's next_after.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterPage:
    """A topic's dead letters the filter selects, in the order they died, a page at a time."""
    selection = LetterSelection(error=error, since=since, until=until, keys=key or [])
    letters, total = _letters(request).find(letter_filter(topic, selection), state, after, limit)
    next_after = letters[-1].id if len(letters) == limit else None
    return DeadLetterPage(items=[_letter_out(letter) for letter in letters], total=total, next_after=next_after)


@router.post("/{topic}/replay", response_model=LetterActionOut)
def replay(topic: str, body: ReplayRequest, request: Request, who: Operator) -> LetterActionOut:
    """Append the open letters the filter selects back onto ``topic`` as new messages, at a capped rate, each with
    ``xtreaming-replay-of`` naming its DLQ record; each letter is replayed once. Follow it at
    ``/api/dlq/replays/{replay_id}``."""
    selected = letter_filter(topic, body.filter)
    count, started = _letters(request).replay(selected, who.name, dry_run=body.dry_run, rate_per_s=body.rate_per_s)
    replay_id = None if started is None else started.id
    return _action_out(selected, "replay", body.dry_run, count, replay_id)


@router.post("/{topic}/skip", response_model=LetterActionOut)
def skip(topic: str, body: LetterAction, request: Request, who: Operator) -> LetterActionOut:
    """Set aside the open letters the filter selects: never replayed, no longer counted as open."""
    selected = letter_filter(topic, body.filter)
    count = _letters(request).skip(selected, who.name, dry_run=body.dry_run)
    return _action_out(selected, "skip", body.dry_run, count)


@router.post("/{topic}/purge", response_model=LetterActionOut)
def purge(topic: str, body: LetterAction, request: Request, who: Admin) -> LetterActionOut:
    """Remove skipped and replayed letters the filter selects from the index (their records stay in the log)."""
    selected = letter_filter(topic, body.filter)
    count = _letters(request).purge(selected, who.name, dry_run=body.dry_run)
    return _action_out(selected, "purge", body.dry_run, count)


def letter_filter(topic: str, selection: LetterSelection) -> LetterFilter:
    """The request's filter as the core takes it; a time without a zone is refused (whose 10:00 would it be?)."""
    for name, at in (("since", selection.since), ("until", selection.until)):
        if at is not None and at.utcoffset() is None:
            raise InvalidLetterFilter(
                f"{name} {at.isoformat()} has no time zone: give one, e.g. 2026-12-06T10:00-03:00"
            )
    keys = tuple(dict.fromkeys(k.encode() for k in selection.keys))
    return LetterFilter(topic, selection.error, selection.since, selection.until, keys)


def _letters(request: Request) -> DeadLetters:
    return coordinator_of(request).dead_letters


def _action_out(
    selected: LetterFilter, action: Action, dry_run: bool, count: int, replay_id: int | None = None
) -> LetterActionOut:
    verb = {"replay": "replayed", "skip": "skipped", "purge": "purged"}[action]
    if not count:  # only on a dry run: otherwise NoDeadLetters said so
        which = "skipped or replayed" if action == "purge" else "open"
        detail = f"0 {which} dead letters match {selected}: nothing would change"
    elif dry_run:
        detail = f"{count:,} dead letters of {selected} would be {verb}"
    else:
        detail = f"{count:,} dead letters of {selected} {'are being ' + verb if action == 'replay' else verb}"
    return LetterActionOut(
        topic=selected.topic, action=action, dry_run=dry_run, matched=count, replay_id=replay_id, detail=detail
    )


def _topic_out(letters: TopicLetters) -> DlqTopicOut:
    return DlqTopicOut(
        topic=letters.topic,
        open=letters.open,
        replayed=letters.replayed,
        skipped=letters.skipped,
        errors=[
            ErrorGroupOut(
                error=group.error,
                count=group.count,
                samples=[LetterSample(id=i, key=encode_bytes(k)[0]) for i, k in group.samples],
            )
            for group in letters.errors
        ],
    )


def _letter_out(letter: DeadLetter) -> DeadLetterOut:
    key, encoding = encode_bytes(letter.key)
    source = (
        None
        if letter.source_partition is None or letter.source_offset is None
        else message_id(letter.topic, letter.source_partition, letter.source_offset)
    )
    return DeadLetterOut(
        id=letter.dlq_id,
        source=source,
        key=key,
        key_encoding=encoding,
        error=letter.error,
        attempts=letter.attempts,
        dead_at=letter.dead_at,
        state=letter.state.value,
        replay_id=letter.replay_id,
        replayed_as=letter.replayed_as,
    )


def _replay_out(replay: Replay) -> ReplayOut:
    return ReplayOut(
        id=replay.id,
        topic=replay.topic,
        filter=replay.filter,
        actor=replay.actor,
        created_at=replay.created_at,
        total=replay.total,
        done=replay.done,
        rate_per_s=replay.rate_per_s,
        state=replay.state.value,
        error=replay.error,
    )
