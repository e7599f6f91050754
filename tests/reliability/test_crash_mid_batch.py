"""SIGKILL a cold-path worker in the middle of a batch; a new worker picks the batch up again.

SQS redelivers every record of the killed invocation (none was deleted). Jobs that finished
before the kill are recognised by their idempotency record and skipped; the job that was in
progress is processed once its in-progress record expires (the function timeout, which is shorter
than the queue's visibility timeout, as in template.yaml: 120 s vs 720 s; here 3 s vs 8 s).
Deterministic point ids make even a second processing an overwrite. Result: every chunk exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from tests.reliability.conftest import wait_until
from vicw.models import OffloadJob, Turn

REPO = Path(__file__).resolve().parents[2]
FUNCTION_TIMEOUT = 3
VISIBILITY = 8
JOBS, TURNS = 8, 8


def make_jobs(session: str) -> list[OffloadJob]:
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    jobs = []
    for j in range(JOBS):
        turns = [
            Turn(seq=j * TURNS + t, role="user" if t % 2 == 0 else "assistant", timestamp=t0 + timedelta(minutes=j * TURNS + t),
                 content=f"Job {j} turn {t}: the warehouse in Rotterdam ships {j * 11 + t} pallets of tiles to the Lyon "
                         f"depot on Tuesday, and the customs broker needs the invoice number {9000 + j * TURNS + t}.",
                 tokens=40)
            for t in range(TURNS)
        ]
        jobs.append(OffloadJob(job_id=OffloadJob.make_id("crash", session, turns[0].seq, turns[-1].seq), tenant="crash",
                               session_id=session, turns=turns, token_count=40 * TURNS))
    return jobs


def completed_records(r: redis.Redis) -> int:
    n = 0
    for key in r.scan_iter(match="*offload*", count=500):
        value = r.get(key) if r.type(key) == b"string" else None  # Powertools keeps each record as JSON
        if value and b'"COMPLETED"' in value:
            n += 1
    return n


def test_sigkill_mid_batch_then_redelivery_indexes_everything_once(tmp_path, redis_url, moto_endpoint, redis_client):
    from vicw.aws import client
    from vicw.vector_edge import EdgeVectorStore
    from vicw.vector_store import chunk_job

    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName="crash-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="crash-offload", Attributes={
        "VisibilityTimeout": str(VISIBILITY),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
    })["QueueUrl"]
    client("s3").create_bucket(Bucket="crash-archive")
    jobs = make_jobs("s1")
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": j.model_dump_json()} for i, j in enumerate(jobs)])

    env = {**os.environ, "REDIS_URL": redis_url, "QDRANT_PATH": str(tmp_path / "qdrant"), "ARCHIVE_BUCKET": "crash-archive",
           "GRAPH_BACKEND": "none", "COLD_PATH_WORKERS": "1", "COLD_PATH_BATCH_SIZE": "10", "HF_HUB_OFFLINE": "1",
           "FASTEMBED_CACHE_PATH": str(tmp_path / "fastembed"), "POWERTOOLS_METRICS_DISABLED": "true",
           "POWERTOOLS_LOG_LEVEL": "ERROR", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "tests.reliability.offload_worker", queue, str(FUNCTION_TIMEOUT)]

    first = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        done_at_kill = wait_until(lambda: completed_records(redis_client) >= 2, 90, every=0.05, what="two jobs done")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    done_at_kill = completed_records(redis_client)
    assert 2 <= done_at_kill < JOBS, "the kill must land mid-batch"
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    queued = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
    assert queued == JOBS  # the killed invocation deleted nothing

    def visible_again() -> bool:  # after the visibility timeout every record of the killed batch comes back
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) == JOBS

    wait_until(visible_again, VISIBILITY + 60, what="the killed batch visible again")
    second = subprocess.run(cmd, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr[-2000:]
    outcomes = [json.loads(line) for line in second.stdout.splitlines() if line.startswith("{")]

    assert sorted(o["job_id"] for o in outcomes) == sorted(j.job_id for j in jobs)  # every job redelivered once
    skipped = [o for o in outcomes if o["duplicate"]]
    assert len(skipped) == done_at_kill  # finished work was not redone
    assert int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"]) == 0

    store = EdgeVectorStore(path=str(tmp_path / "qdrant"))
    try:
        records = list(store.scroll("crash", "s1", include_tenant_wide_documents=False))
        expected = {c.id for j in jobs for c in chunk_job(j)}
        assert len(records) == len(expected) and {r.id for r in records} == expected  # each chunk exactly once
    finally:
        store.close()
