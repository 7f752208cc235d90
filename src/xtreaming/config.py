"""Settings: one object built at each entry point from ``XTREAMING_*`` variables, then passed down."""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self, TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from xtreaming.defaults import (
    DEFAULT_BASE_MAX_WORKERS,
    DEFAULT_BROKER_URL,
    DEFAULT_DATABASE_URL,
    DEFAULT_DISCOVERY_INTERVAL_S,
    DEFAULT_DLQ_REPLAY_MAX_RATE_PER_S,
    DEFAULT_DLQ_REPLAY_RATE_PER_S,
    DEFAULT_GROUP,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_HISTORY_RETENTION_DAYS,
    DEFAULT_HOST,
    DEFAULT_LEADER_LEASE_S,
    DEFAULT_PARTITIONS,
    DEFAULT_PORT,
    DEFAULT_TIME_ZONE,
    DEFAULT_URGENT_PRIORITY,
    DEFAULT_URGENT_SLOTS,
    MAX_PARTITIONS,
)
from xtreaming.errors import XtreamingError


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
    #: Serve HTTPS with this PEM certificate (chain) and its key; both or neither.
    certfile: Path | None = None
    keyfile: Path | None = None
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
    dlq_replay_rate_per_s: float = Field(default=DEFAULT_DLQ_REPLAY_RATE_PER_S, gt=0)
    dlq_replay_max_rate_per_s: float = Field(default=DEFAULT_DLQ_REPLAY_MAX_RATE_PER_S, gt=0)
    #: Keep every settled attempt in the per-message history (``xtreaming history KEY``).
    history_enabled: bool = True
    history_retention_days: int = DEFAULT_HISTORY_RETENTION_DAYS
    #: The history's own database; unset: a sibling ``X.history.db`` of a SQLite state file ``X.db``, else
    #: the state store's database.
    history_database_url: str | None = None
    #: Slots of each farm kept for queues of priority ``urgent_priority`` or above (its last ones), for farms
    #: that do not say (``xtreaming farm --urgent-slots``); a farm always keeps at least one ordinary slot.
    urgent_slots: int = Field(default=DEFAULT_URGENT_SLOTS, ge=0, le=1023)
    urgent_priority: int = Field(default=DEFAULT_URGENT_PRIORITY, ge=1, le=9)
    #: A scheduled tick whose coordinator has not renewed its claim for this long (killed mid-tick) is finished by
    #: another: at least a broker append's worst time, or a slow append could be repeated.
    schedule_takeover_s: float = Field(default=60.0, gt=0, le=3600)
    #: Coordinators sharing a PostgreSQL store elect one leader; a standby takes over once the leader's lead has
    #: not been renewed for this long (renewed, and watched, every third of it).
    leader_lease_s: float = Field(default=DEFAULT_LEADER_LEASE_S, ge=0.3, le=60)
    #: This coordinator's URL as farms and operators reach it: a standby names the leader's (default: the
    #: scheme, host and port it serves on).
    advertised_url: str | None = Field(default=None, max_length=2048)

    @property
    def public_url(self) -> str:
        """``advertised_url``, or the URL this coordinator serves on."""
        if self.advertised_url:
            return self.advertised_url.rstrip("/")
        scheme = "http" if self.certfile is None else "https"
        return f"{scheme}://{self.host}:{self.port}"

    @field_validator("history_retention_days")
    @classmethod
    def _refuse_no_retention(cls, days: int) -> int:
        if days < 1:
            raise ValueError(f"history_retention_days is {days}: history is kept at least 1 day (default 30)")
        return days

    @model_validator(mode="after")
    def _certificate_with_its_key(self) -> Self:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError(
                "TLS needs both a certificate file and its key file (XTREAMING_CERTFILE, XTREAMING_KEYFILE)"
            )
        for path in (self.certfile, self.keyfile):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return self

    @model_validator(mode="after")
    def _takeover_within_the_farms_patience(self) -> Self:
        # Farms stop the tasks they cannot renew two heartbeat intervals after the last answer; a takeover takes
        # up to about two leases and a half (the lead lapsing, a paused leader's open transaction ended, a look).
        shared = not self.database_url.startswith("sqlite")
        if shared and self.leader_lease_s * 2.5 > self.heartbeat_interval_s * 2:
            raise ValueError(
                f"leader_lease_s {self.leader_lease_s:g} is too long for heartbeat_interval_s "
                f"{self.heartbeat_interval_s:g}: farms would stop their tasks before a standby takes over; keep it at "
                f"most {self.heartbeat_interval_s * 0.8:g} (0.8 heartbeat intervals)"
            )
        return self

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
    #: The site's zone: the times commands show (``xtreaming history``) read in it, as on the screen.
    time_zone: str = DEFAULT_TIME_ZONE
    #: A file holding the token instead (readable by its owner only): kept out of the environment, where the
    #: processes a farm starts, and anyone reading ``/proc/<pid>/environ`` as the same user, would find it.
    token_file: Path | None = None
    #: PEM certificates to trust for an ``https://`` coordinator (a site's private CA), besides the system's.
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _token_from_file(self) -> Self:
        if self.token_file is None:
            return self
        if self.token is not None:
            raise ValueError("both XTREAMING_TOKEN and XTREAMING_TOKEN_FILE are set: keep one (the file)")
        self.token = read_secret(self.token_file)
        return self

    @field_validator("ca_file")
    @classmethod
    def _readable_ca(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"CA file {path} does not exist")
        return path


def read_secret(path: Path) -> str:
    """The secret in the file at ``path`` (its first line), refused when others than its owner may read it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if os.name == "posix" and mode & 0o077:
        raise ValueError(
            f"{path} may be read by others (mode {stat.S_IMODE(mode):o}): make it readable by its owner only "
            f"(chmod 600 {path})"
        )
    secret = text.strip()
    if not secret or "\n" in secret:
        raise ValueError(f"{path} must hold the token alone, on one line")
    return secret


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def validated(kind: type[SettingsT], values: Mapping[str, Any]) -> SettingsT:
    """``kind`` from the environment with ``values`` on top; invalid settings raise XtreamingError in a sentence."""
    try:
        return kind(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise XtreamingError(f"invalid settings: {problems}") from None
