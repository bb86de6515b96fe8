"""`serve_sentences` of a tagger with the pretrained encoder channel (all-MiniLM-L6-v2).

The word-piece tokenisation runs inside the SavedModel (Transform's graph, core TensorFlow ops):
raw sentences of any length in, tags out, in this process and in a fresh one with plain
TensorFlow; a reloaded model tags as the exported one did.
"""

import numpy as np
import pytest
import tensorflow as tf
from test_serve_sentences import (
    SENTENCES,
    check_batched_equals_one_at_a_time,
    check_consistent,
    check_fresh_process_tags_alike,
    serve,
)

from models.tokenization import tokenize

pytestmark = pytest.mark.slow

# Words the vocabulary splits into many pieces, unknown characters, accents, CJK, emoji.
ENCODER_SENTENCES = [
    *SENTENCES,
    "supercalifragilisticexpialidocious @paulwalk #2017 😀 東京 Ängström \x01",
]


@pytest.fixture(scope="module")
def loaded(encoder_model_dir):
    return tf.saved_model.load(encoder_model_dir)


def test_consistent_at_any_length_and_on_odd_words(loaded):
    long_sentence = " ".join(["Paris", "Obama", "supercalifragilistic", "hi"] * 40)
    sentences = [*ENCODER_SENTENCES, long_sentence]
    check_consistent(serve(loaded, sentences), sentences)


def test_batched_equals_one_at_a_time(loaded):
    # The encoder's attention sums over more padded keys in a batch: 1e-4 on the confidences.
    check_batched_equals_one_at_a_time(loaded, ENCODER_SENTENCES, atol=1e-4)


def test_every_signature_tags_alike(loaded):
    by_sentences = serve(loaded, ENCODER_SENTENCES)
    tokens = [tokenize(sentence) for sentence in ENCODER_SENTENCES]
    width = max(len(t) for t in tokens)
    padded = tf.constant([t + [""] * (width - len(t)) for t in tokens], tf.string)
    by_tokens = loaded.signatures["serve_tokens"](tokens=padded)
    np.testing.assert_array_equal(by_tokens["tags"].numpy(), by_sentences["tags"])


def test_fresh_process_with_plain_tensorflow(loaded, encoder_model_dir):
    check_fresh_process_tags_alike(loaded, encoder_model_dir, ENCODER_SENTENCES)
