"""Documents into long-term memory: split on token boundaries (paragraphs kept whole where they
fit), then published to the cold path as `OffloadJob(kind="document")`, exactly like shed turns.

A document belongs to one session (`session_id`) or, without one, to the whole tenant (every
session of the tenant can retrieve it). Ids are derived from the content, so ingesting the same
document twice rewrites the same points instead of duplicating them.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vicw.errors import PayloadTooLarge
from vicw.models import JOB_NAMESPACE, OffloadJob, Turn, checked_utc, utcnow
from vicw.tokens import TOKENS_PER_MESSAGE, TokenCounter

if TYPE_CHECKING:
    from vicw.queues import JobPublisher

# A part is embedded as one point: the embedding model reads ~256 word pieces, the vector store
# splits anything over 200 tokens, and the part's "[date] title:" prefix needs room too.
PART_TOKENS = 160
# SQS messages are at most 256 KiB; stay well below with the JSON framing of each turn.
JOB_MAX_BYTES = 160_000
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


class DocumentTooLarge(PayloadTooLarge):
    """The document exceeds MAX_INGEST_BYTES."""


class IngestUnavailable(RuntimeError):
    """The queue did not accept the document's jobs; nothing is lost, the caller should retry."""


@dataclass
class IngestResult:
    job_id: str  # the document id; its jobs are job_id/0, job_id/1, ...
    parts: int
    tokens: int
    jobs: list[str]


def _pieces(text: str, counter: TokenCounter, max_tokens: int) -> list[str]:
    """Paragraphs, or sentences of a long paragraph, or token slices of a long sentence."""
    out: list[str] = []
    for para in _PARAGRAPH.split(text):
        para = para.strip()
        if not para:
            continue
        if counter.count_text(para) <= max_tokens:
            out.append(para)
            continue
        for sentence in _SENTENCE.split(para):
            if counter.count_text(sentence) <= max_tokens:
                out.append(sentence)
            else:
                out.extend(s.strip() for s in counter.split(sentence, max_tokens) if s.strip())
    return out


def split_document(text: str, counter: TokenCounter, max_tokens: int = PART_TOKENS) -> list[str]:
    """Greedy packing of whole paragraphs (then sentences) into parts of at most `max_tokens`."""
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for piece in _pieces(text, counter, max_tokens):
        cost = counter.count_text(piece) + (2 if current else 0)  # the "\n\n" joining pieces
        if current and used + cost > max_tokens:
            parts.append("\n\n".join(current))
            current, used = [], 0
            cost = counter.count_text(piece)
        current.append(piece)
        used += cost
    if current:
        parts.append("\n\n".join(current))
    # joining can merge tokens differently: re-check and split anything still over the limit
    return [p for part in parts for p in ([part] if counter.count_text(part) <= max_tokens else counter.split(part, max_tokens))]


def document_id(tenant: str, session_id: str | None, document: str, metadata: dict[str, str]) -> str:
    digest = hashlib.sha256(document.encode()).hexdigest()
    meta = "&".join(f"{k}={metadata[k]}" for k in sorted(metadata))
    return str(uuid.uuid5(JOB_NAMESPACE, f"document/{tenant}/{session_id}/{digest}/{meta}"))


def _when(metadata: dict[str, str]) -> datetime:
    raw = metadata.get("date") or metadata.get("timestamp")
    if raw:
        try:
            return checked_utc(datetime.fromisoformat(raw))
        except ValueError:
            pass
    return utcnow()


def build_jobs(tenant: str, session_id: str | None, document: str, metadata: dict[str, str], counter: TokenCounter,
               max_tokens: int = PART_TOKENS) -> tuple[str, list[OffloadJob], int]:
    """(document id, jobs, total tokens). Each part is a "user" turn named after the title."""
    doc_id = document_id(tenant, session_id, document, metadata)
    title = (metadata.get("title") or "document").strip()[:128] or "document"
    when = _when(metadata)
    turns = []
    for seq, part in enumerate(split_document(document, counter, max_tokens)):
        tokens = counter.count_message("user", part) + TOKENS_PER_MESSAGE
        turns.append(Turn(seq=seq, role="user", content=part, name=title, timestamp=when, tokens=tokens))
    jobs: list[OffloadJob] = []
    batch: list[Turn] = []
    size = 0
    meta = {**{k: str(v) for k, v in metadata.items()}, "document_id": doc_id}

    def close() -> None:
        nonlocal batch, size
        if batch:
            jobs.append(OffloadJob(job_id=f"{doc_id}/{len(jobs)}", tenant=tenant, session_id=session_id, kind="document",
                                   turns=batch, token_count=sum(t.tokens for t in batch), metadata=meta))
        batch, size = [], 0

    for turn in turns:
        cost = len(turn.model_dump_json()) + 64
        if batch and size + cost > JOB_MAX_BYTES:
            close()
        batch.append(turn)
        size += cost
    close()
    return doc_id, jobs, sum(t.tokens for t in turns)


def ingest_document(
    tenant: str,
    document: str,
    metadata: dict[str, Any] | None,
    session_id: str | None,
    *,
    counter: TokenCounter,
    publisher: JobPublisher,
    redis: Any = None,
    max_bytes: int,
) -> IngestResult:
    size = len(document.encode())
    if size > max_bytes:
        raise DocumentTooLarge(f"document is {size} bytes; the limit is {max_bytes} (MAX_INGEST_BYTES)")
    if not document.strip():
        raise ValueError("document is empty")
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    doc_id, jobs, tokens = build_jobs(tenant, session_id, document, meta, counter)
    sent = publisher.publish(jobs)
    if sent < len(jobs):
        raise IngestUnavailable(f"the offload queue accepted {sent} of {len(jobs)} parts; retry (ingestion is idempotent)")
    if redis is not None:
        from vicw.retrieval.source import ingest_version_keys

        keys = ingest_version_keys(tenant, session_id or "")
        redis.incr(keys[1] if session_id else keys[0])  # tells retrieval caches that documents changed
    return IngestResult(job_id=doc_id, parts=sum(len(j.turns) for j in jobs), tokens=tokens, jobs=[j.job_id for j in jobs])
