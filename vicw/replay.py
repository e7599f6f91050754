"""Putting cold-path work back on the queues.

* `replay_dlq`: messages that failed MAX_RECEIVE_COUNT times sit in a dead-letter queue; once the
  cause is fixed, move them back to their source queue. SQS's own redrive (StartMessageMoveTask)
  is used when available; otherwise (older endpoints, emulators) the messages are moved by hand:
  receive, send to the source queue, and delete from the DLQ only after the send succeeded.
* `replay_archive`: re-send archived jobs, to rebuild the vectors and/or the graph (after a restore,
  a model change, a fixed extractor). Consumers are idempotent by construction, so replaying twice
  leaves the stores as replaying once. Each replay run carries its own id in a message attribute,
  so the consumers' duplicate-delivery guard does not mistake it for a redelivery.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from vicw.archive import JobArchive
from vicw.aws import client
from vicw.cold_path import REPLAY_ATTRIBUTE
from vicw.config import Settings, get_settings
from vicw.observability import logger
from vicw.window_store import WindowStore

QueueName = Literal["offload", "graph"]
Target = Literal["vectors", "graph", "all"]
_BATCH_BYTES = 200_000  # below SQS's limit for a whole SendMessageBatch request


def _queue_urls(queue: QueueName, settings: Settings) -> tuple[str, str]:
    if queue == "offload":
        source, dlq = settings.offload_queue_url, settings.offload_dlq_url
    elif queue == "graph":
        source, dlq = settings.graph_queue_url, settings.graph_dlq_url
    else:
        raise ValueError(f"unknown queue {queue!r}: expected 'offload' or 'graph'")
    if not source or not dlq:
        raise ValueError(f"{queue.upper()}_QUEUE_URL and {queue.upper()}_DLQ_URL must both be set to replay the {queue} DLQ")
    return source, dlq


def _attr(sqs: Any, url: str, name: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"][name]


def _depth(sqs: Any, url: str) -> int:
    return int(_attr(sqs, url, "ApproximateNumberOfMessages"))


def _move_by_hand(sqs: Any, dlq: str, source: str, limit: int) -> tuple[int, int]:
    """receive -> send -> delete, 10 at a time. Returns (moved, failed to send)."""
    moved = failed = 0
    while moved + failed < limit:
        resp = sqs.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=min(10, limit - moved - failed),
            MessageAttributeNames=["All"],
            AttributeNames=["MessageGroupId", "MessageDeduplicationId"],
            WaitTimeSeconds=1,
            VisibilityTimeout=60,
        )
        messages = resp.get("Messages", [])
        if not messages:
            break
        entries = []
        for i, m in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": m["Body"]}
            if m.get("MessageAttributes"):
                entry["MessageAttributes"] = m["MessageAttributes"]
            for key in ("MessageGroupId", "MessageDeduplicationId"):  # FIFO queues
                if key in m.get("Attributes", {}):
                    entry[key] = m["Attributes"][key]
            entries.append(entry)
        sent = sqs.send_message_batch(QueueUrl=source, Entries=entries)
        ok = {s["Id"] for s in sent.get("Successful", [])}
        failed += len(messages) - len(ok)
        for f in sent.get("Failed", []):
            logger.warning("DLQ message not re-sent; it stays in the DLQ", extra={"code": f.get("Code")})
        if ok:
            # Only what the source queue accepted leaves the DLQ; the rest reappears after the timeout.
            sqs.delete_message_batch(
                QueueUrl=dlq,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages) if str(i) in ok],
            )
            moved += len(ok)
    return moved, failed


def replay_dlq(
    queue: QueueName, *, max_messages: int | None = None, settings: Settings | None = None, use_move_task: bool = True
) -> dict[str, Any]:
    """Move a DLQ's messages back to its source queue.

    `max_messages` caps a manual move (default: the DLQ's depth when the replay starts, so messages
    that fail again and come back during the replay are not chased forever).
    """
    s = settings or get_settings()
    source, dlq = _queue_urls(queue, s)
    sqs = client("sqs")
    before = _depth(sqs, dlq)
    summary: dict[str, Any] = {"queue": queue, "dlq_depth_before": before}
    if before == 0 and max_messages is None:
        return {**summary, "method": "none", "moved": 0, "failed": 0, "dlq_depth_after": 0}
    if use_move_task and max_messages is None:
        try:
            task = sqs.start_message_move_task(SourceArn=_attr(sqs, dlq, "QueueArn"), DestinationArn=_attr(sqs, source, "QueueArn"))
            # SQS moves asynchronously; the count is what the DLQ held when the task started.
            return {**summary, "method": "message_move_task", "task_handle": task.get("TaskHandle"), "moved": before, "failed": 0}
        except (BotoCoreError, ClientError) as exc:
            logger.info("message move task unavailable; moving messages by hand", extra={"error": type(exc).__name__})
    moved, failed = _move_by_hand(sqs, dlq, source, max_messages if max_messages is not None else before)
    return {**summary, "method": "receive_send_delete", "moved": moved, "failed": failed, "dlq_depth_after": _depth(sqs, dlq)}


def _batches(bodies: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for body in bodies:
        n = len(body.encode())
        if batch and (len(batch) == 10 or size + n > _BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += n
    if batch:
        yield batch


def _send_all(sqs: Any, url: str, bodies: list[str], replay_id: str) -> tuple[int, int]:
    """Send a batch; entries SQS refuses get one more try each. Returns (sent, failed)."""
    attrs = {REPLAY_ATTRIBUTE: {"DataType": "String", "StringValue": replay_id}}
    resp = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b, "MessageAttributes": attrs} for i, b in enumerate(bodies)]
    )
    failed = 0
    for f in resp.get("Failed", []):  # one retry per refused entry, one at a time
        try:
            sqs.send_message(QueueUrl=url, MessageBody=bodies[int(f["Id"])], MessageAttributes=attrs)
        except ClientError as exc:
            failed += 1
            logger.warning("archived job not re-sent", extra={"code": exc.response.get("Error", {}).get("Code")})
    return len(bodies) - failed, failed


def replay_archive(
    tenant: str | None = None,
    session_id: str | None = None,
    since: datetime | float | str | None = None,
    target: Target = "all",
    progress: bool = True,
    *,
    windows: WindowStore,
    settings: Settings | None = None,
    archive: JobArchive | None = None,
) -> dict[str, Any]:
    """Re-enqueue archived jobs to the offload queue (vectors), the graph queue, or both.

    Returns `found` (archive objects matching the filters), `jobs` (read and re-sent), `skipped`
    (objects that vanished or did not parse as a job), and per queue `sent` and `failed`.
    """
    s = settings or get_settings()
    if target not in ("vectors", "graph", "all"):
        raise ValueError(f"unknown target {target!r}: expected vectors, graph or all")
    queues: dict[str, str] = {}
    if target in ("vectors", "all"):
        if not s.offload_queue_url:
            raise ValueError("OFFLOAD_QUEUE_URL is not set")
        queues["offload"] = s.offload_queue_url
    if target in ("graph", "all"):
        if not s.graph_queue_url:
            raise ValueError("GRAPH_QUEUE_URL is not set")
        queues["graph"] = s.graph_queue_url
    archive = archive or JobArchive(s)
    sqs = client("sqs")
    replay_id = str(uuid.uuid4())
    total = archive.count(tenant, session_id, since) if progress else None
    bar = None
    if progress and total:  # no bar for nothing to do
        try:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="job", desc=f"replay -> {'+'.join(queues)}")
        except ImportError:
            bar = None

    counts: dict[str, Any] = {
        "found": 0,
        "jobs": 0,
        "skipped": 0,
        "sent": dict.fromkeys(queues, 0),
        "failed": dict.fromkeys(queues, 0),
        "replay_id": replay_id,
    }

    highest: dict[tuple[str, str], int] = {}

    def bodies() -> Iterator[str]:
        for key in archive.iter_keys(tenant, session_id, since):
            counts["found"] += 1
            if bar is not None:
                bar.update(1)
            try:
                job = archive.get(key)
            except (ClientError, ValueError) as exc:  # deleted since listed (forget), or not a job
                counts["skipped"] += 1
                logger.warning("archived object skipped", extra={"key_suffix": key[-60:], "error": type(exc).__name__})
                continue
            counts["jobs"] += 1
            if job.kind == "conversation" and job.session_id is not None and job.turns:
                where = (job.tenant, job.session_id)
                highest[where] = max(highest.get(where, -1), job.last_seq)
            yield job.model_dump_json()

    try:
        for batch in _batches(bodies()):
            for name, url in queues.items():
                sent, failed = _send_all(sqs, url, batch, replay_id)
                counts["sent"][name] += sent
                counts["failed"][name] += failed
    finally:
        if bar is not None:
            bar.close()
    counts["sessions_advanced"] = advance_counters(windows, highest)
    return counts


def advance_counters(windows: WindowStore, highest: dict[tuple[str, str], int]) -> int:
    """Raise each session's turn counter past the highest seq long-term memory holds for it.

    After a restore the windows can be older than the archive; without this the next turns would
    reuse seqs (and so turn, job and point ids) of the replayed ones and overwrite them.
    Returns how many counters moved.
    """
    if not highest:
        return 0
    moved = 0
    for (tenant, session_id), seq in highest.items():
        before = windows.load(tenant, session_id)
        if windows.advance_seq(tenant, session_id, seq + 1) != (before.next_seq if before else None):
            moved += 1
    return moved
