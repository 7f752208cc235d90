"""The worker protocol (DESIGN §6), pure: tasks as leased (their messages, and the ``input.jsonl``
lines made of them, in ``leased``), ``output.jsonl`` verdicts, ``XTREAMING-PROGRESS d/t`` lines,
command templates, and a task's outcome as reported.

No I/O here: the runner and the handler pool read and write files and processes; this module
turns text into typed values and back, and says exactly what is wrong with bad input.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from xtreaming.errors import XtreamingError
from xtreaming.farm.leased import InvalidMessages, LeasedMessages
from xtreaming.wire import lease_frame
from xtreaming.wire.verdict import VERDICTS, Verdict

#: The placeholders a command template may use; ``{python}`` is the farm's own interpreter.
PLACEHOLDERS: Final = frozenset(
    {"base", "convenio", "kind", "process", "topic", "input", "output", "task_id", "attempt", "python"}
)
#: A message's own detail (the ACK record's ``detail``) is cut to this many characters.
MAX_MESSAGE_DETAIL: Final = 1000
#: A task's detail (exit code, stderr tail) is cut to this many characters; the API takes 16 KiB.
MAX_TASK_DETAIL: Final = 4000
#: Completion bodies stay well under the coordinator's default 1 MiB body limit.
MAX_COMPLETION_BYTES: Final = 512 * 1024

_PROGRESS = re.compile(rb"^XTREAMING-PROGRESS\s+(\d{1,18})\s*/\s*(\d{1,18})\s*$")
#: A task id names the task's directory: letters, digits, ``-`` and ``_`` only (the coordinator sends 32
#: hex digits), so that no lease — from a coordinator of another version or anyone in the middle — can
#: name a path such as ``../../victim`` or ``/etc`` for the farm to write into or remove.
_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class InvalidOutput(XtreamingError, ValueError):
    """A worker's verdicts that cannot be used (garbage in ``output.jsonl``, a bad handler result)."""


class InvalidTask(XtreamingError, ValueError):
    """A task in a lease response that the farm cannot read (a coordinator of another version?)."""


class InvalidCommand(XtreamingError, ValueError):
    """A queue's command template that cannot be rendered (unknown placeholder, bad braces, empty)."""


