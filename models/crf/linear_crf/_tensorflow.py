"""log Z with a hand-written gradient for the TensorFlow backend: the forward-backward algorithm.

On TensorFlow in graph mode and eagerly, `crf.log_partition` calls `log_partition` here (unless
`unroll=True`, or the loss is compiled: the end of this module) and `crf.viterbi_decode` calls
`viterbi_decode`; under XLA, where the `keras.ops` loops of `crf.py` compile to faster code than
these TensorArrays, `crf.py` keeps its own. The value is
the same scaled forward recursion as `crf._forward_final`; the gradient, instead of TensorFlow's
automatic differentiation of the time loop, is the one the maths gives directly (Rabiner, 1989;
Sutton & McCallum, 2012, section 4.1):

    d log Z / d emissions[b, t, j]   = p(y_t = j | x_b)                           (marginals)
    d log Z / d transitions[i, j]    = sum_b sum_t p(y_{t-1} = i, y_t = j | x_b)  (pair marginals)
    d log Z / d start[j], d end[j]   = the marginals of the first and the last token

from the forward scores (kept by the forward loop) and one backward loop, then a few whole-batch
operations: the pair marginals summed over the batch and time are one `(num_tags, B*T) x
(B*T, num_tags)` matrix product. Autodiff of the loop instead saves and replays every step's
intermediate tensors (a stack push and pop per tensor per step), which in graph mode on CPU costs
two to three times the forward pass; this costs about one. Every loop here runs
`_STEPS_PER_ITERATION` steps per iteration (TensorFlow's loop machinery costs about as much as
a step at a handful of tags).

Exact at any scale, as `crf._forward_final`: each loop notes whether any step's scaled total fell
below `_UNDERFLOW` for a state that can be reached (forward) or left (backward), and the pair
weights whether they left float32's range. If anything did, the whole batch is redone in log
space (`tf.cond`: a branch that is not taken costs nothing; the gradient of this function is not
itself differentiated, so XLA compiles the `cond`, unlike one inside an autodiffed loss).

TensorFlow only (`tensorflow` is imported here, not in `crf.py`); JAX and torch differentiate
`crf._forward_final`. Second derivatives through `log_partition` are not supported on this path.
"""

from __future__ import annotations

import math
import os

import tensorflow as tf

try:
    from tensorflow.python.ops import control_flow_util
except ImportError:  # pragma: no cover - a future TensorFlow
    control_flow_util = None

__all__ = [
    "compiled_log_partition",
    "compiled_viterbi_decode",
    "compiles_in_graph",
    "in_xla_context",
    "log_partition",
    "viterbi_decode",
]


def in_xla_context() -> bool:
    """Whether the graph being built will be compiled by XLA (a `jit_compile=True` function).

    Uses TensorFlow's own test (`control_flow_util`, not public API, unchanged since TF 2.0);
    if it ever goes away, the answer is False and only speed under XLA changes.
    """
    if control_flow_util is None:  # pragma: no cover - a future TensorFlow
        return False
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


_NOT_REACHED = -1e30  # a tag with no allowed transition into it (or out of it) scores below this
_NO_PATH = -1e38  # Viterbi scores below this are no path at all (see `viterbi_decode`)


# Steps of a recursion per iteration of its `tf.while_loop`. TensorFlow's graph executor pays for
# each iteration's own machinery (a Switch, Merge and NextIteration per loop variable and per
# tensor the body captures) about as much as for a step's arithmetic at a handful of tags;
# several steps per iteration pay it once. The sequences are padded to whole iterations at the
# end, where no row has real tokens. Measured against one step per iteration in one process
# (BENCHMARKS.md, 2026-12-07): 8 was at least as fast as 4 at every grid point and at length 20,
# and 16 no faster than 8.
_STEPS_PER_ITERATION = 8


