"""Tests of components/validation_gate.py's logic, without TFX."""

import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from components.validation_gate import (
    anomaly_lines,
    find_tags,
    known_tags,
    validation_report,
)
from pipeline.config import DEFAULT_SCHEMA_PATH

KNOWN = ("O", "B-person", "I-person")


def example(tokens, tags, sentence_id):
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "tokens": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[t.encode() for t in tokens])
                ),
                "tags": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[t.encode() for t in tags])
                ),
                "sentence_id": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[sentence_id.encode()])
                ),
            }
        )
    ).SerializeToString()


EXAMPLES = [
    example(["Obama", "said"], ["B-person", "O"], "train.conll:1"),
    example(["in", "Paris", "today"], ["O", "B-city", "O"], "train.conll:4"),
    example(["Paris", "Hilton"], ["B-city", "I-persn"], "train.conll:9"),
]


def tags_anomaly():
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["tags"]
    reason = info.reason.add()
    reason.type = anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES
    reason.description = "Examples contain values missing from the schema: B-city (~20%)."
    return anomalies


def test_find_tags_gives_sentence_position_and_token():
    assert find_tags(EXAMPLES, KNOWN) == {
        "B-city": [("train.conll:4", 2, "Paris"), ("train.conll:9", 1, "Paris")],
        "I-persn": [("train.conll:9", 2, "Hilton")],
    }
    assert find_tags(EXAMPLES, KNOWN, max_locations_per_tag=1)["B-city"] == [
        ("train.conll:4", 2, "Paris")
    ]


def test_report_names_each_unknown_tag_and_where():
    report = validation_report(
        {"train": tags_anomaly(), "eval": anomalies_pb2.Anomalies()},
        lambda split: EXAMPLES if split == "train" else [],
        KNOWN,
    )
    assert "split 'train', feature 'tags': Examples contain values missing" in report
    assert (
        "unknown tag 'B-city' (not in the schema's tag domain) at train.conll:4 token 2 " in report
    )
    assert (
        "unknown tag 'I-persn' (not in the schema's tag domain) at train.conll:9 token 2 " in report
    )
    assert "'eval'" not in report


def test_no_anomalies_no_report():
    assert validation_report({"train": anomalies_pb2.Anomalies()}, lambda split: [], KNOWN) is None


def test_anomaly_lines_include_dataset_level():
    anomalies = tags_anomaly()
    anomalies.dataset_anomaly_info.reason.add().description = "Low number of examples."
    assert anomaly_lines(anomalies) == [
        ("tags", "Examples contain values missing from the schema: B-city (~20%)."),
        ("<dataset>", "Low number of examples."),
    ]


def test_known_tags_from_the_curated_schema_and_errors():
    from google.protobuf import text_format

    with open(DEFAULT_SCHEMA_PATH, encoding="utf-8") as file:
        schema = text_format.Parse(file.read(), schema_pb2.Schema())
    assert "B-person" in known_tags(schema)
    with pytest.raises(ValueError, match=r"Expected a feature 'labels' with a string domain"):
        known_tags(schema, "labels")
