"""Tests of models/tokenization.py: the Python rule and its TensorFlow twin agree, and training
sentences tokenise back to their CoNLL tokens."""

import os
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from components.conll_format import read_conll
from models.tokenization import WHITESPACE_CHARACTERS, tokenize, tokenize_tensor

REPO = Path(__file__).resolve().parents[2]
SHARED_DIR = Path(os.environ.get("NER_SHARED_DIR", REPO.parent / "shared"))

CASES = [
    b"Obama visited Paris",
    b"  leading and trailing \t\n",
    b"",
    b" \t \xc2\xa0 \xe3\x80\x80 ",  # whitespace only, with NBSP and ideographic space
    "no\u00a0break\u2009thin\u3000ideo\u2028line\x1cfs\x85nel".encode(),
    "caf\u00e9 cafe\u0301 \U0001f600 \u6771\u4eac".encode(),  # NFC, NFD, emoji, CJK: kept as is
    b"\xff",
    b"caf\xc3",
    b"\xe2\x82 x",
    b"a\x80b",
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xc0\xaf",  # overlong
    "zero\u200bwidth".encode(),  # U+200B is not whitespace for str.isspace()
]


def test_whitespace_is_exactly_str_isspace():
    expected = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert WHITESPACE_CHARACTERS == expected


@pytest.mark.parametrize("sentence", CASES)
def test_python_and_tensorflow_agree(sentence):
    # Reference: Python's own decode(errors="replace") and str.split() (same whitespace set).
    expected = sentence.decode("utf-8", errors="replace").split()
    assert tokenize(sentence) == expected
    assert tokenize(sentence.decode("utf-8", errors="replace")) == expected
    tensor_tokens = tokenize_tensor(tf.constant([sentence])).to_list()[0]
    assert [token.decode("utf-8") for token in tensor_tokens] == expected


def test_batch_and_empty_batch():
    tokens = tokenize_tensor(tf.constant(CASES))
    assert tokens.shape[0] == len(CASES)
    assert [[t.decode() for t in row] for row in tokens.to_list()] == [tokenize(s) for s in CASES]
    assert tokenize_tensor(tf.constant([], tf.string)).to_list() == []


def test_refuses_other_types():
    with pytest.raises(TypeError, match=r"Invalid value for `sentence`. Expected str or bytes"):
        tokenize(3)


@pytest.mark.parametrize(
    "path",
    [
        REPO / "data" / "sample" / "train.conll",
        REPO / "data" / "sample" / "eval.conll",
        SHARED_DIR / "datasets" / "wnut17" / "wnut17train.conll",
        SHARED_DIR / "datasets" / "wnut17" / "emerging.dev.conll",
    ],
    ids=lambda p: p.name,
)
def test_training_sentences_tokenise_back_to_their_tokens(path):
    if not path.exists():
        pytest.skip(f"{path} is not here (shared data folder absent)")
    for sentence in read_conll(path, on_error="skip"):
        assert tokenize(" ".join(sentence.tokens)) == list(sentence.tokens), (
            f"{sentence.path}:{sentence.line}"
        )
