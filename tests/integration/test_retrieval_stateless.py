"""No per-process corpus: two fresh processes, each answering its very first query with no warm-up
beyond loading the model, return the same memories; retrieval keeps nothing between calls."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.integration.test_retrieval import A_TEXTS, job, turns
from vicw.cold_path import OffloadProcessor
from vicw.embeddings import Embedder
from vicw.vector_edge import EdgeVectorStore

ASK = textwrap.dedent("""
    import json, sys
    from vicw.embeddings import Embedder
    from vicw.models import WindowState
    from vicw.retrieval import HybridMemorySource, RetrievalRecipe
    from vicw.tokens import TokenCounter
    from vicw.vector_edge import EdgeVectorStore

    vectors = EdgeVectorStore(path=sys.argv[1], collection="stateless")
    source = HybridMemorySource(RetrievalRecipe(), TokenCounter("cl100k_base"), vectors=vectors, embedder=Embedder())
    state = WindowState(tenant="tenant-a", session_id="s", turns=[], next_seq=8, offloaded_turns=8)
    mems = source.retrieve("tenant-a", "s", sys.argv[2], state)
    print(json.dumps({"ids": [m.id for m in mems], "texts": [m.text for m in mems], "attrs": sorted(vars(source))}))
    vectors.close()
""")


def ask_in_fresh_process(path: str, question: str) -> dict:
    out = subprocess.run([sys.executable, "-c", ASK, path, question], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_fresh_processes_give_the_same_answer(tmp_path):
    path = str(tmp_path / "vectors")
    store = EdgeVectorStore(path=path, collection="stateless")
    OffloadProcessor(Embedder(), store).process(job("tenant-a", "s", turns(A_TEXTS)))
    store.close()  # the engine allows one process per shard at a time: the askers run one after another
    question = "What is my locker code at the gym?"
    first, second = ask_in_fresh_process(path, question), ask_in_fresh_process(path, question)
    assert first == second
    assert first["ids"] and "7319" in first["texts"][0]
    # what a source holds: its collaborators and the last timings, no memory of any tenant
    assert first["attrs"] == ["boredom", "counter", "embedder", "graph", "last_timings", "recipe", "redis", "vectors"]
