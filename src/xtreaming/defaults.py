"""The defaults a site starts with, each stated once: ``Settings`` offers them as ``XTREAMING_*`` variables.

Plain constants with no imports, so that what runs without the server's ``Settings`` (the coordinator's
options, the public ``Producer``, the API's request models) shares its defaults without importing pydantic.
"""

from __future__ import annotations

from typing import Final

#: The embedded log and state store: everything runs with nothing installed, data under ./.xtreaming/.
DEFAULT_BROKER_URL: Final = "sqlite:///.xtreaming/log.db"
DEFAULT_DATABASE_URL: Final = "sqlite:///.xtreaming/state.db"
#: Partitions of a work topic created by publishing to it (Kafka's auto-create does the same).
DEFAULT_PARTITIONS: Final = 4
#: The most partitions publishing may ask for: the bound of that setting and of a publish request.
MAX_PARTITIONS: Final = 1024
#: Where the coordinator listens: loopback, as no tokens are configured out of the box.
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8700
#: The consumer group: one per site, so each site's coordinator sees every message once.
DEFAULT_GROUP: Final = "xtreaming"
#: The site's clocks: time windows and the times explanations show are read in this zone.
DEFAULT_TIME_ZONE: Final = "America/Sao_Paulo"
#: Limit of a base first seen through a new queue, until an operator sets one.
DEFAULT_BASE_MAX_WORKERS: Final = 4
#: How often farms heartbeat; the coordinator tells each farm when it registers.
DEFAULT_HEARTBEAT_INTERVAL_S: Final = 5.0
#: How long the coordinator's HTTP server keeps an idle connection open. Longer than its clients keep one for use
#: (5 s: httpx's default, and the farms' own connections): a server closing a connection at the moment a client sends
#: on it again makes the request fail ("Server disconnected without sending a response"), and farms heartbeat every
#: 5 s (measured: uvicorn's own 5 s against a request every 5 s failed 1 request in 12).
SERVER_KEEPALIVE_S: Final = 15
#: Coordinators sharing a state store (PostgreSQL): a standby takes over once the leader has not renewed its lead
#: for this long. A takeover (this, a third of it to notice, and loading the state) must end well before farms
#: stop the tasks they cannot renew: two heartbeat intervals (10 s) after the leader's last answer.
DEFAULT_LEADER_LEASE_S: Final = 3.0
#: How often the coordinator looks for new topics on the broker.
DEFAULT_DISCOVERY_INTERVAL_S: Final = 5.0
#: Days each settled attempt stays in the per-message history ("what happened to CPF …").
DEFAULT_HISTORY_RETENTION_DAYS: Final = 30
#: Dead letters a replay appends per second back onto their work topic, unless the operator asks otherwise.
DEFAULT_DLQ_REPLAY_RATE_PER_S: Final = 500.0
#: The most a replay may ask for: a replay competes with the work topic's producers for the broker.
DEFAULT_DLQ_REPLAY_MAX_RATE_PER_S: Final = 5000.0
#: Slots of each farm kept for urgent work (a farm's ``--urgent-slots`` wins): none unless the site asks.
DEFAULT_URGENT_SLOTS: Final = 0
#: The least priority a slot kept for urgent work takes: COBSINC requests' (8), not imports' (5).
DEFAULT_URGENT_PRIORITY: Final = 8
#: The longest a publish may wait for its messages' outcomes (publish-and-wait): a request held open longer
#: outlives the read timeout of most proxies in front of the coordinator.
MAX_PUBLISH_WAIT_S: Final = 60.0
#: The most messages one publish may wait for: the waiter keeps each one's position and outcome until it answers.
MAX_WAITED_MESSAGES: Final = 10_000
