"""Test helper: sentences through the real Transform (`models.preprocessing`) with tft_beam.

Shared by the Trainer tests (tests/models/test_run_fn.py) and the serving tests
(tests/serving/conftest.py); importable from any test because tests/conftest.py puts this folder on
sys.path (pytest's default `prepend` import mode).
"""

from __future__ import annotations

import functools
import types

import apache_beam as beam
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import schema_utils
from tfx_bsl.coders import example_coder
from tfx_bsl.public import tfxio


def serialized_example(tokens, tags=None) -> bytes:
    """A raw tf.Example as ConllExampleGen writes it (`tags` left out when None)."""
    feature = {
        "tokens": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[t.encode() for t in tokens])
        )
    }
    if tags is not None:
        feature["tags"] = tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[t.encode() for t in tags])
        )
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_transformed(directory, sentences, custom_config) -> None:
    """Writes `directory/transform` (the transform graph) and `directory/data-*.tfrecord`
    (transformed examples), like TFX's Transform, for `(tokens, tags)` sentences."""
    from models import preprocessing

    raw = directory / "raw.tfrecord"
    with tf.io.TFRecordWriter(str(raw)) as writer:
        for tokens, tags in sentences:
            writer.write(serialized_example(tokens, tags))
    schema = schema_utils.schema_from_feature_spec(
        {"tokens": tf.io.VarLenFeature(tf.string), "tags": tf.io.VarLenFeature(tf.string)}
    )
    source = tfxio.TFExampleRecord(str(raw), schema=schema)
    fn = functools.partial(preprocessing.preprocessing_fn, custom_config=custom_config)
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


def trainer_fn_args(directory, output_directory, custom_config, base_model=None):
    """The `FnArgs` fields `models.run_fn.run_fn` reads, for the transformed data that
    `write_transformed` wrote to `directory` (train and eval: the same records); the model goes
    to `output_directory/serving`, the logs to `output_directory/logs`."""

    def tf_dataset_factory(files, options, schema):
        return tfxio.TFExampleRecord(files, schema=schema).TensorFlowDataset(options)

    files = [str(directory / "data-*")]
    return types.SimpleNamespace(
        custom_config=custom_config,
        transform_graph_path=str(directory / "transform"),
        train_files=files,
        eval_files=files,
        train_steps=None,
        base_model=base_model,
        data_accessor=types.SimpleNamespace(tf_dataset_factory=tf_dataset_factory),
        serving_model_dir=str(output_directory / "serving"),
        model_run_dir=str(output_directory / "logs"),
    )
