"""Invoking Lambda handlers outside Lambda: a context object, the SQS event shape, a poll round.

Powertools reads a few attributes from the context (logger fields; idempotency's in-progress
expiry uses the remaining time). Local pollers, benchmarks and tests use these.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LambdaContext:
    function_name: str = "vicw-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    timeout_seconds: float = 900.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/local/vicw"
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


def local_context(function_name: str = "vicw-local", timeout_seconds: float = 900.0) -> LambdaContext:
    return LambdaContext(function_name=function_name, timeout_seconds=timeout_seconds)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from ReceiveMessage results."""
    records = []
    for m in messages:
        attrs = {
            name: {"dataType": a.get("DataType", "String"), "stringValue": a.get("StringValue"), "binaryValue": a.get("BinaryValue"),
                   "stringListValues": [], "binaryListValues": []}
            for name, a in (m.get("MessageAttributes") or {}).items()
        }
        records.append({
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": attrs,
            "md5OfBody": m.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        })
    return {"Records": records}


def poll_once(
    sqs: Any,
    queue_url: str,
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    context: Any = None,
    *,
    max_messages: int = 10,
    wait_seconds: int = 0,
    queue_arn: str | None = None,
) -> tuple[int, int]:
    """One receive -> invoke -> delete round, as the event source mapping does it.

    Records the handler reports in batchItemFailures are left on the queue (they come back after
    the visibility timeout and, after maxReceiveCount, move to the DLQ). Returns (received, failed).
    """
    resp = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds,
        MessageAttributeNames=["All"], AttributeNames=["All"],
    )
    messages = resp.get("Messages", [])
    if not messages:
        return 0, 0
    arn = queue_arn or sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    result = handler(sqs_event(messages, arn, arn.split(":")[3]), context) or {}
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in failed]
    for start in range(0, len(done), 10):
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])],
        )
    return len(messages), len(failed)
