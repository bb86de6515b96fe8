"""Tests of models/tagger.py and models/config.py: the Keras 3 BiLSTM-CRF and its configuration."""

import os

import keras
import numpy as np
import pytest

from models import tagger
from models.config import (
    ModelConfig,
    PreprocessingConfig,
    TaggerConfig,
    TrainingConfig,
    tag_vocabulary,
)

TAG_NAMES = ("[PAD]", "B-person", "I-person", "O")
MAX_LENGTH, MAX_WORD_LENGTH, NUM_WORDS, NUM_CHARS = 6, 4, 20, 15
SMALL = dict(
    word_embedding_dim=8, casing_embedding_dim=3, char_embedding_dim=4, char_filters=5, lstm_units=6
)


def random_batch(seed: int, lengths=(6, 3, 1)):
    """Transformed-feature batch with real tokens up to each length and zeros after."""
    rng = np.random.default_rng(seed)
    batch_size = len(lengths)
    mask = np.arange(MAX_LENGTH)[None, :] < np.asarray(lengths)[:, None]
    token_ids = np.where(mask, rng.integers(1, NUM_WORDS, (batch_size, MAX_LENGTH)), 0)
    casing_ids = np.where(mask, rng.integers(1, 8, (batch_size, MAX_LENGTH)), 0)
    char_ids = rng.integers(1, NUM_CHARS, (batch_size, MAX_LENGTH, MAX_WORD_LENGTH))
    char_ids = np.where(mask[:, :, None], char_ids, 0)
    tag_ids = np.where(mask, rng.integers(1, len(TAG_NAMES), (batch_size, MAX_LENGTH)), 0)
    # A valid IOB2 path for the CRF's constraints: I-person only after B-/I-person.
    tag_ids = np.where(tag_ids == 2, 3, tag_ids)
    inputs = {
        "token_ids": token_ids.astype(np.int64),
        "casing_ids": casing_ids.astype(np.int64),
        "char_ids": char_ids.astype(np.int64),
    }
    return inputs, tag_ids.astype(np.int64), np.asarray(lengths)


def build(output: str, pretrained=None, **model_values):
    return tagger.build_tagger(
        ModelConfig(output=output, **{**SMALL, **model_values}),
        tag_names=TAG_NAMES,
        num_words=NUM_WORDS,
        num_chars=NUM_CHARS,
        max_word_length=MAX_WORD_LENGTH,
        pretrained_word_embeddings=pretrained,
        seed=1,
    )


@pytest.mark.parametrize(
    "output, lstm_layers", [("crf", 1), ("softmax", 1), ("crf", 2), ("crf", 0), ("softmax", 0)]
)
def test_one_training_step_changes_every_parameter(output, lstm_layers):
    keras.utils.set_random_seed(0)
    model = build(output, dropout=0.0, lstm_layers=lstm_layers)
    model_config = ModelConfig(output=output, dropout=0.0, lstm_layers=lstm_layers, **SMALL)
    tagger.compile_tagger(model, model_config, TrainingConfig(learning_rate=0.01))
    inputs, tag_ids, _ = random_batch(0)
    before = [np.array(v) for v in model.trainable_variables]
    sample_weight = tagger.loss_sample_weights(tag_ids, output)
    model.train_on_batch(inputs, tag_ids, sample_weight=sample_weight)
    for variable, old in zip(model.trainable_variables, before):
        assert not np.allclose(np.array(variable), old), variable.path


@pytest.mark.parametrize("output", ["crf", "softmax"])
def test_output_shapes_and_padding(output):
    model = build(output)
    inputs, _, lengths = random_batch(1)
    outputs = model(inputs, training=False)
    # CRF: the Viterbi path, the emissions and the mask (linear_crf.CRF); softmax: probabilities.
    width = 2 * len(TAG_NAMES) + 1 if output == "crf" else len(TAG_NAMES)
    assert tuple(outputs.shape) == (3, MAX_LENGTH, width)
    tag_ids = np.asarray(tagger.predicted_tag_ids(outputs, output, lengths))
    assert tag_ids.shape == (3, MAX_LENGTH)
    mask = np.arange(MAX_LENGTH)[None, :] < lengths[:, None]
    assert (tag_ids[~mask] == 0).all()
    assert (tag_ids[mask] > 0).all()  # [PAD] is never predicted at a real token


