"""The CRF's XLA programs called from TensorFlow graphs (`crf.compiled_in_graph`).

In a `tf.function` that XLA does not compile as a whole (Keras on CPU), the loss and its
gradient run by default as XLA programs, decoding when asked for. Checked here: the values
against float64 brute force (as `test_crf.py`, now through the compiled programs) and against
the graph-mode code they replace (an independent implementation: `linear_crf._tensorflow`'s
forward-backward with its gradient written out), the padding of the time axis to a few lengths,
and where nothing may be compiled: eagerly, while exporting, without XLA. TensorFlow only.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

if keras.backend.backend() != "tensorflow":
    pytest.skip("XLA programs inside TensorFlow graphs: TensorFlow only", allow_module_level=True)

import tensorflow as tf  # noqa: E402
from linear_crf import _tensorflow, crf  # noqa: E402
from linear_crf.crf import CRF  # noqa: E402
from test_crf import brute_force, make_inputs, scaled_case  # noqa: E402 - same folder

SCALES = [1.0, 10.0, 100.0, 1000.0]


def must_compile(library) -> int:
    """How many functions of a graph's function library XLA must compile."""
    return sum(1 for function in library.function if function.attr["_XlaMustCompile"].b)


def xla_programs(concrete_function) -> int:
    """How many functions that XLA must compile the traced graph calls (at any depth)."""
    return must_compile(concrete_function.graph.as_graph_def().library)


def loss_function(setting=None):
    """`tf.function`: summed NLL of `tag_ids` and its gradients, traced under `setting`."""

    def loss(emissions, tag_ids, mask, transitions, start, end):
        with crf.compiled_in_graph(**(setting or {})):
            with tf.GradientTape() as tape:
                tape.watch([emissions, transitions, start, end])
                value = -tf.reduce_sum(
                    crf.log_likelihood(emissions, tag_ids, mask, transitions, start, end)
                )
            return value, tape.gradient(value, [emissions, transitions, start, end])

    return tf.function(loss)


def log_z_function(setting=None):
    def log_z(emissions, mask, transitions, start, end):
        with crf.compiled_in_graph(**(setting or {})):
            return crf.log_partition(emissions, mask, transitions, start, end)

    return tf.function(log_z)


def decode_function(setting=None):
    def decode(emissions, mask, transitions, start, end):
        with crf.compiled_in_graph(**(setting or {})):
            return crf.viterbi_decode(emissions, mask, transitions, start, end)

    return tf.function(decode)


def pair_marginals(reference, num_tags):
    """sum_t p(y_{t-1} = i, y_t = j), the brute force's paths summed, per sequence."""
    pairs = np.zeros((num_tags, num_tags))
    for path, score in zip(reference["paths"], reference["scores"]):
        if np.isfinite(score):
            for a, b in zip(path[:-1], path[1:]):
                pairs[a, b] += np.exp(score - reference["log_z"])
    return pairs


@pytest.mark.parametrize("constraint", ["free", "iob2"])
@pytest.mark.parametrize("scale", SCALES)
def test_compiled_loss_and_gradients_match_brute_force_at_every_scale(scale, constraint):
    """log Z to 1e-5 relative; d/d emissions, transitions, start and end = expected counts."""
    log_z_of = log_z_function()
    loss_of = loss_function()
    for seed in range(3):
        emissions, mask, transitions, start, end = scaled_case(scale, constraint, seed)
        arguments = [tf.constant(x) for x in (emissions, mask, transitions, start, end)]
        reference = brute_force(emissions, mask.sum(axis=1), transitions, start, end)
        np.testing.assert_allclose(
            log_z_of(*arguments).numpy(), [r["log_z"] for r in reference], rtol=1e-5
        )
        # The gold paths: each sequence's best (an allowed path under the constraints).
        tag_ids = np.zeros(mask.shape, np.int32)
        for b, r in enumerate(reference):
            tag_ids[b, : int(mask[b].sum())] = r["ranked"][0][1]
        _, (d_emissions, d_transitions, d_start, d_end) = loss_of(
            arguments[0], tf.constant(tag_ids), *arguments[1:]
        )
        num_tags = emissions.shape[-1]
        gold = np.eye(num_tags)[tag_ids] * mask[..., None]
        expected_pairs = np.zeros((num_tags, num_tags))
        expected_start, expected_end = np.zeros(num_tags), np.zeros(num_tags)
        for b, r in enumerate(reference):
            length = int(mask[b].sum())
            atol = max(1e-5, 1e-6 * abs(r["log_z"]))
            np.testing.assert_allclose(
                d_emissions.numpy()[b, :length], r["marginals"] - gold[b, :length], atol=atol
            )
            assert np.all(d_emissions.numpy()[b, length:] == 0.0)
            if length:
                expected_pairs += pair_marginals(r, num_tags)
                expected_start += r["marginals"][0]
                expected_end += r["marginals"][length - 1]
                gold_pairs = np.zeros((num_tags, num_tags))
                for a, c in zip(tag_ids[b, : length - 1], tag_ids[b, 1:length]):
                    gold_pairs[a, c] += 1
                expected_pairs -= gold_pairs
                expected_start[tag_ids[b, 0]] -= 1
                expected_end[tag_ids[b, length - 1]] -= 1
        atol = max(1e-4, 1e-6 * max(abs(r["log_z"]) for r in reference))
        # Forbidden transitions have no gradient (their score is the constant -inf): 0, not NaN.
        for gradient in (d_emissions, d_transitions, d_start, d_end):
            assert np.all(np.isfinite(gradient.numpy()))
        allowed = np.isfinite(transitions)
        assert np.all(d_transitions.numpy()[~allowed] == 0.0)
        np.testing.assert_allclose(
            np.where(allowed, d_transitions.numpy(), 0.0), expected_pairs, atol=atol
        )
        np.testing.assert_allclose(
            d_start.numpy()[np.isfinite(start)], expected_start[np.isfinite(start)], atol=atol
        )
        np.testing.assert_allclose(
            d_end.numpy()[np.isfinite(end)], expected_end[np.isfinite(end)], atol=atol
        )
    concrete = log_z_of.get_concrete_function(*arguments)
    assert xla_programs(concrete) >= 1  # the compiled programs were what ran


