"""The tests' one wait: returns what the condition found, fails naming what it awaited."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.waiting import TimedOut, wait_until


def answers(*values: object) -> Callable[[], object]:
    """A condition returning ``values`` in turn (raising those that are exceptions), then failing the test."""
    pending: Iterator[object] = iter(values)

    def condition() -> object:
        value = next(pending, None)
        if value is None:
            pytest.fail("the condition was called again after it returned something true")
        if isinstance(value, Exception):
            raise value
        return value

    return condition


def test_the_first_true_value_is_returned_and_the_condition_not_called_again() -> None:
    found = wait_until(answers([], 0, [4242]), 5, "the worker's pid", every_s=0)

    assert found == [4242]


def test_at_the_deadline_it_fails_naming_what_it_awaited_for_how_long_and_the_last_answer() -> None:
    with pytest.raises(TimedOut) as caught:
        wait_until(answers(False), 0, "both slots busy")

    assert str(caught.value) == "timed out after 0 s waiting for both slots busy; the condition last returned False"
    assert isinstance(caught.value, AssertionError)  # a failure, not an error, in pytest's report


def test_ignored_exceptions_mean_not_yet_and_the_last_one_is_named() -> None:
    refused = ConnectionRefusedError("connection refused")

    assert wait_until(answers(refused, True), 5, "the server", every_s=0, ignoring=(OSError,)) is True
    with pytest.raises(TimedOut, match=r"the server; the condition last raised ConnectionRefusedError: connection"):
        wait_until(answers(refused), 0, "the server", ignoring=(OSError,))


def test_any_other_exception_ends_the_wait_at_once() -> None:
    with pytest.raises(ValueError, match="the process exited"):
        wait_until(answers(ValueError("the process exited"), True), 5, "the server", every_s=0, ignoring=(OSError,))
