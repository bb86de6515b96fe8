"""ConllExampleGen: a file-based TFX ExampleGen for CoNLL-style column files.

Each sentence becomes one `tf.train.Example`:

- `tokens`: bytes list, UTF-8 tokens of the sentence;
- `tags`: bytes list, its tags, as many as tokens;
- `sentence_id`: one bytes value, "<file>:<line>", the file relative to `input_base` and the 1-based
  line of the sentence's first token (unique within a span, stable across machines).

The component is TFX's `FileBasedExampleGen` with this executor, like CsvExampleGen: its driver
resolves `{SPAN}`/`{VERSION}` in the input patterns and fingerprints the files; the executor
splits by input patterns (`input_config`) or by TFX's hash buckets (`output_config`, the same
examples in the same splits as TFX's own split) and writes each split to gzipped TFRecords
(`data_tfrecord-*.gz`), as TFX's ExampleGens do. What it does otherwise, for speed (a million
sentences in 17 s on this project's 2-core machine, the compression on the second core:
`benchmarks/data_components_scale.py`, BENCHMARKS.md):

- Beam moves batches, not examples: each element is a file's path, then a list of the
  serialised examples of about 1 MiB of the file (`components.conll_format.read_conll_batches`,
  which splits a sentence in a few calls where its lines are plain and reads it line by line
  where they are not: the same sentences, counts and errors as `read_conll_lines`);
- each sentence is serialised straight to protobuf's wire format (`serialize_sentence`), a
  batch framed as TFRecords at once (`tfrecord_frames`), and gzip-compressed in a thread of its
  own (`_BackgroundGzipFile`) while the next batch is read;
- each split is written in its files' order on the in-process DirectRunner (TFX's writer
  shuffles first; here only runners with several workers do: see `Executor._write_splits`).

The reader's options travel in `custom_config` as a `google.protobuf.Struct` packed in the
`CustomConfig` Any, which survives TFX's JSON serialisation of execution properties (local, Beam
and Kubeflow runners alike).

Use `ConllExampleGen(input_base=..., token_column=..., ...)`, or equivalently
`FileBasedExampleGen(input_base=..., custom_config=ConllReadOptions(...).to_custom_config(),
custom_executor_spec=executor_spec.BeamExecutorSpec(Executor))`.

After a run the output `Examples` artifact carries the counts as custom properties:
`conll_num_files`, `conll_num_sentences`, `conll_num_tokens`, `conll_num_skipped_sentences`,
`conll_num_skipped_lines` (all splits together, before any hash split).
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
import os
import queue
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import google_crc32c
import tensorflow as tf
from absl import logging
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from google.protobuf import any_pb2, struct_pb2
from tfx import types
from tfx.components.example_gen import base_example_gen_executor, write_split
from tfx.components.example_gen import component as example_gen_component
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.conll_format import (
    ConllFormatError,
    ReadStats,
    read_conll_batches,
    read_conll_lines,
)
from models.features import SENTENCE_ID_KEY, TAGS_KEY, TOKENS_KEY

__all__ = [
    "ConllExampleGen",
    "ConllReadOptions",
    "COUNTER_NAMES",
    "Executor",
    "METRICS_NAMESPACE",
    "SENTENCE_ID_FEATURE",
    "sentence_to_example",
    "serialize_encoded_sentence",
    "serialize_sentence",
    "TAGS_FEATURE",
    "TOKENS_FEATURE",
]

METRICS_NAMESPACE = "ConllExampleGen"
COUNTER_NAMES = (
    "num_files",
    "num_sentences",
    "num_tokens",
    "num_skipped_sentences",
    "num_skipped_lines",
)
"""Beam counters of the read, copied to the output artifact as `conll_<name>` properties."""

TOKENS_FEATURE = TOKENS_KEY
TAGS_FEATURE = TAGS_KEY
SENTENCE_ID_FEATURE = SENTENCE_ID_KEY

_MAX_LOGGED_ERRORS_PER_FILE = 10


@dataclasses.dataclass(frozen=True)
class ConllReadOptions:
    """How to read the CoNLL files; the arguments of `components.conll_format.read_conll`.

    Attributes:
        token_column: index of the token column; negative counts from the end.
        tag_column: index of the tag column; negative counts from the end.
        separator: column separator; None: TAB if the line holds one, else runs of spaces.
        scheme: tag scheme the tags must follow: "iob2" (alias "bio") or "bioes".
        on_error: "raise" fails the run at the first bad line; "skip" drops bad sentences whole
            and counts them.
        encoding: the files' encoding, one that keeps ASCII as it is ("utf-8", "cp1252", ...).
    """

    token_column: int = 0
    tag_column: int = -1
    separator: str | None = None
    scheme: str = "iob2"
    on_error: str = "raise"
    encoding: str = "utf-8"

    def __post_init__(self):
        # The reader validates its arguments eagerly, before reading any line.
        read_conll_lines((), "<options>", **dataclasses.asdict(self))

    def to_custom_config(self) -> example_gen_pb2.CustomConfig:
        """The options as ExampleGen's `custom_config`: a Struct packed in its Any."""
        struct = struct_pb2.Struct()
        struct.update(dataclasses.asdict(self))
        packed = any_pb2.Any()
        packed.Pack(struct)
        return example_gen_pb2.CustomConfig(custom_config=packed)

    @classmethod
    def from_exec_properties(cls, exec_properties: dict[str, Any]) -> ConllReadOptions:
        """Reads the options back from an executor's `exec_properties` (defaults if absent).

        Raises:
            ValueError: for a custom_config that is not a Struct of the fields of this class.
        """
        serialized = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
        if not serialized:
            return cls()
        custom_config = example_gen_pb2.CustomConfig()
        proto_utils.json_to_proto(serialized, custom_config)
        if not custom_config.HasField("custom_config"):
            return cls()
        struct = struct_pb2.Struct()
        if not custom_config.custom_config.Unpack(struct):
            raise ValueError(
                "Invalid value for `custom_config`. Expected a google.protobuf.Struct packed in "
                "CustomConfig.custom_config (see `ConllReadOptions.to_custom_config`). "
                f"Received: type_url={custom_config.custom_config.type_url!r}"
            )
        values = dict(struct.items())
        unknown = sorted(set(values) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(
                f"Invalid value for `custom_config`. Expected keys of {cls.__name__} only. "
                f"Received: unknown keys {unknown}"
            )
        # Struct numbers are doubles: give the column indices back their int type.
        for name in ("token_column", "tag_column"):
            if name in values and isinstance(values[name], float) and values[name].is_integer():
                values[name] = int(values[name])
        return cls(**values)


def _varint(number: int) -> bytes:
    """protobuf's base-128 varint of a non-negative int."""
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _field_heads(tag: int) -> list[bytes]:
    """The head of a length-delimited field (its tag byte, then the length as a varint) for every
    length up to 16 KiB, looked up rather than computed per value."""
    return [bytes([tag]) + _varint(length) for length in range(1 << 14)]


# Field 1 is Example.features, Features.feature (a map entry), the entry's key,
# Feature.bytes_list and BytesList.value; field 2 is the map entry's value.
_FIELD_1_HEADS = _field_heads(0x0A)
_FIELD_2_HEADS = _field_heads(0x12)


def _field(heads: list[bytes], payload: bytes) -> bytes:
    length = len(payload)
    head = heads[length] if length < 1 << 14 else heads[0][:1] + _varint(length)
    return head + payload


def _field_1(payload: bytes) -> bytes:
    return _field(_FIELD_1_HEADS, payload)


def _bytes_list(values: list[bytes]) -> bytes:
    """The wire bytes of `BytesList(value=values)`: each value after its field head."""
    try:
        heads = list(map(_FIELD_1_HEADS.__getitem__, map(len, values)))
    except IndexError:  # A value of 16 KiB or more.
        return b"".join([_field_1(value) for value in values])
    parts = values + values  # The right length; every other item replaced by a head below.
    parts[0::2] = heads
    parts[1::2] = values
    return b"".join(parts)


def _feature_entry(key_field: bytes, bytes_list: bytes) -> bytes:
    """One `Features.feature` map entry: the key (its field, written) -> Feature(bytes_list)."""
    return _field_1(key_field + _field(_FIELD_2_HEADS, _field_1(bytes_list)))


# protobuf's deterministic serialisation writes map entries sorted by key.
_FEATURE_ORDER = tuple(sorted((TOKENS_FEATURE, TAGS_FEATURE, SENTENCE_ID_FEATURE)))
assert _FEATURE_ORDER == (SENTENCE_ID_FEATURE, TAGS_FEATURE, TOKENS_FEATURE), _FEATURE_ORDER
_SENTENCE_ID_KEY, _TAGS_KEY, _TOKENS_KEY = (_field_1(key.encode()) for key in _FEATURE_ORDER)


def serialize_sentence(tokens, tags, sentence_id: str) -> bytes:
    """The serialised `tf.train.Example` of one sentence (features described in the module doc).

    The bytes are those of `sentence_to_example(...).SerializeToString(deterministic=True)`,
    written directly in protobuf's wire format: building the message object first costs several
    times as much in Python, and ExampleGen only needs the bytes. Deterministic bytes also keep
    TFX's hash split of an `output_config` where it was with messages.
    """
    return serialize_encoded_sentence(
        [token.encode("utf-8") for token in tokens],
        [tag.encode("utf-8") for tag in tags],
        sentence_id.encode("utf-8"),
    )


def serialize_encoded_sentence(tokens: list[bytes], tags: list[bytes], sentence_id: bytes) -> bytes:
    """`serialize_sentence` of a sentence whose tokens, tags and id are UTF-8 bytes already."""
    try:
        return _serialize_short(tokens, tags, sentence_id)
    except IndexError:  # A field of 16 KiB or more: a length to write out, not to look up.
        pass
    return _field_1(
        _feature_entry(_SENTENCE_ID_KEY, _field_1(sentence_id))
        + _feature_entry(_TAGS_KEY, _bytes_list(tags))
        + _feature_entry(_TOKENS_KEY, _bytes_list(tokens))
    )


def _serialize_short(
    tokens: list[bytes], tags: list[bytes], sentence_id: bytes, h1=_FIELD_1_HEADS, h2=_FIELD_2_HEADS
) -> bytes:
    """`serialize_encoded_sentence` written out, every field's head looked up (IndexError for a
    field of 16 KiB or more): a fifth faster than through `_feature_entry`, measured."""
    id_list = h1[len(sentence_id)] + sentence_id
    id_feature = h1[len(id_list)] + id_list
    id_entry = _SENTENCE_ID_KEY + h2[len(id_feature)] + id_feature
    features = (
        h1[len(id_entry)]
        + id_entry
        + _short_entry(_TAGS_KEY, tags)
        + _short_entry(_TOKENS_KEY, tokens)
    )
    return h1[len(features)] + features


def _short_entry(key_field: bytes, values: list[bytes], h1=_FIELD_1_HEADS, h2=_FIELD_2_HEADS):
    parts = values + values  # The right length; every other item replaced by a head below.
    parts[0::2] = map(h1.__getitem__, map(len, values))
    parts[1::2] = values
    bytes_list = b"".join(parts)
    feature = h1[len(bytes_list)] + bytes_list
    entry = key_field + h2[len(feature)] + feature
    return h1[len(entry)] + entry


def sentence_to_example(tokens, tags, sentence_id: str) -> tf.train.Example:
    """The `tf.train.Example` of one sentence (features described in the module doc)."""
    return tf.train.Example.FromString(serialize_sentence(tokens, tags, sentence_id))


def _relative_path(path: str, input_base: str) -> str:
    prefix = input_base.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


class _ReadConllFile(beam.DoFn):
    """Reads one CoNLL file (an element: its path) into batches of serialised tf.Examples (one
    list per chunk of the file read: `read_conll_batches`), counting as it goes."""

    def __init__(self, options: ConllReadOptions, input_base: str):
        self._options = options
        self._input_base = input_base
        self._counters = {
            name: beam.metrics.Metrics.counter(METRICS_NAMESPACE, name) for name in COUNTER_NAMES
        }

    def process(self, path: str):
        stats = ReadStats()
        relative = _relative_path(path, self._input_base).encode("utf-8")
        with fileio.open(path, "rb") as file:
            # Error messages name the full path (what the user can open); ids the relative one.
            yield from read_conll_batches(
                file,
                path,
                stats=stats,
                convert=lambda line, tokens, tags: serialize_encoded_sentence(
                    tokens, tags, b"%s:%d" % (relative, line)
                ),
                **dataclasses.asdict(self._options),
            )
        for error in stats.errors[:_MAX_LOGGED_ERRORS_PER_FILE]:
            logging.warning("Skipped a sentence: %s", error)
        if stats.num_skipped_sentences:
            logging.warning(
                "%s: skipped %d sentences (%d lines) with errors.",
                path,
                stats.num_skipped_sentences,
                stats.num_skipped_lines,
            )
        self._counters["num_files"].inc(1)
        self._counters["num_sentences"].inc(stats.num_sentences)
        self._counters["num_tokens"].inc(stats.num_tokens)
        self._counters["num_skipped_sentences"].inc(stats.num_skipped_sentences)
        self._counters["num_skipped_lines"].inc(stats.num_skipped_lines)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(list[bytes])
def _ConllToBatches(
    pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str
) -> beam.pvalue.PCollection:
    """Reads the CoNLL files matching one split's pattern into batches of tf.Examples.

    Args:
        pipeline: the Beam pipeline.
        exec_properties: the executor's execution properties (`input_base`, `custom_config`).
        split_pattern: glob pattern relative to `input_base`, `{SPAN}` already resolved by the
            driver.
    Returns:
        PCollection of lists of serialised `tf.train.Example`s, one per sentence, a file's
        sentences in line order.
    Raises:
        FileNotFoundError: when no file matches the pattern.
    """
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    options = ConllReadOptions.from_exec_properties(exec_properties)
    pattern = os.path.join(input_base, split_pattern)
    paths = sorted(fileio.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"No CoNLL file matches the input pattern {pattern!r}.")
    logging.info("Reading %d CoNLL files matching %s with %s.", len(paths), pattern, options)
    return (
        pipeline
        | "CreatePaths" >> beam.Create(paths)
        # Breaks fusion with Create so that files spread over workers; each file is read
        # whole, in order, by one DoFn call (line numbers need that).
        | "Reshuffle" >> beam.Reshuffle()
        | "ReadConll" >> beam.ParDo(_ReadConllFile(options, input_base))
    )


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes | tf.train.Example)
def _ConllToExample(
    pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str
) -> beam.pvalue.PCollection:
    """`_ConllToBatches` one example at a time: what TFX's `GenerateExamplesByBeam` expects of
    an ExampleGen's input transform. The executor itself writes the batches (`Executor.Do`).

    Returns:
        PCollection of serialised `tf.train.Example`s, one per sentence; the messages themselves
        where the `output_config` splits by a feature (`partition_feature_name`: TFX's split
        reads the feature from the message).
    """
    examples = (
        pipeline
        | "ReadBatches" >> _ConllToBatches(exec_properties, split_pattern)
        | "Unbatch" >> beam.FlatMap(lambda batch: batch)
    )
    if _output_config(exec_properties).split_config.HasField("partition_feature_name"):
        examples |= "ParseForPartition" >> beam.Map(tf.train.Example.FromString)
    return examples


