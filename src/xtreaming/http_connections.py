"""Keep-alive HTTP/1.1 connections of its own: the farms' lease requests, one every few tasks.

A farm sends a lease request for every few tasks it runs; through httpx each cost about three times the CPU of the
same request on ``http.client`` (its request and response models, cookies, auth and redirect steps, measured in
``bench/e2e.py``'s farm column), and ``http.client`` reads an answer's headers with the ``email`` package's parser,
which cost three times what the rest of the request did (105 vs 32 µs a request, measured). A lane of one-message
tasks paid that for every few tasks. ``Connections`` writes a request in one send and reads the answer with a
buffered reader: its status line, its headers (only the three that say how the body ends and whether the connection
stays open are looked at) and its body (``Content-Length``, chunked, or up to the close). It keeps idle connections
per coordinator, as httpx's pool does, for the requests ``CoordinatorClient.post_for`` sends; every other call stays
on httpx. As httpx does, a connection idle for ``KEEPALIVE_S`` is not used again (the coordinator's server keeps its
own open for longer, ``SERVER_KEEPALIVE_S``, and a connection cut on the way may never say it was closed), and one
whose socket reads as ready (closed, or sending what nobody asked) is dropped before it is used: a request is not sent
on a connection known dead, and never sent twice. An answer that is not HTTP/1.x, or breaks its limits (``MAX_LINE``
bytes a line, ``MAX_HEADERS`` headers), fails the request as a connection that did not answer does.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Final
from urllib.parse import SplitResult, urlsplit

#: Idle connections kept per coordinator: a farm has at most a few requests out at once.
KEPT_PER_HOST: Final = 4
#: An idle connection is used again only within this many seconds (httpx's default; the coordinator keeps its own open
#: for longer: ``xtreaming.defaults.SERVER_KEEPALIVE_S``).
KEEPALIVE_S: Final = 5.0
#: Longest status or header line read (``http.client``'s limit).
MAX_LINE: Final = 65536
#: Most headers an answer may have (``http.client``'s limit).
MAX_HEADERS: Final = 100


class ConnectionFailed(OSError):
    """No answer on the connection: refused, reset, timed out, or not HTTP."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, read whole."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Connections:
    """Idle keep-alive connections per ``scheme://host:port``, taken by one request at a time (thread-safe)."""

    def __init__(self, headers: dict[str, str], tls: ssl.SSLContext | None) -> None:
        self._headers = headers
        self._tls = tls
        #: Each origin's idle connections, with when each became idle (``time.monotonic``).
        self._idle: dict[str, list[tuple[_Connection, float]]] = {}
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Answer:
        """POST ``body`` to ``url`` and read the answer; raises ConnectionFailed when none came."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in {**self._headers, **headers}.items()]
        if any("\r" in line or "\n" in line for line in lines):  # one would end the header and start another
            raise ValueError(f"a line break in the request line or a header of POST {url}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        connection = self._take(origin) or _Connection.open(parts, self._tls, timeout_s)
        try:
            connection.sock.settimeout(timeout_s)
            connection.sock.sendall(request)
            answer, keep = _read_answer(connection.file)
        except (OSError, ValueError) as exc:  # ValueError: a line too long, a length that is no number
            connection.close()
            raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc
        if keep:
            self._give_back(origin, connection)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection, _ in connections:
                connection.close()

    def _take(self, origin: str) -> _Connection | None:
        """An idle connection to ``origin`` still open, or None; those idle too long or closed are dropped."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                connection, since = idle.pop()
            if time.monotonic() - since < KEEPALIVE_S and not _readable(connection.sock):
                return connection
            connection.close()

    def _give_back(self, origin: str, connection: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < KEPT_PER_HOST:
                idle.append((connection, time.monotonic()))
                return
        connection.close()


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection's socket has something to read: the other end closed it (or broke the protocol)."""
    try:
        if hasattr(select, "poll"):  # any descriptor number, where select() takes those under 1024 only
            poll = select.poll()
            poll.register(sock, select.POLLIN)
            return bool(poll.poll(0))
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


class _Connection:
    """A connected socket and the buffered reader of its answers."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file: BinaryIO = sock.makefile("rb")

    @classmethod
    def open(cls, parts: SplitResult, tls: ssl.SSLContext | None, timeout_s: float) -> _Connection:
        """Connect to the URL ``parts`` name (``urlsplit``); raises ConnectionFailed when that fails."""
        https = parts.scheme == "https"
        host = parts.hostname or ""
        try:
            sock = socket.create_connection((host, parts.port or (443 if https else 80)), timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the request goes in one write
            if https:
                sock = (tls or ssl.create_default_context()).wrap_socket(sock, server_hostname=host)
        except OSError as exc:
            raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc
        return cls(sock)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _read_answer(file: BinaryIO) -> tuple[Answer, bool]:
    """The next answer on a connection, and whether the connection may carry another request; informational
    answers (1xx) are skipped. Raises OSError for an answer that is cut short or is not HTTP/1.x."""
    while True:
        line = _line(file)
        version, _, rest = line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or not code.isdigit():
            raise OSError(f"not an HTTP/1.x answer: {line[:80]!r}")
        status = int(code)
        length, chunked, close = _headers(file)
        if status >= 200 or status == 101:
            break
    keep = not close and version != b"HTTP/1.0"
    if status in (204, 304) or 100 <= status < 200:
        return Answer(status, b""), keep
    if chunked:
        return Answer(status, _chunks(file)), keep
    if length is None:  # the body ends as the connection does
        return Answer(status, file.read()), False
    content = file.read(length)
    if len(content) < length:
        raise OSError(f"answer cut short: {len(content)} of {length} bytes")
    return Answer(status, content), keep


def _headers(file: BinaryIO) -> tuple[int | None, bool, bool]:
    """Read an answer's headers: its ``Content-Length``, whether its body is chunked, whether the connection closes."""
    length: int | None = None
    chunked = close = False
    for _ in range(MAX_HEADERS + 1):
        line = _line(file)
        if line in (b"\r\n", b"\n"):
            return length, chunked, close
        name, colon, value = line.partition(b":")
        if not colon:
            raise OSError(f"not an HTTP header: {line[:80]!r}")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
            if length < 0:
                raise OSError(f"Content-Length {length}")
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    raise OSError(f"more than {MAX_HEADERS} headers")


def _chunks(file: BinaryIO) -> bytes:
    """A chunked body, its trailers skipped."""
    parts: list[bytes] = []
    while True:
        size = int(_line(file).split(b";", 1)[0], 16)
        if size == 0:
            _headers(file)  # its trailers: header lines, read as those are
            return b"".join(parts)
        chunk = file.read(size + 2)  # and its CRLF
        if len(chunk) < size + 2:
            raise OSError("chunked answer cut short")
        parts.append(chunk[:size])


def _line(file: BinaryIO) -> bytes:
    line = file.readline(MAX_LINE + 1)
    if not line:
        raise OSError("the connection closed before the answer came")
    if len(line) > MAX_LINE:
        raise OSError(f"a line of the answer is longer than {MAX_LINE} bytes")
    if not line.endswith(b"\n"):
        raise OSError("the connection closed in the middle of the answer")
    return line
