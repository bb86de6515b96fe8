"""Tests of the `serve_sentences` signature of the exported SavedModel (models/export.py).

In this process (the loaded SavedModel) and in a fresh process that loads it with plain
TensorFlow, without this repository's packages.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import MAX_LENGTH, TAGS
from linear_crf.tag_scheme import allowed_transitions
from transform_fixtures import serialized_example

from models.entity_scoring import extract_entities
from models.tokenization import tokenize

pytestmark = pytest.mark.slow

SENTENCES = [
    "Obama visited Paris",
    "Paris  Hilton\tsaid hi",
    "",
    " \u3000 ",
    "I love New York and Paris and Obama visited Paris too , really a lot",  # > MAX_LENGTH
    "caf\xe9",
]
VOCABULARY = ("[PAD]", *sorted(TAGS))


@pytest.fixture(scope="module")
def loaded(exported_model_dir):
    return tf.saved_model.load(exported_model_dir)


def serve(loaded, sentences):
    outputs = loaded.signatures["serve_sentences"](sentences=tf.constant(sentences, tf.string))
    return {key: value.numpy() for key, value in outputs.items()}


def check_consistent(result, sentences):
    """Shapes, padding, tags and spans agree with each other and with the Python tokenizer."""
    batch_size = len(sentences)
    expected_tokens = [tokenize(s) for s in sentences]
    width = max([len(t) for t in expected_tokens], default=0)
    np.testing.assert_array_equal(result["lengths"], [len(t) for t in expected_tokens])
    for key in ("tokens", "tags", "tag_ids", "confidences"):
        assert result[key].shape == (batch_size, width), key
    allowed, allowed_start, allowed_end = allowed_transitions(list(VOCABULARY), "iob2")
    for b, tokens in enumerate(expected_tokens):
        n = len(tokens)
        assert [t.decode() for t in result["tokens"][b, :n]] == tokens
        assert (result["tokens"][b, n:] == b"").all() and (result["tags"][b, n:] == b"").all()
        assert (result["tag_ids"][b, n:] == 0).all() and (result["confidences"][b, n:] == 0).all()
        ids = result["tag_ids"][b, :n]
        assert [VOCABULARY[i] for i in ids] == [t.decode() for t in result["tags"][b, :n]]
        # The CRF decodes whole sentences: valid transitions across window boundaries too.
        if n:
            assert allowed_start[ids[0]] and allowed_end[ids[-1]]
            assert all(allowed[a, c] for a, c in zip(ids[:-1], ids[1:]))
        assert (
            (result["confidences"][b, :n] > 0) & (result["confidences"][b, :n] <= 1.0 + 1e-6)
        ).all()
        entities = extract_entities([VOCABULARY[i] for i in ids], "iob2")
        assert result["num_entities"][b] == len(entities)
        for k, (start, end, entity_type) in enumerate(entities):
            assert (result["entity_starts"][b, k], result["entity_ends"][b, k]) == (start, end)
            assert result["entity_types"][b, k].decode() == entity_type
            assert result["entity_texts"][b, k].decode() == " ".join(tokens[start:end])


def test_signatures(loaded):
    assert set(loaded.signatures) == {"serving_default", "serve_tokens", "serve_sentences"}


def test_consistent_on_edge_cases(loaded):
    result = serve(loaded, SENTENCES)
    check_consistent(result, SENTENCES)
    assert result["lengths"][4] > MAX_LENGTH  # tagged whole, not cut


def test_every_signature_tags_alike_at_any_length(loaded):
    # One tagging function behind the three signatures: the same outputs for the same tokens,
    # sentences longer than MAX_LENGTH and empty ones included.
    tokens = [tokenize(s) for s in SENTENCES]
    assert max(len(t) for t in tokens) > MAX_LENGTH and min(len(t) for t in tokens) == 0
    width = max(len(t) for t in tokens)
    by_tokens = loaded.signatures["serve_tokens"](
        tokens=tf.constant([t + [""] * (width - len(t)) for t in tokens])
    )
    by_examples = loaded.signatures["serving_default"](
        examples=tf.constant([serialized_example(t) for t in tokens])
    )
    by_sentences = serve(loaded, SENTENCES)
    for key, value in by_sentences.items():
        np.testing.assert_array_equal(value, by_tokens[key].numpy(), key)
        np.testing.assert_array_equal(value, by_examples[key].numpy(), key)


def check_batched_equals_one_at_a_time(loaded, sentences, atol=1e-5):
    """Each sentence tagged alone gets the tags (and confidences within `atol`) it gets in the
    batch."""
    batched = serve(loaded, sentences)
    for b, sentence in enumerate(sentences):
        single = serve(loaded, [sentence])
        n = single["lengths"][0]
        np.testing.assert_array_equal(single["tags"][0], batched["tags"][b, :n])
        np.testing.assert_allclose(
            single["confidences"][0], batched["confidences"][b, :n], atol=atol
        )
        assert single["num_entities"][0] == batched["num_entities"][b]


def test_batched_equals_one_at_a_time(loaded):
    check_batched_equals_one_at_a_time(loaded, SENTENCES)


def test_empty_batch_and_bad_bytes(loaded):
    empty = serve(loaded, [])
    assert empty["tags"].shape == (0, 0) and empty["lengths"].shape == (0,)
    assert empty["entity_texts"].shape == (0, 0)
    bad = [b"caf\xc3 \xff\xfe x", b"\xed\xa0\x80"]
    result = serve(loaded, bad)
    check_consistent(result, bad)
    assert result["tokens"][0, 0].decode() == "caf\ufffd"


def test_very_long_sentence(loaded):
    sentence = " ".join(["Paris", "Obama", "said", "hi"] * 300)  # 1,200 tokens, 300 windows
    check_consistent(serve(loaded, [sentence, "hi"]), [sentence, "hi"])


_FRESH_PROCESS = r"""
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
out = model.signatures["serve_sentences"](sentences=tf.constant(json.loads(sys.argv[2])))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("models", "serving", "keras"))
print(json.dumps({"outputs": {k: v.numpy().tolist() for k, v in out.items()}, "modules": loaded},
                 default=lambda b: b.decode("utf-8")))