@pytest.mark.parametrize(
    "output, lstm_layers", [("crf", 1), ("softmax", 1), ("crf", 2), ("crf", 0)]
)
def test_values_at_padding_change_nothing(output, lstm_layers):
    # The mask comes from token_ids; whatever casing/char ids sit at padded positions must not
    # change the tags of the real tokens.
    model = build(output, lstm_layers=lstm_layers)
    inputs, _, lengths = random_batch(2)
    garbage = {key: value.copy() for key, value in inputs.items()}
    mask = np.arange(MAX_LENGTH)[None, :] < lengths[:, None]
    garbage["casing_ids"] = np.where(mask, garbage["casing_ids"], 7)
    garbage["char_ids"] = np.where(mask[:, :, None], garbage["char_ids"], 5)
    clean_tags = tagger.predicted_tag_ids(model(inputs, training=False), output, lengths)
    garbage_tags = tagger.predicted_tag_ids(model(garbage, training=False), output, lengths)
    np.testing.assert_array_equal(np.asarray(clean_tags), np.asarray(garbage_tags))


@pytest.mark.parametrize("output", ["crf", "softmax"])
def test_a_batch_cut_to_its_longest_sentence_scores_as_the_padded_batch(output):
    # The Trainer cuts each training batch to its longest sentence (`models.train.model_batches(trim=True)`);
    # the padded batch is the reference: the same outputs at the real tokens, the same loss.
    model = build(output)
    model_config = ModelConfig(output=output, **SMALL)
    tagger.compile_tagger(model, model_config, TrainingConfig())
    inputs, tag_ids, lengths = random_batch(4, lengths=(3, 2, 1))
    cut = {key: value[:, :3] for key, value in inputs.items()}
    padded_outputs = np.asarray(model(inputs, training=False))
    cut_outputs = np.asarray(model(cut, training=False))
    assert cut_outputs.shape[1] == 3
    mask = np.arange(3)[None, :] < lengths[:, None]
    np.testing.assert_allclose(cut_outputs[mask], padded_outputs[:, :3][mask], atol=1e-5)
    np.testing.assert_array_equal(
        np.asarray(tagger.predicted_tag_ids(cut_outputs, output, lengths)),
        np.asarray(tagger.predicted_tag_ids(padded_outputs, output, lengths))[:, :3],
    )
    padded_loss = model.evaluate(
        inputs, tag_ids, sample_weight=tagger.loss_sample_weights(tag_ids, output), verbose=0
    )
    cut_tags = tag_ids[:, :3]
    cut_loss = model.evaluate(
        cut, cut_tags, sample_weight=tagger.loss_sample_weights(cut_tags, output), verbose=0
    )
    if output == "crf":  # The softmax's mean runs over all positions, padding (weight 0) too.
        np.testing.assert_allclose(cut_loss, padded_loss, rtol=1e-5)


