"""The farms' lease request on a short path: the request every task costs, answered in front of every layer.

A farm asks for work and reports results in one request, several times for every few tasks. Through FastAPI
it crossed a dozen ASGI layers (the framework's own error, telemetry and body-size layers among them, each
wrapping every message sent), a search of the routes, the dependencies' resolution and the body's parsing into
Python objects before it was validated: about as much of the coordinator's time as settling and leasing did.
``LeasePath`` is the app's outermost layer (``CoordinatorApp``) and answers the usual request itself:
``POST /api/farms/{farm_id}/lease`` asking for the framed answer (``lease_frame``), with a JSON body that
``LeaseRequest`` takes, from a caller whose token may act as that farm, to a coordinator that serves (the
leader gate's check), its body within the limit (``limits.py``'s). It runs the route's own code
(``routes.farms.serve_lease``), answers our errors as the error handlers do, and times the request as the
request timer does, under the route's template. Anything else, a refusal of any kind included, goes through
every layer to the route with the body replayed, so that every other answer is the route's own (a standby's
503, a body's 413, a validation error).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Final, Literal

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xtreaming.config import Role
from xtreaming.coordinator.api.auth import ADMITS, TokenTable
from xtreaming.coordinator.api.limits import declared_over
from xtreaming.coordinator.api.problems import unexpected_problem, xtreaming_problem
from xtreaming.coordinator.api.routes import farms
from xtreaming.coordinator.api.schemas import LeaseRequest
from xtreaming.errors import XtreamingError
from xtreaming.wire import lease_frame

log = logging.getLogger("xtreaming.coordinator")

#: The route's path (``{farm_id}`` is one path segment) as a pattern on the request's path.
PATH: Final = re.compile(r"/api/farms/([^/]+)/lease")

#: How reading a body ended: whole, the caller gone first, or past the body limit.
Ending = Literal["whole", "gone", "over"]


class LeasePath:
    """ASGI middleware: the short path of the module docstring, in front of ``app`` (``api`` with its layers)."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        #: What the request timer names a request by: the route's template.
        self.route = next(r.path for r in farms.router.routes if isinstance(r, APIRoute) and r.endpoint is farms.lease)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        farm_id = self._farm_asking(scope)
        state = self.api.state
        coordinator = state.coordinator
        if farm_id is None or coordinator is None or not state.serving.is_serving():
            await self.app(scope, receive, send)  # a standby's answer is the leader gate's
            return
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
            request = LeaseRequest.model_validate_json(body)
        except ValidationError:
            await self.app(scope, _replaying(body, receive), send)  # the route words the refusal
            return
        try:
            answer = await farms.serve_lease(coordinator, farm_id, request, True, state.lease_groups)
        except XtreamingError as exc:
            answer = xtreaming_problem(exc)
        except Exception:  # answered as the app answers what it did not expect: logged here, a 500 there
            log.exception("lease request of farm %s failed", farm_id)
            answer = unexpected_problem(scope["method"], scope["path"])
        try:
            await answer(scope, receive, send)
        finally:
            state.request_seconds.observe("POST", self.route, answer.status_code, time.perf_counter() - started)

    def _farm_asking(self, scope: Scope) -> str | None:
        """The farm a request the short path takes asks as, or None for any other request."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        matched = PATH.fullmatch(scope["path"])
        if matched is None:
            return None
        headers = Headers(scope=scope)
        if (
            lease_frame.MEDIA_TYPE not in headers.get("accept", "")
            or headers.get("content-type", "").split(";")[0].strip() != "application/json"
        ):
            return None
        tokens: TokenTable = self.api.state.tokens
        principal = tokens.identify(headers.get("authorization"))
        farm_id = matched.group(1)
        if principal is None or principal.role not in ADMITS[Role.FARM] or not principal.may_act_as(farm_id):
            return None
        return farm_id


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
