"""FastAPI dependencies every router shares: the caller's tenant (authenticated and rate-limited)
and the admin check. Kept apart from the app factory so routers do not import the app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from vicw import bootstrap
from vicw.api.errors import ApiError, key_table_unavailable
from vicw.auth import AuthError, is_admin
from vicw.observability import M, metrics


def require_tenant(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    try:
        tenant = bootstrap.key_table().tenant_for(authorization)
    except AuthError as exc:
        metrics.add_metric(name=M.AUTH_FAILURES, unit="Count", value=1)
        raise ApiError(401, str(exc), "authentication_error", {"WWW-Authenticate": "Bearer"}) from None
    except Exception as exc:  # noqa: BLE001 - the table itself could not be read or parsed: fail closed, but say so
        raise key_table_unavailable(exc) from None
    request.state.tenant = tenant
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        limiter.check(tenant, authorization or "", request)
    return tenant


Tenant = Annotated[str, Depends(require_tenant)]


def tenant_is_admin(tenant: str) -> bool:
    """The one admin check: is `tenant` named in VICW_ADMIN_TENANTS?"""
    return is_admin(tenant, bootstrap.settings().vicw_admin_tenants)


def require_admin_tenant(request: Request, tenant: Tenant) -> str:
    if not tenant_is_admin(tenant):
        raise ApiError(403, "this route needs the API key of an admin tenant (VICW_ADMIN_TENANTS)", "permission_error")
    return tenant


AdminTenant = Annotated[str, Depends(require_admin_tenant)]


def is_admin_key(authorization: str | None) -> bool:
    """Whether `authorization` holds an admin tenant's key (a public route's optional extra view;
    a missing or wrong key is simply not admin, never an error)."""
    if not authorization:
        return False
    try:
        tenant = bootstrap.key_table().tenant_for(authorization)
    except Exception:  # noqa: BLE001 - a refused or unreadable key only means "not admin" here
        return False
    return tenant_is_admin(tenant)