def _output_config(exec_properties: dict[str, Any]) -> example_gen_pb2.Output:
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(
        exec_properties.get(standard_component_specs.OUTPUT_CONFIG_KEY) or "{}", output_config
    )
    return output_config


class _SplitBatches(beam.DoFn):
    """Splits each batch of examples by the `output_config`'s hash buckets, as TFX's
    `GenerateExamplesByBeam` splits examples one by one: the SHA-256 of the serialised example
    (or of the `partition_feature_name` feature), modulo the buckets. Outputs: one batch per
    split (tagged with its index) where the batch has examples for it."""

    def __init__(self, split_config: example_gen_pb2.SplitConfig):
        self._buckets = list(itertools.accumulate(s.hash_buckets for s in split_config.splits))
        self._feature = (
            split_config.partition_feature_name
            if split_config.HasField("partition_feature_name")
            else None
        )

    def _key(self, example: bytes) -> bytes:
        if self._feature is None:
            return example
        features = tf.train.Example.FromString(example).features.feature
        if self._feature not in features:
            raise RuntimeError(f"Feature name `{self._feature}` does not exist.")
        return features[self._feature].SerializeToString(deterministic=True)

    def process(self, batch: list[bytes]):
        splits: list[list[bytes]] = [[] for _ in self._buckets]
        total = self._buckets[-1]
        for example in batch:
            bucket = int(hashlib.sha256(self._key(example)).hexdigest(), 16) % total
            splits[bisect.bisect(self._buckets, bucket)].append(example)
        for index, examples in enumerate(splits):
            if examples:
                yield beam.pvalue.TaggedOutput(str(index), examples)


