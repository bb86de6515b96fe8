"""A frozen encoder runs once per split (models/frozen_encoder.py), and the tagger trained on its
cached word vectors is the tagger that is exported and warm-started (all-MiniLM-L6-v2, installed
by the lock)."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from test_tagger_encoder import SENTENCES, build, checkpoint, config_for, features_of  # noqa: F401
from transform_fixtures import trainer_fn_args, write_transformed

from models import run_fn
from models import train as train_module
from models.config import TaggerConfig
from models.encoder.bert_encoder import bert_encoder_for
from models.features import (
    ENCODER_INPUT_KEYS,
    ENCODER_VECTORS_KEY,
    LENGTHS_KEY,
    MODEL_INPUT_KEYS,
    TAG_IDS_KEY,
    TOKEN_IDS_KEY,
    TOKENS_SIGNATURE,
)
from models.frozen_encoder import cached_eval_features, cached_train_features, frozen_encoder_models
from models.warm_start import WARM_START_DIR, WEIGHTS_FILE, warm_start

MORE_SENTENCES = SENTENCES + [
    ["Angela", "Merkel", "in", "Berlin"],
    ["the", "New", "York", "Times"],
    ["ok"],
    ["Paris", "Hilton", "and", "Nicky", "Hilton", "said", "hi"],
    ["@user", "#tag", "https://example.com"],
]


def batched(features: dict, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(features).batch(batch_size)


def all_features(config) -> dict:
    features = features_of(MORE_SENTENCES, config)
    features[LENGTHS_KEY] = np.array([len(s) for s in MORE_SENTENCES], np.int64)
    features[TAG_IDS_KEY] = np.where(features[TOKEN_IDS_KEY] > 0, 3, 0)
    return features


def alone(frozen, features, row) -> np.ndarray:
    """The word vectors of sentence `row` run through the encoder by itself: (length, hidden)."""
    inputs = {key: features[key][row : row + 1] for key in ENCODER_INPUT_KEYS}
    vectors = ops.convert_to_numpy(frozen.word_vectors(inputs))[0]
    return vectors[: features[LENGTHS_KEY][row]]


def zero_the_encoder(model):
    for variable in model.get_layer("encoder").weights:
        variable.assign(np.zeros(variable.shape, variable.dtype))


@pytest.mark.parametrize("output", ["crf", "softmax"])
def test_the_head_on_the_encoders_vectors_is_the_tagger(checkpoint, output):  # noqa: F811
    config = config_for(checkpoint, encoder_trainable=False, output=output)
    model = build(checkpoint, config)
    frozen = frozen_encoder_models(model)
    assert {v.path for v in frozen.head.weights} <= {v.path for v in model.weights}
    assert not any(v.path.startswith("encoder/") for v in frozen.head.weights)
    features = features_of(SENTENCES, config)
    vectors = frozen.word_vectors({key: features[key] for key in ENCODER_INPUT_KEYS})
    head_inputs = {key: features[key] for key in MODEL_INPUT_KEYS}
    head_inputs[ENCODER_VECTORS_KEY] = ops.convert_to_numpy(vectors)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(frozen.head(head_inputs)), ops.convert_to_numpy(model(features))
    )


def test_train_features_hold_each_sentence_once_per_pass_and_the_encoder_runs_once(
    checkpoint,  # noqa: F811
    tmp_path,
):
    config = config_for(checkpoint, encoder_trainable=False)
    model = build(checkpoint, config)
    frozen = frozen_encoder_models(model)
    features = all_features(config)
    expected = [alone(frozen, features, row) for row in range(len(MORE_SENTENCES))]
    dataset = cached_train_features(
        batched(features, 3),
        frozen.word_vectors,
        str(tmp_path / "train"),
        batch_size=3,
        shuffle_buffer_size=100,
        seed=1,
    )
    orders = []
    for epoch in range(3):
        order = []
        for batch in dataset:
            lengths = batch[LENGTHS_KEY].numpy()
            # Padded to the batch's longest sentence, as `model_batches(trim=True)` cuts.
            assert batch[TOKEN_IDS_KEY].shape[1] == lengths.max()
            assert batch[ENCODER_VECTORS_KEY].shape[1] == lengths.max()
            for index, length in enumerate(lengths):
                token_ids = batch[TOKEN_IDS_KEY].numpy()[index]
                row = next(
                    row
                    for row in range(len(MORE_SENTENCES))
                    if np.array_equal(features[TOKEN_IDS_KEY][row][:length], token_ids[:length])
                    and features[LENGTHS_KEY][row] == length
                )
                order.append(row)
                vectors = batch[ENCODER_VECTORS_KEY].numpy()[index]
                np.testing.assert_allclose(vectors[:length], expected[row], atol=2e-5)
                assert not vectors[length:].any() and not token_ids[length:].any()
                np.testing.assert_array_equal(
                    batch[TAG_IDS_KEY].numpy()[index][:length], features[TAG_IDS_KEY][row][:length]
                )
        assert sorted(order) == list(range(len(MORE_SENTENCES)))
        orders.append(order)
        if epoch == 0:
            # The later passes read the cache: an encoder that now gives other vectors is not
            # run again.
            zero_the_encoder(model)
    assert len({tuple(order) for order in orders}) > 1  # reshuffled between passes


def test_eval_features_keep_their_order_width_and_cached_vectors(checkpoint, tmp_path):  # noqa: F811
    config = config_for(checkpoint, encoder_trainable=False)
    model = build(checkpoint, config)
    frozen = frozen_encoder_models(model)
    features = all_features(config)
    expected = [alone(frozen, features, row) for row in range(len(MORE_SENTENCES))]
    dataset = cached_eval_features(batched(features, 3), frozen.word_vectors, str(tmp_path / "e"))
    for _pass in range(2):
        row = 0
        for batch in dataset:
            width = features[TOKEN_IDS_KEY].shape[1]
            assert batch[ENCODER_VECTORS_KEY].shape[1:] == (width, 384)
            for index in range(batch[TOKEN_IDS_KEY].shape[0]):
                np.testing.assert_array_equal(
                    batch[TOKEN_IDS_KEY].numpy()[index], features[TOKEN_IDS_KEY][row]
                )
                length = features[LENGTHS_KEY][row]
                vectors = batch[ENCODER_VECTORS_KEY].numpy()[index]
                np.testing.assert_allclose(vectors[:length], expected[row], atol=2e-5)
                assert not vectors[length:].any()
                row += 1
        assert row == len(MORE_SENTENCES)
        zero_the_encoder(model)


TAGS = ("O", "B-person", "I-person", "B-location", "I-location")
TRAINING_SENTENCES = [
    (["Obama", "visited", "Paris"], ["B-person", "O", "B-location"]),
    (["Paris", "Hilton", "said", "hi"], ["B-person", "I-person", "O", "O"]),
    (["I", "love", "New", "York"], ["O", "O", "B-location", "I-location"]),
    (["hello"], ["O"]),
]


def encoder_custom_config(path, trainable: bool) -> dict:
    return {
        "tagger": {
            "preprocessing": {"tag_names": list(TAGS), "max_length": 6, "max_word_length": 5,
                              "token_frequency_threshold": 1, "max_pieces_per_word": 2},
            "model": {"word_embedding_dim": 4, "casing_embedding_dim": 2,
                      "char_embedding_dim": 3, "char_filters": 4, "lstm_units": 4,
                      "encoder_path": path, "encoder_trainable": trainable},
            "training": {"epochs": 2, "batch_size": 2},
        }
    }  # fmt: skip


def saved_weights(serving_model_dir) -> dict:
    path = os.path.join(os.path.dirname(serving_model_dir), WARM_START_DIR, WEIGHTS_FILE)
    with np.load(path) as weights:
        return dict(weights)


def checkpoint_encoder(checkpoint, tagger_config):  # noqa: F811
    """The encoder's real weights (stored ones times the multiplier: what the warm-start file
    holds) as the Trainer builds them from the checkpoint, by path."""
    training = tagger_config.training
    multiplier = training.encoder_learning_rate / training.learning_rate
    encoder = bert_encoder_for(
        checkpoint.config, learning_rate_multiplier=multiplier, name="encoder"
    )
    encoder.build()
    encoder.assign_checkpoint(checkpoint.weights)
    return {variable.path: np.asarray(variable) * multiplier for variable in encoder.weights}


@pytest.mark.slow
def test_trainer_with_a_frozen_encoder_trains_the_rest_and_warm_starts(
    checkpoint,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """`run_fn` with a frozen encoder: the encoder's weights leave training as they came in, the
    rest moves, the cached vectors are removed, the export tags like the trained model; a second,
    fine-tuned run warm-starts from it, encoder included."""
    config = encoder_custom_config(checkpoint.path, trainable=False)
    write_transformed(tmp_path, TRAINING_SENTENCES, config)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    os.makedirs(tmp_path / "temp")
    first = trainer_fn_args(tmp_path, tmp_path / "first", config)
    run_fn.run_fn(first)
    # The cached vectors are removed (autograph leaves its own files there).
    assert not [name for name in os.listdir(tmp_path / "temp") if name.startswith("frozen_enc")]

    trained = saved_weights(first.serving_model_dir)
    encoder = checkpoint_encoder(checkpoint, TaggerConfig.from_custom_config(config))
    assert set(encoder) <= set(trained)
    for path, value in encoder.items():
        np.testing.assert_array_equal(trained[path], value, err_msg=path)
    served = tf.saved_model.load(first.serving_model_dir)
    outputs = served.signatures[TOKENS_SIGNATURE](
        tokens=tf.constant([["Obama", "visited", "Paris"]])
    )
    assert outputs["tags"].shape == (1, 3)

    # A fine-tuned run warm-starts from the frozen one: every weight, the encoder's included,
    # starts where the first run left it, also with another encoder learning rate (so another
    # multiplier: other stored values for the same real ones).
    fine_tuned = encoder_custom_config(checkpoint.path, trainable=True)
    fine_tuned["tagger"]["training"].update(epochs=1, encoder_learning_rate=3e-4)
    second = trainer_fn_args(tmp_path, tmp_path / "second", fine_tuned, first.serving_model_dir)
    loaded = {}

    def record_warm_start(model, record, base_model):
        result = warm_start(model, record, base_model)
        multiplier = model.get_layer("encoder").learning_rate_multiplier
        loaded.update(
            {
                variable.path: np.asarray(variable)
                * (multiplier if variable.path.startswith("encoder/") else 1)
                for variable in model.weights
            }
        )
        return result

    monkeypatch.setattr(train_module, "warm_start", record_warm_start)
    run_fn.run_fn(second)
    assert set(loaded) == set(trained)
    for path, value in trained.items():
        # Divided by one multiplier, multiplied by another: float32 rounding.
        np.testing.assert_allclose(loaded[path], value, rtol=1e-6, atol=1e-9, err_msg=path)
    moved = saved_weights(second.serving_model_dir)
    assert not np.array_equal(
        moved["encoder/layer_0_query_kernel"], trained["encoder/layer_0_query_kernel"]
    )
