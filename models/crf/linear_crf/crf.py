"""A linear-chain conditional random field for Keras 3: pure functions and the `CRF` layer.

The CRF scores a whole tag sequence `y` of a sentence `x` as

    score(x, y) = start[y_1] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_T]

and models p(y | x) = exp(score(x, y)) / Z(x) (Lafferty, McCallum & Pereira, 2001). Training maximises
log p(y | x), with log Z from the forward algorithm (in its scaled form, one matrix product per
step; see `_forward_final`); decoding finds the best path with the Viterbi algorithm (Viterbi,
1967), in log space; the forward-backward algorithm, in log space, gives per-token marginals
(Rabiner, 1989). Lample et al. (2016) and Ma & Hovy (2016) put it on top of a BiLSTM for NER.

Everything here uses `keras.ops` only, so it runs on every Keras backend (TensorFlow, JAX, torch),
inside `tf.function` with unknown batch and time dimensions, and under XLA (`jit_compile=True`).
In a TensorFlow graph that XLA does not compile whole (Keras trains so on CPU), `log_partition`
(hence the loss) runs by default as XLA programs called from the graph, the same code compiled
(`compiled_in_graph`); decoding, and the loss where nothing is compiled (eagerly, while exporting,
or with `compiled_in_graph(loss=False)`), run the same algorithms written in TensorFlow
(`linear_crf._tensorflow`): the loss with its forward-backward gradient written out, about twice
as fast as differentiating the loop in graph mode.
The dynamic programs always run in float32, also under `mixed_float16` / `mixed_bfloat16` policies.

Conventions for every function:
    emissions: float `(batch_size, sequence_length, num_tags)` per-token tag scores.
    mask: bool `(batch_size, sequence_length)`, True at real tokens. The real tokens of a sequence
        must be contiguous: right padding (the usual case) and left padding both work; a mask with
        holes (`1 0 1`) is rejected where it can be checked (eagerly), and undefined in a graph.
    transitions: float `(num_tags, num_tags)`, `[from, to]` score of tag `to` following tag `from`.
    start_transitions, end_transitions: float `(num_tags,)`.
Disallowed transitions are `-inf` (see `linear_crf.tag_scheme`); padding contributes exactly nothing, and
a sequence of length 0 has exactly one (empty) path of score 0.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from typing import Any

import keras
import numpy as np
from keras import ops

from linear_crf.tag_scheme import allowed_transitions, canonical_scheme

__all__ = [
    "CRF",
    "CRFLoss",
    "compiled_in_graph",
    "decoding_in_parts",
    "log_likelihood",
    "log_partition",
    "marginals",
    "nbest_viterbi_decode",
    "sequence_score",
    "viterbi_decode",
]

_NEG_INF = float("-inf")
# A tag's scaled total in `_forward_final` below which the matrix-product step is not trusted.
_UNDERFLOW = 1e-25


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------


def _concrete(x):
    """`x` as a NumPy array when its value is known now (eager), else None (graph, tracing)."""
    if x is None or isinstance(x, keras.KerasTensor):
        return None
    try:
        return np.asarray(x)
    except Exception:  # symbolic tensors of every backend refuse, each with its own error type
        return None


def _check_emissions(emissions, num_tags: int | None = None):
    shape = tuple(emissions.shape)
    if len(shape) != 3:
        raise ValueError(
            "Invalid value for `emissions`. Expected a rank-3 tensor of shape "
            f"(batch_size, sequence_length, num_tags). Received: emissions.shape={shape}"
        )
    if num_tags is not None and shape[-1] is not None and shape[-1] != num_tags:
        raise ValueError(
            "Invalid value for `emissions`. Expected the last dimension to equal num_tags="
            f"{num_tags} (the size of the transition matrix). Received: emissions.shape={shape}"
        )


def _check_transitions(transitions, start_transitions, end_transitions) -> int:
    shape = tuple(transitions.shape)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(
            "Invalid value for `transitions`. Expected a square matrix of shape "
            f"(num_tags, num_tags). Received: transitions.shape={shape}"
        )
    for name, value in (
        ("start_transitions", start_transitions),
        ("end_transitions", end_transitions),
    ):
        if tuple(value.shape) != (shape[0],):
            raise ValueError(
                f"Invalid value for `{name}`. Expected shape (num_tags,) = ({shape[0]},). "
                f"Received: {name}.shape={tuple(value.shape)}"
            )
    return shape[0]


def _prepare_mask(mask, emissions):
    """Checks `mask` and returns it as bool `(batch_size, sequence_length)`; all True if None."""
    if mask is None:
        return ops.ones(ops.shape(emissions)[:2], dtype="bool")
    if len(mask.shape) != 2:
        raise ValueError(
            "Invalid value for `mask`. Expected a rank-2 tensor of shape (batch_size, sequence_length)."
            f" Received: mask.shape={tuple(mask.shape)}"
        )
    dtype = keras.backend.standardize_dtype(mask.dtype)
    if dtype != "bool" and "int" not in dtype:
        raise ValueError(
            "Invalid value for `mask`. Expected dtype bool (True at real tokens) or an integer "
            f"dtype. Received: mask.dtype={dtype}"
        )
    for axis in (0, 1):
        expected, received = emissions.shape[axis], mask.shape[axis]
        if expected is not None and received is not None and expected != received:
            raise ValueError(
                "Invalid value for `mask`. Expected shape (batch_size, sequence_length) = "
                f"{tuple(emissions.shape[:2])} to match `emissions`. Received: mask.shape="
                f"{tuple(mask.shape)}"
            )
    value = _concrete(mask)
    if value is not None and value.size:
        value = value.astype(bool)
        # Contiguous real tokens: at most one False->True and one True->False step per row.
        padded = np.pad(value, ((0, 0), (1, 1)))
        runs = np.sum(padded[:, 1:] & ~padded[:, :-1], axis=1)
        if np.any(runs > 1):
            row = int(np.argmax(runs > 1))
            raise ValueError(
                "Invalid value for `mask`. Expected the real tokens of each sequence to be "
                "contiguous (right or left padding). Received: a mask with holes in row "
                f"{row}: {value[row].astype(int).tolist()}"
            )
    return ops.cast(mask, "bool") if dtype != "bool" else mask


def _check_tag_ids(tag_ids, emissions, num_tags: int):
    if len(tag_ids.shape) != 2:
        raise ValueError(
            "Invalid value for `tag_ids`. Expected a rank-2 tensor of shape (batch_size, "
            f"sequence_length). Received: tag_ids.shape={tuple(tag_ids.shape)}"
        )
    dtype = keras.backend.standardize_dtype(tag_ids.dtype)
    if "int" not in dtype:
        raise ValueError(
            f"Invalid value for `tag_ids`. Expected an integer dtype. Received: tag_ids.dtype={dtype}"
        )
    value = _concrete(tag_ids)
    if value is not None and value.size and (value.min() < 0 or value.max() >= num_tags):
        bad = value[(value < 0) | (value >= num_tags)]
        raise ValueError(
            f"Invalid value for `tag_ids`. Expected ids in [0, {num_tags}) (num_tags={num_tags}). "
            f"Received: tag_ids containing {int(bad[0])}"
        )
    return ops.cast(tag_ids, "int32")


def _prepare(emissions, mask, transitions, start_transitions, end_transitions):
    """Validates the common arguments; returns them as float32 tensors and a bool mask."""
    emissions = ops.convert_to_tensor(emissions)
    transitions = ops.convert_to_tensor(transitions)
    start_transitions = ops.convert_to_tensor(start_transitions)
    end_transitions = ops.convert_to_tensor(end_transitions)
    num_tags = _check_transitions(transitions, start_transitions, end_transitions)
    _check_emissions(emissions, num_tags)
    mask = _prepare_mask(None if mask is None else ops.convert_to_tensor(mask), emissions)
    # Zeros under the padding: a network's outputs there (inf, NaN, anything) then reach no value
    # and no gradient, whichever path the dynamic programs take through the padded steps.
    emissions = ops.where(ops.expand_dims(mask, -1), ops.cast(emissions, "float32"), 0.0)
    return (
        emissions,
        mask,
        ops.cast(transitions, "float32"),
        ops.cast(start_transitions, "float32"),
        ops.cast(end_transitions, "float32"),
        num_tags,
    )


# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------


def _boundaries(mask):
    """Where sequences start and end.

    Returns:
        first: bool `(batch_size, sequence_length)`, True at each sequence's first real token.
        last: bool `(batch_size, sequence_length)`, True at each sequence's last real token.
        previous: bool `(batch_size, sequence_length)`, True where a real token follows a real one.
    """
    falses = ops.zeros_like(mask[:, :1])
    before = ops.concatenate([falses, mask[:, :-1]], axis=1)  # mask shifted right by one
    after = ops.concatenate([mask[:, 1:], falses], axis=1)  # mask shifted left by one
    return (
        ops.logical_and(mask, ops.logical_not(before)),
        ops.logical_and(mask, ops.logical_not(after)),
        ops.logical_and(mask, before),
    )


def _logsumexp(x, axis: int):
    """log(sum(exp(x))) along `axis`: exact, `-inf` where every entry is `-inf`, never a NaN gradient.

    Backends' own logsumexp give NaN gradients for an all `-inf` slice (0 * inf), which a constrained
    CRF meets for every state that no allowed transition reaches (e.g. the padding tag).
    """
    peak = ops.stop_gradient(ops.max(x, axis=axis, keepdims=True))
    # -inf - -inf is NaN: shift an all -inf slice by a finite number instead (its sum is then 0).
    total = ops.sum(ops.exp(x - ops.maximum(peak, -1e30)), axis=axis)
    # total is >= 1 unless the slice is all -inf; log(max(0, tiny)) + -inf is -inf with zero gradient.
    return ops.log(ops.maximum(total, 1e-30)) + ops.squeeze(peak, axis=axis)


def _scan(step, init, xs, reverse=False):
    """`ops.scan` over several time-major tensors, packed into one float32 tensor.

    Keras's TensorFlow `scan` fails on several `xs` when the time dimension is unknown (as in a
    serving signature), so the inputs travel as one `(sequence_length, batch_size, features)` tensor
    and are unpacked, with their dtypes, inside `step(carry, list_of_inputs)`.
    """
    specs = [(keras.backend.standardize_dtype(x.dtype), tuple(x.shape[2:])) for x in xs]
    sizes = [int(np.prod(shape)) for _, shape in specs]
    packed = ops.concatenate(
        [
            ops.cast(ops.reshape(x, ops.shape(x)[:2] + (size,)), "float32")
            for x, size in zip(xs, sizes)
        ],
        axis=-1,
    )

    def unpacked_step(carry, inputs):
        parts, offset = [], 0
        for (dtype, shape), size in zip(specs, sizes):
            part = ops.reshape(inputs[:, offset : offset + size], (-1,) + shape)
            offset += size
            if dtype == "bool":
                part = part > 0.5
            elif dtype != "float32":
                part = ops.cast(part, dtype)
            parts.append(part)
        return step(carry, parts)

    return ops.scan(unpacked_step, init, packed, reverse=reverse)


def _time_major(x):
    """`(batch_size, sequence_length, ...)` -> `(sequence_length, batch_size, ...)`."""
    axes = [1, 0] + list(range(2, len(x.shape)))
    return ops.transpose(x, axes)


def _forward(emissions, mask, transitions, start_transitions, reduce):
    """Forward pass of the CRF dynamic program, `reduce` being `_logsumexp` or `ops.max`.

    Returns:
        alphas: float32 `(sequence_length, batch_size, num_tags)`, the reduced score of all paths
            ending in each tag at each real token (carried unchanged over padding); at positions
            before a left-padded sequence starts, meaningless values.
    """
    first, _, _ = _boundaries(mask)
    # (sequence_length, batch_size, num_tags) and (sequence_length, batch_size, 1)
    emissions_tm = _time_major(emissions)
    mask_tm = ops.expand_dims(_time_major(mask), -1)
    first_tm = ops.expand_dims(_time_major(first), -1)

    def step(alpha, inputs):
        emission, is_real, is_first = inputs
        # (batch_size, num_tags, 1) + (num_tags, num_tags) -> reduce over `from`
        scores = reduce(ops.expand_dims(alpha, 2) + transitions, 1) + emission
        scores = ops.where(is_first, start_transitions + emission, scores)
        alpha = ops.where(is_real, scores, alpha)
        return alpha, alpha

    # Every position is scanned, the first too (where `is_first` ignores the carry): a scan over
    # zero steps cannot stack its outputs when the batch size is unknown.
    _, alphas = _scan(step, ops.zeros_like(emissions[:, 0]), [emissions_tm, mask_tm, first_tm])
    return alphas


def _roll_rows(x, shifts):
    """`out[b, t] = x[b, (t + shifts[b]) % sequence_length]` for `(batch_size, sequence_length, ...)`."""
    batch_size, sequence_length = ops.shape(x)[0], ops.shape(x)[1]
    positions = ops.arange(sequence_length, dtype="int32")
    # (batch_size, sequence_length): index into the flattened (batch * time) rows
    source = (ops.expand_dims(positions, 0) + ops.expand_dims(shifts, 1)) % sequence_length
    source = source + ops.expand_dims(ops.arange(batch_size, dtype="int32") * sequence_length, 1)
    flat = ops.reshape(x, (-1,) + tuple(x.shape[2:]))
    return ops.reshape(ops.take(flat, ops.reshape(source, (-1,)), axis=0), ops.shape(x))


def _right_aligned(emissions, mask):
    """Moves each sequence's real tokens to the start of its row (left padding -> right padding).

    Returns:
        emissions: float32 `(batch_size, sequence_length, num_tags)`, real tokens first.
        mask: bool `(batch_size, sequence_length)`, True for the first `length` positions.
        offsets: int32 `(batch_size,)`, how far each row moved (`_roll_rows(x, -offsets)` undoes it).
    """
    aligned_mask, offsets = _alignment(mask)
    return _roll_rows(emissions, offsets), aligned_mask, offsets


def _alignment(mask):
    """The mask of rows whose real tokens come first, and how far each row moves there.

    Returns:
        aligned_mask: bool `(batch_size, sequence_length)`, True for the first `length` positions.
        offsets: int32 `(batch_size,)`, each row's first real token.
    """
    offsets = ops.cast(ops.argmax(ops.cast(mask, "int32"), axis=1), "int32")  # first real token
    positions = ops.arange(ops.shape(mask)[1], dtype="int32")
    aligned_mask = ops.expand_dims(positions, 0) < ops.expand_dims(_lengths(mask), 1)
    return aligned_mask, offsets


def _right_aligned_in_graph(emissions, mask):
    """`_right_aligned` for the TensorFlow graph paths: the rows are moved (and moved back) only
    where some row has padding before its tokens. Right padding, Keras' usual, skips both gathers
    and their index arithmetic: 1.02-1.10x faster graph-mode decoding (BENCHMARKS.md,
    2026-12-07). A `cond`, so TensorFlow only.

    Returns:
        emissions, mask: as `_right_aligned`.
        restore: a function of `(batch_size, sequence_length, ...)` values of the aligned rows
            (a tensor) that moves them back to where the input's tokens were.
    """
    aligned_mask, offsets = _alignment(mask)
    moved = ops.logical_not(ops.all(ops.equal(mask, aligned_mask)))

    def restore(x):
        return ops.cond(moved, lambda: _roll_rows(x, -offsets), lambda: x)

    aligned = ops.cond(moved, lambda: _roll_rows(emissions, offsets), lambda: emissions)
    return aligned, aligned_mask, restore


def _forward_final(emissions, mask, transitions, start_transitions, unroll=False):
    """Forward algorithm keeping only the last step: what the loss differentiates on JAX and torch
    (and on TensorFlow with `unroll=True`). Exact at any scale.

    Each step is the scaled forward recursion of Rabiner (1989) as a matrix product,

        alpha'[to] = log(sum_from exp(alpha[from] - peak) * exp(T[from, to] - c[to])) + peak + c[to] + e[to]

    with `peak` the best state so far and `c` the best transition into each tag: only
    `(batch_size, num_tags)` exponentials per step instead of `(batch_size, num_tags, num_tags)`,
    and forbidden transitions are exact zeros (`exp(-inf)`).

    The product is exact unless a tag's scaled total falls below `_UNDERFLOW`: a term lost to
    float32 underflow is below 1.2e-38, so above that threshold the sum is correct to
    `num_tags * 1e-13` relative. Below it (a tag whose best path lies ~58 nats or more under the
    step's best, as in overconfident models or with logits in the hundreds), the tag's share is
    garbage and would carry into log Z as soon as a later emission favours that tag. Each row
    notes whether that happened at any step; only if some row did, that batch's rows are
    recomputed with the log-space recursion (`_forward`), so typical batches keep the speed and
    every batch is exact (and the loss' gradient follows whichever recursion gave the row). Tags
    that no transition enters sit at about -1e30 and are not checked.

    The time loop is a `while_loop` with `maximum_iterations`, so TensorFlow can size the gradient's
    accumulators and the loss compiles under XLA (TF-Addons' does not). With `unroll=True` and a
    known sequence length, it is unrolled in Python instead: much faster in TensorFlow graph mode
    for short sequences, but slow to compile under XLA (as `keras.layers.LSTM(unroll=True)`).

    Returns:
        float32 `(batch_size, num_tags)`: log-sum-exp of the scores of all paths ending in each tag
        at each sequence's last real token (garbage for sequences of length 0).
    """
    emissions, mask, _ = _right_aligned(emissions, mask)
    # (num_tags,) best transition into each tag; a column forbidden entirely is clamped to -1e30,
    # which the shifted emissions carry: such a tag's score stays near -1e30 (exp of it is 0).
    column_peak = ops.stop_gradient(ops.max(transitions, axis=0))
    entered = column_peak > -1e30  # (num_tags,) tags that some transition can reach
    column_peak = ops.maximum(column_peak, -1e30)
    exp_transitions = ops.exp(transitions - column_peak)  # (from, to), exact 0 where forbidden
    shifted = emissions + column_peak  # the column shift, added back with the emissions

    def step(alpha, emission, is_real):
        # (batch_size, 1); clamped so that a row with no finite state gives no NaN (and is redone)
        peak = ops.maximum(ops.stop_gradient(ops.max(alpha, axis=1, keepdims=True)), -1e30)
        total = ops.matmul(ops.exp(alpha - peak), exp_transitions)  # (batch_size, num_tags)
        lost = ops.any(ops.logical_and(total < _UNDERFLOW, entered), axis=1)  # (batch_size,)
        alpha = ops.where(is_real, ops.log(ops.maximum(total, 1e-30)) + peak + emission, alpha)
        return alpha, ops.logical_and(lost, is_real[:, 0])

    alpha = start_transitions + emissions[:, 0]
    lost = ops.zeros_like(mask[:, 0])
    is_real = ops.expand_dims(mask, -1)
    sequence_length = emissions.shape[1]
    if unroll and sequence_length is not None:
        for emission, real in zip(
            ops.unstack(shifted, axis=1)[1:], ops.unstack(is_real, axis=1)[1:]
        ):
            alpha, lost_now = step(alpha, emission, real)
            lost = ops.logical_or(lost, lost_now)
    else:
        sequence_length = ops.shape(emissions)[1]
        shifted_tm, is_real_tm = _time_major(shifted), _time_major(is_real)

        def body(t, alpha, lost):
            alpha, lost_now = step(
                alpha, ops.take(shifted_tm, t, axis=0), ops.take(is_real_tm, t, axis=0)
            )
            return t + 1, alpha, ops.logical_or(lost, lost_now)

        _, alpha, lost = ops.while_loop(
            lambda t, alpha, lost: t < sequence_length,
            body,
            (1, alpha, lost),
            maximum_iterations=sequence_length - 1,
        )

    # The rows that lost a share are redone with the log-space recursion, as the same kind of loop
    # whose trip count is 0 when no row needs it: a `cond` around the loop would say so more plainly,
    # but a loop inside a `cond` cannot be differentiated under XLA.
    sequence_length = ops.shape(emissions)[1]
    steps = ops.where(ops.any(lost), sequence_length, 1)
    emissions_tm, is_real_tm = _time_major(emissions), _time_major(is_real)

    def log_space_body(t, alpha):
        scores = _logsumexp(ops.expand_dims(alpha, 2) + transitions, 1)
        emission = ops.take(emissions_tm, t, axis=0)
        return t + 1, ops.where(ops.take(is_real_tm, t, axis=0), scores + emission, alpha)

    _, exact = ops.while_loop(
        lambda t, alpha: t < steps,
        log_space_body,
        (1, start_transitions + emissions[:, 0]),
        maximum_iterations=sequence_length - 1,
    )
    return ops.where(ops.expand_dims(lost, -1), exact, alpha)


def _tensorflow_graph() -> bool:
    """True on the TensorFlow backend outside XLA: where `linear_crf._tensorflow` is faster.

    Under XLA (`jit_compile=True`, Keras' default on GPUs) the `keras.ops` loops compile to faster
    code than the TensorArrays there (measured by `benchmarks/crf_speed.py`), so they are kept.
    """
    if keras.backend.backend() != "tensorflow":
        return False
    from linear_crf import _tensorflow

    return not _tensorflow.in_xla_context()


# What runs as XLA programs inside a TensorFlow graph (see `compiled_in_graph`): the loss and its
# gradient by default, decoding only when asked for. `_EXPORTING` overrides both.
_COMPILED_IN_GRAPH = contextvars.ContextVar("linear_crf_compiled_in_graph", default=(True, False))
_EXPORTING = contextvars.ContextVar("linear_crf_exporting", default=False)


@contextlib.contextmanager
def compiled_in_graph(loss: bool | None = None, decode: bool | None = None, exporting=None):
    """Which CRF computations TensorFlow graphs traced inside this block compile with XLA.

    In a TensorFlow graph that is not itself compiled by XLA (Keras' `fit`, `evaluate` and
    `predict` on CPU, any `tf.function`), the loss and its gradient run by default as XLA
    programs called from the graph (`linear_crf._tensorflow.compiled_log_partition`): the same
    `keras.ops` code that JAX, torch and TensorFlow under XLA run, compiled once per padded
    length, 1.5-1.6x the graph-mode code at 9 tags (BENCHMARKS.md). Decoding is not compiled by
    default, because decoding is what a serving signature holds, and TensorFlow Serving refuses
    XLA programs unless started with `--xla_cpu_compilation_enabled`; `decode=True` (or the
    layer's `jit_compile=True`) compiles it too, 1.9-4.0x faster (BENCHMARKS.md, 2026-12-08).

    Nothing is compiled eagerly, under XLA (the whole function is compiled there already), while
    `tf.saved_model.save` traces (Keras' `model.export()` included), inside `exporting=True`, or
    where TensorFlow has no XLA. A serving function traced before saving (TFX's usual Trainer
    code: `get_concrete_function`, then `model.save(..., signatures=...)`) is traced in none of
    these: with decoding compiled, trace it inside `compiled_in_graph(exporting=True)`.

    Args:
        loss: compile `log_partition` (hence `log_likelihood` and the layer's loss); None keeps
            the current setting.
        decode: compile `viterbi_decode` (the layer's predictions); None keeps the current one.
        exporting: True while tracing a SavedModel's functions: nothing is compiled, whatever
            `loss`, `decode` or a layer's `jit_compile` say (`models.export` does this).
    """
    current = _COMPILED_IN_GRAPH.get()
    setting = _COMPILED_IN_GRAPH.set(
        (current[0] if loss is None else bool(loss), current[1] if decode is None else bool(decode))
    )
    export_setting = _EXPORTING.set(_EXPORTING.get() if exporting is None else bool(exporting))
    try:
        yield
    finally:
        _EXPORTING.reset(export_setting)
        _COMPILED_IN_GRAPH.reset(setting)


# Whether graph-mode decoding may cut a large batch into one loop per core (see
# `decoding_in_parts`).
_DECODING_IN_PARTS = contextvars.ContextVar("linear_crf_decoding_in_parts", default=True)


@contextlib.contextmanager
def decoding_in_parts(enabled: bool = True):
    """Whether `viterbi_decode` in TensorFlow graphs traced inside this block may cut a batch
    of at least 16 rows a part into one part per core (TensorFlow's inter-op threads, at most
    4), each its own loops, run at once: 1.2-1.5x faster decoding at batches of 128 on 2
    cores (BENCHMARKS.md). On by default. Turn it off where other loops already keep the cores
    busy at the same time: decoding beside `marginals`, as the project's served model does,
    was 0.91-0.99x with parts on 2 cores.
    """
    setting = _DECODING_IN_PARTS.set(bool(enabled))
    try:
        yield
    finally:
        _DECODING_IN_PARTS.reset(setting)


def _compiled(part: int) -> bool:
    """Whether `part` (0: loss, 1: decoding) runs as an XLA program called from a TF graph."""
    if not _COMPILED_IN_GRAPH.get()[part] or _EXPORTING.get():
        return False
    if keras.backend.backend() != "tensorflow":
        return False
    from linear_crf import _tensorflow

    return _tensorflow.compiles_in_graph()


def _lengths(mask):
    return ops.sum(ops.cast(mask, "int32"), axis=1)


# ----------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------


def sequence_score(emissions, tag_ids, mask, transitions, start_transitions, end_transitions):
    """Score of the given tag path of each sequence (unnormalised log-probability).

    Args:
        emissions: float `(batch_size, sequence_length, num_tags)`.
        tag_ids: int `(batch_size, sequence_length)`, the path; ignored at padding.
        mask: bool `(batch_size, sequence_length)` or None (all real).
        transitions: float `(num_tags, num_tags)`; start_transitions, end_transitions: `(num_tags,)`.

    Returns:
        float32 `(batch_size,)`; `-inf` for a path that uses a disallowed transition.
    """
    emissions, mask, transitions, start, end, num_tags = _prepare(
        emissions, mask, transitions, start_transitions, end_transitions
    )
    tag_ids = _check_tag_ids(ops.convert_to_tensor(tag_ids), emissions, num_tags)
    first, last, previous = _boundaries(mask)
    zeros = ops.zeros_like(emissions[:, :, 0])
    one_hot = ops.one_hot(
        tag_ids, num_tags, dtype="bool"
    )  # (batch_size, sequence_length, num_tags)
    # Selected with `where`, not multiplied by the mask: 0 * -inf would be NaN.
    emission_scores = ops.sum(ops.where(one_hot, emissions, 0.0), axis=2)
    score = ops.where(mask, emission_scores, zeros)
    score = score + ops.where(first, ops.take(start, tag_ids), zeros)
    score = score + ops.where(last, ops.take(end, tag_ids), zeros)
    # (batch_size, sequence_length - 1): transitions[tag at t-1, tag at t], flattened gather.
    pair_ids = tag_ids[:, :-1] * num_tags + tag_ids[:, 1:]
    pair_scores = ops.take(ops.reshape(transitions, (-1,)), pair_ids)
    score = ops.sum(score, axis=1) + ops.sum(
        ops.where(previous[:, 1:], pair_scores, zeros[:, 1:]), axis=1
    )
    return score


def log_partition(emissions, mask, transitions, start_transitions, end_transitions, unroll=False):
    """log Z: the log-sum-exp of the scores of all tag paths (forward algorithm).

    Args: as `sequence_score`, without `tag_ids`; and `unroll`, a Python bool: unroll the time loop
        when the sequence length is known (faster in TensorFlow graph mode for short sequences;
        slow to compile under XLA).

    Returns:
        float32 `(batch_size,)`; 0 for a sequence of length 0.
    """
    emissions, mask, transitions, start, end, _ = _prepare(
        emissions, mask, transitions, start_transitions, end_transitions
    )
    if _compiled(0) and not unroll:
        from linear_crf import _tensorflow

        return _tensorflow.compiled_log_partition(emissions, mask, transitions, start, end)
    if _tensorflow_graph() and not unroll:
        # The same forward recursion with the forward-backward gradient written out: in graph
        # mode about twice as fast to differentiate as the loop below (see `_tensorflow`).
        from linear_crf import _tensorflow

        aligned, aligned_mask, _ = _right_aligned_in_graph(emissions, mask)
        log_z = _tensorflow.log_partition(
            aligned, aligned_mask, transitions, start, end, _UNDERFLOW
        )
    else:
        log_z = _logsumexp(_forward_final(emissions, mask, transitions, start, unroll) + end, 1)
    return ops.where(_lengths(mask) > 0, log_z, ops.zeros_like(log_z))


def log_likelihood(
    emissions, tag_ids, mask, transitions, start_transitions, end_transitions, unroll=False
):
    """log p(tag_ids | emissions) of each sequence: `sequence_score - log_partition`.

    Args: as `sequence_score`, and `unroll` as `log_partition`.

    Returns:
        float32 `(batch_size,)`, at most 0 (float rounding above 0 is clipped); `-inf` for a path
        that a constraint forbids.
    """
    score = sequence_score(
        emissions, tag_ids, mask, transitions, start_transitions, end_transitions
    )
    log_z = log_partition(emissions, mask, transitions, start_transitions, end_transitions, unroll)
    return ops.minimum(score - log_z, 0.0)


def viterbi_decode(emissions, mask, transitions, start_transitions, end_transitions):
    """The most likely tag path of each sequence (Viterbi, 1967), backtrace on device.

    Args: as `log_partition`.

    Returns:
        tag_ids: int32 `(batch_size, sequence_length)`, 0 at padding.
        scores: float32 `(batch_size,)`, the score of each best path (0 for length 0).
    """
    emissions, mask, transitions, start, end, _ = _prepare(
        emissions, mask, transitions, start_transitions, end_transitions
    )
    if _compiled(1):
        from linear_crf import _tensorflow

        return _tensorflow.compiled_viterbi_decode(emissions, mask, transitions, start, end)
    if _tensorflow_graph():
        # Fewer operations per step than `keras.ops.scan` (see `_tensorflow`).
        from linear_crf import _tensorflow

        aligned, aligned_mask, restore = _right_aligned_in_graph(emissions, mask)
        tag_ids, scores = _tensorflow.viterbi_decode(
            aligned, aligned_mask, transitions, start, end, in_parts=_DECODING_IN_PARTS.get()
        )
        scores = ops.where(_lengths(mask) > 0, scores, ops.zeros_like(scores))
        return restore(tag_ids), scores
    alphas = _forward(emissions, mask, transitions, start, ops.max)  # (seq_len, batch, num_tags)
    final = alphas[-1] + end
    best_last = ops.cast(ops.argmax(final, axis=1), "int32")  # (batch_size,)
    has_tokens = _lengths(mask) > 0
    scores = ops.where(has_tokens, ops.max(final, axis=1), ops.zeros_like(final[:, 0]))
    _, last, _ = _boundaries(mask)
    transitions_to = ops.transpose(transitions)  # [to, from]

    def step(next_tag, inputs):
        alpha, is_real, is_last = inputs
        # Best predecessor of the tag chosen at t+1: argmax_from alpha_t[from] + T[from, next].
        previous_best = ops.cast(
            ops.argmax(alpha + ops.take(transitions_to, next_tag, axis=0), axis=1), "int32"
        )
        tag = ops.where(is_last, best_last, previous_best)
        carried = ops.where(is_real, tag, next_tag)
        return carried, ops.where(is_real, tag, ops.zeros_like(tag))

    _, tags_tm = _scan(
        step, best_last, [alphas, _time_major(mask), _time_major(last)], reverse=True
    )
    return ops.transpose(tags_tm), scores


def nbest_viterbi_decode(emissions, mask, transitions, start_transitions, end_transitions, top_k):
    """The `top_k` best tag paths of each sequence, best first (list Viterbi).

    Args: as `log_partition`, and `top_k`, a positive Python int.

    Returns:
        tag_ids: int32 `(batch_size, top_k, sequence_length)`, 0 at padding.
        scores: float32 `(batch_size, top_k)`, descending. A sequence with fewer than `top_k`
            allowed paths gets `-inf` scores (and all-0 tags) for the missing ones.
    """
    if not isinstance(top_k, (int, np.integer)) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(
            f"Invalid value for `top_k`. Expected a positive int. Received: top_k={top_k!r}"
        )
    top_k = int(top_k)
    emissions, mask, transitions, start, end, num_tags = _prepare(
        emissions, mask, transitions, start_transitions, end_transitions
    )
    first, last, _ = _boundaries(mask)
    emissions_tm = _time_major(emissions)
    mask_tm = _time_major(mask)
    # A hypothesis is (tag, rank) flattened to tag * top_k + rank.
    rank0 = ops.arange(top_k) == 0  # (top_k,)
    identity = ops.reshape(ops.arange(num_tags * top_k, dtype="int32"), (num_tags, top_k))

    def fresh(emission):
        # (batch_size, num_tags, top_k): one path per tag at a sequence's first token.
        return ops.where(rank0, ops.expand_dims(start + emission, -1), _NEG_INF)

    alpha0 = fresh(emissions_tm[0])
    pointers0 = ops.broadcast_to(identity, ops.shape(alpha0))

    def step(carry, inputs):
        alpha, _ = carry
        emission, is_real, is_first = inputs
        batch_size = ops.shape(alpha)[0]
        # (batch_size, from, 1, rank) + (from, to, 1) -> (batch_size, to, from * rank)
        candidates = ops.expand_dims(alpha, 2) + ops.expand_dims(transitions, -1)
        candidates = ops.reshape(
            ops.transpose(candidates, (0, 2, 1, 3)), (batch_size, num_tags, num_tags * top_k)
        )
        best, pointers = ops.top_k(candidates, top_k)  # (batch_size, num_tags, top_k)
        best = best + ops.expand_dims(emission, -1)
        pointers = ops.cast(pointers, "int32")
        is_real = ops.reshape(is_real, (-1, 1, 1))
        is_first = ops.reshape(is_first, (-1, 1, 1))
        new_alpha = ops.where(is_first, fresh(emission), best)
        new_pointers = ops.where(
            ops.logical_or(is_first, ops.logical_not(is_real)), identity, pointers
        )
        new_alpha = ops.where(is_real, new_alpha, alpha)
        return (new_alpha, new_pointers), (new_alpha, new_pointers)

    # All positions are scanned (see `_forward`); `is_first` restarts the paths at the first token.
    _, (alphas, pointers_tm) = _scan(
        step, (alpha0, pointers0), [emissions_tm, mask_tm, _time_major(first)]
    )
    final = alphas[-1]
    batch_size = ops.shape(final)[0]
    final = ops.reshape(final + ops.reshape(end, (1, num_tags, 1)), (batch_size, num_tags * top_k))
    scores, hypotheses = ops.top_k(final, top_k)  # (batch_size, top_k)
    hypotheses = ops.cast(hypotheses, "int32")
    has_tokens = ops.expand_dims(_lengths(mask) > 0, -1)
    # A sequence of length 0 has exactly one path, the empty one, of score 0.
    scores = ops.where(has_tokens, scores, ops.where(rank0, 0.0, _NEG_INF))
    offsets = ops.expand_dims(ops.arange(batch_size, dtype="int32") * (num_tags * top_k), -1)
    valid = ops.isfinite(scores)

    def back(hypothesis, inputs):
        pointers, is_real = inputs
        is_real = ops.expand_dims(is_real, -1)
        tag = hypothesis // top_k
        previous = ops.take(ops.reshape(pointers, (-1,)), hypothesis + offsets)
        carried = ops.where(is_real, previous, hypothesis)
        return carried, ops.where(ops.logical_and(is_real, valid), tag, ops.zeros_like(tag))

    _, tags_tm = _scan(back, hypotheses, [pointers_tm, mask_tm], reverse=True)
    # (seq_len, batch, top_k) -> (batch, top_k, seq_len)
    return ops.transpose(tags_tm, (1, 2, 0)), scores


def marginals(emissions, mask, transitions, start_transitions, end_transitions):
    """Per-token tag probabilities p(y_t = tag | x) by the forward-backward algorithm.

    Args: as `log_partition`.

    Returns:
        float32 `(batch_size, sequence_length, num_tags)`: each real token's row sums to 1;
        0 at padding.
    """
    emissions, mask, transitions, start, end, _ = _prepare(
        emissions, mask, transitions, start_transitions, end_transitions
    )
    alphas = _forward(emissions, mask, transitions, start, _logsumexp)  # (seq_len, batch, tags)
    log_z = _logsumexp(alphas[-1] + end, 1)  # (batch_size,)
    _, last, _ = _boundaries(mask)
    # emissions of the next token, (seq_len, batch, tags); the last step's is never used.
    next_emissions = ops.concatenate([emissions[:, 1:], ops.zeros_like(emissions[:, :1])], axis=1)
    batch_end = ops.broadcast_to(end, ops.shape(emissions[:, 0]))

    def step(beta, inputs):
        next_emission, is_real, is_last = inputs
        # beta_t[from] = logsumexp_to T[from, to] + e_{t+1}[to] + beta_{t+1}[to]
        scores = _logsumexp(transitions + ops.expand_dims(next_emission + beta, 1), 2)
        scores = ops.where(is_last, batch_end, scores)
        beta = ops.where(is_real, scores, beta)
        return beta, beta

    _, betas = _scan(
        step,
        batch_end,
        [
            _time_major(next_emissions),
            ops.expand_dims(_time_major(mask), -1),
            ops.expand_dims(_time_major(last), -1),
        ],
        reverse=True,
    )
    log_marginals = _time_major(alphas + betas) - ops.reshape(log_z, (-1, 1, 1))
    probabilities = ops.exp(log_marginals)
    return ops.where(ops.expand_dims(mask, -1), probabilities, ops.zeros_like(probabilities))


# ----------------------------------------------------------------------------------------------
# The layer and its loss
# ----------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="linear_crf")
class CRF(keras.layers.Layer):
    """Linear-chain CRF output layer: learned transitions, start and end transitions.

    Works as the last layer of `keras.Sequential` or a functional model. Its output packs what the
    loss and the decoder need into one tensor, so that `fit`, `evaluate`, `predict`, `.keras` saving
    and `model.export()` all work unchanged, and so that what a Keras user does first,
    `argmax(model.predict(x), axis=-1)`, is the Viterbi path (0 at padding):

        outputs[..., :num_tags]            the Viterbi path: at each real token, its tag's channel
                                           holds a value above every other channel of the token
                                           (`max(1, largest emission) + 1`), the rest 0; filled in
                                           when the layer is not training (evaluate, predict,
                                           serving), all 0 in training
        outputs[..., num_tags:2*num_tags]  emissions (the per-token tag scores it was given), 0 at
                                           padding
        outputs[..., 2*num_tags]           mask, 1.0 at real tokens

    At padding every channel is 0 and the argmax is channel 0 (the padding tag, by convention).

    Example:
        crf = CRF(num_tags)
        model = keras.Sequential([..., keras.layers.Dense(num_tags), crf])
        model.compile(optimizer="adam", loss=crf.loss)
        model.fit(x, tag_ids)
        tag_ids = np.argmax(model.predict(x), axis=-1)   # Viterbi paths (batch, seq_len)
        tag_ids = CRF.tag_ids(model.predict(x))          # the same, int32

    Args:
        num_tags: number of tags, padding tag included if the vocabulary has one.
        tag_names: the tag of each id (e.g. `["[PAD]", "B-loc", "I-loc", "O"]`); needed for
            `tag_scheme`.
        tag_scheme: None (no constraints), "iob2" ("bio") or "bioes" ("iobes"): transitions the scheme
            forbids get a score of `-inf`, in training and decoding.
        transitions_initializer: initializer of the three transition weights.
        unroll: unroll the loss's time loop when the sequence length is known, as
            `keras.layers.LSTM(unroll=True)`, and differentiate it by autodiff. In TensorFlow graph
            mode 1.04-1.35x the default's speed (a loop with its gradient written out; measured
            by benchmarks/crf_speed.py); slow to compile under XLA.
        jit_compile: what runs as XLA programs inside a TensorFlow graph that XLA does not
            compile as a whole (Keras on CPU): "auto" (default) the loss and its gradient, not
            decoding (a serving signature holds decoding, and TensorFlow Serving refuses XLA
            programs by default); True both (decoding 1.9-4.0x faster; a serving function
            traced before `tf.saved_model.save`, as TFX's usual Trainer code does, then holds
            XLA programs: trace it inside `compiled_in_graph(exporting=True)`); False neither.
            Nothing is compiled in what `tf.saved_model.save` or `model.export()` trace
            themselves, nor on other backends.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float `(batch_size, sequence_length, num_tags)` emissions.
        mask: bool `(batch_size, sequence_length)`; Keras passes it from an
            `Embedding(mask_zero=True)` or a `Masking` layer.
        lengths: int `(batch_size,)` sequence lengths, instead of a mask (right padding).
        training: Python bool; when falsy the Viterbi path is decoded into the outputs.

    Output:
        float32 `(batch_size, sequence_length, 2 * num_tags + 1)`, as above.
    """

    def __init__(
        self,
        num_tags: int,
        tag_names: list[str] | None = None,
        tag_scheme: str | None = None,
        transitions_initializer="zeros",
        unroll: bool = False,
        jit_compile: bool | str = "auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.unroll = bool(unroll)
        if jit_compile not in ("auto", True, False):
            raise ValueError(
                "Invalid value for `jit_compile`. Expected 'auto', True or False. "
                f"Received: jit_compile={jit_compile!r}"
            )
        self.jit_compile = jit_compile
        if (
            not isinstance(num_tags, (int, np.integer))
            or isinstance(num_tags, bool)
            or num_tags < 1
        ):
            raise ValueError(
                f"Invalid value for `num_tags`. Expected a positive int. Received: num_tags={num_tags!r}"
            )
        self.num_tags = int(num_tags)
        self.tag_names = None if tag_names is None else [str(tag) for tag in tag_names]
        if self.tag_names is not None and len(self.tag_names) != self.num_tags:
            raise ValueError(
                f"Invalid value for `tag_names`. Expected num_tags={self.num_tags} names. "
                f"Received: {len(self.tag_names)} names: {self.tag_names}"
            )
        self.tag_scheme = tag_scheme
        self._allowed = None
        if tag_scheme is not None:
            canonical_scheme(tag_scheme)  # an unknown scheme fails here, with or without names
            if self.tag_names is None:
                raise ValueError(
                    "Invalid value for `tag_names`. Expected the tag of each id when `tag_scheme` is "
                    f"set. Received: tag_names=None, tag_scheme={tag_scheme!r}"
                )
            self._allowed = allowed_transitions(self.tag_names, tag_scheme)
        self.transitions_initializer = keras.initializers.get(transitions_initializer)
        self.supports_masking = True
        self._loss: CRFLoss | None = None

    @property
    def loss(self) -> CRFLoss:
        """This layer's negative log-likelihood loss, for `model.compile(loss=crf.loss)`."""
        if self._loss is None:
            self._loss = CRFLoss(self)
        return self._loss

    def build(self, input_shape):
        _check_emissions(keras.KerasTensor(input_shape), self.num_tags)
        n = self.num_tags
        init = self.transitions_initializer
        self.transitions = self.add_weight(
            name="transitions", shape=(n, n), initializer=init, dtype="float32"
        )
        self.start_transitions = self.add_weight(
            name="start_transitions", shape=(n,), initializer=init, dtype="float32"
        )
        self.end_transitions = self.add_weight(
            name="end_transitions", shape=(n,), initializer=init, dtype="float32"
        )

    def potentials(self) -> tuple[Any, Any, Any]:
        """The transition scores in use: `(transitions, start, end)`, `-inf` where disallowed."""
        transitions = ops.cast(self.transitions, "float32")
        start = ops.cast(self.start_transitions, "float32")
        end = ops.cast(self.end_transitions, "float32")
        if self._allowed is None:
            return transitions, start, end
        allowed, allowed_start, allowed_end = self._allowed
        return (
            ops.where(allowed, transitions, _NEG_INF),
            ops.where(allowed_start, start, _NEG_INF),
            ops.where(allowed_end, end, _NEG_INF),
        )

    def call(self, inputs, mask=None, lengths=None, training=None):
        _check_emissions(inputs, self.num_tags)
        emissions = ops.cast(inputs, "float32")
        if lengths is not None:
            positions = ops.expand_dims(ops.arange(ops.shape(emissions)[1]), 0)
            mask = positions < ops.expand_dims(ops.cast(lengths, "int32"), 1)
        mask = _prepare_mask(mask, emissions)
        real = ops.expand_dims(ops.cast(mask, "float32"), -1)  # (batch, length, 1)
        emissions = ops.where(real > 0, emissions, 0.0)
        if training:
            path = ops.zeros_like(emissions)
        else:
            with self._compiled_in_graph():
                tag_ids = viterbi_decode(emissions, mask, *self.potentials())[0]
            above = ops.maximum(ops.max(emissions, axis=-1, keepdims=True), 1.0) + 1.0
            path = ops.one_hot(tag_ids, self.num_tags, dtype="float32") * above * real
        return ops.concatenate([path, emissions, real], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None  # the mask travels inside the outputs, where the loss and decoder find it

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2 * self.num_tags + 1,)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_tags=self.num_tags,
            tag_names=self.tag_names,
            tag_scheme=self.tag_scheme,
            transitions_initializer=keras.initializers.serialize(self.transitions_initializer),
            unroll=self.unroll,
            jit_compile=self.jit_compile,
        )
        return config

    def _compiled_in_graph(self):
        """`compiled_in_graph` as this layer's `jit_compile` asks (nothing changed for "auto")."""
        if self.jit_compile == "auto":
            return contextlib.nullcontext()
        return compiled_in_graph(loss=self.jit_compile, decode=self.jit_compile)

    # -- reading the outputs --------------------------------------------------------------------

    def _unpack(self, outputs):
        outputs = ops.convert_to_tensor(outputs)
        width = 2 * self.num_tags + 1
        if len(outputs.shape) != 3 or outputs.shape[-1] != width:
            raise ValueError(
                "Invalid value for `outputs`. Expected the CRF layer's outputs of shape (batch_size, "
                f"sequence_length, 2 * num_tags + 1) = (..., {width}). Received: "
                f"outputs.shape={tuple(outputs.shape)}"
            )
        outputs = ops.cast(outputs, "float32")
        n = self.num_tags
        return outputs[..., n : 2 * n], outputs[..., 2 * n] > 0.5

    @staticmethod
    def tag_ids(outputs):
        """The Viterbi tag ids held in the outputs of a CRF layer that was not training: what
        `argmax(outputs, axis=-1)` gives, as int32.

        Args:
            outputs: float `(batch_size, sequence_length, 2 * num_tags + 1)`, e.g.
                `model.predict(x)`.

        Returns:
            int32 `(batch_size, sequence_length)`, 0 at padding.
        """
        outputs = ops.convert_to_tensor(outputs)
        num_tags = (ops.shape(outputs)[-1] - 1) // 2
        return ops.cast(ops.argmax(outputs[..., :num_tags], axis=-1), "int32")

    def decode(self, outputs):
        """Viterbi paths and their scores: `(tag_ids int32 (batch, seq_len), scores (batch,))`."""
        emissions, mask = self._unpack(outputs)
        with self._compiled_in_graph():
            return viterbi_decode(emissions, mask, *self.potentials())

    def nbest(self, outputs, top_k: int):
        """The `top_k` best paths: `(tag_ids (batch, top_k, seq_len), scores (batch, top_k))`."""
        emissions, mask = self._unpack(outputs)
        return nbest_viterbi_decode(emissions, mask, *self.potentials(), top_k=top_k)

    def marginals(self, outputs):
        """Per-token tag probabilities, float32 `(batch, seq_len, num_tags)`, 0 at padding."""
        emissions, mask = self._unpack(outputs)
        return marginals(emissions, mask, *self.potentials())

    def log_likelihood(self, tag_ids, outputs):
        """log p(tag_ids | x) of each sequence, float32 `(batch_size,)`."""
        emissions, mask = self._unpack(outputs)
        with self._compiled_in_graph():
            return log_likelihood(emissions, tag_ids, mask, *self.potentials(), unroll=self.unroll)


@keras.saving.register_keras_serializable(package="linear_crf")
class CRFLoss(keras.losses.Loss):
    """Negative log-likelihood of the gold tag paths under a `CRF` layer, per sequence.

    Get it as `crf.loss`. Never negative; `inf` only for a gold path that the layer's tag-scheme
    constraints forbid (repair such labels before training, e.g. conlleval's reading of `O I-X`).

    Args:
        crf: the `CRF` layer whose transitions score the paths.
        name, reduction: as for any Keras loss (default: mean over the batch of sequences).
    """

    def __init__(
        self, crf: CRF | None = None, name: str = "crf_loss", reduction="sum_over_batch_size"
    ):
        super().__init__(name=name, reduction=reduction)
        # A weak reference: the layer owns its loss, and saving walks attributes (no cycle).
        self._crf_ref = None if crf is None else weakref.ref(crf)

    def bound_layer(self) -> CRF | None:
        """The CRF layer this loss belongs to (a method, not an attribute: Keras saving walks those)."""
        return None if self._crf_ref is None else self._crf_ref()

    def call(self, y_true, y_pred):
        crf = self.bound_layer()
        if crf is None:
            raise ValueError(
                "This CRF loss is not bound to a CRF layer (it was loaded from a saved model, whose "
                "loss cannot hold a layer). Compile again with the layer's own loss: "
                "`model.compile(optimizer=..., loss=crf.loss)` where `crf` is the model's CRF layer."
            )
        tag_ids = ops.cast(ops.round(ops.convert_to_tensor(y_true)), "int32")
        if len(tag_ids.shape) == 3 and tag_ids.shape[-1] == 1:
            tag_ids = ops.squeeze(tag_ids, -1)
        emissions, mask = crf._unpack(y_pred)
        return -crf.log_likelihood(ops.where(mask, tag_ids, 0), y_pred)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


# `.keras` files saved before the CRF became its own package name its classes "models>CRF" and
# "models>CRFLoss": they load without `custom_objects` too.
keras.saving.get_custom_objects().update({"models>CRF": CRF, "models>CRFLoss": CRFLoss})