_SHUFFLED_BATCH_SIZE = 256


def _smaller_batches(batch: list[bytes]) -> Iterator[list[bytes]]:
    for start in range(0, len(batch), _SHUFFLED_BATCH_SIZE):
        yield batch[start : start + _SHUFFLED_BATCH_SIZE]


_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return _CRC.pack(((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF)


def tfrecord_frames(records: list[bytes]) -> bytes:
    """The records as a TFRecord file holds them, one after the other: each one's length (8 bytes,
    little-endian), the masked CRC-32C of those 8 bytes, the record, its masked CRC-32C."""
    parts: list[bytes] = []
    for record in records:
        length = _LENGTH.pack(len(record))
        parts += (length, _masked_crc(length), record, _masked_crc(record))
    return b"".join(parts)


class _BackgroundGzipFile:
    """Gzip-compresses what is written to it (zlib's default level, as Beam's gzip files) in a
    thread of its own, into `raw`: zlib and the file writes release the GIL, so the compression
    of one batch overlaps the reading and serialising of the next on another core."""

    def __init__(self, raw):
        self._raw = raw
        self._pending: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._compress, name="gzip-writer", daemon=True)
        self._thread.start()

    def _compress(self) -> None:
        compressor = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 16 + zlib.MAX_WBITS
        )
        while (data := self._pending.get()) is not None:
            if self._error is None:  # After an error: drain, so that `write` never blocks.
                try:
                    self._raw.write(compressor.compress(data))
                except BaseException as error:  # noqa: BLE001 - raised again in the caller
                    self._error = error
        if self._error is None:
            try:
                self._raw.write(compressor.flush())
            except BaseException as error:  # noqa: BLE001 - raised again in the caller
                self._error = error

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._pending.put(data)

    def close(self) -> None:
        self._pending.put(None)
        self._thread.join()
        self._raw.close()
        if self._error is not None:
            raise self._error


