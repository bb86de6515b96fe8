"""Warm start: the base model's weights, embedding rows matched by word; else a reason and nothing
loaded."""

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
WORDS = ["paris", "alice"]  # ids 2 and 3: 0 is padding, 1 OOV
CHARS = ["a", "p"]


def small_model(seed, num_words=4, num_chars=4):
    """The tagger's embedding layer names (rows matched by word) and a dense layer."""
    keras.utils.set_random_seed(seed)
    words = keras.Input((3,), dtype="int32")
    chars = keras.Input((3,), dtype="int32")
    embedded = keras.layers.Concatenate()(
        [
            keras.layers.Embedding(num_words, 2, name="word_embedding")(words),
            keras.layers.Embedding(num_chars, 2, name="char_embedding")(chars),
            keras.layers.Embedding(num_words, 2, trainable=False, name="frozen_word_embedding")(
                words
            ),
        ]
    )
    outputs = keras.layers.Dense(2, name="dense")(keras.layers.Flatten()(embedded))
    return keras.Model([words, chars], outputs)


def saved_base(tmp_path, record, **sizes):
    """A trained-model stand-in saved as run_fn saves it; returns (model, base_model path)."""
    model = small_model(seed=1, **sizes)
    serving = str(tmp_path / "base_model" / "Format-Serving")
    directory = save_warm_start_state(model, record, serving)
    assert directory == str(tmp_path / "base_model" / WARM_START_DIR)
    return model, serving


def weights(model):
    return {variable.path: np.array(variable) for variable in model.weights}


def test_same_vocabularies_load_the_base_weights(tmp_path):
    base, serving = saved_base(tmp_path, compatibility_record(CONFIG, WORDS, CHARS))
    fresh = small_model(seed=2)
    assert (
        warm_start(fresh, compatibility_record(CONFIG, list(WORDS), list(CHARS)), serving) is None
    )
    for path, value in weights(base).items():
        np.testing.assert_array_equal(weights(fresh)[path], value, err_msg=path)


def test_rows_follow_the_words_when_the_vocabularies_change(tmp_path):
    # New data: "alice" is now more frequent than "paris" (other ids), "lima" is new, and a new
    # character "z" joins the character vocabulary.
    base, serving = saved_base(tmp_path, compatibility_record(CONFIG, WORDS, CHARS))
    words, chars = ["alice", "lima", "paris"], ["z", "a", "p"]
    fresh = small_model(seed=2, num_words=5, num_chars=5)
    initial = weights(fresh)
    assert warm_start(fresh, compatibility_record(CONFIG, words, chars), serving) is None
    old, new = weights(base), weights(fresh)
    np.testing.assert_array_equal(new["dense/kernel"], old["dense/kernel"])
    word_rows, old_words = new["word_embedding/embeddings"], old["word_embedding/embeddings"]
    np.testing.assert_array_equal(word_rows[:2], old_words[:2])  # padding, OOV
    np.testing.assert_array_equal(word_rows[2], old_words[3])  # alice
    np.testing.assert_array_equal(word_rows[4], old_words[2])  # paris
    np.testing.assert_array_equal(word_rows[3], initial["word_embedding/embeddings"][3])  # lima
    # The frozen pretrained channel's rows are the word embedding's rows.
    frozen, old_frozen = (
        new["frozen_word_embedding/embeddings"],
        old["frozen_word_embedding/embeddings"],
    )
    np.testing.assert_array_equal(frozen[[2, 4]], old_frozen[[3, 2]])
    np.testing.assert_array_equal(frozen[3], initial["frozen_word_embedding/embeddings"][3])
    char_rows, old_chars = new["char_embedding/embeddings"], old["char_embedding/embeddings"]
    np.testing.assert_array_equal(char_rows[2], initial["char_embedding/embeddings"][2])  # z
    np.testing.assert_array_equal(char_rows[3:], old_chars[2:])  # a, p


@pytest.mark.parametrize(
    "config, changed",
    [
        (dataclasses.replace(CONFIG, model=ModelConfig(lstm_units=3)), "model"),
        (
            dataclasses.replace(
                CONFIG, preprocessing=PreprocessingConfig(tag_names=("O", "B-person"))
            ),
            "tag_vocabulary",
        ),
        (
            dataclasses.replace(
                CONFIG, preprocessing=dataclasses.replace(CONFIG.preprocessing, max_length=9)
            ),
            "max_length",
        ),
    ],
)
def test_a_change_skips_the_warm_start_and_names_it(tmp_path, config, changed):
    _, serving = saved_base(tmp_path, compatibility_record(CONFIG, WORDS, CHARS))
    fresh = small_model(seed=2)
    before = weights(fresh)
    reason = warm_start(fresh, compatibility_record(config, WORDS, CHARS), serving)
    assert reason == f"changed since the base model: {changed}"
    for path, value in weights(fresh).items():
        np.testing.assert_array_equal(value, before[path])


