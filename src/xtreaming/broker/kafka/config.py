"""``kafka://`` URLs: bootstrap servers, librdkafka settings passed through, and the adapter's own options.

``kafka://host1:9092,host2:9092?security.protocol=SASL_SSL&sasl.mechanism=SCRAM-SHA-512&config_file=/etc/x.conf``

* Every query parameter is a librdkafka setting, handed to the client as it is (its own key names:
  ``security.protocol``, ``ssl.ca.location``, ``sasl.username``, ``acks``, ``linger.ms`` …), except
  the adapter's options below. Nothing is re-typed: librdkafka checks the names and values.
* ``config_file=PATH`` reads more librdkafka settings from a file of ``key=value`` lines (``#``
  comments), so that secrets (``sasl.password``, ``ssl.key.password``) stay out of the URL, the
  environment and the process list. Settings in the URL win over the file's.
* Adapter options: ``timeout_s`` (how long any call waits for the cluster before raising
  ``BrokerUnavailable``; default 10) and ``replication_factor`` (of topics the adapter creates:
  work topics published through Xtreaming and their ``.ACK``/``.DLQ``; default -1, the cluster's
  ``default.replication.factor``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from xtreaming.errors import InvalidBrokerUrl

#: A call waits this long for the cluster before the adapter gives up with ``BrokerUnavailable``.
DEFAULT_TIMEOUT_S: Final = 10.0
#: -1 asks the cluster for its ``default.replication.factor`` (Kafka 2.4+).
DEFAULT_REPLICATION_FACTOR: Final = -1
#: Set by the adapter: a URL or file naming them is refused rather than silently overridden.
RESERVED_SETTINGS: Final = frozenset({"bootstrap.servers", "group.id", "enable.auto.commit", "transactional.id"})
_OPTIONS: Final = ("config_file", "timeout_s", "replication_factor")


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    """A parsed ``kafka://`` URL: where the cluster is, librdkafka settings, adapter options."""

    servers: str
    settings: dict[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    replication_factor: int = DEFAULT_REPLICATION_FACTOR

    @classmethod
    def from_url(cls, url: str) -> KafkaConfig:
        parts = urlsplit(url)
        if parts.scheme != "kafka" or not parts.netloc or parts.path not in ("", "/") or "@" in parts.netloc:
            raise InvalidBrokerUrl(
                f"broker URL {_redacted(url)!r}: expected kafka://host1:9092,host2:9092[?librdkafka.setting=value…] "
                "(credentials go in sasl.username/sasl.password or a config_file, not before '@')"
            )
        servers = [s.strip() for s in parts.netloc.split(",")]
        if not all(servers):
            raise InvalidBrokerUrl(f"broker URL {_redacted(url)!r}: an empty server in the list {parts.netloc!r}")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        settings: dict[str, str] = {}
        if "config_file" in query:
            settings.update(read_config_file(Path(query["config_file"])))
        settings.update({k: v for k, v in query.items() if k not in _OPTIONS})
        reserved = sorted(RESERVED_SETTINGS & set(settings))
        if reserved:
            raise InvalidBrokerUrl(
                f"broker URL {_redacted(url)!r}: {reserved[0]!r} is set by Xtreaming (servers come from the URL's "
                "host list, the consumer group from XTREAMING_GROUP)"
            )
        return cls(
            servers=",".join(servers),
            settings=settings,
            timeout_s=_number(url, query, "timeout_s", DEFAULT_TIMEOUT_S, float, minimum=0.1),
            replication_factor=int(_number(url, query, "replication_factor", DEFAULT_REPLICATION_FACTOR, int)),
        )


def read_config_file(path: Path) -> dict[str, str]:
    """librdkafka settings from ``key=value`` lines; blank lines and ``#`` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidBrokerUrl(f"config_file {str(path)!r}: cannot read it: {exc.strerror or exc}") from exc
    settings = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidBrokerUrl(f"config_file {str(path)!r} line {number}: expected key=value, got {line!r}")
        settings[key.strip()] = value.strip()
    return settings


def _number(
    url: str, query: dict[str, str], name: str, default: float, kind: type[float] | type[int], minimum: float = -1
) -> float:
    if name not in query:
        return default
    try:
        value = kind(query[name])
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise InvalidBrokerUrl(
            f"broker URL {_redacted(url)!r}: {name}={query[name]!r} is not a {kind.__name__} >= {minimum:g}"
        )
    return value


def _redacted(url: str) -> str:
    """The URL without its query, which may hold a password."""
    return url.split("?", 1)[0] + ("?…" if "?" in url else "")
