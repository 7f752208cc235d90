"""The services some tests need (PostgreSQL): skip with the reason on a laptop, fail under ``CI=true``."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, NoReturn

import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

#: PostgreSQL with trust authentication, as on developers' machines and CI; override with
#: XTREAMING_TEST_POSTGRES_URL (a SQLAlchemy URL).
DEFAULT_POSTGRES_URL: Final = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: A service that does not answer this fast is taken as absent.
PROBE_TIMEOUT_S: Final = 3


def is_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it under ``CI=true``: tests needing a service never skip in CI."""
    if is_ci():
        pytest.fail(f"{reason} (CI=true: a test needing a service must run, not skip)", pytrace=False)
    pytest.skip(reason)


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
