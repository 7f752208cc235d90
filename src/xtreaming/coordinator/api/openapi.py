"""The OpenAPI document as the API behaves: each operation's error answers, all of them a ``Problem``.

FastAPI documents only the 200 and a 422 of its own shape. The errors follow from what an operation
has, so they are added from that, for every route (those added later too): a token (401, 403, and 503
when the store or the broker is down), parameters or a body (422), an id in the path or a body naming
things (404), a body (413).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI

from xtreaming.coordinator.api.problems import Problem

#: Each error status an operation may answer, and what it means.
MEANINGS: Final = {
    "401": "No bearer token, or one the coordinator does not know.",
    "403": "The token's role may not do this.",
    "404": "Something the request names (in the path or the body) is not known.",
    "413": "The body, or a record in it, is over its size limit; nothing was written.",
    "422": "The request is malformed or a value is refused (each field named in `errors`); nothing was changed.",
    "503": "The state store or the broker cannot be reached now; try again.",
}
_REF: Final = "#/components/schemas/{model}"
#: FastAPI's own error schemas, unused once every 422 is a ``Problem``.
_FASTAPI_ERRORS: Final = ("HTTPValidationError", "ValidationError")


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` list every operation's error answers as ``Problem``."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        return with_errors(generate())

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to change the schema


def with_errors(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the error answers added (in place, idempotent: FastAPI caches the document)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template=_REF)
    schemas.update(problem.pop("$defs", {}))
    schemas[Problem.__name__] = problem
    answer = {"application/json": {"schema": {"$ref": _REF.format(model=Problem.__name__)}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in error_statuses(operation):
                responses[status] = {"description": MEANINGS[status], "content": answer}
    text = json.dumps(document)
    for name in _FASTAPI_ERRORS:
        if _REF.format(model=name) not in text:
            schemas.pop(name, None)
    return document


def error_statuses(operation: dict[str, Any]) -> list[str]:
    """The error statuses an operation may answer, from what it has."""
    parameters = operation.get("parameters", [])
    body = "requestBody" in operation
    statuses = []
    if operation.get("security"):
        statuses += ["401", "403"]
    if body or any(p.get("in") == "path" for p in parameters):
        statuses.append("404")
    if body:
        statuses.append("413")
    if body or parameters:
        statuses.append("422")
    if operation.get("security"):
        statuses.append("503")
    return statuses
