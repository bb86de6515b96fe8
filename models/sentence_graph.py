"""TensorFlow pieces of the `serve_sentences` signature: windows, stitching, entity spans.

Core TensorFlow ops only, so that the SavedModel runs in the stock `tensorflow/serving` image.

Sentences longer than the model's fixed `max_length` are tagged whole: the tokens are cut into
overlapping windows of `max_length` tokens (stride `max_length // 2`, the last window aligned to
the sentence's end), each window goes through the Transform graph and the network, and every token
takes its per-tag scores from the window where it lies furthest from an edge (most context on both
sides). The CRF then decodes the stitched scores of the whole sentence at once (Viterbi, and
forward-backward for the marginals), so tag transitions are valid across window boundaries too.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
from linear_crf.tag_scheme import PADDING_TAGS, split_tag

__all__ = [
    "entity_spans",
    "stitch",
    "tag_parts",
    "window_plan",
    "window_tokens",
]

_PREFIX_IDS = {"O": 0, "B": 1, "I": 2, "E": 3, "S": 4}


def window_plan(lengths: tf.Tensor, window_length: int) -> tuple[tf.Tensor, ...]:
    """The windows that cover each sentence.

    Args:
        lengths: int64 `(batch_size,)` tokens per sentence.
        window_length: tokens per window (the model's `max_length`).
    Returns:
        sentence_ids: int64 `(num_windows,)` the sentence each window belongs to; a sentence of at
            most `window_length` tokens (empty ones included) has exactly one window.
        starts: int64 `(num_windows,)` first token of each window within its sentence.
        window_lengths: int64 `(num_windows,)` tokens in each window.
    """
    stride = max(1, window_length // 2)
    longer = tf.maximum(lengths - window_length, 0)  # (batch_size,)
    num_windows = 1 + (longer + stride - 1) // stride  # (batch_size,)
    sentence_ids = tf.repeat(tf.range(tf.size(lengths, out_type=tf.int64)), num_windows)
    window_index = tf.ragged.range(num_windows).flat_values  # (num_windows,)
    starts = tf.minimum(window_index * stride, tf.gather(longer, sentence_ids))
    window_lengths = tf.minimum(
        tf.constant(window_length, tf.int64), tf.gather(lengths, sentence_ids) - starts
    )
    return sentence_ids, starts, window_lengths


def window_tokens(tokens: tf.RaggedTensor, window_length: int):
    """Cuts sentences into overlapping windows (see `window_plan`).

    Args:
        tokens: string RaggedTensor `(batch_size, None)`.
        window_length: tokens per window.
    Returns:
        windows: string RaggedTensor `(num_windows + 1, None)`, at most `window_length` tokens
            each; the last window is empty and belongs to no sentence: Keras' LSTM fails on a
            batch of 0 rows (an empty request), never on an empty row.
        token_indices: int64 RaggedTensor `(num_windows + 1, None)`: index in
            `tokens.flat_values` of each window token.
    """
    lengths = tokens.row_lengths()
    sentence_ids, starts, window_lengths = window_plan(lengths, window_length)
    first = tf.gather(tokens.row_starts(), sentence_ids) + starts  # (num_windows,)
    first = tf.concat([first, [0]], 0)
    window_lengths = tf.concat([window_lengths, [0]], 0)
    token_indices = tf.ragged.range(first, first + window_lengths)
    return tf.gather(tokens.flat_values, token_indices), token_indices


def stitch(window_scores: tf.Tensor, token_indices: tf.RaggedTensor, num_tokens: tf.Tensor):
    """Per-token scores taken from the window where each token is most central.

    Args:
        window_scores: float32 `(num_windows, window_length, num_tags)`.
        token_indices: int64 RaggedTensor `(num_windows, None)` from `window_tokens`.
        num_tokens: int64 scalar, tokens in the batch.
    Returns:
        float32 `(num_tokens, num_tags)`.
    """
    window_lengths = token_indices.row_lengths()  # (num_windows,)
    num_windows = tf.size(window_lengths, out_type=tf.int64)
    positions = tf.ragged.range(window_lengths)  # (num_windows, None)
    # Distance to the nearest window edge: larger = more context on both sides.
    centrality = tf.minimum(positions, tf.expand_dims(window_lengths, 1) - 1 - positions)
    window_ids = tf.cast(positions.value_rowids(), tf.int64)  # (num_window_tokens,)
    # Ties go to the earlier window; keys are unique per token since window ids are.
    keys = centrality.flat_values * (num_windows + 1) + (num_windows - window_ids)
    flat_indices = token_indices.flat_values
    best = tf.math.unsorted_segment_max(keys, flat_indices, num_tokens)  # (num_tokens,)
    owner = tf.equal(keys, tf.gather(best, flat_indices))  # (num_window_tokens,)
    scores = tf.gather_nd(
        window_scores, tf.stack([window_ids, tf.cast(positions.flat_values, tf.int64)], axis=1)
    )  # (num_window_tokens, num_tags)
    scores = tf.where(tf.expand_dims(owner, 1), scores, tf.zeros_like(scores))
    return tf.math.unsorted_segment_sum(scores, flat_indices, num_tokens)


def tag_parts(tag_vocabulary: Sequence[str]) -> tuple[list[int], list[int], list[str]]:
    """Prefix id (O=0, B, I, E, S) and entity type id of each tag; `[PAD]` counts as O.

    Returns:
        prefix_ids, type_ids (0 for O) per tag id, and the entity type names (index 0 is "").
    """
    prefixes, type_ids, types = [], [], [""]
    for tag in tag_vocabulary:
        # BIOES' prefixes include IOB2's: every tag of either scheme parses.
        prefix, entity_type = ("O", None) if tag in PADDING_TAGS else split_tag(tag, "bioes")
        if entity_type is not None and entity_type not in types:
            types.append(entity_type)
        prefixes.append(_PREFIX_IDS[prefix])
        type_ids.append(0 if entity_type is None else types.index(entity_type))
    return prefixes, type_ids, types


def entity_spans(
    tag_ids: tf.Tensor,
    lengths: tf.Tensor,
    tokens: tf.Tensor,
    confidences: tf.Tensor,
    tag_vocabulary: Sequence[str],
) -> dict[str, tf.Tensor]:
    """Entities of each sentence with conlleval's chunk rules (`models.entity_scoring`).

    Args:
        tag_ids: int32 `(batch_size, sequence_length)`.
        lengths: int64 `(batch_size,)`.
        tokens: string `(batch_size, sequence_length)`, "" at padding.
        confidences: float32 `(batch_size, sequence_length)` marginal of each token's tag.
        tag_vocabulary: tag name of every tag id.
    Returns:
        `entity_starts`, `entity_ends` int32 `(batch_size, max_entities)` (token index, end
        exclusive; -1 at padding), `entity_types` and `entity_texts` string (tokens joined by one
        space; "" at padding), `entity_confidences` float32 (the smallest token marginal of the
        span: an upper bound of the probability of the span's whole tag sequence; 0 at padding),
        `num_entities` int32 `(batch_size,)`.
    """
    prefix_ids, type_ids, types = tag_parts(tag_vocabulary)
    mask = tf.sequence_mask(lengths, tf.shape(tag_ids)[1])
    prefix = tf.where(mask, tf.gather(tf.constant(prefix_ids, tf.int32), tag_ids), 0)
    entity_type = tf.where(mask, tf.gather(tf.constant(type_ids, tf.int32), tag_ids), 0)
    # The neighbours' prefix and type; O outside the sentence.
    previous_prefix = tf.pad(prefix[:, :-1], [[0, 0], [1, 0]])
    previous_type = tf.pad(entity_type[:, :-1], [[0, 0], [1, 0]])
    next_prefix = tf.pad(prefix[:, 1:], [[0, 0], [0, 1]])
    next_type = tf.pad(entity_type[:, 1:], [[0, 0], [0, 1]])

    def among(values, names):
        return tf.reduce_any(tf.stack([tf.equal(values, _PREFIX_IDS[n]) for n in names]), axis=0)

    starts = among(prefix, "BS") | (
        among(prefix, "IE") & (among(previous_prefix, "OES") | (entity_type != previous_type))
    )
    ends = (prefix != 0) & (
        among(prefix, "ES") | among(next_prefix, "BSO") | (next_type != entity_type)
    )
    start_positions = tf.where(starts)  # (num_entities, 2) [sentence, token], row-major
    end_positions = tf.where(ends)  # the k-th start of a sentence pairs with its k-th end
    sentence_ids = start_positions[:, 0]
    span_starts = start_positions[:, 1]
    span_ends = end_positions[:, 1] + 1  # exclusive
    width = tf.cast(tf.shape(tag_ids)[1], tf.int64)
    span_indices = tf.ragged.range(
        sentence_ids * width + span_starts, sentence_ids * width + span_ends
    )
    texts = tf.strings.reduce_join(
        tf.gather(tf.reshape(tokens, [-1]), span_indices), axis=1, separator=" "
    )
    span_confidences = tf.reduce_min(tf.gather(tf.reshape(confidences, [-1]), span_indices), axis=1)
    span_types = tf.gather(tf.constant(types), tf.gather_nd(entity_type, start_positions))
    batch_size = tf.shape(tag_ids, out_type=tf.int64)[0]
    num_entities = tf.math.unsorted_segment_sum(
        tf.ones_like(sentence_ids), sentence_ids, batch_size
    )  # (batch_size,)

    def padded(values, default):
        return tf.RaggedTensor.from_row_lengths(values, num_entities).to_tensor(default)

    return {
        "entity_starts": padded(tf.cast(span_starts, tf.int32), -1),
        "entity_ends": padded(tf.cast(span_ends, tf.int32), -1),
        "entity_types": padded(span_types, ""),
        "entity_texts": padded(texts, ""),
        "entity_confidences": padded(span_confidences, 0.0),
        "num_entities": tf.cast(num_entities, tf.int32),
    }
