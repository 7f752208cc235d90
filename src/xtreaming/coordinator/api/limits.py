"""Refuse request bodies over a size limit before they are read into memory (413, with the limit)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xtreaming.coordinator.api.problems import problem


class BodyLimit:
    """ASGI middleware: ``limit_for(path)`` bytes at most per request body, declared or streamed.

    A declared ``Content-Length`` over the limit is answered at once. A streamed (chunked) body is
    counted as it arrives; past the limit, reading it raises ``BodyTooLarge``, an HTTP error which
    FastAPI passes through its body parsing (any other error there becomes a 400) to the handlers."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = declared_over(scope, limit)
        if declared is not None:
            await problem(413, too_large(declared, limit))(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(received, limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge as exc:  # read outside FastAPI's handlers (none of our routes does)
            if started:
                raise
            await problem(413, str(exc.detail))(scope, receive, send)


def declared_over(scope: Scope, limit: int) -> int | None:
    """The body size a request declares (``Content-Length``) when it is over ``limit``, else None."""
    declared = dict(scope["headers"]).get(b"content-length")
    return int(declared) if declared is not None and declared.isdigit() and int(declared) > limit else None


class BodyTooLarge(HTTPException):
    """A streamed body past the limit: ``received`` bytes so far."""

    def __init__(self, received: int, limit: int) -> None:
        super().__init__(413, too_large(received, limit, streamed=True))


def too_large(size: int, limit: int, *, streamed: bool = False) -> str:
    if streamed:
        return f"request body is over the limit of {limit} bytes ({size} bytes received when it was refused)"
    return f"request body of {size} bytes is over the limit of {limit} bytes"
