"""The durable record of every offload job, on S3 (ARCHIVE_BUCKET).

The archive is the source of truth for the cold path: vectors and the graph can always be rebuilt
from it (`vicw replay archive`). Keys are laid out so a tenant, a session, or "everything since T"
is a prefix listing plus a cheap filter on the key name, without reading any object:

    jobs/{tenant}/sessions/{session_id}/{created epoch ms, 13 digits}-{job_id}.json
    jobs/{tenant}/documents/{created epoch ms, 13 digits}-{job_id}.json   (tenant-wide documents)

Tenant and session ids are percent-encoded, so neither can step into another's prefix. A job's key
depends only on the job, so writing it twice is harmless.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from vicw.aws import client
from vicw.models import OffloadJob

ROOT = "jobs/"


def _q(value: str) -> str:
    return quote(value, safe="")


def _epoch_ms(when: datetime | float | int | str) -> int:
    """Epoch milliseconds of a datetime, epoch seconds, or an ISO-8601 date/datetime (naive = UTC)."""
    if isinstance(when, str):
        try:
            return int(float(when) * 1000)
        except ValueError:
            when = datetime.fromisoformat(when)
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp() * 1000)
    return int(float(when) * 1000)


def tenant_prefix(tenant: str) -> str:
    if not tenant:
        raise ValueError("tenant is required")
    return f"{ROOT}{_q(tenant)}/"


def session_prefix(tenant: str, session_id: str | None) -> str:
    if session_id is None:
        return f"{tenant_prefix(tenant)}documents/"
    return f"{tenant_prefix(tenant)}sessions/{_q(session_id)}/"


def job_key(job: OffloadJob) -> str:
    return f"{session_prefix(job.tenant, job.session_id)}{_epoch_ms(job.created_at):013d}-{job.job_id}.json"


def _key_ms(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1]
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


class JobArchive:
    def __init__(self, settings: Any | None = None, *, bucket: str | None = None, s3: Any | None = None) -> None:
        bucket = bucket or (settings.archive_bucket if settings is not None else None)
        if not bucket:
            raise ValueError("ARCHIVE_BUCKET is not set")
        self.bucket = bucket
        self._s3 = s3

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = client("s3")
        return self._s3

    def put(self, job: OffloadJob) -> str:
        key = job_key(job)
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=job.model_dump_json().encode(),
            ContentType="application/json",
            Metadata={"job-id": job.job_id, "kind": job.kind},
        )
        return key

    def _prefix(self, tenant: str | None, session_id: str | None) -> str:
        if tenant is None:
            if session_id is not None:
                raise ValueError("a session is only meaningful within a tenant")
            return ROOT
        return session_prefix(tenant, session_id) if session_id is not None else tenant_prefix(tenant)

    def iter_keys(
        self, tenant: str | None = None, session_id: str | None = None, since: datetime | float | str | None = None
    ) -> Iterator[str]:
        floor = _epoch_ms(since) if since is not None else None
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._prefix(tenant, session_id)):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if not key.endswith(".json"):
                    continue
                if floor is not None and (_key_ms(key) or 0) < floor:
                    continue
                yield key

    def get(self, key: str) -> OffloadJob:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return OffloadJob.model_validate_json(body)

    def iter_jobs(
        self, tenant: str | None = None, session_id: str | None = None, since: datetime | float | str | None = None
    ) -> Iterator[OffloadJob]:
        """Archived jobs, oldest first within each session."""
        for key in self.iter_keys(tenant, session_id, since):
            yield self.get(key)

    def count(self, tenant: str | None = None, session_id: str | None = None, since: datetime | float | str | None = None) -> int:
        return sum(1 for _ in self.iter_keys(tenant, session_id, since))

    def _delete_prefix(self, prefix: str) -> int:
        """Delete every version and delete marker under `prefix`, so nothing survives as a
        noncurrent version of the (versioned) bucket. Returns how many jobs were current."""
        # List everything first: deleting while paginating would remove the version the next
        # page's marker points at.
        current = 0
        entries: list[dict[str, str]] = []
        paginator = self.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                current += bool(version.get("IsLatest"))
                entries.append({"Key": version["Key"], "VersionId": version["VersionId"]})
            entries += ({"Key": m["Key"], "VersionId": m["VersionId"]} for m in page.get("DeleteMarkers", []))
        for start in range(0, len(entries), 1000):  # delete_objects takes at most 1000 entries
            self._delete_batch(entries[start : start + 1000])
        return current

    def _delete_batch(self, batch: list[dict[str, str]]) -> None:
        resp = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        errors = resp.get("Errors", [])
        if errors:
            raise RuntimeError(
                f"S3 refused to delete {len(errors)} archived job versions, e.g. {errors[0].get('Key')}: {errors[0].get('Message')}"
            )

    def delete_session(self, tenant: str, session_id: str) -> int:
        return self._delete_prefix(session_prefix(tenant, session_id))

    def delete_tenant(self, tenant: str) -> int:
        return self._delete_prefix(tenant_prefix(tenant))

    def ping(self) -> bool:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
            return True
        except Exception:  # noqa: BLE001 - health check
            return False
