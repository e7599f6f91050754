"""Sending offload jobs to the cold path, and reading queue depths for /stats.

Jobs go to the SNS topic (which fans out to the offload and graph queues) or, when no topic is
configured, straight to the offload queue. A job leaves the Redis outbox only when every consumer
it was sent to has confirmed it (`vicw.window_store`); `flush_outbox` sends what was never sent
(SQS unreachable, process crash) and re-sends what nobody confirmed in time (a message lost with
an in-memory emulator, a job dead-lettered and never replayed). Consumers are idempotent, so a
job sent twice is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from vicw.aws import client
from vicw.models import OffloadJob
from vicw.observability import logger
from vicw.window_store import WindowStore


@dataclass
class QueueRef:
    name: str
    url: str | None
    dlq_url: str | None


# The consumers behind each route: SNS fans out to both queues; the queue alone feeds offload.
TOPIC_CONSUMERS = ("offload", "graph")
QUEUE_CONSUMERS = ("offload",)


class JobPublisher:
    def __init__(
        self,
        store: WindowStore,
        topic_arn: str | None,
        queue_url: str | None,
        sns=None,  # noqa: ANN001
        sqs=None,  # noqa: ANN001
        confirm_after: float = 900.0,
    ) -> None:
        self.store = store
        self.topic_arn = topic_arn
        self.queue_url = queue_url
        self.confirm_after = confirm_after
        self._sns, self._sqs = sns, sqs

    @property
    def configured(self) -> bool:
        return bool(self.topic_arn or self.queue_url)

    @property
    def consumers(self) -> tuple[str, ...]:
        return TOPIC_CONSUMERS if self.topic_arn else QUEUE_CONSUMERS

    def _send(self, job: OffloadJob) -> None:
        body = job.model_dump_json()
        attrs = {"tenant": {"DataType": "String", "StringValue": job.tenant}}
        if self.topic_arn:
            (self._sns or client("sns")).publish(TopicArn=self.topic_arn, Message=body, MessageAttributes=attrs)
        else:
            (self._sqs or client("sqs")).send_message(QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attrs)

    def publish(self, jobs: list[OffloadJob]) -> int:
        """Send jobs already recorded in the outbox. Returns how many were sent; never raises for SQS/SNS."""
        sent = 0
        if not self.configured or not jobs:
            return 0
        self.store.outbox_prepare_send([j.job_id for j in jobs], self.consumers)
        for job in jobs:
            try:
                self._send(job)
            except (BotoCoreError, ClientError) as exc:
                logger.warning("offload job kept in outbox for retry", extra={"job_id": job.job_id, "error": type(exc).__name__})
                continue
            self.store.outbox_mark_sent(job.job_id, self.confirm_after)
            sent += 1
        return sent

    def flush_outbox(self, older_than: float = 0.0, limit: int = 100, *, unconfirmed: bool = True) -> int:
        """Send jobs never sent (written at least `older_than` s ago) and, with `unconfirmed`, re-send
        those whose consumers did not all confirm them in time."""
        sent = self.publish(self.store.outbox_pending(older_than=older_than, limit=limit))
        if unconfirmed:
            overdue = self.store.outbox_unconfirmed(limit=limit)
            for job in overdue:
                logger.warning("offload job not confirmed by every consumer in time; sending it again", extra={"job_id": job.job_id})
            sent += self.publish(overdue)
        return sent

    def resend_all_unconfirmed(self, batch: int = 100) -> int:
        """Send every unsent and unconfirmed job now (the queues were lost: a local emulator restarted)."""
        total = self.publish(self.store.outbox_pending(limit=10**9))
        ids = self.store.outbox_unconfirmed_ids()  # a snapshot: sending moves a job's score
        for start in range(0, len(ids), batch):
            total += self.publish(self.store.outbox_jobs(ids[start : start + batch]))
        return total



def queue_depths(queues: list[QueueRef]) -> dict[str, dict[str, int | None]]:
    """visible / in_flight / dlq message counts per queue (approximate, as SQS reports them)."""
    sqs = client("sqs")
    out: dict[str, dict[str, int | None]] = {}
    for q in queues:
        entry: dict[str, int | None] = {"visible": None, "in_flight": None, "dlq": None}
        try:
            if q.url:
                a = sqs.get_queue_attributes(
                    QueueUrl=q.url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                entry["visible"] = int(a["ApproximateNumberOfMessages"])
                entry["in_flight"] = int(a["ApproximateNumberOfMessagesNotVisible"])
            if q.dlq_url:
                a = sqs.get_queue_attributes(QueueUrl=q.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
                entry["dlq"] = int(a["ApproximateNumberOfMessages"])
        except (BotoCoreError, ClientError) as exc:
            entry["error"] = type(exc).__name__  # type: ignore[assignment]
        out[q.name] = entry
    return out
