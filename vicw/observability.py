"""One Logger, one Metrics and one Tracer for every function, and every metric name in one place."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "vicw")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "VICW")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)


class M:
    """Metric names (CloudWatch EMF in Lambda, Prometheus locally). Add new names here only."""

    CHAT_REQUESTS = "ChatRequests"
    CHAT_LATENCY_MS = "ChatLatencyMs"
    LLM_LATENCY_MS = "LlmLatencyMs"
    RETRIEVAL_LATENCY_MS = "RetrievalLatencyMs"
    HOT_PATH_LATENCY_MS = "HotPathLatencyMs"
    PROMPT_TOKENS = "PromptTokens"
    TOKENS_SAVED = "TokensSaved"
    WINDOW_PRESSURE = "WindowPressure"
    OFFLOADS = "Offloads"
    OFFLOADED_TURNS = "OffloadedTurns"
    MEMORIES_INJECTED = "MemoriesInjected"
    ECHO_REGENERATIONS = "EchoRegenerations"
    BOREDOM_WARNINGS = "BoredomWarnings"
    LLM_ERRORS = "LlmErrors"
    RECORDS_PROCESSED = "RecordsProcessed"
    RECORDS_FAILED = "RecordsFailed"
    EMBEDDING_LATENCY_MS = "EmbeddingLatencyMs"
    DLQ_DEPTH = "DlqDepth"
    OUTBOX_PENDING = "OutboxPending"
    RATE_LIMITED = "RateLimited"
    AUTH_FAILURES = "AuthFailures"
