"""The `CRF` layer in Keras models: Sequential, fit/evaluate/predict, saving, export, XLA, policies.

Runs on every Keras backend; the `tf.function`/XLA/export tests need TensorFlow and skip elsewhere.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
from keras import ops
from linear_crf import crf as crf_functions
from linear_crf.crf import CRF

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow-specific")


def copy_task(num_sentences=256, length=8, seed=0):
    """Tags that only transitions can get right from per-token scores.

    Token 1 or 2 opens each sentence and fixes the tag of every token (tag = first token); the
    other tokens (3) carry no information. A model that scores tokens one at a time (Embedding +
    Dense) can only be right everywhere if the CRF carries the first tag along the sentence.
    """
    rng = np.random.default_rng(seed)
    first = rng.integers(1, 3, size=num_sentences)
    lengths = rng.integers(2, length + 1, size=num_sentences)
    tokens = np.zeros((num_sentences, length), np.int32)
    tags = np.zeros((num_sentences, length), np.int32)
    for row, (f, n) in enumerate(zip(first, lengths)):
        tokens[row, :n] = 3
        tokens[row, 0] = f
        tags[row, :n] = f  # tag ids 1 and 2; 0 is padding
    return tokens, tags, lengths


def per_token_model(crf=None):
    """Embedding + Dense: scores each token alone; a CRF on top, or a softmax output."""
    layers = [
        keras.Input(shape=(None,), dtype="int32"),
        keras.layers.Embedding(4, 8, mask_zero=True),
    ]
    if crf is None:
        return keras.Sequential(layers + [keras.layers.Dense(3, activation="softmax")])
    return keras.Sequential(layers + [keras.layers.Dense(3), crf])


def accuracy(predicted, tags, lengths):
    mask = np.arange(tags.shape[1])[None] < lengths[:, None]
    return float((predicted == tags)[mask].mean())


@pytest.mark.slow
def test_crf_learns_a_task_that_needs_transitions_and_softmax_does_not():
    keras.utils.set_random_seed(0)
    tokens, tags, lengths = copy_task()
    crf = CRF(3)
    model = per_token_model(crf)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=crf.loss)
    model.fit(tokens, tags, epochs=30, batch_size=64, verbose=0)
    crf_accuracy = accuracy(
        ops.convert_to_numpy(CRF.tag_ids(model.predict(tokens, verbose=0))), tags, lengths
    )

    softmax = per_token_model()
    softmax.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    softmax.fit(tokens, tags, epochs=30, batch_size=64, verbose=0)
    softmax_accuracy = accuracy(np.argmax(softmax.predict(tokens, verbose=0), -1), tags, lengths)

    assert crf_accuracy > 0.99, crf_accuracy
    assert softmax_accuracy < 0.8, softmax_accuracy  # it can only guess the uninformative tokens


def bilstm_crf(num_tags=3, **crf_kwargs):
    crf = CRF(num_tags, **crf_kwargs)
    model = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(10, 8, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True)),
            keras.layers.Dense(num_tags),
            crf,
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=crf.loss)
    return model, crf


def random_batch(seed=0, batch_size=16, length=7):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, length + 1, size=batch_size)
    mask = np.arange(length)[None] < lengths[:, None]
    tokens = np.where(mask, rng.integers(1, 10, size=(batch_size, length)), 0).astype(np.int32)
    tags = np.where(mask, rng.integers(1, 3, size=(batch_size, length)), 0).astype(np.int32)
    return tokens, tags, mask


def test_fit_evaluate_predict_and_one_step_changes_every_parameter():
    keras.utils.set_random_seed(1)
    model, crf = bilstm_crf()
    tokens, tags, mask = random_batch()
    before = [np.array(ops.convert_to_numpy(w)) for w in model.trainable_weights]
    model.fit(tokens, tags, epochs=1, batch_size=16, verbose=0)
    after = [np.array(ops.convert_to_numpy(w)) for w in model.trainable_weights]
    for weight, b, a in zip(model.trainable_weights, before, after):
        assert not np.allclose(b, a), f"{weight.path} did not change"

    # evaluate reports the mean NLL: check it against the pure functions on the model's emissions.
    outputs = model.predict(tokens, verbose=0)
    assert outputs.shape == (16, 7, 2 * 3 + 1)
    emissions = outputs[..., 3:6]
    expected = -np.mean(
        ops.convert_to_numpy(
            crf_functions.log_likelihood(
                emissions, tags, mask, *[ops.convert_to_numpy(p) for p in crf.potentials()]
            )
        )
    )
    np.testing.assert_allclose(model.evaluate(tokens, tags, verbose=0), expected, rtol=1e-4)

    # The mask from Embedding(mask_zero=True) reached the CRF; decoded padding is 0.
    np.testing.assert_array_equal(outputs[..., 6] > 0.5, mask)
    predicted = ops.convert_to_numpy(CRF.tag_ids(outputs))
    assert np.all(predicted[~mask] == 0)
    decoded, _ = crf.decode(outputs)
    np.testing.assert_array_equal(ops.convert_to_numpy(decoded), predicted)
    # What a Keras user does first gives the Viterbi path too: the brute-force best path of the
    # model's own emissions (every one of the 3**n paths scored), padding 0.
    np.testing.assert_array_equal(np.argmax(outputs, axis=-1), predicted)
    transitions, start, end = (ops.convert_to_numpy(p) for p in crf.potentials())
    for row in range(len(tokens)):
        n = int(mask[row].sum())
        best = max(
            itertools.product(range(3), repeat=n),
            key=lambda path: start[path[0]] + end[path[-1]]
            + sum(emissions[row, t, path[t]] for t in range(n))
            + sum(transitions[path[t - 1], path[t]] for t in range(1, n)),
        )  # fmt: skip
        np.testing.assert_array_equal(predicted[row, :n], best)


def test_padding_and_batch_composition_do_not_change_a_sentence():
    keras.utils.set_random_seed(2)
    model, _ = bilstm_crf()
    tokens, _, mask = random_batch(seed=3)
    together = ops.convert_to_numpy(CRF.tag_ids(model.predict(tokens, verbose=0)))
    for row in range(4):
        n = int(mask[row].sum())
        alone = ops.convert_to_numpy(
            CRF.tag_ids(model.predict(tokens[row : row + 1, :n], verbose=0))
        )
        np.testing.assert_array_equal(alone[0], together[row, :n])


def test_lengths_argument_equals_mask():
    keras.utils.set_random_seed(3)
    layer = CRF(4)
    rng = np.random.default_rng(0)
    emissions = rng.normal(size=(5, 6, 4)).astype(np.float32)
    lengths = np.array([6, 3, 1, 0, 5], np.int32)
    mask = np.arange(6)[None] < lengths[:, None]
    by_lengths = ops.convert_to_numpy(layer(emissions, lengths=lengths))
    by_mask = ops.convert_to_numpy(layer(emissions, mask=mask))
    np.testing.assert_array_equal(by_lengths, by_mask)


def test_constrained_layer_never_decodes_a_forbidden_path():
    tags = ["[PAD]", "B-a", "I-a", "O"]
    layer = CRF(4, tag_names=tags, tag_scheme="iob2")
    rng = np.random.default_rng(0)
    emissions = rng.normal(size=(64, 9, 4)).astype(np.float32)
    emissions[..., 2] += 2.0  # I-a everywhere would be the unconstrained choice
    predicted = ops.convert_to_numpy(CRF.tag_ids(layer(emissions)))
    for path in predicted:
        assert path[0] != 2 and 0 not in path
        for a, b in zip(path[:-1], path[1:]):
            assert b != 2 or a in (1, 2), path


def test_keras_file_round_trip_without_custom_objects(tmp_path):
    keras.utils.set_random_seed(4)
    model, _ = bilstm_crf(3, tag_names=["[PAD]", "B-x", "I-x"], tag_scheme="iob2")
    tokens, tags, _ = random_batch()
    model.fit(tokens, tags, epochs=2, verbose=0)
    path = str(tmp_path / "tagger.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # CRF registered as "models>CRF": no custom_objects
    np.testing.assert_array_equal(
        ops.convert_to_numpy(CRF.tag_ids(loaded.predict(tokens, verbose=0))),
        ops.convert_to_numpy(CRF.tag_ids(model.predict(tokens, verbose=0))),
    )
    crf = loaded.layers[-1]
    assert crf.tag_scheme == "iob2" and crf.tag_names == ["[PAD]", "B-x", "I-x"]
    loaded.compile(optimizer="adam", loss=crf.loss)  # training goes on after re-binding the loss
    loaded.fit(tokens, tags, epochs=1, verbose=0)


def test_get_config_round_trip():
    layer = CRF(
        4, tag_names=["[PAD]", "B-a", "I-a", "O"], tag_scheme="bio", unroll=True, name="tagger_crf"
    )
    clone = CRF.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_runs_the_dynamic_program_in_float32(policy):
    if BACKEND == "torch" and policy == "mixed_float16":
        pytest.skip("float16 LSTM kernels are not available on CPU torch")
    keras.utils.set_random_seed(5)
    tokens, tags, mask = random_batch(seed=6)
    keras.config.set_dtype_policy(policy)
    try:
        model, crf = bilstm_crf()
        model.fit(tokens, tags, epochs=1, verbose=0)
        outputs = model.predict(tokens, verbose=0)
        loss = model.evaluate(tokens, tags, verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")
    assert outputs.dtype == np.float32
    assert crf.transitions.dtype == "float32"
    nll = -ops.convert_to_numpy(crf.log_likelihood(tags, outputs))
    assert np.all(np.isfinite(nll)) and np.all(nll >= 0)
    np.testing.assert_allclose(loss, nll.mean(), rtol=1e-3)


@tensorflow_only
def test_export_serves_the_same_paths(tmp_path):
    import tensorflow as tf

    keras.utils.set_random_seed(7)
    model, _ = bilstm_crf()
    tokens, tags, _ = random_batch()
    model.fit(tokens, tags, epochs=1, verbose=0)
    model.export(str(tmp_path / "exported"))
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    served = exported.serve(tf.constant(tokens))
    np.testing.assert_array_equal(
        CRF.tag_ids(served).numpy(),
        ops.convert_to_numpy(CRF.tag_ids(model.predict(tokens, verbose=0))),
    )
    # Unknown batch and time dimensions: a longer batch through the same signature.
    longer = np.concatenate([tokens, tokens], axis=1)
    assert CRF.tag_ids(exported.serve(tf.constant(longer))).shape == longer.shape


@tensorflow_only
@pytest.mark.parametrize("jit_compile", [False, True])
def test_tf_function_with_unknown_dimensions_and_xla(jit_compile):
    import tensorflow as tf
    from linear_crf import crf as f

    rng = np.random.default_rng(0)
    num_tags = 4
    transitions = tf.Variable(rng.normal(size=(num_tags, num_tags)).astype(np.float32))
    start = tf.Variable(np.zeros(num_tags, np.float32))
    end = tf.Variable(np.zeros(num_tags, np.float32))
    spec = [
        tf.TensorSpec((None, None, num_tags), tf.float32),
        tf.TensorSpec((None, None), tf.int32),
        tf.TensorSpec((None, None), tf.bool),
    ]

    @tf.function(input_signature=spec, jit_compile=jit_compile)
    def loss_and_gradient(emissions, tag_ids, mask):
        with tf.GradientTape() as tape:
            tape.watch(emissions)
            loss = -tf.reduce_mean(
                f.log_likelihood(emissions, tag_ids, mask, transitions, start, end)
            )
        return loss, tape.gradient(loss, [emissions, transitions, start, end])

    @tf.function(input_signature=[spec[0], spec[2]], jit_compile=jit_compile)
    def decode(emissions, mask):
        return f.viterbi_decode(emissions, mask, transitions, start, end)

    # Scale 300 takes the log-space recomputation of `_forward_final` as well.
    for batch_size, length, scale in [(3, 5, 1.0), (2, 9, 1.0), (4, 7, 300.0)]:
        emissions = scale * rng.normal(size=(batch_size, length, num_tags)).astype(np.float32)
        mask = np.arange(length)[None] < rng.integers(0, length + 1, size=(batch_size, 1))
        tag_ids = rng.integers(0, num_tags, size=(batch_size, length)).astype(np.int32)
        loss, grads = loss_and_gradient(emissions, tag_ids, mask)
        eager = -np.mean(
            f.log_likelihood(emissions, tag_ids, mask, transitions, start, end).numpy()
        )
        np.testing.assert_allclose(loss.numpy(), eager, rtol=1e-5)
        assert all(np.all(np.isfinite(g.numpy())) for g in grads)
        tags, _ = decode(emissions, mask)
        np.testing.assert_array_equal(
            tags.numpy(), f.viterbi_decode(emissions, mask, transitions, start, end)[0].numpy()
        )
    assert len(decode._list_all_concrete_functions()) == 1  # no retracing for new shapes
