"""Maintenance function: run on a schedule (EventBridge). Re-sends offload jobs stranded in the
outbox, forgets sessions older than RETENTION_DAYS, then takes the nightly backup.

The event carries nothing we need (EventBridge's `time` is informative only): the sweep uses the
current time. With RETENTION_DAYS unset it does nothing and says so.
"""

from vicw import bootstrap
from vicw.backup import scheduled_backup
from vicw.lambda_context import local_context
from vicw.observability import logger, metrics, tracer
from vicw.retention import sweep


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def _handle(event: dict, context: object) -> dict:
    resent = bootstrap.publisher().flush_outbox(older_than=bootstrap.settings().outbox_resend_after_seconds, limit=1000)
    receipt = sweep(bootstrap.forget_stores(), retention_days=bootstrap.settings().retention_days)
    # The Lambda result is kept by CloudWatch: counts and ids only, never contents.
    result = {k: receipt[k] for k in ("now", "retention_days", "scanned", "forgotten", "failed") if k in receipt}
    # After the sweep, so a backup never holds sessions that were due to be forgotten.
    return {**result, "outbox_resent": resent, "backup": scheduled_backup()}


def handler(event: dict, context: object = None) -> dict:
    return _handle(event, context or local_context("vicw-maintenance"))
