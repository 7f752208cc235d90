"""Requests reach the API only while this coordinator serves as the leader; a standby answers 503 naming the leader.

The answer is a ``Problem`` with one more field, ``leader`` (``{"url", "since", "epoch"}`` or null while no
coordinator leads), and the header ``X-Xtreaming-Leader`` with its URL: clients given several coordinators
(``XTREAMING_URL=http://a:8700,http://b:8700``) go there, or to the next one. ``/healthz`` always answers:
load balancers tell the leader from the others by it.
"""

from __future__ import annotations

import json
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from xtreaming.coordinator.api.serving import Serving, State
from xtreaming.coordinator.leadership import Leader

#: Answered by every coordinator, leader or not.
OPEN_PATHS: Final = frozenset({"/healthz"})
LEADER_HEADER: Final = "x-xtreaming-leader"


def leader_json(leader: Leader | None) -> dict[str, object] | None:
    if leader is None:
        return None
    since = None if leader.since is None else leader.since.isoformat()
    return {"url": leader.url, "since": since, "epoch": leader.epoch}


def not_leader_detail(state: State, leader: Leader | None) -> str:
    where = f"the leader is at {leader.url}" if leader is not None and leader.url else "no coordinator leads now"
    if state is State.STARTING:
        return f"this coordinator was just elected and is loading its state; try again in a moment ({where})"
    if state is State.DOWN:
        return f"this coordinator cannot reach the state store and does not serve ({where})"
    return f"this coordinator is a standby, not the leader: {where}"


class LeaderGate:
    """ASGI middleware: passes requests through while ``serving.is_serving()``, else answers 503 (see above)."""

    def __init__(self, app: ASGIApp, serving: Serving) -> None:
        self.app = app
        self.serving = serving

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self.serving.is_serving():
            await self.app(scope, receive, send)
            return
        state, leader = self.serving.state(), self.serving.leader()
        body: dict[str, object] = {
            "detail": not_leader_detail(state, leader),
            "errors": [],
            "leader": leader_json(leader),
        }
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
        if leader is not None and leader.url:
            headers.append((LEADER_HEADER.encode(), leader.url.encode("latin-1", "replace")))
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})