"""


def check_fresh_process_tags_alike(loaded, model_dir, sentences):
    """A fresh process that loads the SavedModel with plain TensorFlow (none of our packages on its
    path) tags `sentences` as `loaded` does here."""
    completed = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, model_dir, json.dumps(sentences)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",  # not the repository: its packages are not on the path
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    fresh = json.loads(completed.stdout.strip().splitlines()[-1])
    assert not [m for m in fresh["modules"] if m.split(".")[0] in ("models", "serving")]
    here = serve(loaded, sentences)
    assert fresh["outputs"]["tags"] == [[t.decode() for t in row] for row in here["tags"]]
    np.testing.assert_allclose(fresh["outputs"]["confidences"], here["confidences"], atol=1e-5)
    assert fresh["outputs"]["num_entities"] == here["num_entities"].tolist()


def test_fresh_process_with_plain_tensorflow(loaded, exported_model_dir):
    check_fresh_process_tags_alike(loaded, exported_model_dir, SENTENCES)


def test_load_signatures_loads_the_model_once(monkeypatch, loaded, exported_model_dir):
    """`serving.tagging.load_signatures`: several signatures from one `tf.saved_model.load`
    (counted on the real function), each tagging as the same signature of another load; an
    unknown name is refused with the names the model has."""
    from serving import tagging

    loads = []
    real_load = tf.saved_model.load
    monkeypatch.setattr(
        tf.saved_model, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k)
    )
    by_sentences, by_tokens = tagging.load_signatures(
        exported_model_dir, ["serve_sentences", "serve_tokens"]
    )
    assert len(loads) == 1
    sentences = ["Obama visited Paris", "caf\xe9"]
    got = by_sentences(sentences=tf.constant(sentences))
    want = loaded.signatures["serve_sentences"](sentences=tf.constant(sentences))
    assert got["tags"].numpy().tolist() == want["tags"].numpy().tolist()
    tokens = tf.constant([["Obama", "visited", "Paris"], ["caf\xe9", "", ""]])
    got = by_tokens(tokens=tokens)
    want = loaded.signatures["serve_tokens"](tokens=tokens)
    assert got["tags"].numpy().tolist() == want["tags"].numpy().tolist()
    with pytest.raises(ValueError, match="'serve_nothing'.*serve_sentences"):
        tagging.load_signatures(exported_model_dir, ["serve_sentences", "serve_nothing"])
