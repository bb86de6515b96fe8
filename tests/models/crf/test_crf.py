"""The CRF's maths against brute force: every tag path enumerated, in float64, for tiny sizes.

Runs on every Keras backend: `make test` runs it on TensorFlow and again on torch
(KERAS_BACKEND=torch, in the Python 3.11 side environment).
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
from keras import ops
from linear_crf import crf
from linear_crf.crf import CRF
from linear_crf.tag_scheme import allowed_transitions

BACKEND = keras.backend.backend()
NUM_TAGS = 3
SEQUENCE_LENGTH = 5
LENGTHS = np.array([5, 3, 1, 0, 4])  # mixed, with a length-1 and an empty sequence


# ----------------------------------------------------------------------------------------------
# The reference: enumerate all paths in float64
# ----------------------------------------------------------------------------------------------


def path_score(emissions, path, transitions, start, end):
    """Score of one path over an unpadded sequence, float64; -inf where a transition is forbidden."""
    if len(path) == 0:
        return 0.0
    score = start[path[0]] + end[path[-1]]
    score += sum(emissions[t, tag] for t, tag in enumerate(path))
    score += sum(transitions[a, b] for a, b in zip(path[:-1], path[1:]))
    return float(score)


def all_paths(emissions, length, transitions, start, end):
    """Every path of a sequence of `length` tokens and its score, in enumeration order."""
    num_tags = emissions.shape[-1]
    paths = list(itertools.product(range(num_tags), repeat=int(length)))
    scores = np.array([path_score(emissions, p, transitions, start, end) for p in paths])
    return paths, scores


def logsumexp64(scores):
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return -np.inf
    peak = finite.max()
    return peak + np.log(np.exp(finite - peak).sum())


def brute_force(emissions, lengths, transitions, start, end):
    """log Z, best path, best score, the sorted list of all (score, path), and marginals."""
    results = []
    for b, length in enumerate(lengths):
        paths, scores = all_paths(emissions[b].astype(np.float64), length, transitions, start, end)
        log_z = logsumexp64(scores)
        order = sorted(range(len(paths)), key=lambda i: -scores[i])  # stable: ties keep enum order
        marginal = np.zeros((int(length), emissions.shape[-1]))
        for path, score in zip(paths, scores):
            if np.isfinite(score):
                for t, tag in enumerate(path):
                    marginal[t, tag] += np.exp(score - log_z)
        results.append(
            dict(
                log_z=log_z,
                ranked=[(scores[i], paths[i]) for i in order],
                marginals=marginal,
                paths=paths,
                scores=scores,
            )
        )
    return results


def make_inputs(seed=0, batch_lengths=LENGTHS, num_tags=NUM_TAGS, sequence_length=SEQUENCE_LENGTH):
    rng = np.random.default_rng(seed)
    batch_size = len(batch_lengths)
    emissions = rng.normal(size=(batch_size, sequence_length, num_tags)).astype(np.float32)
    transitions = rng.normal(size=(num_tags, num_tags)).astype(np.float32)
    start = rng.normal(size=(num_tags,)).astype(np.float32)
    end = rng.normal(size=(num_tags,)).astype(np.float32)
    mask = np.arange(sequence_length)[None, :] < np.asarray(batch_lengths)[:, None]
    return emissions, mask, transitions, start, end


def constrained(transitions, start, end, tag_names, scheme):
    allowed, allowed_start, allowed_end = allowed_transitions(tag_names, scheme)
    return (
        np.where(allowed, transitions, -np.inf).astype(np.float32),
        np.where(allowed_start, start, -np.inf).astype(np.float32),
        np.where(allowed_end, end, -np.inf).astype(np.float32),
    )


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def value_and_gradients(fn, arrays):
    """`fn(*tensors)` (a scalar) and its gradients with respect to each array, on any backend."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            value = fn(*tensors)
        return value.numpy(), [g.numpy() for g in tape.gradient(value, tensors)]
    if BACKEND == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        value = fn(*tensors)
        value.backward()
        return value.detach().numpy(), [t.grad.numpy() for t in tensors]
    if BACKEND == "jax":
        import jax

        value, grads = jax.value_and_grad(fn, argnums=tuple(range(len(arrays))))(*arrays)
        return np.asarray(value), [np.asarray(g) for g in grads]
    pytest.skip(f"no gradient helper for backend {BACKEND}")