def test_other_shapes_load_nothing(tmp_path):
    # A record that does not describe the saved weights (a dense layer of another size): no
    # weight is loaded, not even the ones that would fit.
    _, serving = saved_base(tmp_path, compatibility_record(CONFIG, WORDS, CHARS))
    keras.utils.set_random_seed(2)
    words = keras.Input((3,), dtype="int32")
    chars = keras.Input((3,), dtype="int32")
    embedded = keras.layers.Concatenate()(
        [
            keras.layers.Embedding(4, 2, name="word_embedding")(words),
            keras.layers.Embedding(4, 2, name="char_embedding")(chars),
            keras.layers.Embedding(4, 2, trainable=False, name="frozen_word_embedding")(words),
        ]
    )
    other = keras.Model(
        [words, chars], keras.layers.Dense(3, name="dense")(keras.layers.Flatten()(embedded))
    )
    before = weights(other)
    reason = warm_start(other, compatibility_record(CONFIG, WORDS, CHARS), serving)
    assert reason.startswith("dense/kernel has shape (18, 3)")
    for path, value in weights(other).items():
        np.testing.assert_array_equal(value, before[path])


def test_pretrained_embeddings_path_does_not_matter(tmp_path):
    _, serving = saved_base(tmp_path, compatibility_record(CONFIG, WORDS, CHARS))
    other = dataclasses.replace(CONFIG, model=ModelConfig(pretrained_embeddings_path="/x.txt"))
    assert warm_start(small_model(2), compatibility_record(other, WORDS, CHARS), serving) is None


def test_no_base_model_or_no_saved_weights(tmp_path):
    record = compatibility_record(CONFIG, WORDS, CHARS)
    assert warm_start(small_model(2), record, None).startswith("no base model")
    serving = str(tmp_path / "old_model" / "Format-Serving")
    os.makedirs(serving)
    reason = warm_start(small_model(2), record, serving)
    assert reason.startswith("the base model has no warm-start weights")


def tuned_model(vectors, tuned_ids, seed=0):
    """The tagger's `PretrainedWordEmbedding` (named as in the tagger) and a dense layer."""
    from models.tagger import PretrainedWordEmbedding

    keras.utils.set_random_seed(seed)
    words = keras.Input((3,), dtype="int32")
    layer = PretrainedWordEmbedding(*vectors.shape, len(tuned_ids), name="word_embedding")
    tuned, frozen = layer(words)
    embedded = keras.layers.Concatenate()([tuned, frozen])
    model = keras.Model(
        words, keras.layers.Dense(2, name="dense")(keras.layers.Flatten()(embedded))
    )
    layer.assign_vectors(vectors, tuned_ids)
    return model


@pytest.mark.parametrize("base_stored_its_table", [False, True])
def test_tuned_rows_follow_the_words_and_base_tuned_words_stay_tuned(
    tmp_path, base_stored_its_table
):
    from models.warm_start import WARM_START_DIR, WEIGHTS_FILE, base_tuned_words

    # Base: words paris, alice, rome (ids 2-4); it tuned padding, OOV and paris.
    base_words = ["paris", "alice", "rome"]
    base = tuned_model(np.arange(10, dtype=np.float32).reshape(5, 2), [0, 1, 2])
    base.get_layer("word_embedding").tuned.assign(-np.ones((3, 2), np.float32))  # "training"
    serving = str(tmp_path / "base_model" / "Format-Serving")
    save_warm_start_state(base, compatibility_record(CONFIG, base_words, CHARS), serving)
    weights_path = tmp_path / "base_model" / WARM_START_DIR / WEIGHTS_FILE
    saved = dict(np.load(weights_path))
    # The frozen pretrained table is the vectors file's: not duplicated beside the SavedModel.
    assert "word_embedding/frozen" not in saved
    assert "word_embedding/tuned" in saved and "dense/kernel" in saved
    if base_stored_its_table:  # a base model written before the table was left out
        saved["word_embedding/frozen"] = np.asarray(base.get_layer("word_embedding").frozen)
        np.savez(weights_path, **saved)
    assert base_tuned_words(serving) == {"paris"}
    assert base_tuned_words(None) == set()

    # New run: "lima" is new (id 3), the vocabulary order changed; it tunes alice, lima, paris.
    # Its vectors differ from the base's, to tell apart which table a row came from.
    words = ["alice", "lima", "paris", "rome"]
    vectors = 100 + np.arange(12, dtype=np.float32).reshape(6, 2)
    fresh = tuned_model(vectors, [0, 1, 2, 3, 4], seed=5)
    assert warm_start(fresh, compatibility_record(CONFIG, words, CHARS), serving) is None
    layer = fresh.get_layer("word_embedding")
    by_id = np.asarray(layer(np.arange(6)[None, :])[0])[0]  # the tuned channel of every id
    np.testing.assert_array_equal(by_id[:2], [[-1, -1], [-1, -1]])  # padding, OOV: the base's
    np.testing.assert_array_equal(by_id[3], vectors[3])  # lima: new, its fresh vector
    np.testing.assert_array_equal(by_id[4], [-1, -1])  # paris: the base's tuned vector
    frozen = np.asarray(layer.frozen)
    if base_stored_its_table:
        # Untuned rows by word from the base's stored table, as before.
        np.testing.assert_array_equal(by_id[2], [6, 7])  # alice: the base's (untuned) vector
        np.testing.assert_array_equal(by_id[5], [8, 9])  # rome: not tuned, the base's frozen row
        np.testing.assert_array_equal(frozen[[2, 4, 5]], [[6, 7], [4, 5], [8, 9]])  # by word
        np.testing.assert_array_equal(frozen[3], vectors[3])
    else:
        # Untuned rows: this run's vectors (with an unchanged vectors file, the same values).
        np.testing.assert_array_equal(by_id[2], vectors[2])  # alice: not tuned by the base
        np.testing.assert_array_equal(by_id[5], vectors[5])  # rome
        np.testing.assert_array_equal(frozen, vectors)
