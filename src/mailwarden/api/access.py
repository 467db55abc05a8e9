"""Each route declares who may call it; a route without a declaration stops the app from starting.

The declaration does not enforce anything by itself: the service checks the permission, once,
for every face. It documents the route (`x-permission` in the OpenAPI document) and drives the
authorization matrix in the tests, which proves declaration and behaviour agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from mailwarden.kernel.permissions import Permission

F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE = "__mailwarden_access__"


@dataclass(frozen=True, slots=True)
class Access:
    # None with authenticated=True: any valid key (e.g. /me); both unset: public.
    permission: Permission | None
    authenticated: bool = True
    # Also allowed on the caller's own account or keys without the permission.
    own_objects: bool = False

    @property
    def label(self) -> str:
        if self.permission is not None:
            suffix = " (or own)" if self.own_objects else ""
            return f"{self.permission.value}{suffix}"
        return "authenticated" if self.authenticated else "public"


def requires(permission: Permission, *, own_objects: bool = False) -> Callable[[F], F]:
    return _declare(Access(permission, own_objects=own_objects))


def authenticated() -> Callable[[F], F]:
    return _declare(Access(None))


def public() -> Callable[[F], F]:
    return _declare(Access(None, authenticated=False))


def _declare(access: Access) -> Callable[[F], F]:
    def mark(endpoint: F) -> F:
        setattr(endpoint, _ATTRIBUTE, access)
        return endpoint

    return mark


def access_of(route: APIRoute) -> Access | None:
    found = getattr(route.endpoint, _ATTRIBUTE, None)
    return found if isinstance(found, Access) else None


@dataclass(frozen=True, slots=True)
class DeclaredRoute:
    method: str
    # The full path template, e.g. "/api/v1/mailboxes/{address}".
    path: str
    route: APIRoute
    access: Access


def declared_routes(table: list[tuple[str, APIRouter]]) -> list[DeclaredRoute]:
    """Every route of the (prefix, router) table with its declaration; raises for any route
    that lacks one."""
    declared: list[DeclaredRoute] = []
    missing: list[str] = []
    for prefix, router in table:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            access = access_of(route)
            for method in sorted(route.methods or ()):
                if access is None:
                    missing.append(f"{method} {prefix}{route.path}")
                else:
                    declared.append(DeclaredRoute(method, prefix + route.path, route, access))
    if missing:
        raise RuntimeError(f"routes without a declared permission: {', '.join(missing)}")
    return declared


def document(app: FastAPI, declared: list[DeclaredRoute]) -> None:
    """Show each route's declaration in the OpenAPI document (`x-permission`), and refuse an
    app whose document has an operation the route table does not declare."""
    for entry in declared:
        entry.route.openapi_extra = {
            **(entry.route.openapi_extra or {}),
            "x-permission": entry.access.label,
        }
    app.openapi_schema = None
    operations = {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method.upper() in _HTTP_METHODS
    }
    known = {(entry.method, entry.path) for entry in declared}
    if stray := sorted(operations - known):
        raise RuntimeError(f"routes outside the declared route table: {stray}")


_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