def test_char_features_are_ma_and_hovys_cnn_in_numpy():
    # Reference: embed, convolve ("same" zero padding), tanh, max over the real characters.
    config = ModelConfig(**SMALL)
    char_input = keras.Input((None, MAX_WORD_LENGTH), dtype="int64")
    features = keras.Model(char_input, tagger._char_features(char_input, config, NUM_CHARS, seed=0))
    embedding, kernel, bias = (np.asarray(w) for w in features.get_weights())
    char_ids = random_batch(6, lengths=(6, 3, 0))[0]["char_ids"]
    char_ids[0, 0, 2:] = 0  # a two-character word
    char_ids[0, 1, 1:] = 0  # a one-character word
    got = np.asarray(features(char_ids, training=False))

    width = kernel.shape[1]  # kernel: (1, width, char_embedding_dim, char_filters)
    expected = np.zeros(got.shape, np.float32)
    for b, t in np.ndindex(char_ids.shape[:2]):
        ids = char_ids[b, t]
        if not (ids > 0).any():
            continue  # a padding token: 0
        chars = np.pad(embedding[ids], ((width // 2, width - 1 - width // 2), (0, 0)))
        convolved = np.stack(
            [np.einsum("wc,wcf->f", chars[i : i + width], kernel[0]) for i in range(len(ids))]
        )
        expected[b, t] = np.tanh(convolved + bias)[ids > 0].max(axis=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_batched_equals_one_at_a_time():
    model = build("crf")
    inputs, _, lengths = random_batch(3)
    batched = np.asarray(tagger.predicted_tag_ids(model(inputs, training=False), "crf", lengths))
    for i in range(len(lengths)):
        single = {key: value[i : i + 1] for key, value in inputs.items()}
        tags = tagger.predicted_tag_ids(model(single, training=False), "crf", lengths[i : i + 1])
        np.testing.assert_array_equal(np.asarray(tags)[0], batched[i])


def test_model_is_keras_3_next_to_the_tf_keras_tft_layer():
    # TFT sets TF_USE_LEGACY_KERAS=1 when imported and builds its layer on the tf-keras package
    # (Keras 2). What `tf.keras` resolves to then depends on import order (TF resolves it lazily);
    # `keras` is Keras 3 whatever the order, and the tagger uses only `keras`.
    import tensorflow_transform  # noqa: F401
    from tensorflow_transform import output_wrapper
    from tensorflow_transform.keras_lib import tf_keras

    assert os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    assert keras.__version__.startswith("3.")
    assert tf_keras.__name__.startswith("tf_keras")  # the tf-keras package, Keras 2
    assert issubclass(output_wrapper.TransformFeaturesLayer, tf_keras.Model)
    assert not issubclass(output_wrapper.TransformFeaturesLayer, keras.Layer)
    model = build("crf")
    assert isinstance(model, keras.Model)
    assert not isinstance(model, tf_keras.Model)


def test_pretrained_matrix_initialises_the_word_embedding():
    matrix = np.random.default_rng(0).normal(size=(NUM_WORDS, 8)).astype(np.float32)
    model = build("crf", matrix, trainable_word_embeddings=False)
    layer = model.get_layer("word_embedding")
    np.testing.assert_allclose(np.asarray(layer.embeddings), matrix)
    assert not layer.trainable


def test_frozen_pretrained_channel_stays_pretrained_while_the_word_embedding_trains():
    matrix = np.random.default_rng(0).normal(size=(NUM_WORDS, 8)).astype(np.float32)
    config = ModelConfig(frozen_pretrained_channel=True, dropout=0.0, **SMALL)
    keras.utils.set_random_seed(0)
    model = build("crf", matrix, frozen_pretrained_channel=True, dropout=0.0)
    tagger.compile_tagger(model, config, TrainingConfig(learning_rate=0.05))
    inputs, tag_ids, _ = random_batch(0)
    model.train_on_batch(inputs, tag_ids)
    layer = model.get_layer("word_embedding")
    assert [w.path for w in layer.trainable_weights] == ["word_embedding/tuned"]
    np.testing.assert_array_equal(np.asarray(layer.frozen), matrix)
    trained = np.asarray(layer.tuned)  # all rows tuned: row i is word id i
    used = np.unique(inputs["token_ids"][inputs["token_ids"] > 0])
    assert not np.allclose(trained[used], matrix[used])
    # 8 (word) + 3 (casing) + 5 (characters) + 8 (frozen copy) features per token.
    assert model.get_layer("token_representation").output.shape[-1] == 24


def _two_table_model(matrix, tuned_ids=None):
    """Word vectors -> Dense, with the pretrained vectors fine-tuned: as the tagger had them
    before `PretrainedWordEmbedding` (a whole trainable `Embedding` beside a frozen one) when
    `tuned_ids` is None, else through `PretrainedWordEmbedding` with only those rows tuned."""
    ids = keras.Input((None,), dtype="int64")
    if tuned_ids is None:
        tuned = keras.layers.Embedding(*matrix.shape, name="tuned")
        frozen = keras.layers.Embedding(*matrix.shape, trainable=False, name="frozen")
        features = [tuned(ids), frozen(ids)]
    else:
        layer = tagger.PretrainedWordEmbedding(*matrix.shape, len(tuned_ids), name="words")
        features = list(layer(ids))
    hidden = keras.layers.Concatenate()(features)
    model = keras.Model(ids, keras.layers.Dense(3, kernel_initializer="ones")(hidden))
    if tuned_ids is None:
        tuned.embeddings.assign(matrix)
        frozen.embeddings.assign(matrix)
    else:
        layer.assign_vectors(matrix, tuned_ids)
    model.compile(
        keras.optimizers.Adam(0.1, global_clipnorm=1.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_tuning_only_the_reachable_rows_trains_the_same_model():
    # Reference: a whole trainable copy of the table (the tagger before) under Adam with global
    # clipping. Rows 0-4 occur in the batches, rows 5-299 never do: tuning only rows 0-4 must
    # give the same predictions and the same vectors for every word.
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(300, 4)).astype(np.float32)
    batches = [(rng.integers(0, 5, (4, 6)), rng.integers(0, 3, (4, 6))) for _ in range(12)]
    whole, part = _two_table_model(matrix), _two_table_model(matrix, np.arange(5))
    for ids, labels in batches:
        whole.train_on_batch(ids, labels)
        part.train_on_batch(ids, labels)
    every_word = np.arange(300)[None, :]
    np.testing.assert_allclose(
        part.predict(every_word, verbose=0),
        whole.predict(every_word, verbose=0),
        rtol=1e-5,
        atol=1e-5,
    )
    layer = part.get_layer("words")
    tuned_by_id = np.asarray(layer(every_word)[0])[0]
    np.testing.assert_allclose(
        tuned_by_id, np.asarray(whole.get_layer("tuned").embeddings), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(tuned_by_id[:5], matrix[:5])  # the reachable rows did train
    np.testing.assert_array_equal(tuned_by_id[5:], matrix[5:])
    assert np.asarray(layer.tuned).shape == (5, 4)  # and only they are weights of the optimizer


def test_pretrained_matrix_of_wrong_shape():
    with pytest.raises(ValueError, match=r"Invalid value for `pretrained_word_embeddings`"):
        build("crf", np.zeros((3, 8), np.float32))


# -- config -----------------------------------------------------------------------------------


def test_custom_config_round_trip_through_json():
    import json

    config = TaggerConfig(
        preprocessing=PreprocessingConfig(tag_names=("O", "B-x", "I-x"), max_length=9),
        model=ModelConfig(output="softmax", lstm_units=7),
        training=TrainingConfig(epochs=2),
    )
    again = TaggerConfig.from_custom_config(json.dumps(config.to_custom_config()))
    assert again == config


def test_tag_vocabulary_is_pad_then_sorted():
    assert tag_vocabulary(["O", "I-b", "B-b", "B-a"]) == ("[PAD]", "B-a", "B-b", "I-b", "O")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ModelConfig(output="crf2"), r"Invalid value for `output`. Expected one of"),
        (lambda: ModelConfig(dropout=1.0), r"Invalid value for `dropout`. Expected a number"),
        (lambda: ModelConfig(lstm_units=0), r"Invalid value for `lstm_units`"),
        (lambda: ModelConfig(recurrent_dropout=-0.1), r"Invalid value for `recurrent_dropout`"),
        (lambda: ModelConfig(tag_scheme="iob1"), r"Invalid value for `tag_scheme`"),
        (lambda: TrainingConfig(learning_rate=0), r"Invalid value for `learning_rate`"),
        # NaN compares false with everything: it passed `< 0` and `== 0`, and training then
        # failed with an error about the [PAD] tag.
        (
            lambda: TrainingConfig(learning_rate=float("nan")),
            r"`learning_rate`. Expected a positive finite number. Received: learning_rate=nan",
        ),
        (lambda: TrainingConfig(clipnorm=float("inf")), r"`clipnorm`. Expected a positive finite"),
        (
            lambda: TrainingConfig(learning_rate_decay=float("nan")),
            r"`learning_rate_decay`. Expected a non-negative finite number",
        ),
        (
            lambda: TrainingConfig(learning_rate_decay=-0.1),
            r"`learning_rate_decay`. Expected a non-negative finite number",
        ),
        (lambda: TrainingConfig(batch_size=1.5), r"Invalid value for `batch_size`"),
        (
            lambda: TrainingConfig(weight_averaging=1.0),
            r"Invalid value for `weight_averaging`. Expected a number in \[0, 1\)",
        ),
        (
            lambda: TrainingConfig(early_stopping_start_epoch=-1),
            r"Invalid value for `early_stopping_start_epoch`",
        ),
        (lambda: PreprocessingConfig(tag_names=()), r"Invalid value for `tag_names`"),
        (lambda: PreprocessingConfig(tag_names=("O", "O")), r"without duplicates"),
        (lambda: PreprocessingConfig(tag_names=("O", "[PAD]")), r"reserved '\[PAD\]'"),
        (lambda: PreprocessingConfig(tag_names=("O",), max_length=0), r"`max_length`"),
        (
            lambda: PreprocessingConfig(tag_names=("O",), pretrained_vocabulary_size=-1),
            r"`pretrained_vocabulary_size`. Expected a non-negative integer",
        ),
        (lambda: TaggerConfig.from_custom_config({}), r"Invalid value for `custom_config`"),
        (
            lambda: TaggerConfig.from_custom_config(
                {"tagger": {"preprocessing": {"tag_names": ["O"]}, "model": {"units": 3}}}
            ),
            r"Invalid value for `custom_config\['model'\]`. Expected keys among",
        ),
    ],
)
def test_config_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_word_dropout_replaces_real_words_at_the_rate_while_training_only():
    from models.tagger import WordDropout

    ids = np.tile(np.array([[5, 7, 9, 0, 0]], np.int64), (4000, 1))
    layer = WordDropout(0.25, oov_id=1, seed=3)
    dropped = np.asarray(layer(ids, training=True))
    real = ids > 0
    replaced = (dropped == 1) & real
    # 12,000 real ids: the share replaced is within 4 standard deviations of the rate.
    assert abs(replaced[real].mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / real.sum())
    np.testing.assert_array_equal(dropped[~replaced], ids[~replaced])  # the others, padding too
    np.testing.assert_array_equal(np.asarray(layer(ids, training=False)), ids)
    clone = WordDropout.from_config(layer.get_config())
    assert (clone.rate, clone.oov_id, clone.seed) == (0.25, 1, 3)


def test_model_with_word_dropout_trains_saves_and_predicts_deterministically(tmp_path):
    keras.utils.set_random_seed(0)
    model = build("crf", word_dropout=0.5)
    tagger.compile_tagger(model, ModelConfig(word_dropout=0.5, **SMALL), TrainingConfig())
    inputs, tag_ids, _ = random_batch(0)
    model.train_on_batch(inputs, tag_ids)
    first = np.asarray(model.predict(inputs, verbose=0))
    np.testing.assert_array_equal(np.asarray(model.predict(inputs, verbose=0)), first)
    model.save(tmp_path / "tagger.keras")
    loaded = keras.saving.load_model(tmp_path / "tagger.keras")
    np.testing.assert_allclose(np.asarray(loaded.predict(inputs, verbose=0)), first, atol=1e-5)


def test_recurrent_dropout_acts_while_training_only():
    plain = build("crf", dropout=0.0)
    dropped = build("crf", dropout=0.0, recurrent_dropout=0.5)
    dropped.set_weights(plain.get_weights())
    inputs, _, _ = random_batch(5)
    # The emissions (the CRF decodes only when not training): no dropout anywhere in `plain`.
    # The CRF's outputs are (path, emissions, mask): the emissions are the second block.
    n = len(TAG_NAMES)
    reference = np.asarray(plain(inputs, training=True))[..., n : 2 * n]

    def emissions(training):
        return np.asarray(dropped(inputs, training=training))[..., n : 2 * n]

    np.testing.assert_allclose(emissions(training=False), reference, atol=1e-6)
    assert not np.allclose(emissions(training=True), reference, atol=1e-3)
    assert dropped.get_layer("bilstm").forward_layer.cell.recurrent_dropout == 0.5


def test_weight_paths_do_not_depend_on_what_the_process_built_before():
    # Warm start matches weights by path: a Trainer in a long-lived process (an in-process
    # LocalDagRunner, a notebook) must name them as a fresh process does.
    first = [v.path for v in build("crf", lstm_layers=2).weights]
    keras.layers.LSTM(3)  # Auto-named layers built in between move Keras's name counters.
    keras.layers.Bidirectional(keras.layers.LSTM(3))
    assert [v.path for v in build("crf", lstm_layers=2).weights] == first
    assert "bilstm/forward_lstm/lstm_cell/kernel" in first
    assert "bilstm_2/backward_lstm/lstm_cell/kernel" in first


def test_with_an_encoder_training_is_short_and_watched_from_the_first_epoch():
    preprocessing = PreprocessingConfig(tag_names=("O",))
    training = TrainingConfig(epochs=25, early_stopping_start_epoch=3, encoder_epochs=4)
    plain = TaggerConfig(preprocessing, ModelConfig(), training)
    assert (plain.epochs, plain.early_stopping_start_epoch) == (25, 3)
    encoder = TaggerConfig(preprocessing, ModelConfig(encoder_path="/encoder"), training)
    assert (encoder.epochs, encoder.early_stopping_start_epoch) == (4, 0)
    capped = TaggerConfig(
        preprocessing, ModelConfig(encoder_path="/encoder"), TrainingConfig(epochs=2)
    )
    assert capped.epochs == 2  # `epochs` (Kubeflow's run parameter) still caps it
    with pytest.raises(ValueError, match="Invalid value for `encoder_epochs`"):
        TrainingConfig(encoder_epochs=0)
    with pytest.raises(ValueError, match="Invalid value for `encoder_pooling`"):
        ModelConfig(encoder_pooling="last")


def test_no_bilstm_feeds_the_token_representation_to_the_output():
    model = build("crf", lstm_layers=0)
    names = [layer.name for layer in model.layers]
    assert not any(name.startswith("bilstm") for name in names)
    # The emissions read the (dropped-out) token representation itself.
    assert model.get_layer("emissions").input.shape == model.get_layer("token_dropout").output.shape
    with pytest.raises(ValueError, match="lstm_layers"):
        ModelConfig(lstm_layers=-1)