def random_batch(rng, batch_size, length, num_tags, left_padded=False):
    emissions = rng.normal(size=(batch_size, length, num_tags)).astype(np.float32) * 3.0
    lengths = rng.integers(0, length + 1, size=batch_size)
    lengths[0] = length  # one full row; the others may be empty
    positions = np.arange(length)[None]
    mask = positions < lengths[:, None]
    if left_padded:
        mask = positions >= (length - lengths)[:, None]
    tag_ids = rng.integers(0, num_tags, size=(batch_size, length)).astype(np.int32)
    transitions = rng.normal(size=(num_tags, num_tags)).astype(np.float32)
    start, end = rng.normal(size=(2, num_tags)).astype(np.float32)
    return [tf.constant(x) for x in (emissions, tag_ids, mask, transitions, start, end)]


@pytest.mark.parametrize("left_padded", [False, True])
def test_compiled_equals_the_graph_mode_code(left_padded):
    """Loss, gradients and paths of the compiled programs against `_tensorflow`'s graph-mode
    code, at lengths on both sides of the padded lengths (1, 8, 9, 64, 65, 130)."""
    rng = np.random.default_rng(7)
    compiled_loss, plain_loss = loss_function(), loss_function({"loss": False})
    compiled_decode, plain_decode = decode_function({"decode": True}), decode_function()
    for length, num_tags in [(1, 3), (8, 5), (9, 9), (64, 9), (65, 4), (130, 25)]:
        emissions, tag_ids, mask, transitions, start, end = random_batch(
            rng, 6, length, num_tags, left_padded
        )
        value, gradients = compiled_loss(emissions, tag_ids, mask, transitions, start, end)
        want, want_gradients = plain_loss(emissions, tag_ids, mask, transitions, start, end)
        np.testing.assert_allclose(value.numpy(), want.numpy(), rtol=1e-5)
        # Marginals are exp(alpha + beta - log Z), terms of |log Z| (hundreds here), summed over
        # the batch's tokens for the transitions: float32 rounding of ~1e-7 of the summed loss,
        # in two orders of summation (an error of the maths is off by 1e-2 or more).
        atol = max(2e-5, 5e-7 * abs(float(want)))
        for got, expected in zip(gradients, want_gradients):
            assert got.shape == expected.shape
            np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=atol)
        paths, scores = compiled_decode(emissions, mask, transitions, start, end)
        want_paths, want_scores = plain_decode(emissions, mask, transitions, start, end)
        np.testing.assert_array_equal(paths.numpy(), want_paths.numpy())
        np.testing.assert_allclose(scores.numpy(), want_scores.numpy(), rtol=1e-5)


def test_compiled_decoding_matches_brute_force():
    emissions, mask, transitions, start, end = make_inputs(seed=3)
    reference = brute_force(emissions, mask.sum(axis=1), transitions, start, end)
    paths, scores = decode_function({"decode": True})(emissions, mask, transitions, start, end)
    for b, r in enumerate(reference):
        length = int(mask[b].sum())
        best_score, best_path = r["ranked"][0]
        assert tuple(paths.numpy()[b, :length]) == tuple(best_path)
        assert np.all(paths.numpy()[b, length:] == 0)
        np.testing.assert_allclose(scores.numpy()[b], best_score if length else 0.0, rtol=1e-5)


