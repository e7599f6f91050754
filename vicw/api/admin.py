"""Administrative routes: only tenants named in VICW_ADMIN_TENANTS may call them.

DELETE /tenants/{tenant} erases a tenant in every store (window, outbox, archive, vectors, graph,
idempotency records) and returns a receipt with the counts. It is the one route where the tenant
acted on is not the caller's own, which is why it needs an admin key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from vicw import bootstrap
from vicw.api.deps import AdminTenant
from vicw.api.json_body import CheckedJSONRoute
from vicw.auth import TENANT_RE

router = APIRouter(tags=["admin"], route_class=CheckedJSONRoute)


@router.delete("/tenants/{tenant}")
def delete_tenant(tenant: Annotated[str, Path(pattern=TENANT_RE.pattern)], admin: AdminTenant) -> dict:
    from vicw.forget import forget_tenant

    receipt = forget_tenant(bootstrap.forget_stores(), tenant)
    receipt["requested_by"] = admin
    return receipt
