"""Python handler mode: long-lived worker processes, verdicts, failures, restarts and timeouts."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import replace

import psutil
import pytest

from tests.farm.builders import IDS, TOPIC, binary_message, leased, make_task, message
from tests.waiting import wait_until
from xtreaming.farm.batch import HandlerMessage
from xtreaming.farm.control import TaskControl
from xtreaming.farm.handlers import HandlerWorker
from xtreaming.farm.protocol import Outcome
from xtreaming.wire.verdict import Verdict

H = "tests.farm.handlers"


@pytest.fixture
def worker() -> Iterator[HandlerWorker]:
    worker = HandlerWorker(0)
    yield worker
    worker.close()


def test_a_handler_gets_the_batch_and_one_process_serves_task_after_task(worker: HandlerWorker) -> None:
    control = TaskControl()

    first = worker.run(make_task(handler=f"{H}:echo"), control)
    second = worker.run(make_task(handler=f"{H}:echo", task_id="task-2"), TaskControl())

    detail = first.verdicts[IDS[0]][1]
    assert detail == f"MULTCOB03/IMPORTACAO key=b'10000000000' value=b'{{\"cpf\": \"1\"}}' attempt=2 pid={worker.pid}"
    assert second.verdicts[IDS[0]][1] == detail
    assert (control.done, control.total) == (2, 3)


def test_keys_values_and_headers_reach_the_handler_decoded(worker: HandlerWorker) -> None:
    rows = [message(0, key="ç", value="João 😀"), binary_message(1), message(2)]

    outcome = worker.run(replace(make_task(handler=f"{H}:fields"), messages=leased(rows)), TaskControl())

    headers = (("trace", b"\x01\x02"), ("origem", b"CRM"))
    expected = [
        HandlerMessage(f"{TOPIC}/0/0", TOPIC, 0, 0, "ç".encode(), "João 😀".encode(), (), 2),
        HandlerMessage(f"{TOPIC}/0/1", TOPIC, 0, 1, None, b"\xff\x00\xfe", headers, 2),
        HandlerMessage(f"{TOPIC}/0/2", TOPIC, 0, 2, b"10000000002", b'{"cpf": "1"}', (), 2),
    ]
    assert outcome.verdicts == {m.id: (Verdict.OK, repr(m)) for m in expected}


def test_a_handler_names_the_messages_that_failed(worker: HandlerWorker) -> None:
    outcome = worker.run(make_task(handler=f"{H}:second_retried"), TaskControl())

    assert outcome == Outcome(Verdict.OK, None, {IDS[1]: (Verdict.RETRY, None)})


def test_an_exception_retries_the_batch_with_what_it_said(worker: HandlerWorker) -> None:
    outcome = worker.run(make_task(handler=f"{H}:raises"), TaskControl())

    assert outcome.default is Verdict.RETRY
    assert outcome.detail is not None
    assert outcome.detail.startswith(
        f"handler {H}:raises raised ValueError: boom in MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU; Traceback"
    )


def test_a_process_that_dies_is_reported_and_replaced(worker: HandlerWorker) -> None:
    died = worker.run(make_task(handler=f"{H}:dies"), TaskControl())
    after = worker.run(make_task(handler=f"{H}:second_retried"), TaskControl())

    assert died == Outcome(Verdict.RETRY, "handler process died (exit code 7)")
    assert after == Outcome(Verdict.OK, None, {IDS[1]: (Verdict.RETRY, None)})


def test_the_pipe_of_a_process_that_died_is_closed_only_as_its_task_ends(worker: HandlerWorker) -> None:
    """Whoever waits on the pipe (the hub) lets go of it as the task ends, before the descriptor is closed and its
    number given to another slot's new pipe."""
    control = TaskControl()
    assert worker.begin(make_task(handler=f"{H}:dies"), control) is None
    pipe = worker.fileno()
    assert worker.ready(10)

    assert worker.answer(control) == Outcome(Verdict.RETRY, "handler process died (exit code 7)")
    os.fstat(pipe)  # still open
    assert worker.fileno() == pipe

    worker.end(control)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(pipe)
    assert worker.run(make_task(handler=f"{H}:second_retried"), TaskControl()).default is Verdict.OK


def test_a_process_that_died_while_idle_is_replaced_and_the_task_runs(
    worker: HandlerWorker, caplog: pytest.LogCaptureFixture
) -> None:
    worker.start()
    first = worker.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_until(
        lambda: not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE,
        10,
        "the process to die",
    )

    outcome = worker.run(make_task(handler=f"{H}:echo"), TaskControl())

    assert outcome.default is Verdict.OK
    assert worker.pid not in (None, first)
    assert f"handler process of slot 0 had exited (code {-signal.SIGKILL})" in caplog.text


def test_a_hanging_handler_is_killed_at_the_timeout_and_replaced(worker: HandlerWorker) -> None:
    hung = worker.run(make_task(handler=f"{H}:hangs", timeout_s=0.5), TaskControl())
    after = worker.run(make_task(handler=f"{H}:second_retried"), TaskControl())

    assert hung == Outcome(Verdict.RETRY, "timed out after 0.5 s: handler process tree killed")
    assert after.verdicts == {IDS[1]: (Verdict.RETRY, None)}


@pytest.mark.parametrize(
    ("handler", "verdict", "detail"),
    [
        ("nope.missing:handle", Verdict.RETRY, "ModuleNotFoundError: No module named 'nope'"),
        (f"{H}:absent", Verdict.RETRY, f"AttributeError: module '{H}' has no attribute 'absent'"),
        (f"{H}:NOT_CALLABLE", Verdict.RETRY, f"TypeError: {H}:NOT_CALLABLE is a int, not a function"),
        (f"{H}:bad_result", Verdict.ERROR, None),
    ],
)
def test_a_handler_that_cannot_be_used_says_why(
    worker: HandlerWorker, handler: str, verdict: Verdict, detail: str | None
) -> None:
    outcome = worker.run(make_task(handler=handler), TaskControl())

    if detail is None:
        assert outcome == Outcome(verdict, "handler returned list; expected None or a mapping id → status")
    else:
        assert outcome == Outcome(verdict, f"cannot load handler {handler!r}: {detail}")