def loops(graph) -> int:
    """How many `while` loops a graph holds, its functions' included (`cond` branches)."""
    definition = graph.as_graph_def()
    nodes = list(definition.node) + [n for f in definition.library.function for n in f.node_def]
    return sum(1 for node in nodes if node.op in ("While", "StatelessWhile"))


@pytest.mark.parametrize("parts", [2, 3])
def test_decoding_in_parts_matches_brute_force(monkeypatch, parts):
    """The graph-mode decoding of a batch cut into parts (`_tensorflow.viterbi_decode`: each part
    its own loops) finds every row's best path, with a known and an unknown batch size; a batch
    too small for parts is decoded whole, by the other branch of the same graph."""
    monkeypatch.setattr(_tensorflow, "decoding_parts", lambda: parts)
    rows = parts * _tensorflow._MIN_ROWS_PER_PART + 1  # uneven parts
    lengths = np.random.default_rng(parts).integers(0, 6, size=rows)  # 0 to 5 tokens
    emissions, mask, transitions, start, end = make_inputs(seed=parts, batch_lengths=lengths)
    mask = mask[:, ::-1].copy() if parts == 3 else mask  # left padding too
    emissions = emissions[:, ::-1].copy() if parts == 3 else emissions
    aligned = np.zeros_like(emissions)  # each row's real tokens first, for the reference
    for b in range(rows):
        aligned[b, : lengths[b]] = emissions[b][mask[b]]
    reference = brute_force(aligned, lengths, transitions, start, end)
    known = tf.function(crf.viterbi_decode)
    unknown = tf.function(
        crf.viterbi_decode,
        input_signature=[
            tf.TensorSpec([None, None, 3]), tf.TensorSpec([None, None], tf.bool),
            tf.TensorSpec([3, 3]), tf.TensorSpec([3]), tf.TensorSpec([3]),
        ],
    )  # fmt: skip
    arguments = (emissions, mask, transitions, start, end)
    assert loops(known.get_concrete_function(*arguments).graph) == 2 * parts
    assert loops(unknown.get_concrete_function().graph) == 2 * parts + 2  # parts, or whole
    with crf.decoding_in_parts(False):  # as the served model decodes, beside the marginals
        whole = tf.function(crf.viterbi_decode).get_concrete_function(*arguments)
    assert loops(whole.graph) == 2
    np.testing.assert_array_equal(whole(*arguments)[0], known(*arguments)[0])
    for decode in (known, unknown):
        for first in (rows, 5):  # in parts; too few rows: whole
            paths, scores = decode(*(x[:first] for x in arguments[:2]), *arguments[2:])
            for b in range(first):
                best_score, best_path = reference[b]["ranked"][0]
                assert paths.numpy()[b][mask[b]].tolist() == list(best_path)
                assert np.all(paths.numpy()[b][~mask[b]] == 0)
                want = best_score if lengths[b] else 0.0
                np.testing.assert_allclose(scores.numpy()[b], want, rtol=1e-5, atol=1e-5)


def traced(function, setting, arguments):
    return function(setting).get_concrete_function(*arguments)


def test_what_is_compiled_where():
    """The loss by default, decoding when asked; nothing while exporting or without XLA."""
    rng = np.random.default_rng(0)
    emissions, tag_ids, mask, transitions, start, end = random_batch(rng, 2, 6, 3)
    loss_arguments = [emissions, tag_ids, mask, transitions, start, end]
    decode_arguments = [emissions, mask, transitions, start, end]
    assert xla_programs(traced(loss_function, None, loss_arguments)) >= 1
    assert xla_programs(traced(decode_function, None, decode_arguments)) == 0
    assert xla_programs(traced(decode_function, {"decode": True}, decode_arguments)) == 1
    assert xla_programs(traced(loss_function, {"loss": False}, loss_arguments)) == 0
    exporting = {"loss": True, "decode": True, "exporting": True}
    assert xla_programs(traced(loss_function, exporting, loss_arguments)) == 0
    assert xla_programs(traced(decode_function, exporting, decode_arguments)) == 0
    # A TensorFlow without XLA keeps the graph-mode code (the probe's answer, replaced here:
    # this TensorFlow has XLA).
    saved = _tensorflow._XLA_AVAILABLE
    _tensorflow._XLA_AVAILABLE = False
    try:
        assert xla_programs(traced(loss_function, None, loss_arguments)) == 0
    finally:
        _tensorflow._XLA_AVAILABLE = saved
    # Inside a function XLA compiles whole, no nested programs: the code runs there directly.
    whole = tf.function(lambda *a: crf.viterbi_decode(*a), jit_compile=True)
    with crf.compiled_in_graph(decode=True):
        concrete = whole.get_concrete_function(*decode_arguments)
    assert xla_programs(concrete) == 0
    # Eagerly nothing is compiled: the same values as the graph.
    np.testing.assert_allclose(
        crf.log_partition(*decode_arguments).numpy(),
        log_z_function()(*decode_arguments).numpy(),
        rtol=1e-5,
    )