class _TFRecordBatchSink(filebasedsink.FileBasedSink):
    """Beam's file sink for batches of records, each element a list of serialised records: the
    gzipped TFRecord files (`<prefix>-SSSSS-of-NNNNN.gz`) that `beam.io.WriteToTFRecord` writes
    for the same records, framed a batch at a time and compressed in a thread of their own."""

    def __init__(self, file_path_prefix: str):
        super().__init__(
            file_path_prefix,
            coder=None,
            file_name_suffix=".gz",
            compression_type=CompressionTypes.UNCOMPRESSED,  # Compressed by _BackgroundGzipFile.
        )

    def open(self, temp_path):
        return _BackgroundGzipFile(super().open(temp_path))

    def write_record(self, file_handle, value: list[bytes]) -> None:
        file_handle.write(tfrecord_frames(value))


# How a ConllFormatError reads once a runner has turned it into text (multi-process DirectRunner,
# portable runners): "...ConllFormatError: <path>:<line>: <reason>" up to the end of that line or
# Beam's " [while running ...]" suffix; "<path>: no sentences found (...)" has no line number.
_FORMAT_ERROR_TEXT = re.compile(
    r"ConllFormatError: (?:(?P<file>[^\n]+?): (?=no sentences found)|"
    r"(?P<path>[^\n]+?):(?P<line>\d+): )(?P<reason>[^\n]*?)(?: \[while running [^\n]*)?$",
    re.MULTILINE,
)


