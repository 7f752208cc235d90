"""The farms' lease requests on keep-alive connections of their own (``http_connections.py``): one connection kept
for request after request, one the coordinator closed while idle never used, nor one idle too long, a request never
sent twice, a silent coordinator given up on at the timeout; answers of every framing read whole (chunked, after an
informational answer, up to the close), those that say the connection closes not used again, answers that are not
HTTP or are cut short failing the request, a header that would inject another refused; and
``CoordinatorClient.post_for`` over them, its refusals and an unreachable coordinator reported as on httpx, a proxy in
the environment honoured (httpx's to use)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from xtreaming import http_connections
from xtreaming.client import ApiError, CoordinatorClient, CoordinatorUnreachable
from xtreaming.http_connections import ConnectionFailed, Connections
from xtreaming.localhost import free_port

Behaviour = Callable[[BaseHTTPRequestHandler], None]


class Server:
    """An HTTP/1.1 server on a free loopback port that records each request (its target and body) and each
    connection, and answers as ``behaviour`` says."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self.connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server.connections += 1

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.requests.append((self.path, body))
                behaviour(self)

            def log_message(self, *_: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def answer(status: int = 200, body: bytes = b"ok", *, close_after: bool = False) -> Behaviour:
    """Answer ``status`` with ``body``; ``close_after``: then close the connection without saying so (as a server
    whose keep-alive timeout passed closes an idle one)."""

    def behave(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        if close_after:
            handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True

    return behave


def hang_up(handler: BaseHTTPRequestHandler) -> None:
    """Read the request, then close the connection without answering."""
    handler.connection.shutdown(socket.SHUT_RDWR)
    handler.close_connection = True


def never_answer(handler: BaseHTTPRequestHandler) -> None:
    time.sleep(3)
    handler.close_connection = True


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], Server]]:
    servers: list[Server] = []

    def start(behaviour: Behaviour) -> Server:
        servers.append(Server(behaviour))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_one_connection_is_kept_for_request_after_request(serve: Callable[[Behaviour], Server]) -> None:
    server = serve(answer(body=b'{"n": 1}'))
    connections = Connections({"Authorization": "Bearer x"}, None)
    answers = [connections.post(f"{server.url}/a?b=1", b"%d" % i, {"Accept": "x/y"}, 5) for i in range(5)]
    connections.close()
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"n": 1})] * 5
    assert server.requests == [("/a?b=1", b"%d" % i) for i in range(5)]
    assert server.connections == 1


def test_a_connection_the_server_closed_while_idle_is_not_used(serve: Callable[[Behaviour], Server]) -> None:
    server = serve(answer(close_after=True))
    connections = Connections({}, None)
    first = connections.post(f"{server.url}/x", b"1", {}, 5)
    time.sleep(0.2)  # the server's close reaches the idle connection
    second = connections.post(f"{server.url}/x", b"2", {}, 5)
    connections.close()
    assert (first.status_code, second.status_code) == (200, 200)
    assert server.requests == [("/x", b"1"), ("/x", b"2")]  # each sent once, the second on a new connection
    assert server.connections == 2


def test_a_connection_idle_too_long_is_not_used_again_though_it_looks_open(
    serve: Callable[[Behaviour], Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_connections, "KEEPALIVE_S", 0.2)  # a connection cut on the way may never look closed
    server = serve(answer())
    connections = Connections({}, None)
    answers = [connections.post(f"{server.url}/x", b"1", {}, 5), connections.post(f"{server.url}/x", b"2", {}, 5)]
    time.sleep(0.3)
    answers.append(connections.post(f"{server.url}/x", b"3", {}, 5))
    connections.close()
    assert [a.status_code for a in answers] == [200] * 3
    assert server.connections == 2  # the first kept for the second request, not for the third


def test_a_request_whose_answer_never_came_fails_and_is_not_sent_again(serve: Callable[[Behaviour], Server]) -> None:
    server = serve(hang_up)
    connections = Connections({}, None)
    with pytest.raises(ConnectionFailed):
        connections.post(f"{server.url}/x", b"once", {}, 5)
    connections.close()
    assert server.requests == [("/x", b"once")]


def test_a_silent_server_is_given_up_on_at_the_timeout(serve: Callable[[Behaviour], Server]) -> None:
    server = serve(never_answer)
    connections = Connections({}, None)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="timed out"):
        connections.post(f"{server.url}/x", b"1", {}, 0.5)
    assert time.monotonic() - started < 2.5
    connections.close()


def test_post_for_reports_refusals_and_an_unreachable_coordinator_as_on_httpx(
    serve: Callable[[Behaviour], Server],
) -> None:
    refusing = serve(answer(409, b'{"detail": "no such slot", "errors": []}'))
    with CoordinatorClient(refusing.url) as api, pytest.raises(ApiError) as refused:
        api.post_for("/api/farms/f/lease", {"slots": [9]}, accept="x/y")
    assert (refused.value.status, str(refused.value)) == (409, "HTTP 409: no such slot")
    assert refusing.requests == [("/api/farms/f/lease", b'{"slots":[9]}')]
    nobody = f"http://127.0.0.1:{free_port()}"
    with CoordinatorClient(nobody) as api, pytest.raises(CoordinatorUnreachable, match=nobody):
        api.post_for("/api/farms/f/lease", {}, accept="x/y")


