"""Bearer tokens with roles: who may look (viewer), act (operator), administer (admin), run tasks (farm)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Request, status

from xtreaming.config import Role, Token

#: Which roles each required role admits: admin may do everything; farms only run tasks.
ADMITS: Final[dict[Role, frozenset[Role]]] = {
    Role.VIEWER: frozenset({Role.VIEWER, Role.OPERATOR, Role.ADMIN}),
    Role.OPERATOR: frozenset({Role.OPERATOR, Role.ADMIN}),
    Role.ADMIN: frozenset({Role.ADMIN}),
    Role.FARM: frozenset({Role.FARM, Role.ADMIN}),
}
ANONYMOUS: Final = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a configured token's name and role (the actor in the audit log)."""

    name: str
    role: Role


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token: tokens are random and long, so a plain hash is enough to store."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


class TokenTable:
    """The configured tokens; with none, every caller is an anonymous admin (allowed on loopback only)."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self._tokens = list(tokens)

    @property
    def open(self) -> bool:
        return not self._tokens

    def identify(self, authorization: str | None) -> Principal | None:
        if self.open:
            return Principal(ANONYMOUS, Role.ADMIN)
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        digest = hash_token(authorization[7:].strip())
        for token in self._tokens:
            if hmac.compare_digest(token.sha256, digest):
                return Principal(token.name, token.role)
        return None


def require(role: Role) -> Callable[[Request], Principal]:
    """A FastAPI dependency admitting callers whose role admits ``role``; 401/403 otherwise."""

    def dependency(request: Request) -> Principal:
        table: TokenTable = request.app.state.tokens
        principal = table.identify(request.headers.get("authorization"))
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or unknown bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.role not in ADMITS[role]:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role} may not do this; needs {role}")
        return principal

    dependency.required_role = role  # type: ignore[attr-defined]  # read by the route-role test
    return dependency


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Farm = Annotated[Principal, Depends(require(Role.FARM))]
