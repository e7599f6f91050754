"""Every metric name VICW emits, in one place (no imports: both the metrics code and the
Prometheus bridge read it)."""


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
    MEMORY_UNAVAILABLE = "MemoryUnavailable"  # a turn answered without (part of) long-term memory: a store or the model failed
    TURNS_QUARANTINED = "TurnsQuarantined"  # cold-path turns that could not be processed and were left out
    STREAMS_ABANDONED = "StreamsAbandoned"  # a streaming client left mid-reply; generation stopped
    MCP_TOOL_CALLS = "McpToolCalls"  # MCP tool calls that reached a tool (after auth and argument checks)
    MCP_TOOL_ERRORS = "McpToolErrors"  # of those, answered with a tool error: bad input, an outage, a crash