CONSTRAINED_TAGS = ["[PAD]", "B-a", "I-a", "O"]  # a padding tag that is allowed nowhere


@pytest.fixture(params=["free", "iob2"])
def case(request):
    """Random inputs, unconstrained or with IOB2 constraints (true -inf) and a padding tag."""
    if request.param == "free":
        emissions, mask, transitions, start, end = make_inputs()
    else:
        emissions, mask, transitions, start, end = make_inputs(num_tags=len(CONSTRAINED_TAGS))
        transitions, start, end = constrained(transitions, start, end, CONSTRAINED_TAGS, "iob2")
    lengths = mask.sum(axis=1)
    return (
        emissions,
        mask,
        transitions,
        start,
        end,
        brute_force(emissions, lengths, transitions, start, end),
    )


# ----------------------------------------------------------------------------------------------
# The maths
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unroll", [False, True])
def test_log_partition_matches_brute_force(case, unroll):
    emissions, mask, transitions, start, end, reference = case
    log_z = numpy(crf.log_partition(emissions, mask, transitions, start, end, unroll=unroll))
    np.testing.assert_allclose(log_z, [r["log_z"] for r in reference], rtol=1e-5, atol=1e-5)


def test_sequence_score_and_log_likelihood_match_brute_force(case):
    emissions, mask, transitions, start, end, reference = case
    rng = np.random.default_rng(1)
    tag_ids = np.zeros(mask.shape, dtype=np.int32)
    expected_scores, expected_ll = [], []
    for b, r in enumerate(reference):
        finite = [p for p, s in zip(r["paths"], r["scores"]) if np.isfinite(s)]
        path = finite[rng.integers(len(finite))]
        tag_ids[b, : len(path)] = path
        tag_ids[b, len(path) :] = rng.integers(emissions.shape[-1])  # padding is ignored
        score = path_score(emissions[b].astype(np.float64), path, transitions, start, end)
        expected_scores.append(score)
        expected_ll.append(score - r["log_z"])
    np.testing.assert_allclose(
        numpy(crf.sequence_score(emissions, tag_ids, mask, transitions, start, end)),
        expected_scores,
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        numpy(crf.log_likelihood(emissions, tag_ids, mask, transitions, start, end)),
        expected_ll,
        rtol=1e-5,
        atol=1e-5,
    )


def test_probabilities_of_all_paths_sum_to_one(case):
    emissions, mask, transitions, start, end, reference = case
    for b, r in enumerate(reference):
        length = int(mask[b].sum())
        paths = np.array(r["paths"], dtype=np.int32).reshape(len(r["paths"]), length)
        batch = np.repeat(emissions[b : b + 1], len(paths), axis=0)
        tag_ids = np.zeros((len(paths), emissions.shape[1]), dtype=np.int32)
        tag_ids[:, :length] = paths
        batch_mask = np.repeat(mask[b : b + 1], len(paths), axis=0)
        ll = numpy(crf.log_likelihood(batch, tag_ids, batch_mask, transitions, start, end))
        assert np.all(ll <= 1e-6)
        np.testing.assert_allclose(np.exp(ll.astype(np.float64)).sum(), 1.0, rtol=1e-5)


