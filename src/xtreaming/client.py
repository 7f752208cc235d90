"""The coordinator's HTTP client (httpx): what the CLI and the farm agent call.

The farms' lease requests (``post_for``) go on keep-alive connections of the standard library instead
(``http_connections.py`` says why), unless a proxy is configured for the coordinator: those are httpx's to use.

Several coordinators. ``url`` may name several, comma-separated (``http://a:8700,http://b:8700``): a request
goes to the one that answered last; one that does not answer, or answers as a standby (503 naming the leader,
``api/leader_gate.py``), is left for the leader it names, else for the next URL, each tried once per request.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from xtreaming.errors import XtreamingError
from xtreaming.http_connections import ConnectionFailed, Connections

#: Requests other than long-polls should answer quickly; a slow coordinator is reported, not waited on.
DEFAULT_TIMEOUT_S = 10.0


class ApiError(XtreamingError):
    """The coordinator refused a request; the message is its ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class CoordinatorUnreachable(XtreamingError, ConnectionError):
    """No answer from the coordinator at all."""


class NoLeader(ApiError):
    """Every coordinator tried answered as a standby (503 naming no leader that answers): a takeover is under way,
    or the leader cannot reach the state store. Worth asking again soon: a takeover takes seconds."""


class _Answer(Protocol):
    """What ``_following`` reads of an answer: an httpx response, or a ``http_connections.Answer``."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


AnswerT = TypeVar("AnswerT", bound=_Answer)


class CoordinatorClient:
    """Calls the coordinator's ``/api`` with an optional bearer token."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        """``ca_file``: PEM certificates to trust for an ``https://`` URL besides the system's (a private CA)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        #: Every coordinator given, in order; ``url`` is the one asked first (the last that answered).
        self.urls = coordinator_urls(url)
        self.url = self.urls[0]
        self._timeout_s = timeout_s
        if ca_file is None:
            tls = httpx.create_ssl_context()  # what httpx trusts by default
        else:
            tls = ssl.create_default_context()  # the system's, and the file's
            tls.load_verify_locations(cafile=os.fspath(ca_file))
        self._http = httpx.Client(headers=headers, timeout=timeout_s, verify=tls)
        self._connections = None if any(map(_proxied, self.urls)) else Connections(headers, tls)

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, *, timeout_s: float | None = None) -> Any:
        return self._call("POST", path, json=body, timeout=timeout_s)

    def post_for(self, path: str, body: Any, *, accept: str, timeout_s: float | None = None) -> bytes:
        """POST ``body`` as JSON and return the answer's bytes, asking for the media type ``accept``."""
        connections = self._connections
        if connections is None:
            return self._send("POST", path, json=body, timeout=timeout_s, headers={"Accept": accept}).content
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        headers = {"Accept": accept, "Content-Type": "application/json"}
        timeout = self._timeout_s if timeout_s is None else timeout_s
        return self._following(lambda target: connections.post(target + path, data, headers, timeout)).content

    def patch(self, path: str, body: Any) -> Any:
        return self._call("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path)

    def close(self) -> None:
        self._http.close()
        if self._connections is not None:
            self._connections.close()

    def __enter__(self) -> CoordinatorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        response = self._send(method, path, timeout=timeout, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _send(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        """Send with httpx to the coordinator that leads (``_following``)."""
        limit = timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT
        return self._following(lambda target: self._http.request(method, target + path, timeout=limit, **kwargs))

    def _following(self, send: Callable[[str], AnswerT]) -> AnswerT:
        """``send(url)`` to the coordinator that leads (see the module docstring); raises CoordinatorUnreachable when
        none answers, ApiError for a refusal (a 503 from a standby when every one tried stands by)."""
        tried: list[str] = []
        target = self.url
        while True:
            tried.append(target)
            try:
                response = send(target)
            except (httpx.TransportError, ConnectionFailed) as exc:
                following = self._next(tried)
                if following is None:
                    raise CoordinatorUnreachable(f"coordinator at {target} did not answer: {exc}") from exc
                target = following
                continue
            standby, leader = _standby_answer(response)
            following = (
                (leader if leader is not None and leader not in tried else self._next(tried)) if standby else None
            )
            if following is not None:
                target = following
                continue
            if not standby:
                self.url = target  # answered: asked first from now on
            if standby:
                raise NoLeader(response.status_code, _detail(response))
            if response.status_code >= 400:
                raise ApiError(response.status_code, _detail(response))
            return response

    def _next(self, tried: list[str]) -> str | None:
        """The first coordinator given that this request has not tried, or None."""
        return next((url for url in self.urls if url not in tried), None)


def _proxied(url: str) -> bool:
    """Whether the environment names a proxy for ``url`` that httpx would go through (``HTTPS_PROXY``…)."""
    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # NO_PROXY; not in the stubs
    return not bypass(parts.hostname or "", proxies)


def coordinator_urls(url: str) -> list[str]:
    """The coordinators named in ``url`` (comma-separated), each without a trailing slash; at least one."""
    urls = [part.strip().rstrip("/") for part in url.split(",") if part.strip()]
    if not urls:
        raise XtreamingError(f"no coordinator URL in {url!r}: give one, or several separated by commas")
    return urls


def _standby_answer(response: _Answer) -> tuple[bool, str | None]:
    """Whether ``response`` comes from a coordinator that does not lead (a 503 whose body has ``leader``), and the
    leader's URL it names, if any."""
    if response.status_code != 503:
        return False, None
    try:
        body = response.json()
    except ValueError:
        return False, None
    if not isinstance(body, dict) or "leader" not in body:
        return False, None
    leader = body["leader"]
    url = leader.get("url") if isinstance(leader, dict) else None
    return True, url.rstrip("/") if isinstance(url, str) and url else None


def _detail(response: _Answer) -> str:
    """The coordinator's words for an error: the ``detail`` of its ``Problem`` answer (a sentence naming each
    field refused, for a request refused by validation), or the start of whatever else answered."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str):  # not the coordinator (a proxy's page), or an older one
        detail = response.text[:200]
    return f"HTTP {response.status_code}: {detail}"
