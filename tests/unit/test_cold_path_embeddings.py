"""The offline embedding model: right size, unit vectors, meaning-preserving, loaded once."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import run_in_threads
from vicw.embeddings import MINILM_DIM, Embedder, minilm_model_dir


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    import os

    os.environ["FASTEMBED_CACHE_PATH"] = str(tmp_path_factory.mktemp("fastembed"))
    try:
        yield Embedder()
    finally:
        os.environ.pop("FASTEMBED_CACHE_PATH", None)


def test_model_folder_has_what_fastembed_needs(tmp_path):
    folder = minilm_model_dir(tmp_path)
    for name in ("model.onnx", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (folder / name).is_file(), name
    assert minilm_model_dir(tmp_path) == folder  # second call reuses it


def test_dimension_and_unit_norm(embedder):
    vecs = np.array(embedder.embed(["hello world", "a much longer sentence about invoices and due dates " * 5]))
    assert vecs.shape == (2, MINILM_DIM) == (2, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)


def test_similar_sentences_are_closer_than_unrelated(embedder):
    cat, kitten, tax = (np.array(v) for v in embedder.embed([
        "The cat is sleeping on the sofa.",
        "A kitten naps on the couch.",
        "Corporate tax returns are due at the end of the quarter.",
    ]))
    assert cat @ kitten > cat @ tax + 0.3
    assert cat @ kitten > kitten @ tax + 0.3


def test_embed_one_matches_batch_and_empty_input(embedder):
    one = embedder.embed_one("Alice paid the invoice on Tuesday.")
    batch = embedder.embed(["Alice paid the invoice on Tuesday.", "something else"])[0]
    assert np.allclose(one, batch, atol=1e-5)
    assert embedder.embed([]) == []


def test_concurrent_first_use_loads_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", str(tmp_path))
    e = Embedder()
    models, errors = [], []

    def work() -> None:
        try:
            e.embed_one("thread safety")
            models.append(id(e._model))
        except Exception as exc:  # noqa: BLE001 - pragma: no cover - reported below
            errors.append(exc)

    run_in_threads(work, 4)
    assert not errors
    assert len(set(models)) == 1


def test_wrong_dimension_setting_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", str(tmp_path))
    with pytest.raises(ValueError, match="EMBEDDING_DIM=768"):
        Embedder(dim=768).embed_one("x")
