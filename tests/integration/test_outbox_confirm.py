"""The outbox keeps each offload job until every consumer confirmed it (real Redis, moto SNS/SQS)."""

from __future__ import annotations

import time
import uuid

from tests.integration.test_hot_path import grow
from vicw.aws import client
from vicw.queues import JobPublisher
from vicw.window_store import OUTBOX, OUTBOX_ACKS, WindowStore


def topic_publisher(store: WindowStore, confirm_after: float = 900.0) -> JobPublisher:
    arn = client("sns").create_topic(Name=f"outbox-{uuid.uuid4().hex[:8]}")["TopicArn"]
    return JobPublisher(store, arn, None, confirm_after=confirm_after)


def test_a_job_leaves_the_outbox_only_when_both_consumers_confirmed(redis_client, moto_endpoint):
    store = WindowStore(redis_client)
    publisher = topic_publisher(store)
    _, jobs, _ = grow(store, "s", 12)
    assert jobs and publisher.publish(jobs) == len(jobs)
    assert store.outbox_size() == 0 and store.outbox_unconfirmed_size() == len(jobs)  # sent, kept
    from vicw.health import outbox_counts_of

    assert outbox_counts_of(store, "t") == (0, len(jobs))  # what /stats shows as outbox_pending / outbox_unconfirmed

    first = jobs[0].job_id
    assert store.outbox_confirm(first, "offload") == 0  # the graph consumer has not confirmed yet
    assert store.outbox_confirm(first, "offload") == 0  # a redelivery confirms again, harmlessly
    assert store.outbox_confirm(first, "graph") == 1
    assert store.outbox_confirm(first, "graph") == -1  # gone: a late duplicate changes nothing
    assert not redis_client.hexists(OUTBOX, first)
    assert not [f for f in redis_client.hkeys(OUTBOX_ACKS) if f.startswith(first.encode())]
    assert store.outbox_unconfirmed_size() == len(jobs) - 1


def test_queue_only_route_needs_the_offload_consumer_alone(redis_client, moto_endpoint):
    store = WindowStore(redis_client)
    url = client("sqs").create_queue(QueueName=f"outbox-q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    publisher = JobPublisher(store, None, url)
    _, jobs, _ = grow(store, "q", 12)
    publisher.publish(jobs)
    assert all(store.outbox_confirm(j.job_id, "offload") == 1 for j in jobs)
    assert store.outbox_unconfirmed_size() == 0 and redis_client.hlen(OUTBOX) == 0 and redis_client.hlen(OUTBOX_ACKS) == 0


def test_unconfirmed_jobs_are_sent_again_with_growing_delays(redis_client, moto_endpoint):
    store = WindowStore(redis_client)
    publisher = topic_publisher(store, confirm_after=0.2)
    _, jobs, _ = grow(store, "r", 12)
    publisher.publish(jobs)
    assert publisher.flush_outbox() == 0  # nothing due yet
    time.sleep(0.3)
    assert publisher.flush_outbox() == len(jobs)  # nobody confirmed: sent again
    sends = {int(redis_client.hget(OUTBOX_ACKS, f"{j.job_id}|sends")) for j in jobs}
    assert sends == {2}
    time.sleep(0.3)
    assert publisher.flush_outbox() == 0  # the second wait is twice as long
    # After a crash the local runner sends everything still unconfirmed at once.
    assert publisher.resend_all_unconfirmed() == len(jobs)


def test_a_confirmation_that_wins_the_race_with_the_send_leaves_nothing_behind(redis_client):
    store = WindowStore(redis_client)
    _, jobs, _ = grow(store, "race", 12)
    job = jobs[0].job_id
    store.outbox_prepare_send([job], ("offload", "graph"))
    assert store.outbox_confirm(job, "graph") == 0
    assert store.outbox_confirm(job, "offload") == 1
    assert store.outbox_mark_sent(job, 900) == -1  # the send's bookkeeping arrives late: a no-op
    assert store.outbox_unconfirmed_size() == 0 and not redis_client.hexists(OUTBOX, job)
    assert not [f for f in redis_client.hkeys(OUTBOX_ACKS) if f.startswith(job.encode())]
