"""Tests of models/sentence_graph.py against plain-Python references."""

import numpy as np
import pytest
import tensorflow as tf

from models import sentence_graph
from models.entity_scoring import extract_entities


def reference_windows(length, window_length):
    """Obvious windows: stride window_length // 2, the last one aligned to the end."""
    if length <= window_length:
        return [(0, length)]
    stride = max(1, window_length // 2)
    starts = list(range(0, length - window_length, stride)) + [length - window_length]
    return [(start, window_length) for start in starts]


@pytest.mark.parametrize("window_length", [1, 2, 3, 4, 7])
def test_window_plan_covers_every_token(window_length):
    lengths = list(range(0, 20))
    ids, starts, sizes = (t.numpy() for t in sentence_graph.window_plan(
        tf.constant(lengths, tf.int64), window_length))  # fmt: skip
    for sentence, length in enumerate(lengths):
        windows = [(s, n) for i, s, n in zip(ids, starts, sizes) if i == sentence]
        assert windows == reference_windows(length, window_length)
        covered = {s + j for s, n in windows for j in range(n)}
        assert covered == set(range(length))


def test_stitch_takes_each_token_from_its_most_central_window():
    window_length = 4
    tokens = tf.ragged.constant([[f"t{i}" for i in range(11)], [], ["a", "b"]])
    windows, indices = sentence_graph.window_tokens(tokens, window_length)
    # The score of a window token says where it came from: (window id, position in window).
    num_windows = windows.nrows()
    scores = np.zeros((num_windows, window_length, 2), np.float32)
    for w in range(num_windows):
        scores[w, :, 0] = w
        scores[w, :, 1] = np.arange(window_length)
    stitched = sentence_graph.stitch(tf.constant(scores), indices, tf.constant(13, tf.int64))
    stitched = stitched.numpy()

    # Reference: for each flat token, over the windows holding it, the largest distance to an
    # edge, ties to the earlier window.
    flat_windows = indices.to_list()
    assert [len(w) for w in flat_windows][-1] == 0  # the trailing empty window
    for token in range(13):
        best = None
        for w, members in enumerate(flat_windows):
            if token in members:
                j = members.index(token)
                centrality = min(j, len(members) - 1 - j)
                if best is None or centrality > best[0]:
                    best = (centrality, w, j)
        assert tuple(stitched[token]) == (best[1], best[2])
    # and the windows hold the right tokens
    flat = tokens.flat_values.numpy()
    for row, members in zip(windows.to_list(), flat_windows):
        assert row == [flat[i] for i in members]


@pytest.mark.parametrize("scheme", ["iob2", "bioes"])
def test_entity_spans_match_conlleval_rules(scheme):
    types = ["person", "location"]
    prefixes = "BI" if scheme == "iob2" else "BIES"
    vocabulary = ["[PAD]", "O"] + [f"{p}-{t}" for t in types for p in prefixes]
    rng = np.random.default_rng(0)
    batch_size, width = 40, 9
    lengths = rng.integers(0, width + 1, batch_size)
    tag_ids = rng.integers(1, len(vocabulary), (batch_size, width))  # any sequence, valid or not
    tag_ids[np.arange(width)[None, :] >= lengths[:, None]] = 0
    tokens = np.array([[f"w{b}_{t}" for t in range(width)] for b in range(batch_size)], object)
    tokens[tag_ids == 0] = ""
    confidences = rng.uniform(0.1, 1.0, (batch_size, width)).astype(np.float32)
    spans = sentence_graph.entity_spans(
        tf.constant(tag_ids, tf.int32),
        tf.constant(lengths, tf.int64),
        tf.constant(tokens.astype(str)),
        tf.constant(confidences),
        vocabulary,
    )
    spans = {key: value.numpy() for key, value in spans.items()}
    for b in range(batch_size):
        tags = [vocabulary[i] for i in tag_ids[b, : lengths[b]]]
        expected = extract_entities(tags, scheme)
        n = spans["num_entities"][b]
        assert n == len(expected)
        for k, (start, end, entity_type) in enumerate(expected):
            assert spans["entity_starts"][b, k] == start
            assert spans["entity_ends"][b, k] == end
            assert spans["entity_types"][b, k].decode() == entity_type
            assert spans["entity_texts"][b, k].decode() == " ".join(tokens[b, start:end])
            assert spans["entity_confidences"][b, k] == pytest.approx(
                confidences[b, start:end].min()
            )
        assert (spans["entity_starts"][b, n:] == -1).all()
        assert (spans["entity_types"][b, n:] == b"").all()
