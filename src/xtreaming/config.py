"""Settings: one object built at each entry point from ``XTREAMING_*`` variables, then passed down."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The embedded defaults: everything runs with nothing installed, data under ./.xtreaming/.
DEFAULT_BROKER_URL = "sqlite:///.xtreaming/log.db"
DEFAULT_DATABASE_URL = "sqlite:///.xtreaming/state.db"


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


class Settings(BaseSettings):
    """Process-wide configuration; every field can be set as ``XTREAMING_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="XTREAMING_", extra="ignore")

    broker_url: str = DEFAULT_BROKER_URL
    database_url: str = DEFAULT_DATABASE_URL
    #: Partitions of a work topic created by publishing to it (Kafka's auto-create does the same).
    default_partitions: int = Field(default=4, ge=1, le=1024)
    #: Where CLI commands and farms reach the coordinator, and the token they present.
    url: str = "http://127.0.0.1:8700"
    token: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=0, le=65535)
    #: JSON list of {"name", "role", "sha256"}; ``xtreaming token`` makes one.
    tokens: list[Token] = Field(default_factory=list)
    time_zone: str = "America/Sao_Paulo"
    group: str = "xtreaming"
    heartbeat_interval_s: float = Field(default=5.0, gt=0, le=300)
    #: How often the coordinator looks for new topics on the broker.
    discovery_interval_s: float = Field(default=5.0, gt=0, le=3600)
    default_base_max_workers: int = Field(default=4, ge=0, le=10_000)
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
                "or bind to 127.0.0.1."
            )
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
