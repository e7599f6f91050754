"""Forgetting in a versioned archive bucket: no old version or delete marker of the session survives."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.unit.test_cold_path_chunks import make_job
from vicw.archive import JobArchive, job_key, session_prefix, tenant_prefix
from vicw.aws import client
from vicw.aws_resources import ensure_local_resources

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture()
def archive(moto_endpoint) -> JobArchive:
    # The bucket as the template declares it (versioned), under a fresh prefix.
    env = ensure_local_resources(f"v{uuid.uuid4().hex[:8]}", TEMPLATE_PATH)
    return JobArchive(bucket=env["ARCHIVE_BUCKET"])


def versions(archive: JobArchive, prefix: str) -> list[tuple[str, str]]:
    """(key, version id) of every object version and delete marker under `prefix`."""
    out = []
    for page in archive.s3.get_paginator("list_object_versions").paginate(Bucket=archive.bucket, Prefix=prefix):
        out += [(v["Key"], v["VersionId"]) for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    return out


def test_deleting_a_session_then_a_tenant_leaves_no_versions(archive):
    assert client("s3").get_bucket_versioning(Bucket=archive.bucket)["Status"] == "Enabled"
    first, second = make_job(texts=["a", "b"]), make_job(texts=["c"], first_seq=10)
    kept = make_job(session_id="s2", texts=["d"])
    other_tenant = make_job(tenant="globex", texts=["e"])
    for job in (first, second, kept, other_tenant):
        archive.put(job)
    archive.put(first)  # a redelivered job: the same key gets a second version
    # A key deleted without a version id leaves a delete marker over its noncurrent version.
    gone = make_job(texts=["f"], first_seq=20)
    archive.put(gone)
    archive.s3.delete_object(Bucket=archive.bucket, Key=job_key(gone))

    s1 = session_prefix("acme", "s1")
    assert len(versions(archive, s1)) == 5  # first x2, second, gone and its delete marker
    assert archive.count("acme", "s1") == 2

    assert archive.delete_session("acme", "s1") == 2  # the jobs that were current
    assert versions(archive, s1) == []
    assert archive.count("acme", "s2") == 1 and len(versions(archive, session_prefix("acme", "s2"))) == 1

    assert archive.delete_tenant("acme") == 1
    assert versions(archive, tenant_prefix("acme")) == []
    assert archive.get(job_key(other_tenant)) == other_tenant  # another tenant is untouched
    assert archive.delete_session("acme", "s1") == 0  # nothing left: a no-op


def test_deletes_more_versions_than_one_request_or_listing_page_holds(archive):
    from concurrent.futures import ThreadPoolExecutor

    job = make_job(session_id="busy")
    keys = [job_key(job).replace(".json", f"-{i}.json") for i in range(600)]
    body = job.model_dump_json().encode()
    with ThreadPoolExecutor(8) as pool:  # two versions each: 1200 entries, two pages, two delete calls
        list(pool.map(lambda key: archive.s3.put_object(Bucket=archive.bucket, Key=key, Body=body), keys * 2))
    assert len(versions(archive, session_prefix("acme", "busy"))) == 1200
    assert archive.delete_session("acme", "busy") == 600
    assert versions(archive, session_prefix("acme", "busy")) == []