def _in_blocks(x_tm):
    """Steps 1 .. T-1 of `x_tm` `(T, ...)`, padded to whole iterations, one block per iteration.

    Returns:
        a TensorArray of `(_STEPS_PER_ITERATION, ...)` blocks, and how many there are.
    """
    steps = _STEPS_PER_ITERATION
    # At least one: stacking an empty TensorArray fails where the batch size is unknown.
    iterations = tf.maximum((tf.shape(x_tm)[0] - 1 + steps - 1) // steps, 1)
    rest = x_tm[1:]
    padding = [[0, iterations * steps - tf.shape(rest)[0]]] + [[0, 0]] * (x_tm.shape.rank - 1)
    blocks = tf.reshape(
        tf.pad(rest, padding), tf.concat([[iterations, steps], tf.shape(x_tm)[1:]], 0)
    )
    element_shape = tf.TensorShape([steps]).concatenate(x_tm.shape[1:])
    array = tf.TensorArray(x_tm.dtype, size=iterations, element_shape=element_shape)
    return array.unstack(blocks), iterations


def _blockwise(step, first, inputs, backward=False):
    """`carry = step(carry, *slices)` over steps t = 1 .. T-1 (from T-1 down to 1 if `backward`),
    each step given its slice `x[t]` of every input, `_STEPS_PER_ITERATION` steps per iteration
    of one `tf.while_loop` (no `maximum_iterations`: these loops are never differentiated).

    Args:
        step: a function of the carry and one step's slices; returns the next carry.
        first: the carry before the first step, `(B, ...)`.
        inputs: `(T, ...)` tensors, time-major.

    Returns:
        every step's carry, `(T - 1, ...)`, in token order: row t - 1 holds step t's.
    """
    k = _STEPS_PER_ITERATION
    blocks = [_in_blocks(x) for x in inputs]
    arrays, iterations = [array for array, _ in blocks], blocks[0][1]
    element_shape = tf.TensorShape([k]).concatenate(first.shape)
    carries = tf.TensorArray(first.dtype, size=iterations, element_shape=element_shape)
    order = range(k - 1, -1, -1) if backward else range(k)

    def body(i, carry, carries):
        slices = [tf.unstack(array.read(i), num=k) for array in arrays]
        written = [None] * k
        for j in order:
            carry = step(carry, *(column[j] for column in slices))
            written[j] = carry
        return i + (-1 if backward else 1), carry, carries.write(i, tf.stack(written))

    if backward:
        start, more = iterations - 1, lambda i, *_: i >= 0
    else:
        start, more = 0, lambda i, *_: i < iterations
    _, _, carries = tf.while_loop(more, body, (start, first, carries))
    stacked = carries.stack()
    flat = tf.reshape(stacked, tf.concat([[-1], tf.shape(stacked)[2:]], 0))
    return flat[: tf.shape(inputs[0])[0] - 1]


def _scaled_forward(shifted_tm, alpha0, exp_transitions):
    """Scaled forward loop: every step's log forward scores, `(T, B, N)`.

    Args:
        shifted_tm: float32 `(T, B, N)`, emissions plus the column peak of the transitions.
        alpha0: float32 `(B, N)`, the scores of the first token.
        exp_transitions: float32 `(N, N)`, `exp(transitions - column peak)`.

    Sequences are right-aligned, so nothing is carried over padding: the scores after a sequence's
    last real token are never read (and may be garbage).
    """

    def step(alpha, shifted):
        peak = tf.maximum(tf.reduce_max(alpha, axis=1, keepdims=True), _NOT_REACHED)
        return tf.math.log(tf.matmul(tf.exp(alpha - peak), exp_transitions)) + peak + shifted

    return tf.concat([alpha0[None], _blockwise(step, alpha0, [shifted_tm])], axis=0)


def _scaled_backward(shifted_tm, real_tm, end, exp_transitions_t):
    """Scaled backward loop: `beta_t[i] = log sum_j exp(T[i, j] + e_{t+1}[j] + beta_{t+1}[j])`.

    Returns:
        float32 `(T, B, N)`, `end` at each sequence's last real token and after it.
    """
    end_rows = tf.broadcast_to(end, tf.shape(shifted_tm)[1:])

    def step(beta, shifted, real):  # token t's scores and mask give beta_{t-1}
        scores = shifted + beta
        peak = tf.maximum(tf.reduce_max(scores, axis=1, keepdims=True), _NOT_REACHED)
        total = tf.matmul(tf.exp(scores - peak), exp_transitions_t)
        return tf.where(real, tf.math.log(total) + peak, end_rows)

    betas = _blockwise(step, end_rows, [shifted_tm, real_tm], backward=True)
    return tf.concat([betas, end_rows[None]], axis=0)


def _lost(scores, peak, step_terms, real_tm, checked, underflow):
    """Rows where some step's scaled total fell below `underflow`, found after the loop.

    Each step computed `scores = log(total) + max(peak, _NOT_REACHED) + step_terms`, so
    `log(total)` is recovered here for all steps at once instead of being tested inside the loop.

    Args:
        scores: float32 `(T', B, N)`; peak: `(T', B, 1)`, the best score each step's peak was
            taken over; step_terms: `(T', B, N)` or None (no terms); real_tm: bool `(T', B, 1)`,
            the steps that count; checked: bool `(N,)`, the states that can have a positive total.
    """
    log_total = scores - tf.maximum(peak, _NOT_REACHED)
    if step_terms is not None:
        log_total = log_total - step_terms
    lost = tf.logical_and(tf.logical_and(log_total < math.log(underflow), checked), real_tm)
    return tf.reduce_any(lost)


def _log_space(emissions_tm, real_tm, transitions, alpha0, end):
    """Forward and backward scores in log space (exact at any scale, slower): `(T, B, N)` each."""
    end_rows = tf.broadcast_to(end, tf.shape(alpha0))

    def forward(alpha, emission, real):
        scores = tf.reduce_logsumexp(alpha[:, :, None] + transitions, axis=1) + emission
        return tf.where(real, scores, alpha)

    def backward(beta, emission, real):  # token t's scores and mask give beta_{t-1}
        scores = tf.reduce_logsumexp(transitions + (emission + beta)[:, None, :], axis=2)
        return tf.where(real, scores, end_rows)

    inputs = [emissions_tm, real_tm]
    alphas = tf.concat([alpha0[None], _blockwise(forward, alpha0, inputs)], axis=0)
    betas = _blockwise(backward, end_rows, inputs, backward=True)
    return alphas, tf.concat([betas, end_rows[None]], axis=0)


def _log_z(alphas, lengths, end):
    """log Z per row from the forward scores at each row's last real token."""
    rows = tf.range(tf.shape(lengths)[0])
    last = tf.gather_nd(alphas, tf.stack([tf.maximum(lengths - 1, 0), rows], axis=1))
    return tf.reduce_logsumexp(last + end, axis=1), last + end


def log_partition(emissions, mask, transitions, start_transitions, end_transitions, underflow):
    """log Z of right-aligned sequences, with the forward-backward gradient.

    Args:
        emissions: float32 `(B, T, N)`, each sequence's real tokens first (`crf._right_aligned`).
        mask: bool `(B, T)`, True for the first `length` positions of each row.
        transitions: float32 `(N, N)`; start_transitions, end_transitions: float32 `(N,)`.
        underflow: float, see `crf._UNDERFLOW`.

    Returns:
        float32 `(B,)`; garbage (finite) for rows of length 0, which the caller replaces.
    """
    real_tm = tf.transpose(mask)[:, :, None]  # (T, B, 1)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)

    @tf.custom_gradient
    def forward_backward(emissions, transitions, start, end):
        emissions_tm = tf.transpose(emissions, [1, 0, 2])
        # (N,) best transition into each tag; exp_transitions is exactly 0 where forbidden.
        column_peak = tf.reduce_max(transitions, axis=0)
        entered = column_peak > _NOT_REACHED
        left = tf.reduce_max(transitions, axis=1) > _NOT_REACHED
        column_peak = tf.maximum(column_peak, _NOT_REACHED)
        exp_transitions = tf.exp(transitions - column_peak)
        shifted_tm = emissions_tm + column_peak
        alpha0 = start + emissions_tm[0]

        scaled_alphas = _scaled_forward(shifted_tm, alpha0, exp_transitions)
        # Each step's peak: the best score before it. Also the pair weights' below, where the
        # scaled scores are the ones used (if they were lost, the exact branch is taken).
        before = scaled_alphas[:-1]
        before_peak = tf.reduce_max(before, axis=2, keepdims=True)
        forward_lost = _lost(
            scaled_alphas[1:], before_peak, shifted_tm[1:], real_tm[1:], entered, underflow
        )
        alphas = tf.cond(
            forward_lost,
            lambda: _log_space(emissions_tm, real_tm, transitions, alpha0, end)[0],
            lambda: scaled_alphas,
        )
        log_z, final = _log_z(alphas, lengths, end)

        def gradient(upstream):
            upstream_tm = upstream[None, :, None]  # (1, B, 1)
            log_z_tm = log_z[None, :, None]

            def from_scores(alphas, betas, pair_sum):
                marginals = tf.where(real_tm, tf.exp(alphas + betas - log_z_tm), 0.0)
                weighted = marginals * upstream_tm
                return (
                    tf.transpose(weighted, [1, 0, 2]),
                    pair_sum,
                    tf.reduce_sum(weighted[0], axis=0),
                    tf.reduce_sum(tf.exp(final - log_z[:, None]) * upstream[:, None], axis=0),
                )

            def exact():
                alphas, betas = _log_space(emissions_tm, real_tm, transitions, alpha0, end)
                # (T-1, B, N, N) log pair marginals; summed over time and batch.
                pairs = (
                    alphas[:-1, :, :, None]
                    + transitions
                    + (emissions_tm[1:] + betas[1:])[:, :, None, :]
                    - log_z_tm[..., None]
                )
                pairs = tf.where(real_tm[1:, :, :, None], tf.exp(pairs), 0.0)
                pair_sum = tf.reduce_sum(pairs * upstream_tm[..., None], axis=[0, 1])
                return from_scores(alphas, betas, pair_sum)

            betas = _scaled_backward(shifted_tm, real_tm, end, tf.transpose(exp_transitions))
            # p(y_{t-1} = i, y_t = j) = x_i * y_j * weight * exp_transitions[i, j], x, y <= 1.
            after = shifted_tm[1:] + betas[1:]  # (T-1, B, N), as `before`
            after_peak = tf.reduce_max(after, axis=2, keepdims=True)
            backward_lost = _lost(betas[:-1], after_peak, None, real_tm[1:], left, underflow)
            weight = tf.where(
                real_tm[1:], tf.exp(before_peak + after_peak - log_z_tm) * upstream_tm, 0.0
            )
            # A weight past 1e30 (or inf, NaN) would lose precision or overflow: redo exactly.
            too_large = tf.logical_not(tf.reduce_all(tf.abs(weight) <= 1e30))
            needs_exact = tf.reduce_any(tf.stack([forward_lost, backward_lost, too_large]))

            def scaled():
                num_tags = tf.shape(transitions)[0]
                # Masked, not only weighted: the scores after a sequence's end may be inf or NaN.
                x = tf.where(real_tm[1:], tf.exp(before - before_peak) * weight, 0.0)
                y = tf.where(real_tm[1:], tf.exp(after - after_peak), 0.0)
                x, y = tf.reshape(x, [-1, num_tags]), tf.reshape(y, [-1, num_tags])
                pair_sum = tf.matmul(x, y, transpose_a=True) * exp_transitions
                return from_scores(alphas, betas, pair_sum)

            return tf.cond(needs_exact, exact, scaled)

        return log_z, gradient

    return forward_backward(emissions, transitions, start_transitions, end_transitions)


# Decoding's rows are independent, and one loop's steps are too small for TensorFlow to spread
# over cores: a batch cut into parts decodes as that many loops, which the graph executor runs at
# once on its inter-op threads. Measured on 2 cores (BENCHMARKS.md, 2026-12-07, same process):
# two parts 1.28x, 1.30x, 1.46x, 1.57x one loop at b128_t50_n9, b128_t20_n9, b32_t128_n25,
# b128_t128_n25; at 16 rows a part (b32_t50_n9) 0.99x, at 4 rows 0.90x; four parts on two cores
# 0.58-1.44x (more loops than threads cost their operations and gain nothing).
_MIN_ROWS_PER_PART = 16
_MAX_PARTS = 4  # more cores are not measured here


def decoding_parts() -> int:
    """How many parts `viterbi_decode` cuts a batch into: TensorFlow's inter-op threads (the
    cores this process may use where TensorFlow picks), at most `_MAX_PARTS`."""
    threads = tf.config.threading.get_inter_op_parallelism_threads()
    if not threads:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        threads = threads or os.cpu_count() or 1
    return max(1, min(threads, _MAX_PARTS))


def viterbi_decode(emissions, mask, transitions, start_transitions, end_transitions, in_parts=True):
    """`_viterbi_decode_rows` of a batch of at least `_MIN_ROWS_PER_PART` rows per part in
    `decoding_parts()` parts, each its own loops (run at once by the graph executor); of smaller
    batches, eagerly, and where `in_parts` is False, whole. The same paths and scores: each
    row's are computed from that row alone.

    Args and returns: as `_viterbi_decode_rows`.
    """
    # Eagerly the parts would run in turn.
    parts = decoding_parts() if in_parts and not tf.executing_eagerly() else 1
    arguments = (transitions, start_transitions, end_transitions)

    def whole():
        return _viterbi_decode_rows(emissions, mask, *arguments)

    def cut():
        batch = tf.shape(emissions)[0]
        bounds = [part * batch // parts for part in range(parts + 1)]
        decoded = [
            _viterbi_decode_rows(emissions[low:high], mask[low:high], *arguments)
            for low, high in zip(bounds, bounds[1:])
        ]
        return tuple(tf.concat(outputs, axis=0) for outputs in zip(*decoded))

    if parts == 1:
        return whole()
    enough = parts * _MIN_ROWS_PER_PART
    if emissions.shape[0] is not None:  # a known batch size: no `cond`
        return cut() if emissions.shape[0] >= enough else whole()
    return tf.cond(tf.shape(emissions)[0] >= enough, cut, whole)


def _viterbi_decode_rows(emissions, mask, transitions, start_transitions, end_transitions):
    """The best tag path of right-aligned sequences (Viterbi, 1967).

    The forward loop keeps each step's best scores; the backtrace finds each step's best
    predecessor of the one tag chosen after it (`(B, N)` work per step, not the `(B, N, N)` of
    keeping back-pointers for every tag). The same algorithm as `crf.viterbi_decode` on the other
    backends, written for TensorFlow's graph executor, where a step's cost is mostly the number
    of operations in it (measured with `benchmarks/crf_speed.py`; `keras.ops.scan` pays for its
    generality with several more per step):

    - no mask inside the loops: the sequences are right-aligned, so the forward scores after a
      row's end are never read (its last real token's are taken after the loop), and the
      backtrace runs over each row's scores reversed within its length (`reverse_sequence`), so
      every row's backtrace starts at step 0 and what it finds after the row's start is
      discarded;
    - each step's inputs read from TensorArrays, not sliced out of a whole tensor (a strided
      slice at a loop index costs about four times a TensorArray read here), a block of
      `_STEPS_PER_ITERATION` steps per loop iteration;
    - the maximum over the previous tag as one `tf.nn.dilation2d` (a max-plus convolution of
      the scores, spread over one channel per tag, with the transitions as its kernel): one
      kernel instead of a `(B, N, N)` broadcast sum and a reduction, 1.1-1.3x faster decoding
      at three of the four grid points (BENCHMARKS.md, 2026-12-07);
    - no `maximum_iterations` (a counter less per step; these loops are never differentiated).

    The scores are the same maxima of the same sums as `crf.viterbi_decode`'s, so the paths are
    the same, ties included (first index).

    Args: as `log_partition`, without `underflow`.

    Returns:
        tag_ids: int32 `(B, T)`, 0 after each sequence's end; scores: float32 `(B,)`, the best
        path's score (garbage for rows of length 0, which the caller replaces).
    """
    lengths = tf.maximum(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1), 1)
    emissions_tm = tf.transpose(emissions, [1, 0, 2])
    alpha0 = start_transitions + emissions_tm[0]
    num_tags = tf.shape(transitions)[0]
    spread = tf.stack([tf.shape(alpha0)[0], 1, num_tags, num_tags])
    flat = tf.shape(alpha0)
    kernel = transitions[None]  # (1, N_from, N_to): one 1 x N_from window per tag `to`

    def forward(alpha, emission):
        # max_from alpha[:, from] + transitions[from, to] as a morphological dilation (a
        # max-plus convolution): one kernel instead of a broadcast sum and a reduction.
        scores = tf.nn.dilation2d(
            tf.broadcast_to(alpha[:, None, :, None], spread),
            kernel,
            strides=[1, 1, 1, 1],
            padding="VALID",
            data_format="NHWC",
            dilations=[1, 1, 1, 1],
        )
        return tf.reshape(scores, flat) + emission

    alphas = tf.concat([alpha0[None], _blockwise(forward, alpha0, [emissions_tm])], axis=0)
    # The dilation's maximum starts from float32's lowest, not -inf: a tag that no path reaches
    # scores about -3.4e38 instead of -inf. Put back what a maximum of sums would have given.
    alphas = tf.where(alphas < _NO_PATH, float("-inf"), alphas)
    # Step s of row b: its scores at token lengths[b] - 1 - s (s = 0: its last real token).
    reversed_alphas = tf.reverse_sequence(alphas, lengths, seq_axis=0, batch_axis=1)
    final = reversed_alphas[0] + end_transitions
    best_last = tf.argmax(final, axis=1, output_type=tf.int32)
    transitions_to = tf.transpose(transitions)  # [to, from]: one row per chosen tag

    def backtrace(tag, scores):
        # The best predecessor of the tag chosen one step later in the sequence.
        return tf.argmax(scores + tf.gather(transitions_to, tag), axis=1, output_type=tf.int32)

    tags = tf.concat([best_last[None], _blockwise(backtrace, best_last, [reversed_alphas])], 0)
    tags = tf.reverse_sequence(tags, lengths, seq_axis=0, batch_axis=1)
    tag_ids = tf.where(mask, tf.transpose(tags), 0)
    return tag_ids, tf.reduce_max(final, axis=1)


# ----------------------------------------------------------------------------------------------
# Compiled by XLA inside a TensorFlow graph
# ----------------------------------------------------------------------------------------------
#
# Keras trains in TensorFlow graph mode on CPU (its `jit_compile="auto"` is off there), where each
# of the loops above still pays TensorFlow's executor per operation. `crf.py` can instead call
# the two functions below from that graph: each runs `crf.py`'s own `keras.ops` code (what JAX,
# torch and TensorFlow under XLA run) as one XLA program, compiled once per input shape and
# called like any other op. Only these calls are compiled, not the model around them.
#
# A program is compiled for each new shape (about 0.5 s for the loss and its gradient, 0.1 s
# for decoding, at 9 to 25 tags), so the time axis is padded first to one of a few lengths
# (`_LENGTH_BUCKETS`): at most 7 steps more up to 64 tokens, then at most a quarter more, so
# that batches cut to their longest sentence reuse a handful of programs. The padding is masked
# like any other.

# Lengths the time axis is padded to: multiples of 8 up to 64, then four per doubling (80, 96,
# 112, 128, 160, ...) up to 2**16; longer sequences to a multiple of 8192.
_LENGTH_BUCKETS = tuple(range(8, 65, 8)) + tuple(
    length
    for k in range(6, 16)
    for length in range(2**k + 2 ** (k - 2), 2 ** (k + 1) + 1, 2 ** (k - 2))
)


def bucketed_length(length):
    """The padded length of a time axis of `length` steps (int32 scalar tensor)."""
    length = tf.cast(length, tf.int32)
    table = tf.constant(_LENGTH_BUCKETS, tf.int32)
    index = tf.searchsorted(table, tf.reshape(length, [1]), side="left")[0]
    largest = _LENGTH_BUCKETS[-1]
    in_table = tf.gather(table, tf.minimum(index, len(_LENGTH_BUCKETS) - 1))
    return tf.where(length <= largest, in_table, (length + 8191) // 8192 * 8192)


_XLA_AVAILABLE = None


def xla_available() -> bool:
    """Whether this TensorFlow can compile and run an XLA program on its default device.

    Tried once per process on a one-op function; a build without XLA's JIT (or a device where it
    fails) then keeps the graph-mode code above.
    """
    global _XLA_AVAILABLE
    if _XLA_AVAILABLE is None:
        try:
            with tf.init_scope():  # eagerly, also while a graph is being traced
                tf.function(lambda x: x + 1.0, jit_compile=True)(tf.constant(1.0))
            _XLA_AVAILABLE = True
        except Exception:  # noqa: BLE001 - any failure means: do not compile
            _XLA_AVAILABLE = False
    return _XLA_AVAILABLE


def in_save_context() -> bool:
    """Whether `tf.saved_model.save` is tracing (its own test, not public API)."""
    try:
        from tensorflow.python.saved_model import save_context
    except ImportError:  # pragma: no cover - a future TensorFlow
        return False
    return bool(save_context.in_save_context())


def compiles_in_graph() -> bool:
    """Whether a call traced here may run as an XLA program: a graph (not eager), not itself
    compiled by XLA, not traced by `tf.saved_model.save`, with XLA available."""
    return (
        not tf.executing_eagerly()
        and not in_xla_context()
        and not in_save_context()
        and xla_available()
    )


def _pad_time(x, steps, value=0):
    """`x` `(B, T, ...)` with `steps` more positions of `value` at the end of its time axis."""
    padded = tf.pad(x, [[0, 0], [0, steps]] + [[0, 0]] * (x.shape.rank - 2), constant_values=value)
    # A computed padding hides every static dimension; all but time's are unchanged.
    return tf.ensure_shape(padded, x.shape[:1].concatenate([None]).concatenate(x.shape[2:]))


@tf.function(jit_compile=True, autograph=False)
def _compiled_log_z(emissions, mask, transitions, start, end):
    from linear_crf import crf  # in an XLA context: crf.py's keras.ops code

    return crf.log_partition(emissions, mask, transitions, start, end)


@tf.function(jit_compile=True, autograph=False)
def _compiled_log_z_gradient(emissions, mask, transitions, start, end, upstream):
    from linear_crf import crf

    with tf.GradientTape() as tape:
        tape.watch([emissions, transitions, start, end])
        total = tf.reduce_sum(
            crf.log_partition(emissions, mask, transitions, start, end) * upstream
        )
    return tape.gradient(
        total,
        [emissions, transitions, start, end],
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )


def compiled_log_partition(emissions, mask, transitions, start_transitions, end_transitions):
    """`crf.log_partition` as XLA programs called from a graph: the value, and its gradient by
    a second program (autodiff of the same code, recomputing the forward pass: the gradient's
    weights are only known then, and an XLA program cannot hand its loop's intermediates to
    the graph).

    Args: as `crf.log_partition` (after `crf._prepare`); any padding, either side.

    Returns:
        float32 `(B,)`, 0 for rows of length 0.
    """
    length = tf.shape(emissions)[1]
    steps = bucketed_length(length) - length
    padded_mask = _pad_time(mask, steps, False)

    @tf.custom_gradient
    def log_z(emissions, transitions, start, end):
        padded = _pad_time(emissions, steps)
        value = _compiled_log_z(padded, padded_mask, transitions, start, end)

        def gradient(upstream):
            d_emissions, d_transitions, d_start, d_end = _compiled_log_z_gradient(
                padded, padded_mask, transitions, start, end, upstream
            )
            return d_emissions[:, :length], d_transitions, d_start, d_end

        return value, gradient

    return log_z(emissions, transitions, start_transitions, end_transitions)


@tf.function(jit_compile=True, autograph=False)
def _compiled_viterbi(emissions, mask, transitions, start, end):
    from linear_crf import crf

    return crf.viterbi_decode(emissions, mask, transitions, start, end)


def compiled_viterbi_decode(emissions, mask, transitions, start_transitions, end_transitions):
    """`crf.viterbi_decode` as one XLA program called from a graph. Args and returns as there."""
    length = tf.shape(emissions)[1]
    steps = bucketed_length(length) - length
    tag_ids, scores = _compiled_viterbi(
        _pad_time(emissions, steps),
        _pad_time(mask, steps, False),
        transitions,
        start_transitions,
        end_transitions,
    )
    return tag_ids[:, :length], scores
