"""The coordinator keeps an idle connection open for longer than its clients keep one for use (``SERVER_KEEPALIVE_S``
against 5 s): a farm heartbeating every 5 s never sends on a connection the server is closing at that moment. The
coordinator as its own process (``xtreaming coordinator``)."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.coordinator_process import CoordinatorProcess
from xtreaming.defaults import SERVER_KEEPALIVE_S
from xtreaming.http_connections import KEEPALIVE_S


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[CoordinatorProcess]:
    process = CoordinatorProcess(tmp_path, f"sqlite:///{tmp_path}/log.db", f"sqlite:///{tmp_path}/state.db").start()
    yield process
    process.close()


def test_a_connection_idle_for_as_long_as_clients_keep_one_is_still_open(coordinator: CoordinatorProcess) -> None:
    assert SERVER_KEEPALIVE_S > KEEPALIVE_S
    host, port = coordinator.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/healthz")
        assert connection.getresponse().read()
        opened = connection.sock

        time.sleep(KEEPALIVE_S + 0.5)  # past what a client keeps a connection for, and uvicorn's own default
        connection.request("GET", "/healthz")
        answer = connection.getresponse()

        assert answer.status == 200
        assert connection.sock is opened  # the same connection: the server had not closed it
    finally:
        connection.close()
