"""A site for the CLI tests: the environment an operator's shell has, ``xtreaming`` commands run as
processes in it, and an ``xtreaming coordinator`` process they talk to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.waiting import wait_until
from xtreaming.localhost import free_port


class Site:
    """The embedded log and state under ``root``, a coordinator port, and ``XTREAMING_URL`` pointing at it."""

    def __init__(self, root: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "XTREAMING_BROKER_URL": f"sqlite:///{root}/log.db",
            "XTREAMING_DATABASE_URL": f"sqlite:///{root}/state.db",
            "XTREAMING_PORT": str(port),
            "XTREAMING_URL": self.url,
            "COLUMNS": "250",
        }
        self.server: subprocess.Popen[bytes] | None = None

    def run(self, *args: str, answer: str | None = None) -> subprocess.CompletedProcess[str]:
        """``xtreaming *args``; ``answer`` is typed at its prompts."""
        return subprocess.run(
            [sys.executable, "-m", "xtreaming", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            input=answer,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        return result.stdout

    def start(self, ready: Callable[[], bool], what: str) -> None:
        """Start the coordinator and wait until ``ready`` (asked over HTTP) holds; ``what`` names it."""
        server = self.server = subprocess.Popen([sys.executable, "-m", "xtreaming", "coordinator"], env=self.env)

        def started() -> bool:
            assert server.poll() is None, f"the coordinator exited with {server.returncode}"
            return ready()

        wait_until(started, 20, what, every_s=0.1, ignoring=(httpx.TransportError,))

    def queue_count(self) -> int:
        total: int = httpx.get(f"{self.url}/api/queues").json()["total"]
        return total

    def kill(self) -> None:
        assert self.server is not None
        self.server.send_signal(signal.SIGKILL)
        self.server.wait(timeout=20)

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=20)
