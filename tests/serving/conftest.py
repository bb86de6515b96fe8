"""A tiny trained and exported tagger shared by the serving tests (one per test session).

Builds a real Transform output with tft_beam on a few sentences and calls `run_fn` on it, as
`tests/models/test_run_fn.py` does, with `max_length` 4 so that windowing is exercised by short
sentences.
"""

from __future__ import annotations

import functools
import types

import apache_beam as beam
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import schema_utils
from tfx_bsl.coders import example_coder
from tfx_bsl.public import tfxio

TAGS = ("O", "B-person", "I-person", "B-location", "I-location")
SENTENCES = [
    (["Obama", "visited", "Paris"], ["B-person", "O", "B-location"]),
    (["Paris", "Hilton", "said", "hi"], ["B-person", "I-person", "O", "O"]),
    (["I", "love", "New", "York", "and", "Paris"], ["O", "O", "B-location", "I-location", "O",
                                                     "B-location"]),
    (["hello"], ["O"]),
]  # fmt: skip
MAX_LENGTH = 4


def custom_config(output: str = "crf") -> dict:
    return {
        "tagger": {
            "preprocessing": {"tag_names": list(TAGS), "max_length": MAX_LENGTH,
                              "max_word_length": 5, "token_frequency_threshold": 1},
            "model": {"word_embedding_dim": 4, "casing_embedding_dim": 2,
                      "char_embedding_dim": 3, "char_filters": 4, "lstm_units": 4,
                      "output": output},
            "training": {"epochs": 2, "batch_size": 2, "early_stopping_start_epoch": 0},
        }
    }  # fmt: skip


def _serialized(tokens, tags):
    feature = {
        "tokens": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[t.encode() for t in tokens])
        ),
        "tags": tf.train.Feature(bytes_list=tf.train.BytesList(value=[t.encode() for t in tags])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _transform(directory):
    raw = directory / "raw.tfrecord"
    with tf.io.TFRecordWriter(str(raw)) as writer:
        for tokens, tags in SENTENCES:
            writer.write(_serialized(tokens, tags))
    schema = schema_utils.schema_from_feature_spec(
        {"tokens": tf.io.VarLenFeature(tf.string), "tags": tf.io.VarLenFeature(tf.string)}
    )
    source = tfxio.TFExampleRecord(str(raw), schema=schema)
    from models import preprocessing

    fn = functools.partial(preprocessing.preprocessing_fn, custom_config=custom_config())
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(directory / "tmp")):
        data = pipeline | source.BeamSource()
        (batches, _), transform_fn = (
            data,
            source.TensorAdapterConfig(),
        ) | tft_beam.AnalyzeAndTransformDataset(fn, output_record_batches=True)
        _ = transform_fn | tft_beam.WriteTransformFn(str(directory / "transform"))
        _ = (
            batches
            | beam.FlatMap(lambda batch: example_coder.RecordBatchToExamples(batch[0]))
            | beam.io.WriteToTFRecord(str(directory / "data"), file_name_suffix=".tfrecord")
        )


def _train(directory, output: str):
    from models import run_fn

    def tf_dataset_factory(files, options, schema):
        return tfxio.TFExampleRecord(files, schema=schema).TensorFlowDataset(options)

    files = [str(directory / "data-*")]
    args = types.SimpleNamespace(
        custom_config=custom_config(output),
        transform_graph_path=str(directory / "transform"),
        train_files=files,
        eval_files=files,
        train_steps=None,
        base_model=None,
        data_accessor=types.SimpleNamespace(tf_dataset_factory=tf_dataset_factory),
        serving_model_dir=str(directory / output / "serving"),
        model_run_dir=str(directory / output / "logs"),
    )
    run_fn.run_fn(args)
    return args.serving_model_dir


@pytest.fixture(scope="session")
def transform_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("serving_model")
    _transform(directory)
    return directory


@pytest.fixture(scope="session")
def exported_model_dir(transform_dir):
    """Path of a SavedModel exported by `run_fn` (CRF output)."""
    return _train(transform_dir, "crf")


@pytest.fixture(scope="session")
def serving_root(exported_model_dir, tmp_path_factory):
    """A serving folder as the Pusher writes it: `<root>/<numeric version>/`, two versions."""
    import shutil

    root = tmp_path_factory.mktemp("serving_root")
    for version in ("9", "10"):
        shutil.copytree(exported_model_dir, root / version)
    (root / "not-a-version").mkdir()
    return root
