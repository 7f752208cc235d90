"""A real coordinator over real HTTP for tests: uvicorn in a thread on a free loopback port."""

from __future__ import annotations

import threading
from pathlib import Path

import uvicorn

from tests.waiting import wait_until
from xtreaming.config import Settings, Token
from xtreaming.coordinator.api.app import create_app
from xtreaming.defaults import SERVER_KEEPALIVE_S
from xtreaming.localhost import free_port


class RunningCoordinator:
    """Starts ``create_app`` on its own state under ``root``; ``stop()`` and start again to restart."""

    def __init__(self, root: Path, tokens: list[Token] | None = None, **settings: object) -> None:
        self.root = root
        self.tokens = tokens or []
        self.extra = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def settings(self) -> Settings:
        return Settings.model_validate(
            {
                "broker_url": f"sqlite:///{self.root}/log.db",
                "database_url": f"sqlite:///{self.root}/state.db",
                "port": self.port,
                "tokens": self.tokens,
                "poll_interval_s": 0.02,
                **self.extra,
            }
        )

    def start(self) -> RunningCoordinator:
        app = create_app(self.settings())
        self.app = app
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=SERVER_KEEPALIVE_S,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        server, thread = self._server, self._thread
        wait_until(
            lambda: server.started or not thread.is_alive(), 10, f"the coordinator to start on {self.url}", every_s=0.01
        )
        if not server.started:
            raise RuntimeError(f"coordinator did not start on {self.url}")
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            coordinator = self.app.state.coordinator
            if coordinator is not None:  # None: a standby that never led
                coordinator.store.close()
                coordinator.broker.close()
        self._server = None
