"""One Logger, one Metrics and one Tracer for every function, and every metric name in one place."""

from __future__ import annotations

import logging
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.constants import MAX_METRICS

from vicw.metric_names import M as M  # the metric names, importable from here as before
from vicw.redaction import mask_credentials, mask_value

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "vicw")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "VICW")


class _EmfAndPrometheus(AmazonCloudWatchEMFProvider):
    """Every add_metric feeds the Prometheus registry (vicw.metrics_export) as well as the EMF
    metric set that @log_metrics flushes.

    With POWERTOOLS_METRICS_DISABLED (`vicw local`) Powertools never prints the set at the end of
    an invocation, but it still prints on its own once a metric holds 100 values; the set is
    emptied before that, and at every flush, so nothing reaches stdout and nothing piles up."""

    def add_metric(self, name: str, unit: Any, value: float, resolution: Any = 60) -> None:
        from vicw.metrics_export import record

        record(name, unit, value)
        if is_metrics_disabled():
            held = self.metric_set.get(name.strip())
            if len(self.metric_set) >= MAX_METRICS - 1 or (held is not None and len(held["Value"]) >= MAX_METRICS - 1):
                self.metric_set.clear()
        super().add_metric(name=name, unit=unit, value=value, resolution=resolution)

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if is_metrics_disabled():
            self.clear_metrics()
            return
        super().flush_metrics(raise_on_empty_metrics=raise_on_empty_metrics)


class _MaskingFormatter(LambdaPowertoolsFormatter):
    """The structured JSON line, with credentials inside URLs masked wherever they appear in it:
    the message, extra keys, exception text and traceback alike."""

    def serialize(self, log: dict) -> str:
        return mask_credentials(super().serialize(log))


class _MaskingFilter(logging.Filter):
    """Masks the record itself, so handlers other than ours (a propagated record reaching the root
    logger's handlers, pytest's capture) never see a credential either."""

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg, record.args = mask_credentials(record.getMessage()), None
        else:  # Powertools logs a dict message as a JSON object: keep it one
            record.msg = mask_value(record.msg)
        for key, value in list(record.__dict__.items()):
            if key not in self._STANDARD:
                record.__dict__[key] = mask_value(value)
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = mask_credentials(logging.Formatter().formatException(record.exc_info))
        return True


def _install_record_masking() -> None:
    """Mask the message of every log record the process creates, whichever library logs it (httpx
    and botocore log request URLs at INFO/DEBUG): one wrapper around the record factory."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "vicw_masking", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if isinstance(record.msg, str):
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed record is left for logging to report
                return record
            masked = mask_credentials(message)
            if masked != message:
                record.msg, record.args = masked, None
        return record

    factory.vicw_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_masking()
logger = Logger(service=SERVICE, logger_formatter=_MaskingFormatter())
logger.addFilter(_MaskingFilter())
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Same shared metric/dimension sets as any other Metrics() instance, with the forwarding provider.
metrics.provider = _EmfAndPrometheus(
    metric_set=metrics.metric_set, dimension_set=metrics.dimension_set, metadata_set=metrics.metadata_set,
    default_dimensions=metrics.default_dimensions, namespace=NAMESPACE, service=SERVICE,
)
tracer = Tracer(service=SERVICE)