def tiny_model(jit_compile, num_tags=4, seed=0):
    keras.utils.set_random_seed(seed)
    crf_layer = CRF(num_tags, jit_compile=jit_compile)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(20, 8, mask_zero=True),
            keras.layers.Dense(num_tags),
            crf_layer,
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=crf_layer.loss)
    return model


def test_layer_setting_trains_to_the_same_weights_and_predicts_the_same_paths():
    """`fit` in graph mode with the loss compiled ("auto", the default) and not (False): the same
    weights after a few steps, and `jit_compile=True`'s compiled decoding the same predictions."""
    rng = np.random.default_rng(1)
    x = rng.integers(1, 20, size=(24, 11)).astype(np.int32)
    x[::3, 7:] = 0  # padding
    y = rng.integers(0, 4, size=(24, 11)).astype(np.int32)
    weights = {}
    for setting in ("auto", False):
        model = tiny_model(setting)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        weights[setting] = model.get_weights()
    for got, want in zip(weights["auto"], weights[False]):
        np.testing.assert_allclose(got, want, atol=1e-4)
    compiled = tiny_model(True)
    compiled.set_weights(weights["auto"])
    plain = tiny_model(False)
    plain.set_weights(weights["auto"])
    np.testing.assert_array_equal(
        CRF.tag_ids(compiled.predict(x, verbose=0)), CRF.tag_ids(plain.predict(x, verbose=0))
    )
    with pytest.raises(ValueError, match="jit_compile"):
        CRF(4, jit_compile="yes")
    assert CRF.from_config(compiled.layers[-1].get_config()).jit_compile is True


def saved_xla_programs(directory) -> int:
    """Functions in a SavedModel that XLA must compile (what TF Serving refuses by default)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(f"{directory}/saved_model.pb", "rb") as file:
        saved.ParseFromString(file.read())
    return sum(must_compile(meta_graph.graph_def.library) for meta_graph in saved.meta_graphs)


def test_saved_models_hold_no_xla_program(tmp_path):
    """What `tf.saved_model.save` traces (Keras' `model.export()` too) holds no XLA program,
    even with `jit_compile=True`; a signature traced before saving (TFX's usual Trainer code:
    `get_concrete_function`, then save) holds them unless traced inside `exporting=True`."""
    x = np.array([[3, 4, 5, 0], [6, 7, 0, 0]], np.int32)
    spec = [tf.TensorSpec((None, None), tf.int32)]
    compiled = tiny_model(True)
    compiled.export(str(tmp_path / "export"), verbose=False)
    assert saved_xla_programs(tmp_path / "export") == 0
    module = tf.Module()
    module.model = compiled
    module.serve = tf.function(lambda tokens: compiled(tokens), input_signature=spec)
    tf.saved_model.save(module, str(tmp_path / "traced_while_saving"))  # traced in its context
    assert saved_xla_programs(tmp_path / "traced_while_saving") == 0
    before = module.serve.get_concrete_function()  # traced before saving: compiled decoding
    tf.saved_model.save(module, str(tmp_path / "traced_before"), signatures=before)
    assert saved_xla_programs(tmp_path / "traced_before") >= 1
    module = tf.Module()
    module.model = compiled
    module.serve = tf.function(lambda tokens: compiled(tokens), input_signature=spec)
    with crf.compiled_in_graph(exporting=True):
        exported = module.serve.get_concrete_function()
    tf.saved_model.save(module, str(tmp_path / "exporting"), signatures=exported)
    assert saved_xla_programs(tmp_path / "exporting") == 0
    reloaded = tf.saved_model.load(str(tmp_path / "exporting"))
    np.testing.assert_array_equal(
        CRF.tag_ids(reloaded.signatures["serving_default"](tokens=tf.constant(x))["output_0"]),
        CRF.tag_ids(compiled.predict(x, verbose=0)),
    )


def test_padded_lengths():
    """At most 7 steps more up to 64 tokens, at most a quarter more above; few lengths."""
    lengths = np.arange(0, 5000)
    padded = np.array([int(_tensorflow.bucketed_length(tf.constant(n))) for n in lengths])
    assert np.all(padded >= lengths)
    small = (lengths >= 1) & (lengths <= 64)
    assert padded[0] == 8  # an empty time axis too (every row masked)
    assert np.all(padded[small] - lengths[small] <= 7)
    assert np.all(padded[lengths > 64] <= 1.25 * lengths[lengths > 64])
    assert len(set(padded[(lengths >= 1) & (lengths <= 128)])) == 12
    assert len(set(padded[(lengths >= 1) & (lengths <= 4096)])) == 32
    assert all(a <= b for a, b in itertools.pairwise(padded))  # monotone
