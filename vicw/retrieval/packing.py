"""Turning ranked corpus rows into `Memory` objects that fit the memory budget.

`build_prompt` makes the final fit (window first, then memories best-first); packing here keeps
what is handed over small and ordered: every memory at most `max_memory_tokens`, a hit followed
by the turn that completes its exchange, and no more than the budget in total.
"""

from __future__ import annotations

from datetime import UTC, datetime

from vicw.models import as_utc
from vicw.prompt import Memory
from vicw.tokens import TokenCounter
from vicw.vector_store import MemoryRecord


def strip_prefix(record: MemoryRecord) -> str:
    """The stored text without the "[date] speaker:" prefix (the citation shows both already)."""
    text = record.text
    if record.speaker and record.iso:
        when = as_utc(datetime.fromisoformat(record.iso))
        prefix = f"[{when:%Y-%m-%d %H:%M}] {record.speaker}:"
        if text.startswith(prefix):
            return text[len(prefix):].lstrip()
    if record.speaker and text.startswith(f"{record.speaker}:"):
        return text[len(record.speaker) + 1:].lstrip()
    return text


def memory_id(record: MemoryRecord) -> str:
    """Short, stable, readable: the turn number in a conversation, document and part otherwise."""
    if record.kind == "document":
        title = (record.speaker or "doc")[:24]
        return f"{title}#{record.seq}" + (f".{record.part}" if record.parts > 1 else "")
    return f"{record.seq}" + (f".{record.part}" if record.parts > 1 else "")


def to_memory(record: MemoryRecord, score: float, source: str, counter: TokenCounter, max_tokens: int) -> Memory:
    text = strip_prefix(record)
    if counter.count_text(text) > max_tokens:
        text = counter.truncate(text, max_tokens - 1) + "…"
    # Points written before timestamps were always aware may hold a naive ISO time: it means UTC.
    when = as_utc(datetime.fromisoformat(record.iso)) if record.iso else datetime.fromtimestamp(record.timestamp, UTC)
    turn_ids = [record.turn_id] if record.kind == "conversation" else [f"doc:{record.job_id}:{record.turn_id}"]
    return Memory(id=memory_id(record), text=text, score=score, source=source, turn_ids=turn_ids, timestamp=when,
                  speaker=record.speaker, session_id=record.session_id)


def pack(memories: list[Memory], counter: TokenCounter, budget: int) -> list[Memory]:
    """Best-first selection whose citations fit `budget` tokens; order and scores preserved."""
    chosen: list[Memory] = []
    used = 0
    seen: set[str] = set()
    for mem in memories:
        key = "|".join(mem.turn_ids) or mem.id
        if key in seen:
            continue
        cost = counter.count_text(mem.cite() + "\n")
        if used + cost > budget:
            continue
        chosen.append(mem)
        seen.add(key)
        used += cost
    return chosen
