"""The coordinator's HTTP client (httpx): what the CLI and the farm agent call."""

from __future__ import annotations

import os
import ssl
from typing import Any

import httpx

from xtreaming.errors import XtreamingError

#: Requests other than long-polls should answer quickly; a slow coordinator is reported, not waited on.
DEFAULT_TIMEOUT_S = 10.0


class ApiError(XtreamingError):
    """The coordinator refused a request; the message is its ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class CoordinatorUnreachable(XtreamingError, ConnectionError):
    """No answer from the coordinator at all."""


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
        self.url = url.rstrip("/")
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context()
            verify.load_verify_locations(cafile=os.fspath(ca_file))
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s, verify=verify)

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, *, timeout_s: float | None = None) -> Any:
        return self._call("POST", path, json=body, timeout=timeout_s)

    def post_for(self, path: str, body: Any, *, accept: str, timeout_s: float | None = None) -> bytes:
        """POST ``body`` as JSON and return the answer's bytes, asking for the media type ``accept``."""
        return self._send("POST", path, json=body, timeout=timeout_s, headers={"Accept": accept}).content

    def patch(self, path: str, body: Any) -> Any:
        return self._call("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path)

    def close(self) -> None:
        self._http.close()

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
        try:
            response = self._http.request(
                method, path, timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT, **kwargs
            )
        except httpx.TransportError as exc:
            raise CoordinatorUnreachable(f"coordinator at {self.url} did not answer: {exc}") from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response


def _detail(response: httpx.Response) -> str:
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
