"""Keep-alive HTTP/1.1 connections of the standard library: the farms' lease requests, one every few tasks.

A farm sends a lease request for every few tasks it runs; through httpx each cost about three times the CPU of the
same request on ``http.client`` (its request and response models, cookies, auth and redirect steps, measured in
``bench/e2e.py``'s farm column), which a lane of one-message tasks paid for every task. ``Connections`` keeps
idle connections per coordinator, as httpx's pool does, for the requests ``CoordinatorClient.post_for`` sends;
every other call stays on httpx. As httpx does, a connection idle for ``KEEPALIVE_S`` is not used again (the
coordinator's server closes its own after as long, and a connection cut on the way may never say it was closed),
and one whose socket reads as ready (closed, or sending what nobody asked) is dropped before it is used: a request
is not sent on a connection known dead, and never sent twice.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

#: Idle connections kept per coordinator: a farm has at most a few requests out at once.
KEPT_PER_HOST: Final = 4
#: An idle connection is used again only within this many seconds (httpx's default; uvicorn closes its own after 5).
KEEPALIVE_S: Final = 5.0


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
        self._idle: dict[str, list[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Answer:
        """POST ``body`` to ``url`` and read the answer; raises ConnectionFailed when none came."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = self._take(origin) or self._connect(parts.scheme, parts.hostname or "", parts.port, timeout_s)
        try:
            if connection.sock is not None:
                connection.sock.settimeout(timeout_s)
            else:
                connection.timeout = timeout_s
            connection.request("POST", target, body, {**self._headers, **headers})
            response = connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc
        if response.will_close:
            connection.close()
        else:
            self._give_back(origin, connection)
        return Answer(response.status, content)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection, _ in connections:
                connection.close()

    def _connect(self, scheme: str, host: str, port: int | None, timeout_s: float) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout_s, context=self._tls)
        return http.client.HTTPConnection(host, port, timeout=timeout_s)

    def _take(self, origin: str) -> http.client.HTTPConnection | None:
        """An idle connection to ``origin`` still open, or None; those idle too long or closed are dropped."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                connection, since = idle.pop()
            if (
                time.monotonic() - since < KEEPALIVE_S
                and connection.sock is not None
                and not _readable(connection.sock)
            ):
                return connection
            connection.close()

    def _give_back(self, origin: str, connection: http.client.HTTPConnection) -> None:
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
