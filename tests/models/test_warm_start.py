"""Warm start: weights reused only when the compatibility records are equal, else a reason."""

import dataclasses
import os

import keras
import numpy as np
import pytest

from models.config import ModelConfig, PreprocessingConfig, TaggerConfig
from models.warm_start import (
    WARM_START_DIR,
    compatibility_record,
    save_warm_start_state,
    warm_start,
)

CONFIG = TaggerConfig(preprocessing=PreprocessingConfig(tag_names=("O", "B-person", "I-person")))
TOKENS = ["[PAD]", "[OOV]", "paris", "alice"]
CHARS = ["[PAD]", "[OOV]", "a", "p"]


def small_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,), dtype="int32")
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Embedding(4, 2)(inputs)))
    return keras.Model(inputs, outputs)


def saved_base(tmp_path, record):
    """A trained-model stand-in saved as run_fn saves it; returns (model, base_model path)."""
    model = small_model(seed=1)
    serving = str(tmp_path / "base_model" / "Format-Serving")
    directory = save_warm_start_state(model, record, serving)
    assert directory == str(tmp_path / "base_model" / WARM_START_DIR)
    return model, serving


def weights_equal(first, second):
    return all(
        np.array_equal(a, b) for a, b in zip(first.get_weights(), second.get_weights(), strict=True)
    )


def test_same_vocabularies_load_the_base_weights(tmp_path):
    record = compatibility_record(CONFIG, TOKENS, CHARS)
    base, serving = saved_base(tmp_path, record)
    fresh = small_model(seed=2)
    assert not weights_equal(base, fresh)
    assert (
        warm_start(fresh, compatibility_record(CONFIG, list(TOKENS), list(CHARS)), serving) is None
    )
    assert weights_equal(base, fresh)


@pytest.mark.parametrize(
    "tokens, chars, config, changed",
    [
        (TOKENS + ["lima"], CHARS, CONFIG, "token_vocabulary"),
        # Same words, other ids: the embedding rows would mean other words.
        (TOKENS[:2] + TOKENS[:1:-1], CHARS, CONFIG, "token_vocabulary"),
        (TOKENS, CHARS + ["z"], CONFIG, "char_vocabulary"),
        (
            TOKENS,
            CHARS,
            dataclasses.replace(CONFIG, model=ModelConfig(lstm_units=3)),
            "model",
        ),
        (
            TOKENS,
            CHARS,
            dataclasses.replace(
                CONFIG, preprocessing=PreprocessingConfig(tag_names=("O", "B-person"))
            ),
            "tag_vocabulary",
        ),
    ],
)
def test_a_change_skips_the_warm_start_and_names_it(tmp_path, tokens, chars, config, changed):
    base, serving = saved_base(tmp_path, compatibility_record(CONFIG, TOKENS, CHARS))
    fresh = small_model(seed=2)
    before = fresh.get_weights()
    reason = warm_start(fresh, compatibility_record(config, tokens, chars), serving)
    assert reason == f"changed since the base model: {changed}"
    assert all(np.array_equal(a, b) for a, b in zip(before, fresh.get_weights()))


def test_pretrained_embeddings_path_does_not_matter(tmp_path):
    _, serving = saved_base(tmp_path, compatibility_record(CONFIG, TOKENS, CHARS))
    other = dataclasses.replace(CONFIG, model=ModelConfig(pretrained_embeddings_path="/x.txt"))
    assert warm_start(small_model(2), compatibility_record(other, TOKENS, CHARS), serving) is None


def test_no_base_model_or_no_saved_weights(tmp_path):
    record = compatibility_record(CONFIG, TOKENS, CHARS)
    assert warm_start(small_model(2), record, None).startswith("no base model")
    serving = str(tmp_path / "old_model" / "Format-Serving")
    os.makedirs(serving)
    reason = warm_start(small_model(2), record, serving)
    assert reason.startswith("the base model has no warm-start weights")