def test_post_for_goes_through_a_proxy_the_environment_names_unless_the_coordinator_is_exempt(
    serve: Callable[[Behaviour], Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(answer(body=b"framed"))  # the proxy and the coordinator at once: a proxy is sent the whole URL
    monkeypatch.setenv("HTTP_PROXY", server.url)
    with CoordinatorClient(server.url) as api:
        assert api.post_for("/api/farms/f/lease", {}, accept="x/y") == b"framed"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with CoordinatorClient(server.url) as api:
        assert api.post_for("/api/farms/f/lease", {}, accept="x/y") == b"framed"
    assert [target for target, _ in server.requests] == [f"{server.url}/api/farms/f/lease", "/api/farms/f/lease"]


class RawServer:
    """A TCP server on a free loopback port that reads each request whole and writes ``answer`` back as given
    (``close``: then closes the connection); it counts connections and keeps the requests."""

    def __init__(self, answer: bytes, *, close: bool = False) -> None:
        self.requests: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._answer, self._close = answer, close
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                sock, _ = self._listener.accept()
                self.connections += 1
                threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with sock, sock.makefile("rb") as file:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = file.readline()
                    if not line:
                        return
                    head += line
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                self.requests.append(head + file.read(length))
                sock.sendall(self._answer)
                if self._close:
                    return

    def stop(self) -> None:
        self._listener.close()


@pytest.fixture
def raw() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(answer: bytes, *, close: bool = False) -> RawServer:
        servers.append(RawServer(answer, close=close))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.mark.parametrize(
    ("answer", "content"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfram\r\n2;x=1\r\ned\r\n0\r\nT: 1\r\n\r\n",
            b"framed",
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length:  2\r\n\r\nok", b"ok"),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", b""),
        (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", b"ok"),
    ],
    ids=["chunked", "informational-first", "no-content", "bare-line-feeds"],
)
def test_answers_of_every_framing_are_read_whole_and_the_connection_kept(
    raw: Callable[..., RawServer], answer: bytes, content: bytes
) -> None:
    server = raw(answer)
    connections = Connections({}, None)
    answers = [connections.post(f"{server.url}/x", b"%d" % i, {}, 5) for i in range(2)]
    connections.close()
    assert [(a.status_code, a.content) for a in answers] == [(answers[0].status_code, content)] * 2
    assert server.connections == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\n\r\nok",  # no length: the body ends with the connection
    ],
    ids=["connection-close", "http-1.0", "until-closed"],
)
def test_a_connection_the_answer_says_will_close_is_not_used_again(
    raw: Callable[..., RawServer], answer: bytes
) -> None:
    server = raw(answer, close=True)
    connections = Connections({}, None)
    answers = [connections.post(f"{server.url}/x", b"%d" % i, {}, 5) for i in range(2)]
    connections.close()
    assert [(a.status_code, a.content) for a in answers] == [(200, b"ok")] * 2
    assert server.connections == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP/1.x answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "cut short: 5 of 10 bytes"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "ValueError"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000 + b"\r\n\r\n", "longer than 65536 bytes"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100 headers"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "not an HTTP header"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "closed in the middle of the answer"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc", "chunked answer cut short"),
    ],
    ids=["not-http", "cut-body", "bad-length", "long-line", "many-headers", "bad-header", "cut-head", "cut-chunk"],
)
def test_an_answer_that_is_not_http_or_is_cut_short_fails_the_request_once(
    raw: Callable[..., RawServer], answer: bytes, error: str
) -> None:
    server = raw(answer, close=True)
    connections = Connections({}, None)
    with pytest.raises(ConnectionFailed, match=error):
        connections.post(f"{server.url}/x", b"once", {}, 5)
    connections.close()
    assert len(server.requests) == 1


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(raw: Callable[..., RawServer]) -> None:
    server = raw(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    connections = Connections({"Authorization": "Bearer x\r\nX-Admin: yes"}, None)
    with pytest.raises(ValueError, match="line break"):
        connections.post(f"{server.url}/x", b"1", {}, 5)
    connections.close()
    assert (server.connections, server.requests) == (0, [])


def test_the_request_is_written_as_http_1_1_with_its_host_length_and_headers(raw: Callable[..., RawServer]) -> None:
    server = raw(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    connections = Connections({"Authorization": "Bearer t"}, None)
    connections.post(f"{server.url}/api/farms/f/lease?x=1", b'{"slots":[]}', {"Accept": "a/b"}, 5)
    connections.close()
    host = server.url.removeprefix("http://")
    assert server.requests == [
        f"POST /api/farms/f/lease?x=1 HTTP/1.1\r\nHost: {host}\r\nContent-Length: 12\r\n"
        'Authorization: Bearer t\r\nAccept: a/b\r\n\r\n{"slots":[]}'.encode()
    ]
