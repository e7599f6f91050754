"""BM25 sparse vectors, encoded exactly as Qdrant's own BM25 encoder does it.

Qdrant Edge ships a `Bm25` encoder whose config mirrors the server's BM25 inference. Importing the
engine just to encode text would put 35 MB of native code into every Lambda (the chat and offload
functions talk to a Qdrant server and are already near Lambda's 250 MB limit), so the encoding is
done here with the two libraries fastembed already brings: the Snowball English stemmer
(py-rust-stemmers) and MurmurHash3 (mmh3). tests/unit/test_bm25.py checks, text by text, that the
result equals Edge's `Bm25(Bm25Config(avg_len=BM25_AVG_LEN))`: lower-cased words (letters and
digits; `_`, `'` and other punctuation split), English stop words dropped, Snowball-stemmed,
hashed to abs(murmur3_32); a document weights each term by its saturated frequency
tf·(k+1) / (tf + k·(1 − b + b·len/avg_len)) and a query gives each distinct term 1.0. The engine
applies IDF (the vectors' `Modifier.Idf`) at query time.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

K = 1.2
B = 0.75
# Tokens per chunk are ~20-60 (chat turns, capped at 200): length normalisation relative to that,
# not to the encoder's default of 256. Part of the stored schema: every writer uses this value.
BM25_AVG_LEN = 40.0

STOP_WORDS = frozenset(
    """a about above after again against ain all am an and any are aren as at be because been before being below
    between both but by can couldn d did didn do does doesn doing don down during each few for from further had hadn
    has hasn have haven having he her here hers herself him himself his how i if in into is isn it its itself just
    ll m ma me more most my myself no nor not now o of off on once only or other our ours ourselves out over own re
    s same shan she should shouldn so some such t than that the their theirs them themselves then there these they
    this those through to too under until up ve very was wasn we were weren what when where which while who whom
    why will with won wouldn y you your yours yourself yourselves""".split()
)
_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202
    import py_rust_stemmers

    return py_rust_stemmers.SnowballStemmer("english")


@lru_cache(maxsize=50_000)
def _term(word: str) -> int:
    import mmh3

    return abs(mmh3.hash(_stemmer().stem_word(word)))


def terms(text: str) -> list[int]:
    """Hashed stems of the text's words, stop words removed, in order."""
    return [_term(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def encode_document(text: str, avg_len: float = BM25_AVG_LEN) -> tuple[list[int], list[float]]:
    ts = terms(text)
    norm = K * (1 - B + B * len(ts) / avg_len)
    counts = Counter(ts)
    indices = sorted(counts)
    return indices, [counts[i] * (K + 1) / (counts[i] + norm) for i in indices]


def encode_query(text: str) -> tuple[list[int], list[float]]:
    indices = sorted(set(terms(text)))
    return indices, [1.0] * len(indices)
