"""Bearer tokens with roles: who may look (viewer), act (operator), administer (admin), run tasks (farm)."""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from xtreaming.config import Role, Token

#: Which roles each required role admits: admin may do everything; farms only run tasks.
ADMITS: Final[dict[Role, frozenset[Role]]] = {
    Role.VIEWER: frozenset({Role.VIEWER, Role.OPERATOR, Role.ADMIN}),
    Role.OPERATOR: frozenset({Role.OPERATOR, Role.ADMIN}),
    Role.ADMIN: frozenset({Role.ADMIN}),
    Role.FARM: frozenset({Role.FARM, Role.ADMIN}),
}
ANONYMOUS: Final = "anonymous"
#: Declares the bearer token in the OpenAPI document (each operation lists the role it needs as the
#: requirement's roles); ``require`` reads and checks the header itself, so this one never refuses.
BEARER: Final = HTTPBearer(auto_error=False, description="A token made by `xtreaming token`; its role decides.")

log = logging.getLogger("xtreaming.coordinator")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a configured token's name and role (the actor in the audit log), and for a farm token
    the farm names it may act as (shell-style patterns; None: any farm)."""

    name: str
    role: Role
    farms: tuple[str, ...] | None = None

    def may_act_as(self, farm: str) -> bool:
        """Whether this caller may register, heartbeat, lease or report as the farm called ``farm``."""
        if self.role is Role.ADMIN or self.farms is None:
            return True
        return any(fnmatch.fnmatchcase(farm, pattern) for pattern in self.farms)

    def check_farm(self, farm: str) -> None:
        """Refuse (403) a farm request made as a farm this caller's token is not bound to."""
        if not self.may_act_as(farm):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"token {self.name!r} may not act as farm {farm!r} (it is bound to others)"
            )


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token: tokens are random and long, so a plain hash is enough to store."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


class TokenTable:
    """The configured tokens; with none, every caller is an anonymous admin (allowed on loopback only)."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self._tokens = list(tokens)
        for token in self._tokens:
            if token.role is Role.FARM and token.farms is None:
                log.warning(
                    "farm token %r is not bound to farm names: it may act as any farm "
                    "(make a new one with 'xtreaming token --role farm --farm NAME')",
                    token.name,
                )

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
                return Principal(token.name, token.role, None if token.farms is None else tuple(token.farms))
        return None


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency admitting callers whose role admits ``role``; 401/403 otherwise. A coroutine, though it
    never waits: FastAPI runs a plain function on a worker thread, a hand-off that cost every request more than
    checking its token does."""

    async def dependency(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
    ) -> Principal:
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


Viewer = Annotated[Principal, Security(require(Role.VIEWER), scopes=[Role.VIEWER])]
Operator = Annotated[Principal, Security(require(Role.OPERATOR), scopes=[Role.OPERATOR])]
Admin = Annotated[Principal, Security(require(Role.ADMIN), scopes=[Role.ADMIN])]
Farm = Annotated[Principal, Security(require(Role.FARM), scopes=[Role.FARM])]
