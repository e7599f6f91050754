"""A cold-path worker process for the crash test: polls one queue with the real offload handler.

    python -m tests.reliability.offload_worker QUEUE_URL FUNCTION_TIMEOUT_S

Settings come from the environment (REDIS_URL, QDRANT_PATH, ARCHIVE_BUCKET, AWS_*). It polls until
the queue has been empty for two rounds, then prints one JSON line per processed record outcome.
"""

from __future__ import annotations

import json
import sys


def main(queue_url: str, function_timeout: float) -> int:
    from vicw.aws import client
    from vicw.lambda_context import local_context, poll_once
    from vicw.local.runner import load_function

    module = load_function("offload")
    handler = module.handler
    outcomes: list[dict] = []

    def recording(event: dict, context: object) -> dict:
        worker = module.worker.get()
        original = worker.process_job

        def process_job(job, replay_id=""):
            result = original(job, replay_id)
            outcomes.append({"job_id": job.job_id, "duplicate": bool(result.get("duplicate")), "points": result["points"]})
            return result

        worker.process_job = process_job
        try:
            return handler(event, context)
        finally:
            worker.process_job = original

    sqs = client("sqs")
    empty = 0
    while empty < 2:
        # A fresh context per invocation: its timeout is the Lambda function's, which bounds how long
        # a crashed invocation's in-progress idempotency record can block a redelivery.
        received, _ = poll_once(sqs, queue_url, recording, local_context("vicw-offload", function_timeout), wait_seconds=1)
        empty = 0 if received else empty + 1
    for o in outcomes:
        print(json.dumps(o), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], float(sys.argv[2])))
