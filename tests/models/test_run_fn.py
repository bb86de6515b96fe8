"""Tests of models/run_fn.py: training from transformed TFRecords and the exported SavedModel.

Builds a real Transform output with tft_beam on a few sentences, calls `run_fn` with the
`FnArgs` fields it reads, and loads the export in this process.
"""

import os
import types

import numpy as np
import pytest
import tensorflow as tf
from tfx_bsl.public import tfxio
from transform_fixtures import serialized_example, write_transformed

from models import run_fn

pytestmark = pytest.mark.slow

TAGS = ("O", "B-person", "I-person", "B-location", "I-location")
SENTENCES = [
    (["Obama", "visited", "Paris"], ["B-person", "O", "B-location"]),
    (["Paris", "Hilton", "said", "hi"], ["B-person", "I-person", "O", "O"]),
    (["I", "love", "New", "York", "and", "Paris", "a", "lot", "really"], ["O"] * 9),
    (["hello"], ["O"]),
]
MAX_LENGTH = 6


def custom_config(embeddings_path=None, word_embedding_dim=4):
    return {
        "tagger": {
            "preprocessing": {"tag_names": list(TAGS), "max_length": MAX_LENGTH,
                              "max_word_length": 5, "token_frequency_threshold": 1},
            "model": {"word_embedding_dim": word_embedding_dim, "casing_embedding_dim": 2,
                      "char_embedding_dim": 3, "char_filters": 4, "lstm_units": 4,
                      "pretrained_embeddings_path": embeddings_path},
            "training": {"epochs": 2, "batch_size": 2, "early_stopping_start_epoch": 0},
        }
    }  # fmt: skip


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """A Transform output and transformed train/eval TFRecords, like TFX's Transform writes."""
    directory = tmp_path_factory.mktemp("transformed")
    write_transformed(directory, SENTENCES, custom_config())
    return directory


def fn_args(directory, output_directory, config):
    def tf_dataset_factory(files, options, schema):
        return tfxio.TFExampleRecord(files, schema=schema).TensorFlowDataset(options)

    files = [str(directory / "data-*")]
    return types.SimpleNamespace(
        custom_config=config,
        transform_graph_path=str(directory / "transform"),
        train_files=files,
        eval_files=files,
        train_steps=None,
        data_accessor=types.SimpleNamespace(tf_dataset_factory=tf_dataset_factory),
        serving_model_dir=str(output_directory / "serving"),
        model_run_dir=str(output_directory / "logs"),
    )


def test_trains_and_exports_both_signatures(transformed, tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("paris 1 2 3 4\nobama 5 6 7 8\n", encoding="utf-8")
    args = fn_args(transformed, tmp_path, custom_config(str(vectors)))
    run_fn.run_fn(args)

    assert os.listdir(args.model_run_dir)  # TensorBoard logs
    model = tf.saved_model.load(args.serving_model_dir)
    assert {"serving_default", "serve_tokens"} <= set(model.signatures)

    sentences = [tokens for tokens, _ in SENTENCES]
    by_examples = model.signatures["serving_default"](
        examples=tf.constant([serialized_example(tokens) for tokens in sentences])
    )
    width = max(len(tokens) for tokens in sentences)
    by_tokens = model.signatures["serve_tokens"](
        tokens=tf.constant([tokens + [""] * (width - len(tokens)) for tokens in sentences])
    )
    for key in ("tags", "tag_ids", "lengths"):
        np.testing.assert_array_equal(by_examples[key].numpy(), by_tokens[key].numpy())
    lengths = by_tokens["lengths"].numpy()
    np.testing.assert_array_equal(lengths, [min(len(t), MAX_LENGTH) for t in sentences])
    tags = by_tokens["tags"].numpy()
    assert tags.shape == (len(sentences), MAX_LENGTH)
    for row, length in zip(tags, lengths):
        assert {t.decode() for t in row[:length]} <= set(TAGS)
        assert set(row[length:]) <= {b""}


def test_vectors_of_another_size_are_refused(transformed, tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("paris 1 2 3\n", encoding="utf-8")
    args = fn_args(transformed, tmp_path, custom_config(str(vectors), word_embedding_dim=4))
    with pytest.raises(
        ValueError, match=r"Invalid value for `word_embedding_dim`. Expected the size"
    ):
        run_fn.run_fn(args)