_DIRECT_RUNNERS = ("DirectRunner", "direct", "SwitchingDirectRunner", "BundleBasedDirectRunner")


def _spreads_over_workers(beam_pipeline_args) -> bool:
    """Whether these Beam options run the pipeline on more than one worker: any runner but the
    DirectRunner, or the DirectRunner in a multi-threaded or multi-process mode with more than
    one worker (`--direct_num_workers=0` means one per core)."""
    options = PipelineOptions(list(beam_pipeline_args or []))
    runner = options.view_as(StandardOptions).runner
    if runner is not None and runner.rsplit(".", 1)[-1] not in _DIRECT_RUNNERS:
        return True
    direct = options.view_as(DirectOptions)
    return direct.direct_running_mode != "in_memory" and direct.direct_num_workers != 1


def _find_format_error(error: BaseException) -> ConllFormatError | None:
    """The ConllFormatError behind an error raised through Beam: chained, or in its message."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ConllFormatError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    match = _FORMAT_ERROR_TEXT.search(str(error))
    if match is None:
        return None
    if match["line"] is None:
        return ConllFormatError(match["file"], None, match["reason"])
    return ConllFormatError(match["path"], int(match["line"]), match["reason"])


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Beam executor of ConllExampleGen: CoNLL files -> tf.Examples (see the module doc)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        """Returns the PTransform reading one split's CoNLL files into tf.Examples."""
        return _ConllToExample

    def _make_beam_pipeline(self):
        # Kept to read the Beam counters of the run once `Do` has finished it.
        self._pipeline = super()._make_beam_pipeline()
        return self._pipeline

    def _write_splits(
        self, output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]
    ) -> None:
        """The base executor's `Do`, with the shuffle before writing only where it pays: the
        same split names, files (`data_tfrecord-*.gz` in each split's folder) and artifact
        properties.

        TFX's `WriteSplit` reshuffles every split before writing it: a GroupByKey over all the
        examples. In the in-process DirectRunner (one worker: the default here) that buys
        nothing, everything runs in one process anyway, and the runner holds the GroupByKey's
        input in memory (the peak grew with the corpus: 2.2 GB at a million sentences); there
        each split is written without it, a file's sentences in line order, the same records in
        the same order every run. Where several workers run (`_spreads_over_workers`: the
        multi-process DirectRunner, Dask, Dataflow, Flink...), a file is read by one worker, and
        without the shuffle its sentences would stay there and land in one output file, which
        the downstream components then read with one worker (measured on the multi-process
        DirectRunner at a million sentences: Transform 275 s, against 167 s with the shuffle,
        benchmarks/data_components_scale.py); there the split is shuffled first, as TFX does.
        Training shuffles its batches itself either way (`TrainingConfig.shuffle_buffer_size`).

        Raises:
            ValueError: for an output payload format other than tf.Example (the only one this
                reader writes).
        """
        payload_format = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        if payload_format and payload_format != example_gen_pb2.FORMAT_TF_EXAMPLE:
            raise ValueError(
                "Invalid value for `output_data_format`. Expected FORMAT_TF_EXAMPLE (ConllExampleGen "
                f"writes tf.Examples). Received: output_data_format={payload_format!r}"
            )
        self._log_startup({}, output_dict, exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config
        )
        output_config = _output_config(exec_properties)
        examples = output_dict[standard_component_specs.EXAMPLES_KEY]
        artifact_utils.get_single_instance(
            examples
        ).split_names = artifact_utils.encode_split_names(
            example_gen_utils.generate_output_split_names(input_config, output_config)
        )
        logging.info("Generating examples.")
        spread = _spreads_over_workers(self._beam_pipeline_args)
        with self._make_beam_pipeline() as pipeline:
            splits = self._batches_by_split(pipeline, exec_properties, input_config, output_config)
            for name, split in splits.items():
                if spread:  # In batches small enough to spread over the workers.
                    split |= f"Rebatch[{name}]" >> beam.FlatMap(_smaller_batches)
                    split |= f"Shuffle[{name}]" >> beam.Reshuffle()
                prefix = os.path.join(
                    artifact_utils.get_split_uri(examples, name), write_split.DEFAULT_FILE_NAME
                )
                _ = split | f"Write[{name}]" >> beam.io.Write(_TFRecordBatchSink(prefix))
        logging.info("Examples generated.")
        file_format = exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
        for artifact in examples:
            if payload_format:
                examples_utils.set_payload_format(artifact, payload_format)
            if file_format:
                examples_utils.set_file_format(
                    artifact, write_split.to_file_format_str(file_format)
                )

    def _batches_by_split(
        self,
        pipeline: beam.Pipeline,
        exec_properties: dict[str, Any],
        input_config: example_gen_pb2.Input,
        output_config: example_gen_pb2.Output,
    ) -> dict[str, beam.pvalue.PCollection]:
        """What TFX's `GenerateExamplesByBeam` returns, in batches: split name -> PCollection of
        lists of serialised examples; the input splits, or the hash-bucket splits of the one
        input split (the same examples in the same splits)."""
        names = example_gen_utils.generate_output_split_names(input_config, output_config)
        if not output_config.split_config.splits:
            return {
                split.name: pipeline
                | f"ReadBatches[{split.name}]" >> _ConllToBatches(exec_properties, split.pattern)
                for split in input_config.splits
            }
        if len(input_config.splits) != 1:
            raise ValueError(
                "Invalid value for `input_config`. Expected one split where `output_config` "
                f"splits by hash buckets. Received: {len(input_config.splits)} splits"
            )
        indices = [str(index) for index in range(len(names))]
        split = (
            pipeline
            | "ReadBatches" >> _ConllToBatches(exec_properties, input_config.splits[0].pattern)
            | "SplitData"
            >> beam.ParDo(_SplitBatches(output_config.split_config)).with_outputs(*indices)
        )
        return {name: split[index] for name, index in zip(names, indices)}

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Reads the files into the `examples` splits and records the counts on the artifact.

        Raises:
            ConllFormatError: for a bad file with on_error="raise" (also with "skip" for a file
                with no good sentence), rebuilt from the runner's error: the original where the
                runner chains it (in-process DirectRunner), else parsed from its message
                (multi-process runners send the error back as text). An error whose text
                cannot be parsed propagates unchanged; its message still holds `path:line:`.
        """
        # Fail before starting Beam on options the executor cannot use.
        ConllReadOptions.from_exec_properties(exec_properties)
        self._pipeline = None
        try:
            self._write_splits(output_dict, exec_properties)
        except Exception as error:
            format_error = _find_format_error(error)
            if format_error is None:
                raise
            raise ConllFormatError(
                format_error.path, format_error.line, format_error.reason
            ) from error
        result = getattr(self._pipeline, "result", None)
        if result is None:
            return
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY]
        )
        try:
            counters = result.metrics().query(
                beam.metrics.MetricsFilter().with_namespace(METRICS_NAMESPACE)
            )["counters"]
        except NotImplementedError:  # Beam 2.74's DaskRunner: "collecting metrics will come later"
            logging.warning(
                "ConllExampleGen: the Beam runner (%s) reports no metrics, so the examples carry "
                "no sentence, token and skip counts.",
                type(result).__name__,
            )
            return
        totals = dict.fromkeys(COUNTER_NAMES, 0)
        for counter in counters:
            if counter.key.metric.name in totals:
                totals[counter.key.metric.name] += counter.committed or 0
        for name, value in totals.items():
            examples.set_int_custom_property(f"conll_{name}", int(value))
        logging.info("ConllExampleGen read: %s", totals)


class ConllExampleGen(example_gen_component.FileBasedExampleGen):
    """TFX ExampleGen for CoNLL-style column files (token, tag, one per line).

    Outputs: `examples`, a `standard_artifacts.Examples` channel of gzipped TFRecords of
    tf.Examples with `tokens`, `tags` and `sentence_id` (see `components.conll_example_gen`).
    """

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        input_base: str | None = None,
        input_config: example_gen_pb2.Input | data_types.RuntimeParameter | None = None,
        output_config: example_gen_pb2.Output | data_types.RuntimeParameter | None = None,
        range_config: range_config_pb2.RangeConfig | data_types.RuntimeParameter | None = None,
        token_column: int = 0,
        tag_column: int = -1,
        separator: str | None = None,
        scheme: str = "iob2",
        on_error: str = "raise",
        encoding: str = "utf-8",
    ):
        """Builds the component.

        Args:
            input_base: directory holding the CoNLL files.
            input_config: `example_gen_pb2.Input`; its split patterns are globs relative to
                `input_base`, `{SPAN}`/`{VERSION}` allowed. Unset: every file under input_base
                is one split.
            output_config: `example_gen_pb2.Output`; hash-bucket splits of a single input split.
                Unset: the input splits if there are several, else train/eval 2:1.
            range_config: `range_config_pb2.RangeConfig` limiting the spans considered; unset: the
                latest span.
            token_column, tag_column, separator, scheme, on_error, encoding: how to read the
                files, see `ConllReadOptions`.
        Raises:
            ValueError: for invalid reading options (checked here, before any pipeline runs).
        """
        options = ConllReadOptions(token_column, tag_column, separator, scheme, on_error, encoding)
        super().__init__(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            custom_config=options.to_custom_config(),
            range_config=range_config,
        )
