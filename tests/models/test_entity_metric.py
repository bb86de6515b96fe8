"""Tests of models/entity_metric.py: the TFMA entity-F1 metric.

- its combiner in a Beam pipeline, as TFMA's own metric tests run theirs, on a tiny case worked out
  by hand and on random tag sequences against `models.entity_scoring.score_entities`;
- the whole metric inside `tfma.run_model_analysis` (model-agnostic: the predictions are a feature
  of the examples), with the pipeline's EvalConfig and its blessing threshold.
"""

import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from apache_beam.testing import util as beam_util
from tensorflow_model_analysis.metrics import metric_types, metric_util

from models import entity_metric
from models.entity_scoring import score_entities

TYPES = ["location", "person"]


def run_combiner(examples, expected, entity_types=TYPES):
    """Runs the metric's combiner in Beam over (gold, predicted) tag lists and checks that its
    output equals `expected` ({metric name: value}, approximately)."""
    computations = entity_metric.EntityF1(entity_types=entity_types).computations()
    assert len(computations) == 1
    combiner = computations[0].combiner
    extracts = [
        {
            "labels": np.asarray([t.encode() for t in gold], dtype=object),
            "predictions": np.asarray([t.encode() for t in predicted], dtype=object),
            "example_weights": np.asarray([1.0]),
        }
        for gold, predicted in examples
    ]

    def check(got):
        # Runs inside Beam: failures must be BeamAssertException.
        try:
            assert len(got) == 1
            slice_key, metrics = got[0]
            assert slice_key == ()
            assert all(isinstance(key, metric_types.MetricKey) for key in metrics)
            assert {key.name: value for key, value in metrics.items()} == pytest.approx(expected)
        except AssertionError as error:
            raise beam_util.BeamAssertException(str(error)) from error

    with beam.Pipeline() as pipeline:
        got = (
            pipeline
            | "Create" >> beam.Create(extracts)
            | "Inputs" >> beam.Map(metric_util.to_standard_metric_inputs)
            | "Slice" >> beam.Map(lambda x: ((), x))
            | "Combine" >> beam.CombinePerKey(combiner)
        )
        beam_util.assert_that(got, check)


def test_tiny_case_by_hand():
    examples = [
        # gold: person(0,2), location(3,4); predicted: person(0,2) correct, location(3,5) wrong.
        (
            ["B-person", "I-person", "O", "B-location", "O"],
            ["B-person", "I-person", "O", "B-location", "I-location", ""],  # "" = padding
        ),
        # gold: person(1,2); predicted: nothing (the model's output is shorter: "O" assumed).
        (["O", "B-person", "O"], ["O"]),
    ]
    # 1 correct of 2 predicted, of 3 gold.
    precision, recall = 50.0, 100.0 / 3
    run_combiner(
        examples,
        {
            "entity_precision": precision,
            "entity_recall": recall,
            "entity_f1": 2 * precision * recall / (precision + recall),
            "entity_f1/person": 100 * 2 * 1 / (1 + 2),  # P 1/1, R 1/2
            "entity_f1/location": 0.0,
            # 8 tokens; wrong: sentence 1 token 5 (I-location vs O), sentence 2 token 2.
            "token_accuracy": 100 * 6 / 8,
        },
    )


def test_matches_score_entities_on_random_sequences():
    rng = np.random.default_rng(0)
    tags = ["O", "O", "O", "B-person", "I-person", "B-location", "I-location"]
    examples = []
    for _ in range(40):
        length = int(rng.integers(1, 9))
        gold = [tags[i] for i in rng.integers(0, len(tags), length)]
        predicted = [tags[i] for i in rng.integers(0, len(tags), length)]
        examples.append((gold, predicted))
    scores = score_entities([g for g, _ in examples], [p for _, p in examples])
    expected = {
        "entity_f1": scores.f1,
        "entity_precision": scores.precision,
        "entity_recall": scores.recall,
        "token_accuracy": scores.token_accuracy,
    }
    expected.update({f"entity_f1/{t}": s.f1 for t, s in scores.per_type.items()})
    run_combiner(examples, expected)


def test_align_predictions():
    assert entity_metric.align_predictions(["O", "B-x", "I-x"], ["B-x"]) == ["B-x", "O", "O"]
    assert entity_metric.align_predictions(["O"], ["B-x", "I-x"]) == ["B-x"]


def _example(gold, predicted):
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "tokens": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"w"] * len(gold))),
                "tags": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[t.encode() for t in gold])
                ),
                "predicted_tags": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[t.encode() for t in predicted])
                ),
            }
        )
    ).SerializeToString()


@pytest.mark.slow
@pytest.mark.parametrize("floor, blessed", [(40.0, True), (60.0, False)])
def test_in_tfma_with_the_pipeline_eval_config(tmp_path, floor, blessed):
    from pipeline.config import PipelineConfig
    from pipeline.pipeline import eval_config as pipeline_eval_config

    data = tmp_path / "examples.tfrecord"
    with tf.io.TFRecordWriter(str(data)) as writer:
        writer.write(_example(["B-person", "I-person", "O"], ["B-person", "I-person", "O"]))
        writer.write(_example(["B-location", "O"], ["O", "B-location"]))
    # F1: 1 correct of 2 predicted, of 2 gold: 50.
    config = PipelineConfig.from_args(
        ["--min-entity-f1", str(floor), "--output-dir", str(tmp_path)]
    )
    eval_config = pipeline_eval_config(config)
    # Model-agnostic evaluation: the predictions are read from the examples.
    eval_config.model_specs[0].prediction_key = "predicted_tags"
    eval_config.model_specs[0].ClearField("signature_name")
    eval_config.model_specs[0].ClearField("model_type")
    # Standalone TFMA refuses change thresholds without a baseline (the TFX Evaluator rubber-stamps
    # the first model instead); the value threshold is what is checked here.
    eval_config.metrics_specs[0].metrics[0].threshold.ClearField("change_threshold")
    output_path = str(tmp_path / "evaluation")
    tfma.run_model_analysis(
        eval_config=eval_config, data_location=str(data), output_path=output_path
    )
    metrics = {}
    for slice_metrics in tfma.load_metrics(output_path):
        for key_and_value in slice_metrics.metric_keys_and_values:
            metrics[key_and_value.key.name] = key_and_value.value.double_value.value
    assert metrics["entity_f1"] == pytest.approx(50.0)
    assert metrics["entity_f1/person"] == pytest.approx(100.0)
    assert metrics["entity_f1/location"] == 0.0
    assert metrics["example_count"] == 2
    validation = tfma.load_validation_result(output_path)
    assert validation.validation_ok == blessed, validation
    if not blessed:
        (failure,) = validation.metric_validations_per_slice[0].failures
        assert failure.metric_key.name == "entity_f1"
    assert os.path.isdir(output_path)
