"""Following a worker's stdout for progress lines: every complete line once, in bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from xtreaming.farm.processes import MAX_LINE_BYTES, READ_CHUNK_BYTES, LineFollower


def test_lines_come_once_each_and_a_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    stdout = tmp_path / "stdout.log"
    follower = LineFollower(stdout)
    stdout.write_bytes(b"first\nXTREAMING-PROGRESS 1/3\nhalf")

    assert list(follower.new_lines()) == [b"first", b"XTREAMING-PROGRESS 1/3"]
    with stdout.open("ab") as file:
        file.write(b" a line\n")
    assert list(follower.new_lines()) == [b"half a line"]
    assert list(follower.new_lines()) == []
    follower.close()


def test_a_missing_file_has_no_lines_yet(tmp_path: Path) -> None:
    assert list(LineFollower(tmp_path / "not-yet.log").new_lines()) == []


def test_megabytes_of_output_cost_one_chunk_of_memory_and_progress_still_shows(tmp_path: Path) -> None:
    stdout = tmp_path / "stdout.log"
    megabyte = b"x" * (1 << 20)
    with stdout.open("wb") as file:
        for _ in range(16):  # one line of 16 MiB with no newline until its end, then many short lines
            file.write(megabyte)
        file.write(b"\nXTREAMING-PROGRESS 2/3\n")
        for _ in range(16):
            file.write(b"noise\n" * (len(megabyte) // 6))
        file.write(b"XTREAMING-PROGRESS 3/3\n")
    follower = LineFollower(stdout)

    tracemalloc.start()
    progress = [line for line in follower.new_lines() if line.startswith(b"XTREAMING-PROGRESS")]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    follower.close()

    assert progress == [b"XTREAMING-PROGRESS 2/3", b"XTREAMING-PROGRESS 3/3"]
    assert peak < 32 * (READ_CHUNK_BYTES + MAX_LINE_BYTES)  # a chunk and its lines; read whole, 32 MiB


def test_a_line_longer_than_the_limit_is_passed_over_even_when_it_ends_in_a_later_call(tmp_path: Path) -> None:
    stdout = tmp_path / "stdout.log"
    follower = LineFollower(stdout)
    stdout.write_bytes(b"y" * (3 * READ_CHUNK_BYTES))

    assert list(follower.new_lines()) == []
    with stdout.open("ab") as file:
        file.write(b"tail of the long line\nXTREAMING-PROGRESS 1/1\n")
    assert list(follower.new_lines()) == [b"XTREAMING-PROGRESS 1/1"]
    follower.close()
