"""Replays: archive -> queues (twice gives the same stores) and DLQ -> source queue by hand."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from tests.integration.test_offload import cold_env, offload, offload_app, session_jobs  # noqa: F401 - fixtures
from tests.unit.test_cold_path_chunks import T0, make_job
from vicw.aws import client
from vicw.bootstrap import window_store
from vicw.cold_path import REPLAY_ATTRIBUTE
from vicw.lambda_context import local_context, poll_once
from vicw.replay import replay_archive, replay_dlq


def drain(url: str, handler) -> int:
    processed, idle = 0, 0
    while idle < 2:
        got, failed = poll_once(client("sqs"), url, handler, local_context(), wait_seconds=1)
        assert failed == 0
        processed += got
        idle = idle + 1 if got == 0 else 0
    return processed


def test_replay_archive_twice_rebuilds_the_same_vectors(offload, cold_env):
    jobs = session_jobs(4, turns=3) + session_jobs(2, turns=2, session_id="s2")
    for job in jobs:
        cold_env.send(job.model_dump_json())
    assert drain(cold_env.offload_url, offload.handler) == 6
    assert cold_env.vectors.count("acme") == 16
    exported = sorted(p["id"] for p in cold_env.vectors.export("acme"))

    assert cold_env.vectors.delete_tenant("acme") == 16  # e.g. the collection was lost
    first = replay_archive(tenant="acme", target="vectors", progress=False, windows=window_store())
    assert first["jobs"] == 6 and first["sent"] == {"offload": 6}
    assert drain(cold_env.offload_url, offload.handler) == 6
    assert cold_env.vectors.count("acme") == 16

    second = replay_archive(tenant="acme", target="vectors", progress=True, windows=window_store())
    assert second["jobs"] == 6 and second["replay_id"] != first["replay_id"]
    assert drain(cold_env.offload_url, offload.handler) == 6
    assert cold_env.vectors.count("acme") == 16
    assert sorted(p["id"] for p in cold_env.vectors.export("acme")) == exported


def test_replay_archive_filters_and_targets(cold_env):
    archive = cold_env.archive
    early = make_job(session_id="s1", texts=["a"])
    late = make_job(session_id="s1", texts=["b"], first_seq=50).model_copy(update={"created_at": T0 + timedelta(days=2)})
    other = make_job(tenant="globex", texts=["c"])
    doc = make_job(session_id=None, kind="document", texts=["d"])
    for job in (early, late, other, doc):
        archive.put(job)
    archive.put(early)  # idempotent
    assert archive.count() == 4 and archive.count("acme") == 3 and archive.count("acme", "s1") == 2

    result = replay_archive(tenant="acme", session_id="s1", since=T0 + timedelta(days=1), target="all", progress=False,
                            windows=window_store())
    assert result["jobs"] == 1 and result["sent"] == {"offload": 1, "graph": 1}
    [msg] = client("sqs").receive_message(QueueUrl=cold_env.graph_url, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(msg["Body"])["job_id"] == late.job_id
    assert msg["MessageAttributes"][REPLAY_ATTRIBUTE]["StringValue"] == result["replay_id"]
    since = (T0 + timedelta(days=1)).isoformat()
    assert replay_archive(since=since, target="graph", progress=False, windows=window_store())["jobs"] == 1
    assert replay_archive(tenant="acme", target="graph", progress=False, windows=window_store())["jobs"] == 3

    assert archive.delete_session("acme", "s1") == 2
    assert archive.delete_tenant("acme") == 1 and archive.count() == 1


def test_replay_dlq_by_hand_keeps_attributes_and_deletes_only_what_was_sent(cold_env, monkeypatch):
    sqs = client("sqs")
    for i in range(12):
        sqs.send_message(QueueUrl=cold_env.graph_dlq, MessageBody=f"job-{i}",
                         MessageAttributes={"tenant": {"DataType": "String", "StringValue": "acme"}})
    summary = replay_dlq("graph")  # moto has no StartMessageMoveTask: falls back to receive/send/delete
    assert summary["method"] == "receive_send_delete"
    assert summary["moved"] == 12 and summary["dlq_depth_after"] == 0
    bodies = []
    while len(bodies) < 12:
        got = sqs.receive_message(QueueUrl=cold_env.graph_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
        assert all(m["MessageAttributes"]["tenant"]["StringValue"] == "acme" for m in got)
        bodies += [m["Body"] for m in got]
    assert sorted(bodies) == sorted(f"job-{i}" for i in range(12))

    # the source queue is gone: the send fails, so nothing may leave the DLQ
    sqs.send_message(QueueUrl=cold_env.graph_dlq, MessageBody="survivor")
    monkeypatch.setenv("GRAPH_QUEUE_URL", cold_env.graph_url + "-missing")
    from vicw.config import get_settings

    get_settings.cache_clear()
    with pytest.raises(Exception, match="(?i)queue"):
        replay_dlq("graph")
    visible, in_flight = cold_env.depth(cold_env.graph_dlq)
    assert visible + in_flight == 1


def test_replay_dlq_needs_both_urls(cold_env, monkeypatch):
    monkeypatch.delenv("OFFLOAD_DLQ_URL")
    from vicw.config import load_settings

    with pytest.raises(ValueError, match="OFFLOAD_DLQ_URL"):
        replay_dlq("offload", settings=load_settings())
    time.sleep(0)


def test_replay_archive_moves_session_counters_past_the_turns_it_brings_back(cold_env):
    """After a restore the windows can be older than the archive: the next turn must not take a replayed seq."""
    from vicw import container

    job = make_job(session_id="ahead", texts=["a", "b", "c"], first_seq=40)
    cold_env.archive.put(job)
    windows = container.window_store()
    windows.advance_seq("acme", "ahead", 3)  # a window as an older backup left it
    out = replay_archive(tenant="acme", session_id="ahead", target="vectors", progress=False, windows=window_store())
    assert out["sessions_advanced"] == 1
    assert windows.load("acme", "ahead").next_seq == job.last_seq + 1
    again = replay_archive(tenant="acme", session_id="ahead", target="vectors", progress=False, windows=window_store())
    assert again["sessions_advanced"] == 0


def test_replay_archive_counts_found_sent_and_skipped(cold_env):
    archive = cold_env.archive
    good = make_job(tenant="initech", session_id="s9", texts=["kept"])
    archive.put(good)
    # An object under the same session that is not a job (a hand-made upload, a truncated write).
    bad_key = archive.iter_keys("initech", "s9").__next__().rsplit("/", 1)[0] + "/0000000000001-broken.json"
    archive.s3.put_object(Bucket=archive.bucket, Key=bad_key, Body=b"{not json")
    result = replay_archive(tenant="initech", target="graph", progress=False, windows=window_store())
    assert (result["found"], result["jobs"], result["skipped"]) == (2, 1, 1)
    assert result["sent"] == {"graph": 1} and result["failed"] == {"graph": 0}
    [msg] = client("sqs").receive_message(QueueUrl=cold_env.graph_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(msg["Body"])["job_id"] == good.job_id
