"""The farms' lease request and heartbeat on a short path: the requests every farm makes all the time, answered in
front of every layer.

A farm asks for work and reports results in one request, several times for every few tasks, and sends a heartbeat
with every slot's state at a fixed rate. Through FastAPI each crossed a dozen ASGI layers (the framework's own
error, telemetry and body-size layers among them, each wrapping every message sent), a search of the routes, the
dependencies' resolution, the body's parsing into Python objects before it was validated, and for the heartbeat
two hops to a worker thread (the route, then its answer's serialization): a lease cost about as much of the
coordinator's time as settling and leasing did, and a heartbeat of 32 slots four times an empty lease (measured).
``FarmPath`` is the app's outermost layer (``CoordinatorApp``) and answers the usual requests itself:
``POST /api/farms/{farm_id}/lease`` asking for the framed answer (``lease_frame``), and
``POST /api/farms/{farm_id}/heartbeat``, each with a JSON body its route's model takes, from a caller whose
token may act as that farm, to a coordinator that serves (the leader gate's check), its body within the limit
(``limits.py``'s). It runs the route's own code (``routes.farms.serve_lease``, ``serve_heartbeat``), answers our
errors as the error handlers do, and times the request as the request timer does, under the route's template.
Anything else, a refusal of any kind included, goes through every layer to the route with the body replayed, so
that every other answer is the route's own (a standby's 503, a body's 413, a validation error).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import anyio
from fastapi import FastAPI, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers, State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xtreaming.config import Role
from xtreaming.coordinator.api.auth import ADMITS, TokenTable
from xtreaming.coordinator.api.limits import declared_over
from xtreaming.coordinator.api.problems import unexpected_problem, xtreaming_problem
from xtreaming.coordinator.api.routes import farms
from xtreaming.coordinator.api.schemas import Heartbeat, LeaseRequest
from xtreaming.coordinator.service import Coordinator
from xtreaming.errors import XtreamingError
from xtreaming.wire import lease_frame

log = logging.getLogger("xtreaming.coordinator")

#: How reading a body ended: whole, the caller gone first, or past the body limit.
Ending = Literal["whole", "gone", "over"]
#: Serves a request read and checked: the app's state, its coordinator, the farm asking and the body's model.
Serve = Callable[[State, Coordinator, str, Any], Awaitable[Response]]


async def _lease(state: State, coordinator: Coordinator, farm_id: str, request: LeaseRequest) -> Response:
    return await farms.serve_lease(coordinator, farm_id, request, True, state.lease_groups)


async def _heartbeat(_: State, coordinator: Coordinator, farm_id: str, heartbeat: Heartbeat) -> Response:
    # The service takes its lock, which an expiry may hold across a store round trip: not on the event loop.
    answer = await anyio.to_thread.run_sync(farms.serve_heartbeat, coordinator, farm_id, heartbeat)
    return Response(answer.model_dump_json(), media_type="application/json")


@dataclass(frozen=True, slots=True)
class ShortRoute:
    """A route the short path answers: its path as a pattern (``{farm_id}`` one path segment) and its template (what
    the request timer names a request by), the media type a request must accept to take the short path (None:
    any), the model its body must fit, and how it is served."""

    pattern: re.Pattern[str]
    template: str
    accept: str | None
    body: type[BaseModel]
    serve: Serve

    @classmethod
    def of(cls, endpoint: Callable[..., Any], accept: str | None, body: type[BaseModel], serve: Serve) -> ShortRoute:
        template = next(r.path for r in farms.router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)
        return cls(
            re.compile(re.escape(template).replace(re.escape("{farm_id}"), "([^/]+)")), template, accept, body, serve
        )


ROUTES: Final = (
    ShortRoute.of(farms.lease, lease_frame.MEDIA_TYPE, LeaseRequest, _lease),
    ShortRoute.of(farms.heartbeat, None, Heartbeat, _heartbeat),
)


class FarmPath:
    """ASGI middleware: the short path of the module docstring, in front of ``app`` (``api`` with its layers)."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asking = self._farm_asking(scope)
        state = self.api.state
        coordinator = state.coordinator
        if asking is None or coordinator is None or not state.serving.is_serving():
            await self.app(scope, receive, send)  # a standby's answer is the leader gate's
            return
        route, farm_id = asking
        started = time.perf_counter()
        limit: int = state.limit_for(scope["path"])
        if declared_over(scope, limit) is not None:
            await self.app(scope, receive, send)  # the body limit refuses it unread
            return
        body, ending = await _read_body(receive, limit)
        if ending == "gone":
            return  # the caller went away: nobody to answer, nothing done
        if ending == "over":
            await self.app(scope, _replaying(body, receive, more=True), send)  # the body limit words the refusal
            return
        try:
            model = route.body.model_validate_json(body)
        except ValidationError:
            await self.app(scope, _replaying(body, receive), send)  # the route words the refusal
            return
        answer: Response
        try:
            answer = await route.serve(state, coordinator, farm_id, model)
        except XtreamingError as exc:
            answer = xtreaming_problem(exc)
        except Exception:  # answered as the app answers what it did not expect: logged here, a 500 there
            log.exception("%s of farm %s failed", route.template, farm_id)
            answer = unexpected_problem(scope["method"], scope["path"])
        try:
            await answer(scope, receive, send)
        finally:
            state.request_seconds.observe("POST", route.template, answer.status_code, time.perf_counter() - started)

    def _farm_asking(self, scope: Scope) -> tuple[ShortRoute, str] | None:
        """The route a request the short path takes goes to and the farm it asks as, or None for any other
        request."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        path = scope["path"]
        for route in ROUTES:
            if (matched := route.pattern.fullmatch(path)) is not None:
                break
        else:
            return None
        headers = Headers(scope=scope)
        if (route.accept is not None and route.accept not in headers.get("accept", "")) or headers.get(
            "content-type", ""
        ).split(";")[0].strip() != "application/json":
            return None
        tokens: TokenTable = self.api.state.tokens
        principal = tokens.identify(headers.get("authorization"))
        farm_id = matched.group(1)
        if principal is None or principal.role not in ADMITS[Role.FARM] or not principal.may_act_as(farm_id):
            return None
        return route, farm_id


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, Ending]:
    """The request's body and how reading it ended: ``whole``; ``gone``, the caller went away first; ``over``, past
    ``limit`` bytes (the body so far: the rest is left unread)."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), "gone"
        chunk = message.get("body", b"")
        chunks.append(chunk)
        received += len(chunk)
        if received > limit:
            return b"".join(chunks), "over"
        if not message.get("more_body", False):
            return b"".join(chunks), "whole"


def _replaying(body: bytes, receive: Receive, *, more: bool = False) -> Receive:
    """``receive`` for the layers behind: the body read already (``more``: only its start), then whatever comes
    after it."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": more}

    return replay
