"""An attempt's error: written ``attempt N: detail`` into a message's error history, and split back into the attempt
and the detail wherever a person reads it, any text without the prefix left whole."""

from __future__ import annotations

import pytest

from xtreaming.coordinator.attempt_errors import attempt_error, split_attempt_error


def test_an_entry_names_its_attempt_then_the_detail() -> None:
    assert attempt_error(3, "worker exited with code 2") == "attempt 3: worker exited with code 2"


@pytest.mark.parametrize(
    ("attempt", "detail"), [(1, "timeout"), (12, "CPF inválido: attempt 2: nested"), (2, ""), (1, "a: b")]
)
def test_an_entry_splits_back_into_its_attempt_and_detail(attempt: int, detail: str) -> None:
    assert split_attempt_error(attempt_error(attempt, detail)) == (attempt, detail)


@pytest.mark.parametrize(
    "text",
    ["not written by Xtreaming", "Attempt 1: capitalised", "attempt one: words", "tentativa 1: x", " attempt 1: x"],
)
def test_text_without_the_prefix_is_left_whole(text: str) -> None:
    assert split_attempt_error(text) == (None, text)
