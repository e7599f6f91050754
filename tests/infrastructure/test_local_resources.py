"""ensure_local_resources against a real moto server: same shape as template.yaml, idempotent."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vicw.aws import client
from vicw.aws_resources import ensure_local_resources, physical_name, queue_definitions
from vicw.models import OffloadJob, Turn

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
EXPECTED_ENV = {"OFFLOAD_TOPIC_ARN", "OFFLOAD_QUEUE_URL", "GRAPH_QUEUE_URL", "OFFLOAD_DLQ_URL", "GRAPH_DLQ_URL", "ARCHIVE_BUCKET"}


@pytest.fixture()
def prefix(moto_endpoint) -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def resources(prefix) -> dict[str, str]:
    return ensure_local_resources(prefix, TEMPLATE_PATH)


def _drain(url: str, expect: int, rounds: int = 10) -> list[dict]:
    sqs, got = client("sqs"), []
    for _ in range(rounds):
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        got += msgs
        if len(got) >= expect:
            break
    return got


def test_returns_every_cold_path_variable(resources):
    assert set(resources) == EXPECTED_ENV
    assert resources["OFFLOAD_TOPIC_ARN"].startswith("arn:aws:sns:")
    assert all(resources[k].startswith("http") for k in EXPECTED_ENV if k.endswith("_URL"))


def test_queues_match_the_template(resources, prefix):
    sqs = client("sqs")
    defs = queue_definitions(TEMPLATE_PATH)
    arns = {}
    for name in defs:
        url = sqs.get_queue_url(QueueName=physical_name(prefix, name))["QueueUrl"]
        arns[name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for name, d in defs.items():
        url = sqs.get_queue_url(QueueName=physical_name(prefix, name))["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert int(attrs["VisibilityTimeout"]) == d.visibility_timeout
        if d.dlq_name:
            redrive = json.loads(attrs["RedrivePolicy"])
            assert redrive["deadLetterTargetArn"] == arns[d.dlq_name]
            assert int(redrive["maxReceiveCount"]) == d.max_receive_count
        else:
            assert "RedrivePolicy" not in attrs
    assert resources["OFFLOAD_DLQ_URL"].endswith(physical_name(prefix, "OffloadDLQ"))


def test_bucket_is_versioned_private_and_encrypted(resources):
    s3 = client("s3")
    bucket = resources["ARCHIVE_BUCKET"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_second_call_is_idempotent(resources, prefix):
    again = ensure_local_resources(prefix, TEMPLATE_PATH)
    assert again == resources
    subs = client("sns").list_subscriptions_by_topic(TopicArn=resources["OFFLOAD_TOPIC_ARN"])["Subscriptions"]
    assert len(subs) == 2


def test_parameter_override_changes_max_receive_count(prefix, moto_endpoint):
    env = ensure_local_resources(prefix, TEMPLATE_PATH, parameters={"MaxReceiveCount": "5"})
    attrs = client("sqs").get_queue_attributes(QueueUrl=env["OFFLOAD_QUEUE_URL"], AttributeNames=["RedrivePolicy"])
    assert int(json.loads(attrs["Attributes"]["RedrivePolicy"])["maxReceiveCount"]) == 5


def test_topic_fans_out_raw_job_json_to_both_queues(resources):
    now = datetime.now(UTC)
    job = OffloadJob(
        job_id=OffloadJob.make_id("acme", "s1", 0, 1),
        tenant="acme",
        session_id="s1",
        turns=[
            Turn(seq=0, role="user", content="My cat is called Miso.", timestamp=now, tokens=7),
            Turn(seq=1, role="assistant", content="Noted: Miso.", timestamp=now, tokens=4),
        ],
        token_count=11,
    )
    client("sns").publish(TopicArn=resources["OFFLOAD_TOPIC_ARN"], Message=job.model_dump_json())
    for var in ("OFFLOAD_QUEUE_URL", "GRAPH_QUEUE_URL"):
        msgs = _drain(resources[var], 1)
        assert len(msgs) == 1, f"{var} got {len(msgs)} messages"
        # Raw delivery: the body is the job itself, not an SNS envelope.
        assert OffloadJob.model_validate_json(msgs[0]["Body"]) == job


def test_poison_message_reaches_the_dlq_after_max_receive_count(prefix, moto_endpoint):
    env = ensure_local_resources(prefix, TEMPLATE_PATH, parameters={"MaxReceiveCount": "1"})
    sqs = client("sqs")
    # Short visibility so the test does not wait 12 minutes for a redelivery.
    sqs.set_queue_attributes(QueueUrl=env["GRAPH_QUEUE_URL"], Attributes={"VisibilityTimeout": "1"})
    sqs.send_message(QueueUrl=env["GRAPH_QUEUE_URL"], MessageBody="not a job")
    assert len(_drain(env["GRAPH_QUEUE_URL"], 1)) == 1  # received once, never deleted
    moved = []
    for _ in range(5):
        _drain(env["GRAPH_QUEUE_URL"], 1, rounds=1)  # the receive that exceeds maxReceiveCount moves it
        moved = _drain(env["GRAPH_DLQ_URL"], 1, rounds=1)
        if moved:
            break
    assert [m["Body"] for m in moved] == ["not a job"]
