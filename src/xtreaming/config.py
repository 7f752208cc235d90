"""Settings: one object built at each entry point from ``XTREAMING_*`` variables, then passed down."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from xtreaming.defaults import (
    DEFAULT_BASE_MAX_WORKERS,
    DEFAULT_BROKER_URL,
    DEFAULT_DATABASE_URL,
    DEFAULT_DISCOVERY_INTERVAL_S,
    DEFAULT_GROUP,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_HOST,
    DEFAULT_PARTITIONS,
    DEFAULT_PORT,
    DEFAULT_TIME_ZONE,
    MAX_PARTITIONS,
)


class Role(StrEnum):
    """What a bearer token may do: viewer < operator < admin look and act; farm runs tasks."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    FARM = "farm"


class Token(BaseModel):
    """A configured bearer token, stored as the SHA-256 hex digest of the token (never the token)."""

    name: str = Field(min_length=1, max_length=64)
    role: Role
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    #: For a farm token, the farm names it may act as (shell-style patterns: ``poa-1``, ``poa-*``); None, as
    #: in entries made before tokens were bound to farms, lets it act as any farm (a warning at start says so).
    farms: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(default=None, max_length=64)


class Settings(BaseSettings):
    """Process-wide configuration; every field can be set as ``XTREAMING_<FIELD>``.

    The defaults live in ``xtreaming.defaults`` (what each one is for is said there); the coordinator's
    share of these settings reaches it as ``CoordinatorOptions.from_settings(settings)``.
    """

    model_config = SettingsConfigDict(env_prefix="XTREAMING_", extra="ignore")

    broker_url: str = DEFAULT_BROKER_URL
    database_url: str = DEFAULT_DATABASE_URL
    default_partitions: int = Field(default=DEFAULT_PARTITIONS, ge=1, le=MAX_PARTITIONS)
    host: str = DEFAULT_HOST
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    #: JSON list of {"name", "role", "sha256"}; ``xtreaming token`` makes one.
    tokens: list[Token] = Field(default_factory=list)
    time_zone: str = DEFAULT_TIME_ZONE
    group: str = DEFAULT_GROUP
    #: At least 0.2 s: a farm is lost after three intervals, and whatever it ran must be dead by then
    #: (its watchdog kills its workers within tens of milliseconds of its death).
    heartbeat_interval_s: float = Field(default=DEFAULT_HEARTBEAT_INTERVAL_S, ge=0.2, le=300)
    discovery_interval_s: float = Field(default=DEFAULT_DISCOVERY_INTERVAL_S, gt=0, le=3600)
    default_base_max_workers: int = Field(default=DEFAULT_BASE_MAX_WORKERS, ge=0, le=10_000)
    #: Largest request body the API accepts, except publishing.
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    #: Largest body of a publish request (a batch of messages).
    max_publish_bytes: int = Field(default=16 << 20, ge=1024)
    poll_interval_s: float = Field(default=0.05, gt=0, le=10)

    @model_validator(mode="after")
    def _refuse_open_network_bind(self) -> Self:
        if not self.tokens and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not a loopback address and no tokens are configured: anyone on the "
                "network could pause queues and take tasks. Set XTREAMING_TOKENS (see 'xtreaming token') "
                f"or bind to {DEFAULT_HOST}."
            )
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ClientSettings(BaseSettings):
    """What CLI commands and farms need to reach the coordinator: its URL and the token they present.

    Apart from ``Settings`` so that a farm or an operator's command never runs the server's checks
    (a farm sharing the coordinator's environment file with ``XTREAMING_HOST=0.0.0.0`` still starts).
    """

    model_config = SettingsConfigDict(env_prefix="XTREAMING_", extra="ignore")

    url: str = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    token: str | None = None
