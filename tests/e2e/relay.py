"""A TCP relay between a farm and the coordinator that a test can cut: a network partition without root.

``cut()``: from then on nothing passes either way, on open connections and new ones alike (they are
accepted and then left hanging, as when packets are dropped). ``drop_answers()``: requests reach the
coordinator, but what it answers is lost. ``heal()``: the hanging connections are closed and new ones
pass again.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from xtreaming.localhost import free_port


class Relay:
    """Listens on a free loopback port and forwards each connection to ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._open = threading.Event()
        self._open.set()
        self._answers = True
        self._closed = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    def cut(self) -> None:
        self._open.clear()

    def drop_answers(self) -> None:
        self._answers = False

    def heal(self) -> None:
        with self._lock:
            hanging, self._sockets = self._sockets, []
        for each in hanging:
            with contextlib.suppress(OSError):
                each.close()
        self._answers = True
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.heal()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._open.wait()
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets.append(upstream)
        threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()
        self._pipe(client, upstream, False)

    def _pipe(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        """Forward ``source`` to ``sink`` while the relay is open; what arrives while it is cut is dropped,
        and so are the coordinator's ``answers`` while they are dropped."""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not self._open.is_set():
                    self._open.wait()  # held, then dropped: the connection is closed by ``heal``
                    break
                if answers and not self._answers:
                    continue
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for each in (source, sink):
                with contextlib.suppress(OSError):
                    each.shutdown(socket.SHUT_RDWR)
                each.close()
