"""Messages between the farm and its handler processes (``pipe_messages``): framed as multiprocessing frames them,
read whole, in order, however the bytes arrive, and the end of the pipe seen as the end."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import struct
import threading
import time

import pytest

from xtreaming.farm.pipe_messages import READ_SIZE, Reader, send


def framed(message: object) -> bytes:
    """``message`` as ``send`` writes it: its size, then its pickle."""
    body = pickle.dumps(message)
    return struct.pack("!i", len(body)) + body


def test_messages_sent_together_are_read_one_at_a_time_in_order() -> None:
    ours, theirs = multiprocessing.Pipe()
    messages = [("progress", n, 10) for n in range(10)] + [("done", {"T/0/1": ("ok", None)})]
    for message in messages:
        send(theirs, message)

    reader = Reader(ours)
    got = []
    while reader.poll(0):
        got.append(reader.recv())

    assert got == messages


@pytest.mark.parametrize("size", [16_383, 16_385, READ_SIZE - 5, READ_SIZE, 3 * READ_SIZE + 7])
def test_a_message_of_any_size_is_read_whole(size: int) -> None:
    ours, theirs = multiprocessing.Pipe()
    body = os.urandom(size)

    def write() -> None:  # on a thread: larger than the pipe holds
        send(theirs, body)
        send(theirs, "next")

    writer = threading.Thread(target=write)
    writer.start()

    reader = Reader(ours)
    assert reader.recv() == body
    assert reader.recv() == "next"
    writer.join()


def test_a_message_that_arrives_in_pieces_is_waited_for() -> None:
    ours, theirs = multiprocessing.Pipe()
    frame = framed(("done", {"id": ("ok", None)}))
    reader = Reader(ours)
    os.write(theirs.fileno(), frame[:2])
    assert reader.poll(0)  # something came, not all of it

    def rest() -> None:
        time.sleep(0.05)
        os.write(theirs.fileno(), frame[2:9])
        time.sleep(0.05)
        os.write(theirs.fileno(), frame[9:])

    threading.Thread(target=rest).start()
    assert reader.recv() == ("done", {"id": ("ok", None)})
    assert not reader.poll(0)


def test_nothing_to_read_is_no_message_and_the_other_end_closing_is_the_end() -> None:
    ours, theirs = multiprocessing.Pipe()
    reader = Reader(ours)
    assert not reader.poll(0.01)

    send(theirs, "last")
    theirs.close()

    assert reader.recv() == "last"
    assert reader.poll(0)  # the end can be read now
    with pytest.raises(EOFError):
        reader.recv()


def test_the_other_end_closing_in_the_middle_of_a_message_is_the_end() -> None:
    ours, theirs = multiprocessing.Pipe()
    os.write(theirs.fileno(), struct.pack("!i", 100) + b"only part of it")
    theirs.close()

    with pytest.raises(EOFError):
        Reader(ours).recv()


def test_what_came_of_a_message_is_kept_without_waiting_for_the_rest() -> None:
    ours, theirs = multiprocessing.Pipe()
    frame = framed(("done", {"id": ("ok", None)}))
    reader = Reader(ours)

    os.write(theirs.fileno(), frame[:2])
    started = time.monotonic()
    assert reader.recv_now() == (False, None)  # half a size: one read, no wait
    os.write(theirs.fileno(), frame[2:9])
    assert reader.recv_now() == (False, None)
    assert time.monotonic() - started < 1.0
    assert not reader.pending
    send_rest = frame[9:] + frame  # the rest, and the next message whole
    os.write(theirs.fileno(), send_rest)
    assert reader.recv_now() == (True, ("done", {"id": ("ok", None)}))
    assert reader.pending  # the next one came in the same read: no poll would say so
    assert reader.recv_now() == (True, ("done", {"id": ("ok", None)}))
    theirs.close()
    with pytest.raises(EOFError):
        reader.recv_now()
