"""Settings: one object built at each entry point from ``XTREAMING_*`` variables, then passed down."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The embedded defaults: everything runs with nothing installed, data under ./.xtreaming/.
DEFAULT_BROKER_URL = "sqlite:///.xtreaming/log.db"
DEFAULT_DATABASE_URL = "sqlite:///.xtreaming/state.db"


class Settings(BaseSettings):
    """Process-wide configuration; every field can be set as ``XTREAMING_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="XTREAMING_", extra="ignore")

    broker_url: str = DEFAULT_BROKER_URL
    database_url: str = DEFAULT_DATABASE_URL
    #: Partitions of a work topic created by publishing to it (Kafka's auto-create does the same).
    default_partitions: int = Field(default=4, ge=1, le=1024)
