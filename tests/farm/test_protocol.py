"""The worker protocol, pure: output.jsonl verdicts, progress lines, command templates, completions."""

from __future__ import annotations

import json
import re
import struct
from typing import Any

import pytest

from tests.farm.builders import IDS, binary_message, leased, make_task, message
from xtreaming.farm.protocol import (
    InvalidCommand,
    InvalidOutput,
    InvalidTask,
    Outcome,
    Task,
    parse_output,
    parse_progress,
    read_lease,
    render_command,
    verdicts_of,
)
from xtreaming.wire import lease_frame
from xtreaming.wire.lease_frame import MessageColumns
from xtreaming.wire.verdict import Verdict

KNOWN = set(IDS)


def test_output_lines_give_verdicts_and_a_later_line_wins() -> None:
    data = (
        f'{{"id": "{IDS[0]}", "status": "error", "detail": "CPF inválido"}}\n'
        "\n"
        f'{{"id": "{IDS[1]}", "status": "retry"}}\n'
        f'{{"id": "{IDS[1]}", "status": "ok", "detail": {{"rows": 1}}}}\n'
    ).encode()

    verdicts = parse_output(data, KNOWN)

    assert verdicts == {IDS[0]: (Verdict.ERROR, "CPF inválido"), IDS[1]: (Verdict.OK, '{"rows": 1}')}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"this is not json\n",
            "output.jsonl line 1: not JSON (Expecting value: line 1 column 1 (char 0)): 'this is not json'",
        ),
        (b'["a"]\n', "output.jsonl line 1: expected an object with 'id' and 'status', got list"),
        (b'{"status": "ok"}\n', "output.jsonl line 1: 'id' must be a message id such as 'TOPIC/0/42', got None"),
        (
            b'\n{"id": "OTHER/0/1", "status": "ok"}\n',
            "output.jsonl line 2: id 'OTHER/0/1' is not a message of this task",
        ),
        (
            f'{{"id": "{IDS[0]}", "status": "done"}}'.encode(),
            "output.jsonl line 1: 'status' must be one of ok, error, retry, not 'done'",
        ),
        (b"\xff\xfe garbage", "output.jsonl is not UTF-8 text (byte 0: invalid start byte)"),
    ],
)
def test_garbage_output_is_refused_naming_the_line_and_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(InvalidOutput) as refused:
        parse_output(data, KNOWN)

    assert str(refused.value) == message


def test_a_handler_result_gives_verdicts_or_a_clear_error() -> None:
    assert verdicts_of(None, KNOWN) == {}
    assert verdicts_of({IDS[0]: "retry", IDS[1]: ("error", "bad")}, KNOWN) == {
        IDS[0]: (Verdict.RETRY, None),
        IDS[1]: (Verdict.ERROR, "bad"),
    }
    with pytest.raises(InvalidOutput, match=r"handler returned list; expected None or a mapping"):
        verdicts_of([IDS[0]], KNOWN)
    with pytest.raises(InvalidOutput, match=r"status must be ok, error or retry, not 'maybe'"):
        verdicts_of({IDS[0]: "maybe"}, KNOWN)


@pytest.mark.parametrize(
    ("line", "progress"),
    [
        (b"XTREAMING-PROGRESS 12/500\n", (12, 500)),
        (b"XTREAMING-PROGRESS  3 / 4 \r\n", (3, 4)),
        (b"XTREAMING-PROGRESS 5/4", None),
        (b"XTREAMING-PROGRESS x/4", None),
        (b"importing 12/500", None),
    ],
)
def test_progress_lines(line: bytes, progress: tuple[int, int] | None) -> None:
    assert parse_progress(line) == progress


def test_a_command_template_gets_every_placeholder() -> None:
    task = make_task(command=("MultcobWorker.exe", "IMPORTAR"))
    values = task.placeholders("/t/input.jsonl", "/t/output.jsonl", "/usr/bin/python3")
    template = [
        "{python}", "--base", "{base}", "--convenio={convenio}", "{kind}.{process}", "{topic}", "--entrada",
        "{input}", "--saida", "{output}", "{task_id}", "try {attempt}", "{{literal}}",
    ]  # fmt: skip

    argv = render_command(template, values)

    assert argv == [
        "/usr/bin/python3", "--base", "MULTCOB03", "--convenio=1189", "IMPORTACAO.ATUALIZA_BUREAU",
        "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU", "--entrada", "/t/input.jsonl", "--saida", "/t/output.jsonl",
        "task-1", "try 2", "{literal}",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ([], "the queue has no worker command (set 'command' or 'handler' in its settings)"),
        (["w.exe", "{bse}"], "command argument 2 '{bse}': unknown placeholder {bse}; known: {attempt}, {base}"),
        (["w.exe", "{base"], "command argument 2 '{base': expected '}' before end of string"),
        (["{0}"], "command argument 1 '{0}': unknown placeholder {0}"),
    ],
)
def test_a_bad_template_is_refused_in_words(template: list[str], message: str) -> None:
    task = make_task()

    with pytest.raises(InvalidCommand) as refused:
        render_command(template, task.placeholders("in", "out", "python"))

    assert str(refused.value).startswith(message)


def test_input_lines_carry_each_message_as_leased() -> None:
    rows = [message(offset) for offset in range(3)]

    lines = list(leased(rows).lines())

    assert [json.loads(line) for line in lines] == rows
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)


def test_input_lines_are_the_compact_json_of_each_message_to_the_byte() -> None:
    odd = 'é 中文 😀 \x00\x1f\x7f \u2028 "q" \\ / \n\t\b\f\r'
    rows = [message(0), binary_message(1), message(2, key=odd, value=odd), {**binary_message(3), "key": odd}]

    lines = list(leased(rows).lines())

    assert lines == [json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows]


