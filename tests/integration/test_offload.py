"""The offload function end to end: real moto SQS/S3, real Redis (idempotency), Qdrant local mode,
the real embedding model, invoked with SQS events built from messages received from the queue."""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import patient
from tests.unit.test_cold_path_chunks import make_job
from vicw import container
from vicw.archive import JobArchive
from vicw.aws import client
from vicw.lambda_context import local_context, poll_once, sqs_event
from vicw.models import OffloadJob

REPO = Path(__file__).resolve().parents[2]


def load_function(name: str):
    spec = importlib.util.spec_from_file_location(f"vicw_fn_{name}_under_test", REPO / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def offload_app():
    return load_function("offload")


def make_queue(name: str, *, visibility: int = 30, max_receives: int = 2) -> tuple[str, str]:
    """A queue and its DLQ, redrive after `max_receives` receives. Returns (queue url, dlq url)."""
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}),
    })["QueueUrl"]
    return url, dlq


class ColdEnv:
    """Per-test AWS resources and settings; `use_qdrant_*` switch the store the handler is built with."""

    def __init__(self, monkeypatch, tmp_path: Path, redis_url: str, visibility: int) -> None:
        self.mp = monkeypatch
        self.tmp = tmp_path
        tag = uuid.uuid4().hex[:10]
        self.offload_url, self.offload_dlq = make_queue(f"offload-{tag}", visibility=visibility)
        self.graph_url, self.graph_dlq = make_queue(f"graph-{tag}", visibility=visibility)
        self.bucket = f"archive-{tag}"
        client("s3").create_bucket(Bucket=self.bucket)
        for key, value in {
            "OFFLOAD_QUEUE_URL": self.offload_url, "OFFLOAD_DLQ_URL": self.offload_dlq,
            "GRAPH_QUEUE_URL": self.graph_url, "GRAPH_DLQ_URL": self.graph_dlq,
            "ARCHIVE_BUCKET": self.bucket, "REDIS_URL": redis_url, "GRAPH_BACKEND": "none",
            "QDRANT_COLLECTION": "memories", "MAX_RECEIVE_COUNT": "2",
        }.items():
            monkeypatch.setenv(key, value)
        self.use_qdrant_path()

    def rebuild(self) -> None:
        """Forget every built dependency (closing the local Qdrant first: it locks its folder)."""
        if container.vector_store.cache_info().currsize:
            store = container.vector_store()
            if store is not None:
                store.close()
        container.reset()

    def use_qdrant_path(self) -> None:
        self.mp.delenv("QDRANT_URL", raising=False)
        self.mp.setenv("QDRANT_PATH", str(self.tmp / "qdrant"))
        self.rebuild()

    def use_unreachable_qdrant(self) -> None:
        self.mp.setenv("QDRANT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
        self.mp.delenv("QDRANT_PATH", raising=False)
        self.rebuild()

    @property
    def vectors(self):
        return container.vector_store()

    @property
    def archive(self) -> JobArchive:
        return JobArchive(bucket=self.bucket)

    def send(self, body: str, url: str | None = None) -> str:
        return client("sqs").send_message(QueueUrl=url or self.offload_url, MessageBody=body)["MessageId"]

    def receive(self, n: int, url: str | None = None) -> list[dict]:
        """Exactly n messages from the queue (SQS may hand them out over several calls)."""
        url = url or self.offload_url
        got: list[dict] = []
        deadline = time.monotonic() + patient(30)
        while len(got) < n and time.monotonic() < deadline:
            got += client("sqs").receive_message(
                QueueUrl=url, MaxNumberOfMessages=min(10, n - len(got)), MessageAttributeNames=["All"], AttributeNames=["All"]
            ).get("Messages", [])
        assert len(got) == n, f"expected {n} messages, got {len(got)}"
        return got

    def event(self, messages: list[dict], url: str | None = None) -> dict:
        arn = client("sqs").get_queue_attributes(QueueUrl=url or self.offload_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return sqs_event(messages, arn)

    def depth(self, url: str) -> tuple[int, int]:
        a = client("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

    def close(self) -> None:
        self.rebuild()


@pytest.fixture()
def cold_env(moto_endpoint, redis_client, redis_url, tmp_path, monkeypatch, request):
    visibility = getattr(request, "param", 30)
    env = ColdEnv(monkeypatch, tmp_path, redis_url, visibility)
    yield env
    env.close()


@pytest.fixture()
def offload(offload_app, cold_env):
    offload_app.worker.reset()
    yield offload_app
    offload_app.worker.reset()


def session_jobs(n: int, turns: int = 4, session_id: str = "s1") -> list[OffloadJob]:
    return [
        make_job(session_id=session_id, first_seq=i * turns,
                 texts=[f"job {i} turn {t}: the shipment of order #{i}{t} leaves the Rotterdam warehouse" for t in range(turns)])
        for i in range(n)
    ]


def test_importing_the_handler_connects_to_nothing():
    module = load_function("offload")
    assert module.worker._worker is None
    graph = load_function("graph")
    assert graph.worker._worker is None


def test_handler_embeds_archives_and_makes_turns_searchable(offload, cold_env):
    jobs = [
        make_job(texts=["Our wedding is on June 14th in Lisbon.", "Congratulations! Lisbon in June sounds lovely."]),
        make_job(first_seq=2, texts=["My dog Biscuit is allergic to chicken.", "Noted: no chicken for Biscuit."]),
        make_job(tenant="globex", texts=["The wedding venue is booked.", "Great."]),
    ]
    for job in jobs:
        cold_env.send(job.model_dump_json())
    event = cold_env.event(cold_env.receive(3))
    result = offload.handler(event, None)  # no context: the handler makes a local one
    assert result == {"batchItemFailures": []}

    assert cold_env.vectors.count("acme") == 4 and cold_env.vectors.count("globex") == 2
    assert cold_env.archive.count("acme", "s1") == 2 and cold_env.archive.count("globex") == 1
    assert {j.job_id for j in cold_env.archive.iter_jobs("acme")} == {jobs[0].job_id, jobs[1].job_id}

    question = container.embedder().embed_one("Where is the wedding taking place?")
    hits = cold_env.vectors.search("acme", question, session_id="s1", limit=2)
    assert "Lisbon" in hits[0].text and hits[0].tenant == "acme"
    pet = cold_env.vectors.search("acme", container.embedder().embed_one("what can't the dog eat"), limit=1)
    assert "Biscuit" in pet[0].text


def test_duplicate_delivery_is_a_no_op(offload, cold_env, redis_client):
    job = session_jobs(1, turns=5)[0]
    once = job.model_dump_json()
    for _ in range(3):
        cold_env.send(once)
    messages = cold_env.receive(3)
    assert len({m["MessageId"] for m in messages}) == 3
    # one delivery per invocation, as three separate redeliveries would arrive
    for m in messages:
        assert offload.handler(cold_env.event([m]), local_context("vicw-offload"))["batchItemFailures"] == []
    assert cold_env.vectors.count("acme", "s1") == 5
    assert cold_env.archive.count("acme") == 1
    # the idempotency record made the 2nd and 3rd deliveries skip the work entirely
    assert len(redis_client.keys("*offload#*")) == 1
    again = offload.worker.get().process_job(job)
    assert again.get("duplicate") is True and again["points"] == 5


@pytest.mark.parametrize("workers", [1, 3])  # sequential, and records overlapping in threads
def test_one_poison_record_fails_alone(offload, cold_env, monkeypatch, workers):
    monkeypatch.setenv("COLD_PATH_WORKERS", str(workers))
    cold_env.rebuild()
    offload.worker.reset()
    assert offload.worker.get().workers == workers
    jobs = session_jobs(9, turns=2)
    ids = [cold_env.send(j.model_dump_json()) for j in jobs[:5]]
    poison = cold_env.send('{"job_id": "broken", "turns": "not a list"}')
    ids += [cold_env.send(j.model_dump_json()) for j in jobs[5:]]
    event = cold_env.event(cold_env.receive(10))
    result = offload.handler(event, local_context())
    assert result["batchItemFailures"] == [{"itemIdentifier": poison}]
    assert cold_env.vectors.count("acme", "s1") == 18
    assert cold_env.archive.count("acme") == 9
    assert redis_client_stats(offload) == {"processed": 9, "failed": 1}


def redis_client_stats(app) -> dict:
    from vicw.worker_stats import read_worker_stats

    return read_worker_stats(app.worker.get().redis)["offload"]


@pytest.mark.parametrize("cold_env", [1], indirect=True)  # 1 s visibility: failures come back fast
def test_store_down_fails_records_into_the_dlq_and_replay_recovers_them(offload, cold_env):
    from vicw.replay import replay_dlq

    jobs = session_jobs(2, turns=3)
    for job in jobs:
        cold_env.send(job.model_dump_json())

    cold_env.use_unreachable_qdrant()
    offload.worker.reset()
    failures = 0
    deadline = time.monotonic() + patient(60)
    while cold_env.depth(cold_env.offload_dlq)[0] < 2 and time.monotonic() < deadline:
        _, failed = poll_once(client("sqs"), cold_env.offload_url, offload.handler, local_context())
        failures += failed
        time.sleep(0.3)
    assert failures >= 2  # reported as failures, never acknowledged
    assert cold_env.depth(cold_env.offload_dlq)[0] == 2
    assert cold_env.depth(cold_env.offload_url) == (0, 0)
    # archived before the store was touched: nothing is lost even while the DLQ holds the jobs
    assert cold_env.archive.count("acme") == 2

    cold_env.use_qdrant_path()
    offload.worker.reset()
    summary = replay_dlq("offload")
    assert summary["moved"] == 2 and summary["failed"] == 0
    assert cold_env.depth(cold_env.offload_dlq) == (0, 0)
    received = 0
    deadline = time.monotonic() + patient(30)
    while received < 2 and time.monotonic() < deadline:
        got, failed = poll_once(client("sqs"), cold_env.offload_url, offload.handler, local_context(), wait_seconds=1)
        assert failed == 0
        received += got
    assert cold_env.vectors.count("acme", "s1") == 6


@pytest.mark.parametrize("cold_env", [1], indirect=True)
def test_redis_down_fails_records_without_losing_them(offload, cold_env, monkeypatch, redis_url):
    # Redis answers "was this session deleted?" (vicw.forget tombstones): without an answer nothing
    # is written, the records fail, stay on the queue, and go through once Redis is back.
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    cold_env.rebuild()
    offload.worker.reset()
    for job in session_jobs(2, turns=1):
        cold_env.send(job.model_dump_json())
    received, failed = poll_once(client("sqs"), cold_env.offload_url, offload.handler, None)
    assert received == failed > 0
    assert cold_env.vectors.count("acme") == 0

    monkeypatch.setenv("REDIS_URL", redis_url)
    cold_env.rebuild()
    offload.worker.reset()
    deadline = time.monotonic() + patient(45)
    while cold_env.depth(cold_env.offload_url) != (0, 0) and time.monotonic() < deadline:
        poll_once(client("sqs"), cold_env.offload_url, offload.handler, None, wait_seconds=1)
    assert cold_env.depth(cold_env.offload_url) == (0, 0)
    assert cold_env.depth(cold_env.offload_dlq) == (0, 0)
    assert cold_env.vectors.count("acme") == 2


def test_jobs_of_a_deleted_session_are_dropped(offload, cold_env, redis_client):
    from vicw.forget import write_tombstone

    job = session_jobs(1, turns=2)[0]
    write_tombstone(redis_client, "acme", "s1", at=job.created_at.timestamp() + 1)
    cold_env.send(job.model_dump_json())
    assert offload.handler(cold_env.event(cold_env.receive(1)), None)["batchItemFailures"] == []
    assert cold_env.vectors.count("acme") == 0
