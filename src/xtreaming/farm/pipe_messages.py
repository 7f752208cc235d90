"""Messages between the farm and its handler processes: pickled, framed as ``multiprocessing`` frames them, and
read whole in one read where they fit.

``Connection.recv_bytes`` reads a message's header, then its body: two reads, and ``Connection.poll`` builds a
selector each time. On a farm of one-message tasks each slot's thread makes these calls for every task, and each
gives up the GIL and takes it back against the other slots' threads doing the same at the same moment (a lease
answer starts them together): GIL hand-offs, not the reads, were most of the farm's system time. Here a
connection's reader polls its descriptor with one poll object and reads what is there at once, keeping what
belongs to the next message. Where a connection is no file descriptor (Windows' pipes) it falls back to the
connection's own calls.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import sys
from multiprocessing.connection import Connection
from typing import Any, Final

#: Bytes asked of a read: a handler's answer for a task of one message is a few hundred.
READ_SIZE: Final = 65536
_SIZE: Final = struct.Struct("!i")
_LARGE_SIZE: Final = struct.Struct("!Q")


def send(conn: Connection, message: object) -> None:
    """``conn.send`` with the plain pickler: what goes between a farm and its handler processes is plain data, and
    multiprocessing's own pickler costs a third more per message (it copies its reducer table for each one)."""
    conn.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))


class Reader:
    """What ``send`` sent to the other end of ``conn``, one message at a time (see the module docstring)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._buffer = bytearray()
        self._fd = -1 if sys.platform == "win32" else conn.fileno()
        if self._fd >= 0:
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)

    def poll(self, timeout_s: float) -> bool:
        """Whether a message (or the end of the pipe) can be read now, waiting up to ``timeout_s``."""
        if self._fd < 0:
            return self._conn.poll(timeout_s)
        return self._framed() is not None or bool(self._poll.poll(max(0, int(timeout_s * 1000))))

    @property
    def pending(self) -> bool:
        """Whether a whole message was read already and waits here (a poll of the pipe would not say so)."""
        return self._fd >= 0 and self._framed() is not None

    def recv(self) -> Any:
        """The next message, waiting for it; raises EOFError when the other end closed first."""
        if self._fd < 0:
            return pickle.loads(self._conn.recv_bytes())
        while (frame := self._framed()) is None:
            self._read()
        return self._take(frame)

    def recv_now(self) -> tuple[bool, Any]:
        """Once ``poll`` said something came: ``(True, message)`` when a whole message is here after at most one read
        of the pipe, ``(False, None)`` while its rest is still to come (it never waits for it: a process stopped in
        the middle of a message holds up nobody); raises EOFError when the other end closed."""
        if self._fd < 0:
            return True, pickle.loads(self._conn.recv_bytes())
        frame = self._framed()
        if frame is None:
            self._read()
            frame = self._framed()
        return (False, None) if frame is None else (True, self._take(frame))

    def _read(self) -> None:
        chunk = os.read(self._fd, READ_SIZE)
        if not chunk:
            raise EOFError("the other end of the pipe closed")
        self._buffer += chunk

    def _take(self, frame: tuple[int, int]) -> Any:
        start, end = frame
        message = pickle.loads(memoryview(self._buffer)[start:end])
        del self._buffer[:end]
        return message

    def _framed(self) -> tuple[int, int] | None:
        """Where the first whole message's body is in the buffer; None while it is not all there."""
        if len(self._buffer) < _SIZE.size:
            return None
        (size,) = _SIZE.unpack_from(self._buffer)
        start = _SIZE.size
        if size == -1:  # a body of 2 GiB or more: its size follows in 8 bytes
            if len(self._buffer) < start + _LARGE_SIZE.size:
                return None
            (size,) = _LARGE_SIZE.unpack_from(self._buffer, start)
            start += _LARGE_SIZE.size
        return (start, start + size) if len(self._buffer) >= start + size else None
