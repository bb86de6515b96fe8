"""ValidationGate: stops the pipeline before Transform and training when ExampleValidator found
anomalies, with a message that names each unknown tag and the sentences holding it.

ExampleValidator only records anomalies (against the curated schema, `pipeline/schema/`); nothing
in TFX stops a run because of them. This component reads them and raises `DataValidationError`;
Transform and Trainer run after it (`add_upstream_node`), so they never see bad data. For a tag
outside the schema's `tags` domain it reads that split's examples to say where the tag occurs:

    Data validation failed (ExampleValidator found anomalies against pipeline/schema/...):
      split 'train', feature 'tags': unknown tag 'B-persn' (not in the schema's tags domain) at
        train.conll:125 token 3 'Obama'
      ...

The logic is in plain functions (`anomaly_lines`, `find_tags`, `validation_report`), tested
without TFX.
"""

# No `from __future__ import annotations`: TFX's @component reads the annotations at runtime.
import collections
import os
from collections.abc import Callable, Iterable, Mapping, Sequence

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from components.schema_tags import TAGS_FEATURE, known_tags
from models.features import SENTENCE_ID_KEY, TOKENS_KEY

__all__ = [
    "ANOMALIES_FILE",
    "anomaly_lines",
    "DataValidationError",
    "find_tags",
    "MAX_LOCATIONS_PER_TAG",
    "SCHEMA_FILE",
    "SENTENCE_ID_FEATURE",
    "TOKENS_FEATURE",
    "validation_report",
    "ValidationGate",
]

TOKENS_FEATURE = TOKENS_KEY
SENTENCE_ID_FEATURE = SENTENCE_ID_KEY
MAX_LOCATIONS_PER_TAG = 5

ANOMALIES_FILE = "SchemaDiff.pb"
SCHEMA_FILE = "schema.pbtxt"


class DataValidationError(ValueError):
    """The examples do not match the schema; the message lists every anomaly and where."""


def anomaly_lines(anomalies: anomalies_pb2.Anomalies) -> list[tuple[str, str]]:
    """(feature or "<dataset>", description) of each anomaly reason, sorted by feature."""
    lines: list[tuple[str, str]] = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = info.reason or [info]
        lines.extend(
            (feature, reason.description or reason.short_description) for reason in reasons
        )
    for reason in anomalies.dataset_anomaly_info.reason:
        lines.append(("<dataset>", reason.description or reason.short_description))
    return lines


def find_tags(
    serialized_examples: Iterable[bytes],
    allowed: Sequence[str],
    max_locations_per_tag: int = MAX_LOCATIONS_PER_TAG,
) -> dict[str, list[tuple[str, int, str]]]:
    """Where tags outside `allowed` occur.

    Args:
        serialized_examples: serialized tf.Examples with `tokens`, `tags` and `sentence_id`.
        allowed: the known tags.
        max_locations_per_tag: locations kept per unknown tag (the first ones read).
    Returns:
        unknown tag -> [(sentence_id, 1-based token position, token)], tags sorted.
    """
    known = set(allowed)
    locations: dict[str, list[tuple[str, int, str]]] = collections.defaultdict(list)
    for serialized in serialized_examples:
        example = tf.train.Example.FromString(serialized)
        features = example.features.feature
        tags = [t.decode("utf-8") for t in features[TAGS_FEATURE].bytes_list.value]
        if all(tag in known for tag in tags):
            continue
        tokens = [t.decode("utf-8") for t in features[TOKENS_FEATURE].bytes_list.value]
        ids = features[SENTENCE_ID_FEATURE].bytes_list.value
        sentence_id = ids[0].decode("utf-8") if ids else "<no sentence_id>"
        for position, tag in enumerate(tags):
            if tag not in known and len(locations[tag]) < max_locations_per_tag:
                token = tokens[position] if position < len(tokens) else ""
                locations[tag].append((sentence_id, position + 1, token))
    return dict(sorted(locations.items()))


def validation_report(
    split_anomalies: Mapping[str, anomalies_pb2.Anomalies],
    read_examples: Callable[[str], Iterable[bytes]],
    allowed_tags: Sequence[str],
    schema_description: str = "the schema",
) -> str | None:
    """The error message for the anomalies of every split, or None if there are none.

    Args:
        split_anomalies: split name -> ExampleValidator's anomalies for it.
        read_examples: split name -> its serialized tf.Examples (read only for splits whose
            `tags` feature has an anomaly, to locate the unknown tags).
        allowed_tags: the schema's tag domain.
        schema_description: how the message names the schema.
    """
    lines = []
    for split, anomalies in sorted(split_anomalies.items()):
        for feature, description in anomaly_lines(anomalies):
            lines.append(f"  split {split!r}, feature {feature!r}: {description}")
        if TAGS_FEATURE in anomalies.anomaly_info:
            for tag, locations in find_tags(read_examples(split), allowed_tags).items():
                where = "; ".join(
                    f"{sentence_id} token {position} {token!r}"
                    for sentence_id, position, token in locations
                )
                lines.append(
                    f"  split {split!r}, feature {TAGS_FEATURE!r}: unknown tag {tag!r} "
                    f"(not in the schema's tag domain) at {where}"
                )
    if not lines:
        return None
    return (
        f"Data validation failed: ExampleValidator found anomalies against {schema_description}. "
        f"Known tags: {sorted(allowed_tags)}. Fix the data, or add the tags to the schema.\n"
        + "\n".join(lines)
    )


def _read_split(examples: types.Artifact, split: str) -> Iterable[bytes]:
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    files = sorted(tf.io.gfile.glob(pattern))
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        yield record.numpy()


@component
def ValidationGate(  # noqa: N802 (TFX component naming)
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    examples: InputArtifact[standard_artifacts.Examples],
    schema: InputArtifact[standard_artifacts.Schema],
) -> None:
    """Raises DataValidationError if ExampleValidator found anomalies (see the module doc)."""
    schema_proto = io_utils.parse_pbtxt_file(
        os.path.join(schema.uri, SCHEMA_FILE), schema_pb2.Schema()
    )
    split_anomalies = {}
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies], split), ANOMALIES_FILE)
        split_anomalies[split] = anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))
    report = validation_report(
        split_anomalies,
        lambda split: _read_split(examples, split),
        known_tags(schema_proto),
        f"the schema {schema.uri}",
    )
    if report:
        raise DataValidationError(report)