@dataclass(frozen=True, slots=True)
class Task:
    """A task as the coordinator leased it, its messages as the lease's columns."""

    task_id: str
    topic: str
    base: str
    convenio: str
    kind: str
    process: str
    slot: int
    attempt: int
    command: tuple[str, ...]
    handler: str | None
    timeout_s: float
    messages: LeasedMessages

    @classmethod
    def from_json(cls, data: Mapping[str, Any], columns: lease_frame.MessageColumns) -> Task:
        """Build from one entry of a lease answer and its messages (see ``read_lease``); raises
        InvalidTask naming a missing field."""
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            raise InvalidTask(f"lease response: task id {task_id!r} is not 1 to 64 letters, digits, '-' or '_'")
        try:
            return cls(
                task_id=task_id,
                topic=str(data["topic"]),
                base=str(data["base"]),
                convenio=str(data["convenio"]),
                kind=str(data["kind"]),
                process=str(data["process"]),
                slot=int(data["slot"]),
                attempt=int(data["attempt"]),
                command=tuple(str(arg) for arg in data.get("command") or ()),
                handler=data.get("handler") or None,
                timeout_s=float(data["timeout_s"]),
                messages=LeasedMessages.from_lease(str(data["topic"]), data["messages"], columns),
            )
        except InvalidMessages as exc:
            raise InvalidTask(f"lease response: task {data.get('task_id')!r}: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidTask(f"lease response: task without a valid {exc}") from exc

    def message_ids(self) -> set[str]:
        return set(self.messages.ids())

    def placeholders(self, input_path: str, output_path: str, python: str) -> dict[str, str]:
        return {
            "base": self.base,
            "convenio": self.convenio,
            "kind": self.kind,
            "process": self.process,
            "topic": self.topic,
            "input": input_path,
            "output": output_path,
            "task_id": self.task_id,
            "attempt": str(self.attempt),
            "python": python,
        }


@dataclass(frozen=True, slots=True)
class LeaseAnswer:
    """A framed lease answer, read: the results it settled, and each task's JSON with its messages."""

    settled: list[Mapping[str, Any]]
    tasks: list[tuple[Mapping[str, Any], lease_frame.MessageColumns]]


def read_lease(body: bytes) -> LeaseAnswer:
    """Read a framed lease answer (``xtreaming.wire.lease_frame``), unpacking each task's messages; raises
    InvalidTask when the answer cannot be read at all."""
    try:
        head, data = lease_frame.unframe(body)
        settled, tasks = list(head.get("settled") or ()), list(head["tasks"])
        at = 0
        columns = []
        for task in tasks:
            count = task["messages"]["count"]
            if type(count) is not int:
                raise ValueError(f"task {task.get('task_id')!r}: messages.count is not a whole number")
            try:
                unpacked, at = lease_frame.unpack(data, at, count)
            except ValueError as exc:
                raise ValueError(f"task {task.get('task_id')!r}: {exc}") from exc
            columns.append(unpacked)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidTask(f"lease answer: not one this farm can read ({type(exc).__name__}: {exc})") from exc
    if at != len(data):
        raise InvalidTask(f"lease answer: its tasks take {at:,} bytes after the JSON, but {len(data):,} follow it")
    return LeaseAnswer(settled, list(zip(tasks, columns, strict=True)))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a task came to: a verdict per message it names, ``default`` for the others.

    ``detail`` explains the default (exit code, timeout, stderr tail) and goes into each such
    message's error history, hence into its DLQ record.
    """

    default: Verdict
    detail: str | None = None
    verdicts: Mapping[str, tuple[Verdict, str | None]] = field(default_factory=dict)

    @property
    def is_success(self) -> bool:
        return self.default is Verdict.OK and all(v is Verdict.OK for v, _ in self.verdicts.values())

    def summary(self, messages: int) -> str:
        """In words, for the farm's log: how many messages were not ok, and why."""
        if self.default is not Verdict.OK:
            return f"{messages} message(s) {self.default.value}: {self.detail}"
        failures = [(v, d) for v, d in self.verdicts.values() if v is not Verdict.OK]
        first = failures[0][1] if failures else None
        return f"{len(failures)} of {messages} message(s) not ok" + (f", e.g. {first}" if first else "")

    def completion(self) -> dict[str, Any]:
        """The ``/complete`` body: only the messages that differ from the default or carry a detail,
        details cut so that the body stays under ``MAX_COMPLETION_BYTES``."""
        listed = [(i, v, d) for i, (v, d) in self.verdicts.items() if v is not self.default or d]
        limit = MAX_MESSAGE_DETAIL
        while listed and limit and len(listed) * (limit + 120) > MAX_COMPLETION_BYTES:
            limit //= 4  # a batch of thousands of failures: shorter details rather than a refused body
        results = [
            {"id": i, "status": v.value, "detail": _cut(d, limit) if d and limit else None} for i, v, d in listed
        ]
        return {"default": self.default.value, "detail": _cut(self.detail, MAX_TASK_DETAIL), "results": results}


def failed(detail: str, verdict: Verdict = Verdict.RETRY) -> Outcome:
    """Every message of the task gets ``verdict`` for the reason ``detail``."""
    return Outcome(verdict, detail)


def parse_output(
    data: bytes, known_ids: set[str], *, name: str = "output.jsonl"
) -> dict[str, tuple[Verdict, str | None]]:
    """Verdicts from an ``output.jsonl`` file's bytes: one JSON object a line with ``id``, ``status``
    (ok | error | retry) and an optional ``detail``; blank lines are skipped; a later line for the
    same id wins. Raises InvalidOutput naming the line and what is wrong with it."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidOutput(f"{name} is not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    verdicts: dict[str, tuple[Verdict, str | None]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            message_id, verdict, detail = _parse_line(line, number, known_ids, name)
            verdicts[message_id] = (verdict, detail)
    return verdicts


def _parse_line(line: str, number: int, known_ids: set[str], name: str) -> tuple[str, Verdict, str | None]:
    where = f"{name} line {number}"
    try:
        entry = json.loads(line)
    except ValueError as exc:
        raise InvalidOutput(f"{where}: not JSON ({exc}): {_cut(line, 80)!r}") from None
    if not isinstance(entry, dict):
        raise InvalidOutput(f"{where}: expected an object with 'id' and 'status', got {type(entry).__name__}")
    message_id, status, detail = entry.get("id"), entry.get("status"), entry.get("detail")
    if not isinstance(message_id, str) or not message_id:
        raise InvalidOutput(f"{where}: 'id' must be a message id such as 'TOPIC/0/42', got {message_id!r}")
    if message_id not in known_ids:
        raise InvalidOutput(f"{where}: id {message_id!r} is not a message of this task")
    if not isinstance(status, str) or status not in VERDICTS:
        raise InvalidOutput(f"{where}: 'status' must be one of ok, error, retry, not {status!r}")
    if detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail, ensure_ascii=False)
    return message_id, Verdict(status), detail


def verdicts_of(result: object, known_ids: set[str]) -> dict[str, tuple[Verdict, str | None]]:
    """Verdicts from what a Python handler returned: None (all ok) or a mapping of message id to
    ``"ok" | "error" | "retry"`` or ``(status, detail)``. Raises InvalidOutput saying what is wrong."""
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise InvalidOutput(f"handler returned {type(result).__name__}; expected None or a mapping id → status")
    verdicts: dict[str, tuple[Verdict, str | None]] = {}
    for message_id, value in result.items():
        status, detail = (value[0], value[1]) if isinstance(value, tuple) and len(value) == 2 else (value, None)
        if message_id not in known_ids:
            raise InvalidOutput(f"handler result: id {message_id!r} is not a message of this task")
        if not isinstance(status, str) or status not in VERDICTS:
            raise InvalidOutput(f"handler result for {message_id!r}: status must be ok, error or retry, not {status!r}")
        verdicts[message_id] = (Verdict(status), None if detail is None else str(detail))
    return verdicts


def parse_progress(line: bytes) -> tuple[int, int] | None:
    """``(done, total)`` from an ``XTREAMING-PROGRESS <done>/<total>`` line; None for any other line."""
    match = _PROGRESS.match(line.strip())
    if match is None:
        return None
    done, total = int(match[1]), int(match[2])
    return (done, total) if done <= total else None


def render_command(template: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """The argument list of a task: each template argument with its ``{placeholder}``s replaced.

    Raises InvalidCommand for an empty template, an unknown placeholder or unbalanced braces
    (``{{`` and ``}}`` stand for literal braces).
    """
    if not template:
        raise InvalidCommand("the queue has no worker command (set 'command' or 'handler' in its settings)")
    argv = []
    for position, arg in enumerate(template, start=1):
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(arg) if name is not None]
        except ValueError as exc:
            raise InvalidCommand(f"command argument {position} {arg!r}: {exc}") from None
        for name in fields:
            if name not in PLACEHOLDERS:
                known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
                raise InvalidCommand(
                    f"command argument {position} {arg!r}: unknown placeholder {{{name}}}; known: {known}"
                )
        try:
            argv.append(arg.format_map(values))
        except (ValueError, KeyError) as exc:
            raise InvalidCommand(f"command argument {position} {arg!r}: {exc}") from None
    return argv


def _cut(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"
