"""One shape for every error the API answers, ``Problem``: ``detail`` in words, ``errors`` naming each field.

``detail`` stays a human sentence because that is what the CLI, the farms and the screen show; a request
refused by validation also lists each field refused in ``errors`` (``loc`` as FastAPI gives it, e.g.
``["body", "slots", 0, "pid"]``). The handlers here answer our errors, FastAPI's request validation, HTTP
errors (401, 403, 404, 405, 413) and anything unexpected (500) in that shape; never with the value
refused (it may be huge, or not encodable: a lone surrogate) nor with a database's own text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount

from xtreaming.errors import (
    BrokerUnavailable,
    InvalidRecord,
    NotLeader,
    RecordTooLarge,
    StoreUnavailable,
    XtreamingError,
)

log = logging.getLogger("xtreaming.coordinator")

#: The methods a 405's ``Allow`` is computed from (HEAD only where a route declares it).
METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
#: A body FastAPI could not decode: answered like malformed JSON (422), not with its vague 400.
UNREADABLE_BODY: Final = "the body is not JSON text in UTF-8"
#: What a refused write's detail says instead of the database's words (which are logged).
REFUSED_BY_STORE: Final = "the state store refused a value of this request; nothing was changed"


class FieldError(BaseModel):
    """One field a request was refused for: where (``loc``), why (``msg``), and pydantic's error ``type``."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """Every error answer of the API (4xx and 5xx)."""

    detail: str = Field(description="What was refused and why, in words (shown by the CLI, farms and the screen).")
    errors: list[FieldError] = Field(
        default_factory=list, description="For a request refused by validation: each field refused."
    )


def status_of(exc: XtreamingError) -> int:
    """Our errors as HTTP statuses: unknown ids 404, what the caller may not do 403, a record too large for the
    broker 413, unreachable dependencies 503, bad input 422."""
    if isinstance(exc, LookupError):
        return 404
    if isinstance(exc, PermissionError):
        return 403
    if isinstance(exc, RecordTooLarge):
        return 413
    if isinstance(exc, BrokerUnavailable | StoreUnavailable):
        return 503
    return 422


def problem(
    status: int, detail: str, errors: Sequence[FieldError] = (), headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A ``Problem`` answer; text that UTF-8 cannot carry (a lone surrogate) is escaped, never a crash."""
    body = {"detail": _printable(detail), "errors": [e.model_dump() for e in errors]}
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as a ``Problem``."""
    app.add_exception_handler(XtreamingError, _xtreaming_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _xtreaming_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, XtreamingError):  # registered for XtreamingError only
        raise exc
    return xtreaming_problem(exc)


def xtreaming_problem(exc: XtreamingError) -> JSONResponse:
    """The answer to one of our errors raised while serving a request."""
    if isinstance(exc, InvalidRecord):
        log.warning("refused a request the state store would not keep: %s", exc)
        return problem(422, REFUSED_BY_STORE)
    if isinstance(exc, NotLeader):  # deposed mid-request: answered as a standby is (leader_gate.py), clients follow
        leader = None if exc.leader_url is None else {"url": exc.leader_url}
        return JSONResponse({"detail": _printable(str(exc)), "errors": [], "leader": leader}, status_code=503)
    return problem(status_of(exc), str(exc))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    errors = [field_error(e) for e in exc.errors()]
    return problem(422, "; ".join(_described(e) for e in errors) or "invalid request", errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):
        raise exc
    headers = dict(exc.headers or {})
    if exc.status_code == 400:  # FastAPI's one 400: a body json.loads could not read (not UTF-8)
        unreadable = FieldError(loc=["body"], msg=UNREADABLE_BODY, type="json_invalid")
        return problem(422, UNREADABLE_BODY, [unreadable])
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        headers["Allow"] = ", ".join(allowed) if allowed else headers.get("Allow", "")
        return problem(405, f"{request.method} is not allowed here; allowed: {headers['Allow']}", headers=headers)
    return problem(exc.status_code, str(exc.detail), headers=headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """Logged by the server with its traceback; the caller learns only that it failed."""
    return unexpected_problem(request.method, request.url.path)


def unexpected_problem(method: str, path: str) -> JSONResponse:
    """The answer to a request that failed for a reason of the coordinator's own (its log says which)."""
    return problem(500, f"internal error on {method} {path}; the coordinator's log says why")


def allowed_methods(request: Request) -> list[str]:
    """The methods some route of the app takes at the request's path (a route's own 405 names only its own)."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    return [m for m in METHODS if any(r.matches({**request.scope, "method": m})[0] is Match.FULL for r in routes)]


def field_error(error: Mapping[str, Any]) -> FieldError:
    """A pydantic error without its ``input`` (echoing it back could be megabytes, or not encodable), but
    saying which JSON type came when a value of another was expected (``null``: a setting sent as null)."""
    loc = [p if isinstance(p, int) else _printable(str(p)) for p in error.get("loc", ())]
    msg = _printable(str(error.get("msg", "")))
    kind = str(error.get("type", ""))
    if kind == "json_invalid":  # loc is ["body", character offset]
        reason = (error.get("ctx") or {}).get("error", "")
        msg, loc = f"{msg}: {reason} at character {loc[-1]}" if len(loc) > 1 else msg, ["body"]
    elif kind.endswith("_type") and "input" in error:
        msg = f"{msg}, not {_json_type(error['input'])}"
    return FieldError(loc=loc, msg=msg, type=kind)


def _json_type(value: object) -> str:
    """What a JSON value is, in words: ``null``, ``a boolean``, ``a string``, ``a number``…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _described(error: FieldError) -> str:
    """``slots.0.pid: Input should be …``: where in the body (or which parameter), then why."""
    where = _where(error.loc)
    return f"{where}: {error.msg}" if where else error.msg


def _where(loc: Iterable[str | int]) -> str:
    parts = [str(p) for p in loc]
    if parts[:1] == ["body"]:
        parts = parts[1:]
    return ".".join(parts)


def _printable(text: str) -> str:
    """``text`` with whatever UTF-8 cannot encode (lone surrogates) escaped as ``\\udxxx``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
