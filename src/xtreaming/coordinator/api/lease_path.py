"""The farms' lease request on a short path: the request every task costs, answered without the router's layers.

A farm asks for work and reports results in one request, several times for every few tasks. Through FastAPI
it crossed a dozen more ASGI layers, a search of the routes, the dependencies' resolution and the body's
parsing into Python objects before it was validated: about as much of the coordinator's time as settling and
leasing did. ``LeasePath`` sits inside the leader gate, the request timer and the body limit, so those still
apply, and answers the usual request itself: ``POST /api/farms/{farm_id}/lease`` asking for the framed answer
(``lease_frame``), with a JSON body that ``LeaseRequest`` takes, from a caller whose token may act as that
farm. It runs the route's own code (``routes.farms.serve_lease``) and answers our errors as the error
handlers do. Anything else, a refusal of any kind included, goes on to the route with the body replayed, so
that every other answer is the route's own.
"""

from __future__ import annotations

import re
from typing import Final

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xtreaming.config import Role
from xtreaming.coordinator.api.auth import ADMITS, TokenTable
from xtreaming.coordinator.api.problems import xtreaming_problem
from xtreaming.coordinator.api.routes import farms
from xtreaming.coordinator.api.schemas import LeaseRequest
from xtreaming.errors import XtreamingError
from xtreaming.wire import lease_frame

#: The route's path (``{farm_id}`` is one path segment) as a pattern on the request's path.
PATH: Final = re.compile(r"/api/farms/([^/]+)/lease")


class LeasePath:
    """ASGI middleware: the short path of the module docstring, over ``api``'s lease route."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        #: What the request timer names a request by (``scope["route"]``, as the router sets it).
        self.route = next(r for r in farms.router.routes if isinstance(r, APIRoute) and r.endpoint is farms.lease)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        farm_id = self._farm_asking(scope)
        coordinator = self.api.state.coordinator
        if farm_id is None or coordinator is None:
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        if not complete:
            return  # the caller went away: nobody to answer, nothing done
        try:
            request = LeaseRequest.model_validate_json(body)
        except ValidationError:
            await self.app(scope, _replaying(body, receive), send)  # the route words the refusal
            return
        scope["route"] = self.route
        try:
            answer = await farms.serve_lease(coordinator, farm_id, request, True, self.api.state.lease_groups)
        except XtreamingError as exc:
            answer = xtreaming_problem(exc)
        await answer(scope, receive, send)

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


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request's body and whether it came whole (False: the caller went away first); the body limit, outside,
    refuses one too large as it comes."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the route: the body read already (whole), then whatever comes after it."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