def columns(*values: bytes, keys: list[bytes | None] | None = None) -> MessageColumns:
    count = len(values)
    return MessageColumns([0] * count, list(range(count)), [1] * count, keys or [None] * count, list(values))


def task_head(task_id: str, count: object, headers: object = None) -> dict[str, Any]:
    """A task as the lease answer's JSON head carries it; ``count`` as given, so a test may send a wrong one."""
    return {"task_id": task_id, "topic": "A.1.B.C", "base": "A", "convenio": "1", "kind": "B", "process": "C",
            "slot": 0, "attempt": 1, "timeout_s": 1.0, "command": ["true"],
            "messages": {"count": count, "headers": headers}}  # fmt: skip


def lease_answer(tasks: list[tuple[dict[str, Any], bytes]], settled: list[dict[str, Any]] | None = None) -> bytes:
    head = json.dumps({"tasks": [task for task, _ in tasks], "settled": settled or []})
    return lease_frame.frame(head, [packed for _, packed in tasks])


def test_a_framed_lease_answer_gives_each_task_its_messages_untouched() -> None:
    first = columns(b'{"a":"\n"}', b"\xff\x00", keys=[b"12345678909", None])
    second = columns(b"", b"<x/>\n", keys=[b"", b"\xfe"])
    body = lease_answer(
        [(task_head("t1", 2), lease_frame.pack(first)), (task_head("t2", 2), lease_frame.pack(second))],
        [{"task_id": "t0"}],
    )

    answer = read_lease(body)

    assert answer.settled == [{"task_id": "t0"}]
    assert [(data["task_id"], unpacked) for data, unpacked in answer.tasks] == [("t1", first), ("t2", second)]
    task = Task.from_json(*answer.tasks[0])
    assert (list(task.messages.keys), list(task.messages.values)) == ([b"12345678909", None], list(first.values))


def test_a_task_whose_headers_do_not_match_its_messages_is_refused() -> None:
    with pytest.raises(InvalidTask, match="task 't': messages: headers must be null or a list of 2"):
        Task.from_json(task_head("t", 2, headers=[[]]), columns(b"a", b"b"))
    with pytest.raises(InvalidTask, match="task 't': messages: expected an object, got list"):
        Task.from_json({**task_head("t", 1), "messages": []}, columns(b"a"))


@pytest.mark.parametrize("task_id", ["../../victim", "/etc", "a/b", "a\\b", "..", "", "x" * 65, 5, None])
def test_a_task_id_that_could_name_a_path_outside_the_work_dir_is_refused(task_id: object) -> None:
    head = {**task_head("t", 0), "task_id": task_id}

    with pytest.raises(InvalidTask, match=r"task id .* is not 1 to 64 letters, digits, '-' or '_'"):
        Task.from_json(head, columns())


def test_the_coordinators_task_ids_are_accepted() -> None:
    task = Task.from_json(task_head("0123456789abcdef0123456789abcdef", 0), columns())

    assert task.task_id == "0123456789abcdef0123456789abcdef"


def test_a_task_without_a_field_is_refused() -> None:
    head = task_head("t", 0)
    del head["timeout_s"]
    with pytest.raises(InvalidTask, match="lease response: task without a valid 'timeout_s'"):
        Task.from_json(head, columns())


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"tasks": []}', "no newline after its JSON head"),
        (b"{not json\n", "not one this farm can read"),
        (b'{"settled": []}\n', "not one this farm can read"),
        (lease_answer([(task_head("t1", 2), lease_frame.pack(columns(b"abc", b"de"))[:-1])]),
         "'t1': the rows' bytes need 5 bytes, 4 are left"),
        (lease_answer([(task_head("t1", 2), lease_frame.pack(columns(b"abc", b"de"))[:50])]),
         "'t1': 2 rows need 80 bytes of numbers and sizes, 50 are left"),
        (lease_answer([(task_head("t1", 1), lease_frame.pack(columns(b"abc")) + b"x")]),
         "its tasks take 43 bytes after the JSON, but 44 follow it"),
        (lease_answer([(task_head("t1", 1), struct.pack("<5q", 0, 0, 1, -2, 3) + b"abc")]),
         "'t1': a size below -1"),
        (lease_answer([(task_head("t1", 1.5), b"")]), "'t1': messages.count is not a whole number"),
        (lease_answer([({**task_head("t1", 1), "messages": {}}, b"")]), "not one this farm can read"),
    ],
)  # fmt: skip
def test_a_lease_answer_the_farm_cannot_cut_is_refused_whole(body: bytes, error: str) -> None:
    with pytest.raises(InvalidTask, match=f"lease answer: .*{re.escape(error)}"):
        read_lease(body)


def test_a_completion_lists_only_what_differs_from_the_default() -> None:
    outcome = Outcome(
        Verdict.OK,
        None,
        {IDS[0]: (Verdict.OK, None), IDS[1]: (Verdict.RETRY, "busy"), IDS[2]: (Verdict.OK, "3 rows")},
    )

    body = outcome.completion()

    assert body == {
        "default": "ok",
        "detail": None,
        "results": [
            {"id": IDS[1], "status": "retry", "detail": "busy"},
            {"id": IDS[2], "status": "ok", "detail": "3 rows"},
        ],
    }
    assert not outcome.is_success


def test_a_completion_of_thousands_of_failures_stays_small() -> None:
    verdicts = {f"T/0/{i}": (Verdict.ERROR, "x" * 5000) for i in range(5000)}

    body = Outcome(Verdict.OK, "y" * 50_000, verdicts).completion()

    assert len(json.dumps(body)) < 1 << 20
    assert len(body["detail"]) == 4000
    assert len(body["results"]) == 5000
