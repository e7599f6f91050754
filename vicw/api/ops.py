"""Operator routes: Prometheus metrics, and backups run inside the serving process.

GET /metrics (Prometheus text format) answers:
  * a request carrying `Authorization: Bearer <VICW_METRICS_TOKEN>`, when that token is set;
  * otherwise only requests from the loopback interface (a scraper on the same host).
It is never tied to a tenant's API key: the numbers cover every tenant.

POST /admin/backups and POST /admin/restores need the API key of a tenant listed in
VICW_ADMIN_TENANTS. They exist for `vicw local`, whose process holds the local Qdrant folder and
runs its own Redis and moto, so a separate `vicw backup` process could not reach the same stores.
Local-directory backups are confined to VICW_DATA_DIR/backups/<name>; S3 targets are allowed.
On Lambda (29 s API Gateway limit) these routes refuse: run `vicw backup` from an operator host
or the scheduled maintenance function instead.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from vicw import bootstrap
from vicw.api.deps import AdminTenant
from vicw.api.json_body import CheckedJSONRoute

router = APIRouter(tags=["ops"], route_class=CheckedJSONRoute)
T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _api_error(status: int, message: str, kind: str) -> Exception:
    from vicw.api.errors import ApiError

    return ApiError(status, message, kind)


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_scraper(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    token = bootstrap.settings().vicw_metrics_token
    if token is not None and token.get_secret_value():
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
            return
        raise _api_error(401, "GET /metrics needs 'Authorization: Bearer <VICW_METRICS_TOKEN>'", "authentication_error")
    if not _loopback(request):
        raise _api_error(403, "GET /metrics answers loopback clients only; set VICW_METRICS_TOKEN to scrape remotely", "permission_error")


@router.get("/metrics", dependencies=[Depends(require_scraper)], include_in_schema=False)
def prometheus_metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    from vicw.metrics_export import bridge

    prometheus = bridge()
    prometheus.use_sources(bootstrap.queue_depths, bootstrap.window_store)
    return Response(prometheus.render(), media_type=CONTENT_TYPE_LATEST)


# --- backups ---------------------------------------------------------------------------------------
def require_admin(tenant: AdminTenant) -> str:
    from vicw.cold_path import on_lambda

    if on_lambda():
        raise _api_error(501, "backups do not run inside the chat function; use `vicw backup` or the maintenance schedule",
                         "not_implemented")
    return tenant


Admin = Annotated[str, Depends(require_admin)]


class BackupRequest(BaseModel):
    to: str | None = Field(None, description="a name under VICW_DATA_DIR/backups, or s3://bucket/prefix")
    include_archive: bool = True


class RestoreRequest(BaseModel):
    source: str = Field(alias="from", description="a name under VICW_DATA_DIR/backups, or s3://bucket/prefix")
    force: bool = False


def resolve_location(value: str | None) -> str | None:
    """Where the server may read or write: S3, or a plain folder name under VICW_DATA_DIR/backups."""
    if value is None or value.startswith("s3://"):
        return value
    if not _NAME.fullmatch(value) or value in {".", ".."}:
        raise _api_error(422, "a local backup is named by a plain folder name (letters, digits, '.', '_', '-') "
                              "under VICW_DATA_DIR/backups, or is an s3://bucket/prefix", "invalid_request_error")
    return str(Path(bootstrap.settings().vicw_data_dir) / "backups" / value)


def _run(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    from vicw.backup import BackupError

    try:
        return fn(*args, **kwargs)
    except BackupError as exc:
        raise _api_error(409, str(exc), "backup_error") from None


@router.post("/admin/backups", tags=["ops"])
def create_backup(body: BackupRequest, _: Admin) -> dict:
    from vicw.backup import create_backup as create
    from vicw.backup import default_base, timestamped

    target = resolve_location(body.to) or timestamped(default_base(bootstrap.settings()))
    manifest = _run(create, target, include_archive=body.include_archive)
    return {"location": target, "manifest": manifest.model_dump(mode="json")}


@router.post("/admin/restores", tags=["ops"])
def restore_backup(body: RestoreRequest, _: Admin) -> dict:
    from vicw.backup import restore_backup as restore

    return _run(restore, resolve_location(body.source), force=body.force)
