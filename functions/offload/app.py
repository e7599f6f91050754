"""Offload function: SQS batch of offload jobs -> S3 archive + embeddings in Qdrant."""

from vicw.cold_path import LazyWorker, build_offload_worker
from vicw.lambda_context import local_context
from vicw.observability import logger, metrics, tracer

# Built once per sandbox. On Lambda the slow parts load during init; locally, on first invoke.
worker = LazyWorker(build_offload_worker)
worker.warm_if_on_lambda()


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def _handle(event: dict, context: object) -> dict:
    return worker.get().handle_batch(event, context)


def handler(event: dict, context: object = None) -> dict:
    return _handle(event, context or local_context("vicw-offload"))