def test_viterbi_matches_brute_force(case):
    emissions, mask, transitions, start, end, reference = case
    tag_ids, scores = crf.viterbi_decode(emissions, mask, transitions, start, end)
    tag_ids, scores = numpy(tag_ids), numpy(scores)
    assert tag_ids.dtype == np.int32 and tag_ids.shape == mask.shape
    for b, r in enumerate(reference):
        best_score, best_path = r["ranked"][0]
        length = len(best_path)
        assert tag_ids[b, :length].tolist() == list(best_path)
        assert np.all(tag_ids[b, length:] == 0)
        np.testing.assert_allclose(scores[b], best_score, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("top_k", [1, 4, 30])
def test_nbest_matches_brute_force(case, top_k):
    emissions, mask, transitions, start, end, reference = case
    tag_ids, scores = crf.nbest_viterbi_decode(emissions, mask, transitions, start, end, top_k)
    tag_ids, scores = numpy(tag_ids), numpy(scores)
    assert tag_ids.shape == (mask.shape[0], top_k, mask.shape[1])
    for b, r in enumerate(reference):
        ranked = [(s, p) for s, p in r["ranked"] if np.isfinite(s)][:top_k]
        expected_scores = [s for s, _ in ranked] + [-np.inf] * (top_k - len(ranked))
        np.testing.assert_allclose(scores[b], expected_scores, rtol=1e-5, atol=1e-5)
        # Paths of equal score may come in either order; compare each score's set of paths.
        got = {}
        for k in range(len(ranked)):
            got.setdefault(round(float(scores[b, k]), 4), set()).add(
                tuple(tag_ids[b, k, : len(ranked[k][1])])
            )
        want = {}
        for s, p in ranked:
            want.setdefault(round(float(s), 4), set()).add(tuple(p))
        assert got == want
        assert np.all(tag_ids[b, :, int(mask[b].sum()) :] == 0)


def test_marginals_match_brute_force(case):
    emissions, mask, transitions, start, end, reference = case
    marginals = numpy(crf.marginals(emissions, mask, transitions, start, end))
    for b, r in enumerate(reference):
        length = int(mask[b].sum())
        np.testing.assert_allclose(marginals[b, :length], r["marginals"], atol=1e-5)
        assert np.all(marginals[b, length:] == 0)
        np.testing.assert_allclose(marginals[b, :length].sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("unroll", [False, True])
def test_gradient_of_log_partition_is_the_marginals(case, unroll):
    """d log Z / d emissions = marginals, d log Z / d transitions = expected transition counts."""
    emissions, mask, transitions, start, end, reference = case
    _, (d_emissions, d_transitions) = value_and_gradients(
        lambda e, t: ops.sum(crf.log_partition(e, mask, t, start, end, unroll=unroll)),
        [emissions, transitions],
    )
    expected_pairs = np.zeros_like(transitions, dtype=np.float64)
    for b, r in enumerate(reference):
        length = int(mask[b].sum())
        np.testing.assert_allclose(d_emissions[b, :length], r["marginals"], atol=1e-5)
        for path, score in zip(r["paths"], r["scores"]):
            if np.isfinite(score):
                for a, c in zip(path[:-1], path[1:]):
                    expected_pairs[a, c] += np.exp(score - r["log_z"])
    assert np.all(np.isfinite(d_emissions)) and np.all(np.isfinite(d_transitions))
    np.testing.assert_allclose(d_transitions, expected_pairs, atol=1e-5)


def dynamic_programming(emissions, length, transitions, start, end):
    """log Z, marginals and the Viterbi path of one sequence by textbook dynamic programming in
    float64 (log-space forward-backward; Viterbi with back-pointers): the reference for sequences
    too long to enumerate."""
    e = emissions[:length].astype(np.float64)
    t = transitions.astype(np.float64)

    def lse(x, axis):
        peak = x.max(axis=axis, keepdims=True)
        return (peak + np.log(np.exp(x - peak).sum(axis=axis, keepdims=True))).squeeze(axis)

    alpha, beta = np.zeros_like(e), np.zeros_like(e)
    alpha[0] = start + e[0]
    for i in range(1, length):
        alpha[i] = lse(alpha[i - 1][:, None] + t, 0) + e[i]
    beta[-1] = end
    for i in range(length - 2, -1, -1):
        beta[i] = lse(t + (e[i + 1] + beta[i + 1])[None, :], 1)
    log_z = lse(alpha[-1] + end, 0)
    best, pointers = start + e[0], []
    for i in range(1, length):
        candidates = best[:, None] + t
        pointers.append(candidates.argmax(axis=0))
        best = candidates.max(axis=0) + e[i]
    path = [int((best + end).argmax())]
    for back in reversed(pointers):
        path.append(int(back[path[-1]]))
    return log_z, np.exp(alpha + beta - log_z), path[::-1], float((best + end).max())


def test_long_sequences_match_dynamic_programming():
    """Lengths across several loop iterations (the TensorFlow loops run blocks of steps), ragged,
    with a row of length 1 and an empty one, against float64 dynamic programming."""
    lengths = [41, 40, 33, 17, 9, 8, 2, 1, 0]
    emissions, mask, transitions, start, end = make_inputs(
        seed=7, batch_lengths=lengths, num_tags=5, sequence_length=41
    )
    log_z, (d_emissions,) = value_and_gradients(
        lambda e: ops.sum(crf.log_partition(e, mask, transitions, start, end)), [emissions]
    )
    tag_ids, scores = crf.viterbi_decode(emissions, mask, transitions, start, end)
    tag_ids, scores = numpy(tag_ids), numpy(scores)
    expected_log_z = 0.0
    for b, length in enumerate(lengths):
        if length == 0:
            assert np.all(d_emissions[b] == 0) and np.all(tag_ids[b] == 0) and scores[b] == 0
            continue
        row_log_z, marginals, path, best = dynamic_programming(
            emissions[b], length, transitions, start, end
        )
        expected_log_z += row_log_z
        np.testing.assert_allclose(d_emissions[b, :length], marginals, atol=1e-5)
        assert np.all(d_emissions[b, length:] == 0)
        assert tag_ids[b, :length].tolist() == path and np.all(tag_ids[b, length:] == 0)
        np.testing.assert_allclose(scores[b], best, rtol=1e-5)
    np.testing.assert_allclose(log_z, expected_log_z, rtol=1e-5)


def test_viterbi_scores_minus_infinity_where_no_path_is_allowed():
    """Tags 0 and 1 must alternate, start and end at 0 (odd lengths only); tag 2 is never
    reachable. Rows of even length have no allowed path: score -inf, as a maximum of sums gives."""
    lengths = [17, 16, 9, 8, 2, 1]
    emissions, mask, transitions, start, end = make_inputs(
        seed=3, batch_lengths=lengths, num_tags=3, sequence_length=17
    )
    allowed = np.array([[False, True, False], [True, False, False], [False, False, False]])
    transitions = np.where(allowed, transitions, -np.inf).astype(np.float32)
    start = np.array([start[0], -np.inf, -np.inf], np.float32)
    end = np.array([end[0], -np.inf, -np.inf], np.float32)
    tag_ids, scores = crf.viterbi_decode(emissions, mask, transitions, start, end)
    tag_ids, scores = numpy(tag_ids), numpy(scores)
    for b, length in enumerate(lengths):
        if length % 2 == 0:
            assert scores[b] == -np.inf
            continue
        path = [t % 2 for t in range(length)]
        assert tag_ids[b, :length].tolist() == path
        expected = path_score(emissions[b].astype(np.float64), path, transitions, start, end)
        np.testing.assert_allclose(scores[b], expected, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Exact at every scale: logits far apart (overconfident models, long training) and -inf constraints
# ----------------------------------------------------------------------------------------------

SCALES = [1.0, 10.0, 100.0, 1000.0]


def scaled_case(scale, constraint, seed):
    """Batch 4, length 5, 4 tags; emissions ~ N(0, scale^2), transitions ~ N(0, (scale / 2)^2)."""
    emissions, mask, transitions, start, end = make_inputs(
        seed=seed, batch_lengths=[5, 5, 3, 1], num_tags=len(CONSTRAINED_TAGS)
    )
    emissions, transitions = emissions * scale, transitions * scale / 2
    start, end = start * scale / 2, end * scale / 2
    if constraint == "iob2":
        transitions, start, end = constrained(transitions, start, end, CONSTRAINED_TAGS, "iob2")
    return emissions, mask, transitions, start, end


@pytest.mark.parametrize("unroll", [False, True])
@pytest.mark.parametrize("constraint", ["free", "iob2"])
@pytest.mark.parametrize("scale", SCALES)
def test_log_partition_and_likelihood_exact_at_every_scale(scale, constraint, unroll):
    """log Z and log p(y) to 1e-5 relative against float64 brute force, scales 1 to 1,000.

    The likelihood of the *least* likely allowed path is where rounding in the forward recursion
    shows (it is carried into log Z when a later emission favours a tag whose share had vanished).
    For the other paths `log p = score - log Z` is a difference of float32 numbers of size |log Z|,
    so their error is bounded relative to the larger of |log p| and |log Z|.
    """
    for seed in range(6):
        emissions, mask, transitions, start, end = scaled_case(scale, constraint, seed)
        reference = brute_force(emissions, mask.sum(axis=1), transitions, start, end)
        expected = np.array([r["log_z"] for r in reference])
        log_z = numpy(crf.log_partition(emissions, mask, transitions, start, end, unroll=unroll))
        np.testing.assert_allclose(log_z, expected, rtol=1e-5, err_msg=f"seed {seed}")
        for b, r in enumerate(reference):
            length = int(mask[b].sum())
            finite = np.isfinite(r["scores"])
            paths = np.array(r["paths"], dtype=np.int32).reshape(-1, length)[finite]
            tag_ids = np.zeros((len(paths), emissions.shape[1]), dtype=np.int32)
            tag_ids[:, :length] = paths
            batch = np.repeat(emissions[b : b + 1], len(paths), axis=0)
            batch_mask = np.repeat(mask[b : b + 1], len(paths), axis=0)
            ll = numpy(
                crf.log_likelihood(batch, tag_ids, batch_mask, transitions, start, end, unroll)
            )
            want = r["scores"][finite] - r["log_z"]
            assert np.all(np.isfinite(ll)) and np.all(ll <= 0.0)
            worst = np.argmin(want)
            assert abs(ll[worst] - want[worst]) <= 1e-5 * abs(want[worst]), (seed, b)
            bound = 1e-5 * np.maximum(np.abs(want), abs(r["log_z"]))
            assert np.all(np.abs(ll - want) <= bound), (seed, b)


@pytest.mark.parametrize("constraint", ["free", "iob2"])
@pytest.mark.parametrize("scale", SCALES)
def test_marginals_and_gradients_exact_at_every_scale(scale, constraint):
    """Marginals, and the loss gradient (= marginals - gold), finite and right at scales to 1,000."""
    for seed in range(3):
        emissions, mask, transitions, start, end = scaled_case(scale, constraint, seed)
        reference = brute_force(emissions, mask.sum(axis=1), transitions, start, end)
        marginals = numpy(crf.marginals(emissions, mask, transitions, start, end))
        best, _ = crf.viterbi_decode(emissions, mask, transitions, start, end)
        tag_ids = numpy(best)
        loss, (d_emissions,) = value_and_gradients(
            lambda e, y=tag_ids, m=mask, t=transitions, s=start, f=end: ops.sum(
                -crf.log_likelihood(e, y, m, t, s, f)
            ),
            [emissions],
        )
        assert np.isfinite(loss) and loss >= 0.0
        gold = np.eye(emissions.shape[-1])[tag_ids] * mask[..., None]
        for b, r in enumerate(reference):
            length = int(mask[b].sum())
            # A marginal is exp(alpha + beta - log Z), each term as large as log Z: float32 gets
            # its log to ~1e-7 |log Z|, so p to that much absolute (1e-5 at least).
            atol = max(1e-5, 1e-6 * abs(r["log_z"]))
            np.testing.assert_allclose(marginals[b, :length], r["marginals"], atol=atol)
            np.testing.assert_allclose(
                d_emissions[b, :length], r["marginals"] - gold[b, :length], atol=atol
            )


def test_gradients_finite_with_constraints_padding_tag_and_empty_sequences():
    emissions, mask, transitions, start, end = make_inputs(seed=3, num_tags=len(CONSTRAINED_TAGS))
    transitions, start, end = constrained(transitions, start, end, CONSTRAINED_TAGS, "iob2")
    tag_ids = np.full(mask.shape, 3, dtype=np.int32)  # all "O": an allowed path
    value, grads = value_and_gradients(
        lambda e: ops.sum(-crf.log_likelihood(e, tag_ids, mask, transitions, start, end)),
        [emissions],
    )
    assert np.isfinite(value) and value >= 0
    assert np.all(np.isfinite(grads[0]))


def test_nll_never_negative_nor_nan_with_large_scores_and_constraints():
    tags = ["[PAD]", "B-a", "I-a", "B-b", "I-b", "O"]
    for scale in (1.0, 30.0, 300.0):
        emissions, mask, transitions, start, end = make_inputs(
            seed=int(scale), num_tags=len(tags), sequence_length=8, batch_lengths=[8, 5, 1, 0, 7, 3]
        )
        emissions *= scale
        transitions, start, end = constrained(transitions * scale, start, end, tags, "iob2")
        # The best allowed path is an allowed gold path; so is all-O.
        best, _ = crf.viterbi_decode(emissions, mask, transitions, start, end)
        for tag_ids in (numpy(best), np.full(mask.shape, 5, np.int32)):
            nll = -numpy(crf.log_likelihood(emissions, tag_ids, mask, transitions, start, end))
            assert np.all(np.isfinite(nll)), nll
            assert np.all(nll >= -1e-4 * max(1.0, scale)), nll


def test_forbidden_gold_path_gives_infinite_loss_not_nan():
    emissions, mask, transitions, start, end = make_inputs(
        num_tags=len(CONSTRAINED_TAGS), batch_lengths=[3]
    )
    transitions, start, end = constrained(transitions, start, end, CONSTRAINED_TAGS, "iob2")
    tag_ids = np.array([[3, 2, 2, 0, 0]], dtype=np.int32)  # O I-a I-a: forbidden in IOB2
    nll = -numpy(crf.log_likelihood(emissions, tag_ids, mask, transitions, start, end))
    assert np.isposinf(nll[0])


def test_decoded_paths_respect_constraints():
    tags = ["[PAD]", "B-a", "I-a", "B-b", "I-b", "O"]
    emissions, mask, transitions, start, end = make_inputs(
        seed=11, num_tags=len(tags), sequence_length=12, batch_lengths=[12, 9, 4, 1, 0, 12, 12, 7]
    )
    emissions[:, :, 2] += (
        3.0  # push I-a everywhere, so that an unconstrained decoder would break IOB2
    )
    transitions, start, end = constrained(transitions, start, end, tags, "iob2")
    allowed, allowed_start, allowed_end = allowed_transitions(tags, "iob2")
    decoded, _ = crf.viterbi_decode(emissions, mask, transitions, start, end)
    nbest, scores = crf.nbest_viterbi_decode(emissions, mask, transitions, start, end, 5)
    # N-best entries with score -inf are the missing paths of short sequences (all-0 tags).
    paths = [p for p in numpy(decoded)] + [
        p
        for row, row_scores in zip(numpy(nbest), numpy(scores))
        for p, s in zip(row, row_scores)
        if np.isfinite(s)
    ]
    lengths = list(mask.sum(1)) + [
        n for n, row_scores in zip(mask.sum(1), numpy(scores)) for s in row_scores if np.isfinite(s)
    ]
    assert len(paths) > 30
    for path, length in zip(paths, lengths):
        path = path[:length]
        if length:
            assert allowed_start[path[0]] and allowed_end[path[-1]]
            assert all(allowed[a, b] for a, b in zip(path[:-1], path[1:])), path


# ----------------------------------------------------------------------------------------------
# Masking and batching
# ----------------------------------------------------------------------------------------------


def all_outputs(emissions, mask, transitions, start, end, top_k=3):
    tags, scores = crf.viterbi_decode(emissions, mask, transitions, start, end)
    nbest_tags, nbest_scores = crf.nbest_viterbi_decode(
        emissions, mask, transitions, start, end, top_k
    )
    tag_ids = numpy(tags)
    return dict(
        log_z=numpy(crf.log_partition(emissions, mask, transitions, start, end)),
        ll=numpy(crf.log_likelihood(emissions, tag_ids, mask, transitions, start, end)),
        tags=tag_ids,
        scores=numpy(scores),
        nbest_tags=numpy(nbest_tags),
        nbest_scores=numpy(nbest_scores),
        marginals=numpy(crf.marginals(emissions, mask, transitions, start, end)),
    )


def test_batched_equals_one_at_a_time():
    emissions, mask, transitions, start, end = make_inputs(seed=5)
    batched = all_outputs(emissions, mask, transitions, start, end)
    for b in range(len(mask)):
        single = all_outputs(emissions[b : b + 1], mask[b : b + 1], transitions, start, end)
        for key, value in single.items():
            np.testing.assert_allclose(
                batched[key][b : b + 1], value, rtol=1e-5, atol=1e-6, err_msg=key
            )


def test_extra_padding_changes_nothing():
    emissions, mask, transitions, start, end = make_inputs(seed=6)
    base = all_outputs(emissions, mask, transitions, start, end)
    rng = np.random.default_rng(0)
    garbage = rng.normal(size=(len(mask), 4, NUM_TAGS)).astype(np.float32) * 100
    padded = all_outputs(
        np.concatenate([emissions, garbage], axis=1),
        np.concatenate([mask, np.zeros((len(mask), 4), bool)], axis=1),
        transitions,
        start,
        end,
    )
    for key in ("log_z", "ll", "scores", "nbest_scores"):
        np.testing.assert_allclose(padded[key], base[key], rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_array_equal(padded["tags"][:, :SEQUENCE_LENGTH], base["tags"])
    np.testing.assert_array_equal(padded["tags"][:, SEQUENCE_LENGTH:], 0)
    np.testing.assert_allclose(
        padded["marginals"][:, :SEQUENCE_LENGTH], base["marginals"], atol=1e-6
    )
    # Garbage under existing padding changes nothing either.
    noisy = np.where(mask[..., None], emissions, garbage[:, :1] * 7)
    np.testing.assert_allclose(
        all_outputs(noisy, mask, transitions, start, end)["log_z"], base["log_z"], rtol=1e-6
    )


@pytest.mark.parametrize("garbage", [np.inf, -np.inf, np.nan, 1e30])
def test_padding_holding_inf_or_nan_changes_no_value_nor_gradient(garbage):
    """Whatever sits under the padding (a network's output there is not ours to trust), the loss,
    its gradients and the decoded paths are those of the clean inputs, and finite."""
    emissions, mask, transitions, start, end = make_inputs(seed=11)
    tag_ids = np.random.default_rng(3).integers(0, NUM_TAGS, size=mask.shape).astype(np.int32)
    dirty = np.where(mask[..., None], emissions, np.float32(garbage)).astype(np.float32)

    def loss(e, t, s, n):
        return -ops.sum(crf.log_likelihood(e, tag_ids, mask, t, s, n))

    clean_value, clean_gradients = value_and_gradients(loss, [emissions, transitions, start, end])
    value, gradients = value_and_gradients(loss, [dirty, transitions, start, end])
    np.testing.assert_allclose(value, clean_value, rtol=1e-6)
    for name, got, expected in zip(
        ("emissions", "transitions", "start", "end"), gradients, clean_gradients
    ):
        assert np.all(np.isfinite(got)), name
        np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=name)
    clean_tags, _ = crf.viterbi_decode(emissions, mask, transitions, start, end)
    tags, _ = crf.viterbi_decode(dirty, mask, transitions, start, end)
    np.testing.assert_array_equal(numpy(tags), numpy(clean_tags))


def test_left_padding_equals_right_padding():
    emissions, mask, transitions, start, end = make_inputs(seed=8)
    right = all_outputs(emissions, mask, transitions, start, end)
    # Move each sequence's real tokens to the end of its row.
    left_emissions = np.zeros_like(emissions)
    left_mask = np.zeros_like(mask)
    for b, length in enumerate(mask.sum(1)):
        if length:
            left_emissions[b, -length:] = emissions[b, :length]
            left_mask[b, -length:] = True
    left = all_outputs(left_emissions, left_mask, transitions, start, end)
    np.testing.assert_allclose(
        numpy(crf.log_partition(left_emissions, left_mask, transitions, start, end, unroll=True)),
        right["log_z"],
        rtol=1e-5,
    )
    for key in ("log_z", "scores", "nbest_scores"):
        np.testing.assert_allclose(left[key], right[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for b, length in enumerate(mask.sum(1)):
        if length:
            np.testing.assert_array_equal(left["tags"][b, -length:], right["tags"][b, :length])
            np.testing.assert_allclose(
                left["marginals"][b, -length:], right["marginals"][b, :length], atol=1e-6
            )


def test_integer_masks_are_accepted():
    emissions, mask, transitions, start, end = make_inputs()
    np.testing.assert_allclose(
        numpy(crf.log_partition(emissions, mask.astype(np.int32), transitions, start, end)),
        numpy(crf.log_partition(emissions, mask, transitions, start, end)),
    )


# ----------------------------------------------------------------------------------------------
# Errors: every public message
# ----------------------------------------------------------------------------------------------


def test_error_wrong_rank():
    emissions, mask, transitions, start, end = make_inputs()
    with pytest.raises(
        ValueError,
        match=r"Invalid value for `emissions`. Expected a rank-3 tensor.*Received: emissions.shape=\(5, 5\)",
    ):
        crf.log_partition(emissions[:, :, 0], mask, transitions, start, end)
    with pytest.raises(ValueError, match=r"Invalid value for `mask`. Expected a rank-2 tensor"):
        crf.log_partition(emissions, mask[0], transitions, start, end)
    with pytest.raises(ValueError, match=r"Invalid value for `tag_ids`. Expected a rank-2 tensor"):
        crf.sequence_score(emissions, np.zeros((5,), np.int32), mask, transitions, start, end)
    with pytest.raises(
        ValueError, match=r"Invalid value for `transitions`. Expected a square matrix"
    ):
        crf.log_partition(emissions, mask, transitions[:2], start, end)


def test_error_num_tags_mismatch():
    emissions, mask, transitions, start, end = make_inputs()
    with pytest.raises(
        ValueError,
        match=r"Expected the last dimension to equal num_tags=4.*Received: emissions.shape=\(5, 5, 3\)",
    ):
        crf.log_partition(
            emissions,
            mask,
            np.zeros((4, 4), np.float32),
            np.zeros(4, np.float32),
            np.zeros(4, np.float32),
        )
    with pytest.raises(
        ValueError,
        match=r"Invalid value for `start_transitions`. Expected shape \(num_tags,\) = \(3,\)",
    ):
        crf.log_partition(emissions, mask, transitions, np.zeros(4, np.float32), end)
    layer = CRF(4)
    with pytest.raises(ValueError, match=r"num_tags=4"):
        layer(emissions)


def test_error_tag_ids_out_of_range():
    emissions, mask, transitions, start, end = make_inputs()
    tag_ids = np.zeros(mask.shape, np.int32)
    tag_ids[0, 1] = NUM_TAGS
    with pytest.raises(
        ValueError,
        match=r"Invalid value for `tag_ids`. Expected ids in \[0, 3\) \(num_tags=3\). Received: tag_ids containing 3",
    ):
        crf.log_likelihood(emissions, tag_ids, mask, transitions, start, end)
    tag_ids[0, 1] = -1
    with pytest.raises(ValueError, match=r"Received: tag_ids containing -1"):
        crf.sequence_score(emissions, tag_ids, mask, transitions, start, end)
    with pytest.raises(
        ValueError, match=r"Expected an integer dtype. Received: tag_ids.dtype=float32"
    ):
        crf.sequence_score(emissions, tag_ids.astype(np.float32), mask, transitions, start, end)


def test_error_bad_mask():
    emissions, mask, transitions, start, end = make_inputs()
    with pytest.raises(
        ValueError,
        match=r"Invalid value for `mask`. Expected dtype bool .* Received: mask.dtype=float32",
    ):
        crf.log_partition(emissions, mask.astype(np.float32), transitions, start, end)
    holes = mask.copy()
    holes[0, 2] = False
    with pytest.raises(
        ValueError,
        match=r"Expected the real tokens of each sequence to be contiguous.*row 0: \[1, 1, 0, 1, 1\]",
    ):
        crf.viterbi_decode(emissions, holes, transitions, start, end)
    with pytest.raises(
        ValueError, match=r"Expected shape \(batch_size, sequence_length\) = \(5, 5\)"
    ):
        crf.log_partition(emissions, mask[:, :3], transitions, start, end)


def test_error_unknown_tag_scheme_and_bad_layer_arguments():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for `tag_scheme`. Expected one of 'iob2' .* Received: tag_scheme='bilou'",
    ):
        CRF(3, tag_names=["O", "B-a", "I-a"], tag_scheme="bilou")
    with pytest.raises(
        ValueError,
        match=r"Invalid value for `tag_names`. Expected the tag of each id when `tag_scheme` is set",
    ):
        CRF(3, tag_scheme="iob2")
    with pytest.raises(
        ValueError,
        match=r"Invalid value for `tag_names`. Expected num_tags=3 names. Received: 2 names",
    ):
        CRF(3, tag_names=["O", "B-a"])
    with pytest.raises(
        ValueError,
        match=r"Invalid value for `num_tags`. Expected a positive int. Received: num_tags=0",
    ):
        CRF(0)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for `tag`. Expected O, B-<type> or I-<type>.*Received: tag='X-a'",
    ):
        CRF(3, tag_names=["O", "B-a", "X-a"], tag_scheme="iob2")
    with pytest.raises(
        ValueError, match=r"Invalid value for `top_k`. Expected a positive int. Received: top_k=0"
    ):
        crf.nbest_viterbi_decode(*make_inputs(), 0)


def test_error_outputs_of_another_shape_and_unbound_loss():
    layer = CRF(3)
    with pytest.raises(
        ValueError,
        match=r"Expected the CRF layer's outputs of shape .* \(\.\.\., 7\). Received: outputs.shape=\(2, 4, 3\)",
    ):
        layer.decode(np.zeros((2, 4, 3), np.float32))
    loss = crf.CRFLoss.from_config(layer.loss.get_config())
    with pytest.raises(ValueError, match=r"This CRF loss is not bound to a CRF layer"):
        loss(np.zeros((2, 4)), np.zeros((2, 4, 7), np.float32))
