"""The cold path: what happens to an offload job after it leaves the hot path.

Two consumers read the same jobs (SNS fans each one out to two SQS queues):

* offload: archive the job to S3, split it into turn chunks, embed them, upsert them into Qdrant;
* graph: extract entities and relations into the knowledge graph (`vicw.graph_store`).

Both are safe to run twice on the same job. Deterministic point/node ids make every write an
overwrite; on top of that a Powertools idempotency record in Redis (keyed on function + job id)
turns a redelivered job into a no-op. A job re-sent on purpose by `vicw replay archive` carries a
replay id in a message attribute, which is part of the idempotency key, so it is processed again.

Nothing here knows Lambda event shapes except `ColdPathWorker.handle_batch`, which feeds SQS
records through Powertools' BatchProcessor so that one bad record never fails its batch.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import redis
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    async_process_partial_response,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError
from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer
from pydantic import ValidationError

from vicw.errors import InvalidInput
from vicw.models import OffloadJob, Turn
from vicw.observability import M, logger, metrics

REPLAY_ATTRIBUTE = "vicw-replay"
# Long enough to cover SQS redelivery, outbox re-sends and SNS retries; short enough that Redis
# never accumulates much (one small key per job and function).
IDEMPOTENCY_TTL_SECONDS = 24 * 3600

JobHandler = Callable[[OffloadJob], dict[str, Any]]


class InvalidJob(InvalidInput):
    """An SQS record whose body is not an OffloadJob. It fails alone and ends up in the DLQ."""


def parse_job(body: str | bytes | None) -> OffloadJob:
    """Validate a record body as an OffloadJob (raw SNS delivery; a wrapped SNS envelope is accepted too)."""
    if not body:
        raise InvalidJob("empty record body")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidJob(f"record body is not JSON ({exc.msg} at position {exc.pos})") from None
    if isinstance(data, dict) and data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
        return parse_job(data["Message"])  # the subscription lost RawMessageDelivery
    try:
        return OffloadJob.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        # The message names the field, never the content: bodies hold user text.
        raise InvalidJob(f"record body is not an OffloadJob: {exc.error_count()} error(s), first at {where}: {first['msg']}") from None


# --- one bad turn never sinks its job ------------------------------------------------------------
def _quarantine(function: str, job: OffloadJob, turn: Turn, exc: BaseException) -> None:
    # The log names the turn, never its content (user text); the traceback says what broke.
    logger.warning(
        "turn quarantined: it cannot be processed, the rest of its job is stored without it",
        exc_info=exc,
        extra={"function": function, "job_id": job.job_id, "tenant": job.tenant, "seq": turn.seq,
               "error": f"{type(exc).__name__}: {exc}"[:300]},
    )


def _count_quarantined(function: str, seqs: list[int]) -> None:
    if not seqs:
        return
    metrics.add_metric(name=M.TURNS_QUARANTINED, unit=MetricUnit.Count, value=len(seqs))


def screen_turns(job: OffloadJob, function: str, check: Callable[[OffloadJob], object]) -> tuple[OffloadJob, list[int]]:
    """The job without the turns that cannot be processed, and the seqs of those left out.

    Every turn is tried alone against what the consumer will do with it that depends only on the
    data: serialising it (stores and the archive take JSON/UTF-8; a lone surrogate cannot be),
    its timestamp as epoch seconds, its rendering, and `check` (the consumer's own pure step:
    chunking, rule extraction). Store writes stay per job: their failures are outages, retried by
    the queue. Each left-out turn is logged at WARNING with its traceback and counted
    (`TurnsQuarantined`); the job's other turns go on.
    """
    good: list[Turn] = []
    bad: list[int] = []
    for turn in job.turns:
        try:
            turn.model_dump_json()
            turn.timestamp.timestamp()
            turn.rendered().encode()
            check(job.model_copy(update={"turns": [turn]}))
        except Exception as exc:  # noqa: BLE001 - whatever breaks on this turn's data, it must not break its neighbours
            _quarantine(function, job, turn, exc)
            bad.append(turn.seq)
        else:
            good.append(turn)
    if not bad:
        return job, []
    _count_quarantined(function, bad)
    return job.model_copy(update={"turns": good, "token_count": sum(t.tokens for t in good)}), bad


class OffloadProcessor:
    """archive -> chunk -> embed -> upsert. Each step is an idempotent write."""

    def __init__(self, embedder: Any, vectors: Any, archive: Any | None = None) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.archive = archive

    def _embed(self, job: OffloadJob, chunks: list[Any]) -> tuple[list[Any], list[Any], list[int]]:
        """Vectors for the chunks; if the batch fails, chunk by chunk, leaving out the turns that fail.

        Returns (chunks kept, their vectors, seqs left out). If no chunk can be embedded the model
        itself is the problem: the original error is raised and the job is retried.
        """
        try:
            return chunks, list(self.embedder.embed([c.text for c in chunks])), []
        except Exception:
            if len(chunks) <= 1:
                raise
            one_by_one: list[Any] = []
            failed: dict[int, BaseException] = {}
            for c in chunks:
                try:
                    one_by_one.append(self.embedder.embed([c.text])[0])
                except Exception as exc:  # noqa: BLE001 - isolate the chunk that breaks the model
                    one_by_one.append(None)
                    failed.setdefault(c.payload["seq"], exc)
            if len(failed) == len({c.payload["seq"] for c in chunks}):
                raise
        turns = {t.seq: t for t in job.turns}
        for seq, exc in failed.items():
            _quarantine("offload", job, turns[seq], exc)
        kept = [(c, v) for c, v in zip(chunks, one_by_one, strict=True) if c.payload["seq"] not in failed]
        return [c for c, _ in kept], [v for _, v in kept], sorted(failed)

    def process(self, job: OffloadJob) -> dict[str, Any]:
        job, quarantined = screen_turns(job, "offload", self.vectors.chunks)
        # Archive first: if anything later fails, the job can still be rebuilt from S3.
        key = self.archive.put(job) if self.archive is not None and job.turns else None
        chunks = self.vectors.chunks(job)
        started = time.perf_counter()
        chunks, vectors, dropped = self._embed(job, chunks) if chunks else ([], [], [])
        embed_ms = (time.perf_counter() - started) * 1000
        if chunks:
            metrics.add_metric(name=M.EMBEDDING_LATENCY_MS, unit=MetricUnit.Milliseconds, value=round(embed_ms, 1))
        _count_quarantined("offload", dropped)
        points = self.vectors.upsert_job(job, vectors, chunks) if chunks else 0
        out = {"job_id": job.job_id, "points": points, "turns": len(job.turns), "embed_ms": round(embed_ms, 1), "archive_key": key}
        if quarantined or dropped:
            out["quarantined_turns"] = sorted(quarantined + dropped)
        return out


def graph_processor(job: OffloadJob, store: Any, extractor: Any = None) -> dict[str, Any]:
    from vicw.graph_store import process_graph_job

    return process_graph_job(job, store, extractor=extractor)


class GraphProcessor:
    def __init__(self, store: Any | None, extractor: Any = None) -> None:
        self.store = store
        self.extractor = extractor

    def process(self, job: OffloadJob) -> dict[str, Any]:
        if self.store is None:  # GRAPH_BACKEND=none: consume the job, do nothing
            return {"job_id": job.job_id, "skipped": "graph store not configured"}
        from vicw.extraction import extract

        job, quarantined = screen_turns(job, "graph", extract)
        if not job.turns:
            return {"job_id": job.job_id, "turns": 0, "quarantined_turns": quarantined}
        out = graph_processor(job, self.store, self.extractor)
        return {**out, "quarantined_turns": quarantined} if quarantined else out


class IdempotentRunner:
    """Runs a job handler at most once per (function, job id, replay id) while the Redis record lives.

    The record is an optimisation, not the guarantee (deterministic ids are): if reading or writing
    it fails, the job is processed without it rather than failed. (Redis being down still fails
    the record earlier, at the deleted-session check in `ColdPathWorker.process_job`.)
    """

    def __init__(self, name: str, handler: JobHandler, client: redis.Redis | None, ttl: int = IDEMPOTENCY_TTL_SECONDS) -> None:
        self.name = name
        self.handler = handler
        self.config = IdempotencyConfig(
            event_key_jmespath="[job_id, replay]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl,
            response_hook=self._mark_duplicate,
        )
        self.persistence = None
        if client is not None:
            with warnings.catch_warnings():
                # Powertools 3.x: CachePersistenceLayer is an alias of the class its own warning deprecates.
                warnings.simplefilter("ignore", DeprecationWarning)
                self.persistence = CachePersistenceLayer(client=client)
        self._run = None
        if self.persistence is not None:
            prefix = f"{os.environ.get('AWS_LAMBDA_FUNCTION_NAME', 'vicw')}.{name}"
            self._run = idempotent_function(
                self._work, data_keyword_argument="key", persistence_store=self.persistence, config=self.config, key_prefix=prefix
            )

    @staticmethod
    def _mark_duplicate(response: Any, record: Any) -> Any:
        return {**response, "duplicate": True} if isinstance(response, dict) else response

    def _work(self, *, key: dict[str, str], job: OffloadJob) -> dict[str, Any]:
        return self.handler(job)

    def register_context(self, context: Any) -> None:
        # In-progress records then expire with the invocation, so a crashed run cannot block retries.
        self.config.register_lambda_context(context)

    def __call__(self, job: OffloadJob, replay_id: str = "") -> dict[str, Any]:
        if self._run is None:
            return self.handler(job)
        try:
            return self._run(key={"job_id": job.job_id, "replay": replay_id}, job=job)
        except IdempotencyPersistenceLayerError as exc:
            logger.warning(
                "idempotency store unavailable; processing without it",
                extra={"function": self.name, "job_id": job.job_id, "error": type(exc.__cause__ or exc).__name__},
            )
            return self.handler(job)


class ColdPathWorker:
    """One cold-path function: SQS batch in, partial batch response out."""

    def __init__(
        self,
        name: str,
        handler: JobHandler,
        redis_client: redis.Redis | None = None,
        warm_up: Callable[[], None] | None = None,
        workers: int = 1,
    ) -> None:
        self.name = name
        self.redis = redis_client
        self.workers = max(1, workers)
        self.runner = IdempotentRunner(name, handler, redis_client)
        self._warm_up = warm_up
        self._outbox: Any = None

    def warm_up(self) -> None:
        """Load what is slow to load (the embedding model) before the first batch arrives."""
        if self._warm_up is not None:
            self._warm_up()

    def process_job(self, job: OffloadJob, replay_id: str = "") -> dict[str, Any]:
        # Before the idempotency record: a skipped job must not mark its (deterministic) id as done.
        # If Redis cannot say whether the session was deleted, the record fails and is retried.
        if self.redis is not None:
            from vicw.forget import is_forgotten

            if is_forgotten(self.redis, job):
                logger.info("job of a deleted session dropped", extra={"function": self.name, "job_id": job.job_id})
                self._confirm(job)
                return {"job_id": job.job_id, "skipped": "session deleted"}
        result = self.runner(job, replay_id)
        self._confirm(job)
        return result

    def _confirm(self, job: OffloadJob) -> None:
        """Tell the hot path's outbox this function is done with the job (the last one removes it).

        Best effort: if Redis cannot take the confirmation, the job stays in the outbox, is sent
        again later, and the idempotency record makes that a quick no-op that confirms.
        """
        if self.redis is None:
            return
        try:
            from vicw.window_store import WindowStore

            if self._outbox is None:
                self._outbox = WindowStore(self.redis)
            self._outbox.outbox_confirm(job.job_id, self.name)
        except redis.RedisError as exc:
            logger.warning(
                "outbox confirmation failed; the job will be sent again",
                extra={"function": self.name, "job_id": job.job_id, "error": type(exc).__name__},
            )

    def _record_handler(self, record: SQSRecord) -> dict[str, Any]:
        try:
            job = parse_job(record.body)
            replay = record.message_attributes[REPLAY_ATTRIBUTE]  # Powertools: None when absent
            result = self.process_job(job, (replay.string_value or "") if replay is not None else "")
        except Exception as exc:
            logger.warning(
                "cold-path record failed",
                extra={"function": self.name, "message_id": record.message_id, "error": f"{type(exc).__name__}: {exc}"[:500]},
            )
            raise
        logger.debug("cold-path record done", extra={"function": self.name, **result})
        if result.get("quarantined_turns") and not result.get("duplicate") and self.redis is not None:
            try:
                from vicw.worker_stats import record_quarantined

                record_quarantined(self.redis, self.name, len(result["quarantined_turns"]))
            except Exception as exc:  # noqa: BLE001 - counters for /stats must never fail a record
                logger.debug("worker stats not recorded", extra={"error": type(exc).__name__})
        return result

    def handle_batch(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.runner.register_context(context)
        if self.workers == 1:
            processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
            response = process_partial_response(event=event, record_handler=self._record_handler, processor=processor, context=context)
        else:
            # Records overlap: one job's S3/Qdrant/Redis round trips run while another is embedded.
            slots = asyncio.Semaphore(self.workers)

            async def record_handler(record: SQSRecord) -> dict[str, Any]:
                async with slots:
                    return await asyncio.to_thread(self._record_handler, record)

            processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
            response = async_process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        failed = len(response.get("batchItemFailures", []))
        processed = len(event.get("Records", [])) - failed
        metrics.add_metric(name=M.RECORDS_PROCESSED, unit=MetricUnit.Count, value=processed)
        metrics.add_metric(name=M.RECORDS_FAILED, unit=MetricUnit.Count, value=failed)
        self._record_outcome(processed, failed)
        return response

    def _record_outcome(self, processed: int, failed: int) -> None:
        if self.redis is None:
            return
        try:
            from vicw.worker_stats import record_outcome

            record_outcome(self.redis, self.name, processed, failed)
        except Exception as exc:  # noqa: BLE001 - counters for /stats must never fail a batch
            logger.debug("worker stats not recorded", extra={"error": type(exc).__name__})


def clear_in_progress_records(client: redis.Redis) -> int:
    """Delete idempotency records left "in progress" by consumers that were killed.

    Only for a process that owns every consumer of this Redis and has not started them yet (`vicw
    local` at start): nothing can be in progress then, and a stale record would make the re-sent
    job fail until the record expires and the queue's visibility timeout passes (minutes).
    """
    doomed = []
    for key in client.scan_iter(match="*#*", count=1000):
        try:
            value = client.get(key)
        except redis.ResponseError:  # not a string: not a Powertools record
            continue
        if value and b'"INPROGRESS"' in value:
            doomed.append(key)
    return int(client.delete(*doomed)) if doomed else 0


class LazyWorker:
    """Builds its worker on first use and keeps it for the life of the process (the Lambda sandbox).

    On Lambda the handler module calls `get()` at import, so the model loads during the init phase;
    elsewhere (tests, local tools) importing a handler connects to nothing.
    """

    def __init__(self, build: Callable[[], ColdPathWorker]) -> None:
        self._build = build
        self._worker: ColdPathWorker | None = None

    def get(self) -> ColdPathWorker:
        if self._worker is None:
            self._worker = self._build()
        return self._worker

    def reset(self) -> None:
        self._worker = None

    def warm_if_on_lambda(self) -> None:
        if on_lambda():
            self.get().warm_up()


def on_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and "AWS_LAMBDA_RUNTIME_API" in os.environ


def lambda_entry(name: str, build: Callable[[], ColdPathWorker]) -> tuple[LazyWorker, Callable[..., dict]]:
    """The (worker, handler) pair a cold-path function's app.py exposes.

    The worker is built once per sandbox (on Lambda during init, locally on first invoke); the
    handler adds Powertools context, metric flushing and tracing around one SQS batch.
    """
    from vicw.lambda_context import local_context
    from vicw.observability import logger, metrics, tracer

    worker = LazyWorker(build)
    worker.warm_if_on_lambda()

    @logger.inject_lambda_context
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def _handle(event: dict, context: object) -> dict:
        return worker.get().handle_batch(event, context)

    def handler(event: dict, context: object = None) -> dict:
        return _handle(event, context or local_context(f"vicw-{name}"))

    return worker, handler
