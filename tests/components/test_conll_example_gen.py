"""Tests for components/conll_example_gen.py: the real executor (Beam DirectRunner) on tiny files."""

import io
import os
import re
from pathlib import Path

import pytest
import tensorflow as tf
from tfx.components.example_gen import driver as example_gen_driver
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from components.conll_example_gen import (
    ConllExampleGen,
    ConllReadOptions,
    Executor,
    _find_format_error,
    sentence_to_example,
)
from components.conll_format import ConllFormatError

QUIRKY = (
    # BOM, a -DOCSTART- line, a TAB-only separator, CRLF endings, a BOM on a line of its own,
    # no newline at the end.
    b"\xef\xbb\xbf-DOCSTART-\tO\r\n\r\n"
    b"Empire\tB-location\r\nState\tI-location\r\n\t\r\n"
    b"caf\xc3\xa9\tO\r\n"
    b"\xef\xbb\xbf\r\n"
    b"Dubbz\tB-person"
)
QUIRKY_SENTENCES = [
    (["Empire", "State"], ["B-location", "I-location"], 3),
    (["caf\u00e9"], ["O"], 6),
    (["Dubbz"], ["B-person"], 8),
]


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def exec_properties(input_base, splits, output_splits=(), options=None):
    """The execution properties TFX hands the executor (proto properties as JSON strings)."""
    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name=name, pattern=p) for name, p in splits]
    )
    output_config = example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
                for name, buckets in output_splits
            ]
        )
        if output_splits
        else None
    )
    properties = {
        specs.INPUT_BASE_KEY: str(input_base),
        specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
        specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(output_config),
        specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    if options is not None:
        properties[specs.CUSTOM_CONFIG_KEY] = proto_utils.proto_to_json(options.to_custom_config())
    return properties


def run_executor(tmp_path, properties, beam_pipeline_args=None):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "output")
    executor = Executor(Executor.Context(beam_pipeline_args=beam_pipeline_args))
    executor.Do({}, {specs.EXAMPLES_KEY: [examples]}, properties)
    return examples


def read_split(examples, split):
    """(tokens, tags, sentence_id) of every example of a split, sorted by sentence_id."""
    records = []
    split_dir = os.path.join(examples.uri, f"Split-{split}")
    for name in sorted(os.listdir(split_dir)):
        dataset = tf.data.TFRecordDataset(os.path.join(split_dir, name), compression_type="GZIP")
        for record in dataset:
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            assert set(feature) == {"tokens", "tags", "sentence_id"}
            records.append(
                (
                    [t.decode() for t in feature["tokens"].bytes_list.value],
                    [t.decode() for t in feature["tags"].bytes_list.value],
                    feature["sentence_id"].bytes_list.value[0].decode(),
                )
            )
    return sorted(records, key=lambda record: record[2])


def counts(examples):
    return {
        name: examples.get_int_custom_property(f"conll_{name}")
        for name in (
            "num_files",
            "num_sentences",
            "num_tokens",
            "num_skipped_sentences",
            "num_skipped_lines",
        )
    }


# ---------------------------------------------------------------------------------------------
# The executor.


def test_input_splits_with_a_quirky_file(tmp_path):
    base = tmp_path / "input"
    write(base / "train" / "quirky.conll", QUIRKY)
    write(base / "eval" / "eval.conll", b"x\tO\n\ny\tB-group\n")
    examples = run_executor(
        tmp_path, exec_properties(base, [("train", "train/*"), ("eval", "eval/*.conll")])
    )
    assert examples.split_names == '["train", "eval"]'
    assert read_split(examples, "train") == sorted(
        [(tokens, tags, f"train/quirky.conll:{line}") for tokens, tags, line in QUIRKY_SENTENCES],
        key=lambda record: record[2],
    )
    assert read_split(examples, "eval") == [
        (["x"], ["O"], "eval/eval.conll:1"),
        (["y"], ["B-group"], "eval/eval.conll:3"),
    ]
    assert counts(examples) == {
        "num_files": 2,
        "num_sentences": 5,
        "num_tokens": 6,
        "num_skipped_sentences": 0,
        "num_skipped_lines": 0,
    }


def test_gzipped_files_are_read_as_the_plain_ones(tmp_path):
    import gzip

    base = tmp_path / "input"
    write(base / "train" / "quirky.conll.gz", gzip.compress(QUIRKY))
    write(base / "eval" / "eval.conll", b"x\tO\n")
    examples = run_executor(
        tmp_path, exec_properties(base, [("train", "train/*"), ("eval", "eval/*.conll")])
    )
    assert read_split(examples, "train") == sorted(
        [
            (tokens, tags, f"train/quirky.conll.gz:{line}")
            for tokens, tags, line in QUIRKY_SENTENCES
        ],
        key=lambda record: record[2],
    )


def test_hash_bucket_splits_partition_every_sentence_once(tmp_path):
    base = tmp_path / "input"
    lines = [f"w{i}\t{'B-person' if i % 3 else 'O'}\n\n".encode() for i in range(60)]
    write(base / "all.conll", b"".join(lines))
    examples = run_executor(
        tmp_path,
        exec_properties(base, [("single_split", "*.conll")], [("train", 2), ("eval", 1)]),
    )
    assert examples.split_names == '["train", "eval"]'
    train, evaluation = read_split(examples, "train"), read_split(examples, "eval")
    ids = [record[2] for record in train + evaluation]
    assert sorted(ids) == sorted(f"all.conll:{2 * i + 1}" for i in range(60))
    # 60 sentences in 3 hash buckets: both splits get some (each empty with chance ~(2/3)^60).
    assert train and evaluation


def test_bad_file_names_file_and_line(tmp_path):
    base = tmp_path / "input"
    write(base / "train" / "good.conll", b"a\tO\n")
    write(base / "eval" / "bad.conll", b"a\tO\n\nb\tO\tO\n")
    bad = str(base / "eval" / "bad.conll")
    with pytest.raises(ConllFormatError) as raised:
        run_executor(tmp_path, exec_properties(base, [("train", "train/*"), ("eval", "eval/*")]))
    assert str(raised.value) == f"{bad}:3: expected 2 columns (token, tag), found 3: 'b\\tO\\tO'"
    assert (raised.value.path, raised.value.line) == (bad, 3)


def test_bad_tag_error_names_file_and_line(tmp_path):
    base = tmp_path / "input"
    write(base / "tags.conll", b"a\tB-person\nb\tE-person\n")
    with pytest.raises(ConllFormatError, match=re.escape("tags.conll:2: invalid tag 'E-person'")):
        run_executor(tmp_path, exec_properties(base, [("train", "*"), ("eval", "*")]))


def test_skip_counts_bad_sentences_and_drops_them_whole(tmp_path):
    base = tmp_path / "input"
    data = b"a\tO\n\nb\tB-person\nc\tX\nd\tI-person\n\ne\tO\tO\n\nf\tO\n"
    write(base / "mixed.conll", data)
    options = ConllReadOptions(on_error="skip")
    examples = run_executor(
        tmp_path, exec_properties(base, [("train", "*.conll"), ("eval", "*.conll")], (), options)
    )
    expected = [(["a"], ["O"], "mixed.conll:1"), (["f"], ["O"], "mixed.conll:9")]
    assert read_split(examples, "train") == expected
    assert read_split(examples, "eval") == expected
    # Both splits read the file: each count is twice the file's.
    assert counts(examples) == {
        "num_files": 2,
        "num_sentences": 4,
        "num_tokens": 4,
        "num_skipped_sentences": 4,
        "num_skipped_lines": 8,
    }


def test_reading_options_reach_the_executor(tmp_path):
    # CoNLL-2003 layout with '|' separators and BIOES tags in the third of four columns.
    base = tmp_path / "input"
    write(base / "wide.conll", b"EU|NNP|S-ORG|B-NP\nrejects|VBZ|O|B-VP\n")
    options = ConllReadOptions(tag_column=2, separator="|", scheme="bioes")
    examples = run_executor(
        tmp_path, exec_properties(base, [("train", "*"), ("eval", "*")], (), options)
    )
    assert read_split(examples, "train") == [(["EU", "rejects"], ["S-ORG", "O"], "wide.conll:1")]


def test_a_file_in_another_encoding_is_read_when_told(tmp_path):
    base = tmp_path / "input"
    write(base / "windows.conll", "Café\tB-location\n“hi”\tO\n".encode("cp1252"))
    properties = exec_properties(base, [("train", "*"), ("eval", "*")])
    with pytest.raises(ConllFormatError, match="windows.conll:1: invalid UTF-8 .* cp1252"):
        run_executor(tmp_path / "utf8", properties)
    options = ConllReadOptions(encoding="cp1252")
    examples = run_executor(
        tmp_path / "cp1252", exec_properties(base, [("train", "*"), ("eval", "*")], (), options)
    )
    assert read_split(examples, "train") == [
        (["Café", "“hi”"], ["B-location", "O"], "windows.conll:1")
    ]


def test_span_in_patterns_resolved_by_the_driver(tmp_path):
    # As TFX runs it: the FileBasedDriver picks the latest span and rewrites the patterns,
    # then the executor reads what they match.
    base = tmp_path / "input"
    for span in (1, 2):
        write(base / f"span-{span}" / "train" / "t.conll", f"old{span}\tO\n".encode())
        write(base / f"span-{span}" / "eval" / "e.conll", f"new{span}\tO\n".encode())
    properties = exec_properties(
        base, [("train", "span-{SPAN}/train/*"), ("eval", "span-{SPAN}/eval/*")]
    )
    driver = example_gen_driver.FileBasedDriver(metadata_handle=None)
    properties = driver.resolve_exec_properties(properties, None, None)
    assert properties["span"] == 2
    examples = run_executor(tmp_path, properties)
    assert read_split(examples, "train") == [(["old2"], ["O"], "span-2/train/t.conll:1")]
    assert read_split(examples, "eval") == [(["new2"], ["O"], "span-2/eval/e.conll:1")]


@pytest.mark.parametrize(
    ("text", "path", "line", "reason"),
    [
        (
            "Traceback ...\ncomponents.conll_format.ConllFormatError: /d/a b.conll:12: invalid tag "
            "'X'; scheme 'iob2' expects O, B-<type> or I-<type>: 'a\\tX' [while running 'Read']\n"
            "more",
            "/d/a b.conll",
            12,
            "invalid tag 'X'; scheme 'iob2' expects O, B-<type> or I-<type>: 'a\\tX'",
        ),
        (
            "RuntimeError: components.conll_format.ConllFormatError: /d/e.conll: no sentences "
            "found (3 lines, 1 sentences skipped because of errors, the first: /d/e.conll:1: "
            "empty token: '\\tO')",
            "/d/e.conll",
            None,
            "no sentences found (3 lines, 1 sentences skipped because of errors, the first: "
            "/d/e.conll:1: empty token: '\\tO')",
        ),
    ],
)
def test_format_error_rebuilt_from_a_runner_message(text, path, line, reason):
    error = _find_format_error(RuntimeError(text))
    assert (error.path, error.line, error.reason) == (path, line, reason)
    assert _find_format_error(RuntimeError("some other failure")) is None


def test_no_matching_file(tmp_path):
    base = tmp_path / "input"
    write(base / "a.conll", b"a\tO\n")
    with pytest.raises(FileNotFoundError, match="No CoNLL file matches the input pattern"):
        run_executor(tmp_path, exec_properties(base, [("train", "*.conll"), ("eval", "*.txt")]))


# ---------------------------------------------------------------------------------------------
# Options through custom_config, and the component.


@pytest.mark.parametrize(
    "options",
    [
        ConllReadOptions(),
        ConllReadOptions(
            token_column=1,
            tag_column=-2,
            separator="|",
            scheme="bioes",
            on_error="skip",
            encoding="cp1252",
        ),
    ],
)
def test_options_survive_json_serialisation(options):
    serialized = proto_utils.proto_to_json(options.to_custom_config())
    restored = ConllReadOptions.from_exec_properties({specs.CUSTOM_CONFIG_KEY: serialized})
    assert restored == options
    assert isinstance(restored.token_column, int) and isinstance(restored.tag_column, int)


def test_missing_custom_config_gives_defaults():
    assert ConllReadOptions.from_exec_properties({}) == ConllReadOptions()
    assert ConllReadOptions.from_exec_properties({specs.CUSTOM_CONFIG_KEY: "{}"}) == (
        ConllReadOptions()
    )


def test_custom_config_with_unknown_keys_or_type():
    custom_config = ConllReadOptions().to_custom_config()
    serialized = proto_utils.proto_to_json(custom_config).replace('"on_error"', '"on_eror"')
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid value for `custom_config`. Expected keys of ConllReadOptions only. "
            "Received: unknown keys ['on_eror']"
        ),
    ):
        ConllReadOptions.from_exec_properties({specs.CUSTOM_CONFIG_KEY: serialized})
    custom_config.custom_config.Pack(example_gen_pb2.Input())
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Received: type_url='type.googleapis.com/tfx.components.example_gen.Input'"
        ),
    ):
        ConllReadOptions.from_exec_properties(
            {specs.CUSTOM_CONFIG_KEY: proto_utils.proto_to_json(custom_config)}
        )


def test_invalid_options_fail_when_building_the_component():
    with pytest.raises(ValueError, match=re.escape("Received: on_error='ignore'")):
        ConllReadOptions(on_error="ignore")
    with pytest.raises(ValueError, match=re.escape("Received: scheme='iob1'")):
        ConllExampleGen(input_base="/data", scheme="iob1")


def test_component_wiring():
    input_config = example_gen_pb2.Input(
        splits=[
            example_gen_pb2.Input.Split(name="train", pattern="span-{SPAN}/train/*"),
            example_gen_pb2.Input.Split(name="eval", pattern="span-{SPAN}/eval/*"),
        ]
    )
    component = ConllExampleGen(input_base="/data", input_config=input_config, on_error="skip")
    assert component.executor_spec.executor_class is Executor
    assert component.driver_class is example_gen_driver.FileBasedDriver
    assert component.outputs["examples"].type is standard_artifacts.Examples
    # TFX stores proto parameters as JSON strings, which is what the executor will get.
    properties = component.exec_properties
    assert isinstance(properties[specs.CUSTOM_CONFIG_KEY], str)
    assert (
        proto_utils.json_to_proto(properties[specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
        == input_config
    )
    assert ConllReadOptions.from_exec_properties(properties) == ConllReadOptions(on_error="skip")


def test_sentence_to_example():
    example = sentence_to_example(("caf\u00e9", "x"), ("O", "B-group"), "a.conll:3")
    feature = example.features.feature
    assert list(feature["tokens"].bytes_list.value) == ["caf\u00e9".encode(), b"x"]
    assert list(feature["tags"].bytes_list.value) == [b"O", b"B-group"]
    assert list(feature["sentence_id"].bytes_list.value) == [b"a.conll:3"]


# ---------------------------------------------------------------------------------------------
# End to end: the component in a real pipeline (compiled to IR, JSON-serialised properties,
# TFX's launcher, driver and metadata store) on the bundled sample.


@pytest.mark.e2e
@pytest.mark.slow
def test_component_in_a_local_pipeline(tmp_path):
    from ml_metadata.proto import metadata_store_pb2
    from tfx.orchestration import metadata, pipeline
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    sample = Path(__file__).resolve().parents[2] / "data" / "sample"
    base = tmp_path / "input"
    write(base / "span-1" / "train" / "train.conll", b"old\tO\n")
    write(base / "span-1" / "eval" / "eval.conll", b"old\tO\n")
    write(base / "span-2" / "train" / "train.conll", (sample / "train.conll").read_bytes())
    write(base / "span-2" / "eval" / "eval.conll", (sample / "eval.conll").read_bytes())
    example_gen = ConllExampleGen(
        input_base=str(base),
        input_config=example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name="train", pattern="span-{SPAN}/train/*"),
                example_gen_pb2.Input.Split(name="eval", pattern="span-{SPAN}/eval/*"),
            ]
        ),
        on_error="skip",
    )
    metadata_path = str(tmp_path / "metadata.sqlite")
    LocalDagRunner().run(
        pipeline.Pipeline(
            pipeline_name="conll_example_gen_test",
            pipeline_root=str(tmp_path / "root"),
            components=[example_gen],
            metadata_connection_config=metadata.sqlite_metadata_connection_config(metadata_path),
        )
    )
    with metadata.Metadata(metadata.sqlite_metadata_connection_config(metadata_path)) as store:
        [artifact] = store.store.get_artifacts_by_type(standard_artifacts.Examples.TYPE_NAME)
    assert artifact.state == metadata_store_pb2.Artifact.LIVE
    properties = artifact.custom_properties
    assert properties["span"].int_value == 2
    # The sample's sentence and token counts, from data/sample/NOTICE.md.
    assert properties["conll_num_sentences"].int_value == 560 + 200
    assert properties["conll_num_tokens"].int_value == 9041 + 3029
    assert properties["conll_num_skipped_sentences"].int_value == 0
    examples = standard_artifacts.Examples()
    examples.uri = artifact.uri
    evaluation = read_split(examples, "eval")
    assert len(evaluation) == 200
    assert (
        ["excellent", "poem", "Dubbz"],
        ["O", "O", "B-person"],
        "span-2/eval/eval.conll:3215",
    ) in (evaluation)


@pytest.mark.slow
def test_bad_file_error_from_worker_processes(tmp_path):
    # Multi-process DirectRunner: the error crosses a process boundary as text, and is rebuilt.
    base = tmp_path / "input"
    write(base / "bad.conll", b"a\tO\n\nb\tB-person\nc\tO\tO\n")
    executor = Executor(
        Executor.Context(
            beam_pipeline_args=["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
        )
    )
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "output")
    with pytest.raises(ConllFormatError) as raised:
        executor.Do(
            {},
            {specs.EXAMPLES_KEY: [examples]},
            exec_properties(base, [("train", "*.conll"), ("eval", "*.conll")]),
        )
    bad = str(base / "bad.conll")
    assert str(raised.value) == f"{bad}:4: expected 2 columns (token, tag), found 3: 'c\\tO\\tO'"
    assert (raised.value.path, raised.value.line) == (bad, 4)


@pytest.mark.parametrize(
    "tokens, tags, sentence_id",
    [
        (("caf\u00e9", "x"), ("O", "B-group"), "a.conll:3"),
        (("\U0001f602", "\u00a0"), ("O", "O"), "f/\u00e9.conll:1"),
        (("y" * 127, "y" * 128, "z" * 20000), ("O", "O", "O"), "long.conll:9"),  # 1-3 byte lengths
        (tuple(f"w{i}" for i in range(300)), ("O",) * 300, "many:1"),  # lists over 127 bytes
        (("only",), (), "untagged:1"),  # no tag column: an empty bytes list
        ((), (), "empty:1"),
    ],
)
def test_serialize_sentence_is_protobufs_deterministic_serialisation(tokens, tags, sentence_id):
    from components.conll_example_gen import serialize_sentence

    # The reference: the message built field by field with protobuf's own API.
    def bytes_feature(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

    reference = tf.train.Example(
        features=tf.train.Features(
            feature={
                "tokens": bytes_feature(tokens),
                "tags": bytes_feature(tags),
                "sentence_id": bytes_feature([sentence_id]),
            }
        )
    )
    serialized = serialize_sentence(tokens, tags, sentence_id)
    assert serialized == reference.SerializeToString(deterministic=True)
    assert tf.train.Example.FromString(serialized) == reference
    assert sentence_to_example(tokens, tags, sentence_id) == reference


def raw_records(examples, split):
    split_dir = os.path.join(examples.uri, f"Split-{split}")
    return [
        record.numpy()
        for name in sorted(os.listdir(split_dir))
        for record in tf.data.TFRecordDataset(
            os.path.join(split_dir, name), compression_type="GZIP"
        )
    ]


def numbered_sentences(tmp_path, count):
    """Execution properties of a train file of `count` two-token sentences ("w<i>", then "x"
    at lines 3i + 1 and 3i + 2) and a one-token eval file."""
    base = tmp_path / "input"
    write(
        base / "train.conll", b"".join(f"w{i}\tO\nx\tB-person\n\n".encode() for i in range(count))
    )
    write(base / "eval.conll", b"e\tO\n")
    return exec_properties(base, [("train", "train.conll"), ("eval", "eval.conll")])


def test_splits_are_written_in_file_order_and_repeat_byte_for_byte(tmp_path):
    # The in-process DirectRunner writes without a shuffle (TFX's WriteSplit shuffles in
    # memory): a file's sentences in line order, and the same files give the same records.
    properties = numbered_sentences(tmp_path, 300)
    first = run_executor(tmp_path / "first", properties)
    ids = [
        tf.train.Example.FromString(record).features.feature["sentence_id"].bytes_list.value[0]
        for record in raw_records(first, "train")
    ]
    assert ids == [f"train.conll:{3 * i + 1}".encode() for i in range(300)]
    second = run_executor(tmp_path / "second", properties)
    assert raw_records(second, "train") == raw_records(first, "train")
    assert second.split_names == first.split_names == '["train", "eval"]'
    assert second.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"


@pytest.mark.parametrize(
    "args, spreads",
    [
        ([], False),
        (["--direct_running_mode=in_memory", "--direct_num_workers=1"], False),
        (["--runner=DirectRunner"], False),
        (["--direct_running_mode=multi_processing", "--direct_num_workers=1"], False),
        (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], True),
        (["--direct_running_mode=multi_threading", "--direct_num_workers=0"], True),
        (["--runner=pipeline.dask_runner.DaskRunner", "--dask_client_address=h:1"], True),
        (["--runner=DataflowRunner"], True),
    ],
)
def test_the_shuffle_before_writing_only_where_several_workers_run(args, spreads):
    from components.conll_example_gen import _spreads_over_workers

    assert _spreads_over_workers(args) is spreads


@pytest.mark.slow
def test_several_workers_write_several_files_of_the_same_records(tmp_path):
    # Without the shuffle, the one worker that reads a file would write all of it to one output
    # file, and the components after ExampleGen would read it with one worker.
    properties = numbered_sentences(tmp_path, 2000)
    in_process = run_executor(tmp_path / "in_process", properties)
    workers = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    spread = run_executor(tmp_path / "spread", properties, beam_pipeline_args=workers)
    assert len(os.listdir(os.path.join(in_process.uri, "Split-train"))) == 1
    assert len(os.listdir(os.path.join(spread.uri, "Split-train"))) > 1
    assert sorted(raw_records(spread, "train")) == sorted(raw_records(in_process, "train"))
    assert len(raw_records(spread, "train")) == 2000


def test_splits_by_a_feature_partition_every_sentence_once(tmp_path):
    # `partition_feature_name` needs messages, not bytes: the reader parses them back for it.
    base = tmp_path / "input"
    write(base / "all.conll", b"".join(f"w{i}\tO\n\n".encode() for i in range(60)))
    properties = exec_properties(base, [("single_split", "*.conll")], [("train", 2), ("eval", 1)])
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(properties[specs.OUTPUT_CONFIG_KEY], output_config)
    output_config.split_config.partition_feature_name = "sentence_id"
    properties[specs.OUTPUT_CONFIG_KEY] = proto_utils.proto_to_json(output_config)
    examples = run_executor(tmp_path, properties)
    train, evaluation = read_split(examples, "train"), read_split(examples, "eval")
    assert sorted(r[2] for r in train + evaluation) == sorted(
        f"all.conll:{2 * i + 1}" for i in range(60)
    )
    assert train and evaluation


def test_another_payload_format_is_refused(tmp_path):
    base = tmp_path / "input"
    write(base / "a.conll", b"x\tO\n")
    properties = exec_properties(base, [("train", "a.conll")])
    properties[specs.OUTPUT_DATA_FORMAT_KEY] = example_gen_pb2.FORMAT_PARQUET
    with pytest.raises(ValueError, match="output_data_format"):
        run_executor(tmp_path, properties)


# ---------------------------------------------------------------------------------------------
# The batch writer's parts, against TFX's, TensorFlow's and zlib's own.


def test_tfrecord_frames_are_what_tensorflows_writer_writes(tmp_path):
    from components.conll_example_gen import tfrecord_frames

    records = [b"", b"x", b"\x00" * 300, bytes(range(256)) * 70]  # Lengths of 1 to 3 bytes.
    path = str(tmp_path / "reference.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    assert tfrecord_frames(records) == Path(path).read_bytes()
    assert tfrecord_frames([]) == b""


@pytest.mark.parametrize("feature", [None, "sentence_id", "tokens"])
def test_batches_split_by_hash_buckets_as_tfxs_own_split(feature):
    from tfx.components.example_gen.base_example_gen_executor import _PartitionFn

    from components.conll_example_gen import _SplitBatches, serialize_sentence

    config = example_gen_pb2.SplitConfig(
        splits=[
            example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
            for name, buckets in (("train", 7), ("eval", 2), ("test", 1))
        ],
    )
    if feature is not None:
        config.partition_feature_name = feature
    records = [serialize_sentence([f"w{i}", "x"], ["O", "O"], f"f:{3 * i + 1}") for i in range(300)]
    outputs = list(_SplitBatches(config).process(records))
    ours = {record: int(output.tag) for output in outputs for record in output.value}
    buckets = [7, 9, 10]
    # TFX's function on what it is given: bytes, or the messages where it splits by a feature.
    theirs = {
        record: _PartitionFn(
            tf.train.Example.FromString(record) if feature else record, 3, buckets, config
        )
        for record in records
    }
    assert ours == theirs
    assert set(ours.values()) == {0, 1, 2}


def test_an_unknown_partition_feature_is_named():
    from components.conll_example_gen import _SplitBatches, serialize_sentence

    config = example_gen_pb2.SplitConfig(
        splits=[example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=1)],
        partition_feature_name="speaker",
    )
    with pytest.raises(RuntimeError, match="`speaker` does not exist"):
        list(_SplitBatches(config).process([serialize_sentence(["a"], ["O"], "f:1")]))


def test_background_gzip_writes_gzip_and_raises_the_writers_error(tmp_path):
    import gzip

    from components.conll_example_gen import _BackgroundGzipFile

    path = tmp_path / "out.gz"
    pieces = [bytes([i]) * (1000 * i) for i in range(50)]
    writer = _BackgroundGzipFile(open(path, "wb"))
    for piece in pieces:
        writer.write(piece)
    writer.close()
    assert gzip.decompress(path.read_bytes()) == b"".join(pieces)

    class FullDisk(io.RawIOBase):
        closed_by_writer = False

        def write(self, data):
            raise OSError(28, "No space left on device")

        def close(self):
            FullDisk.closed_by_writer = True

    writer = _BackgroundGzipFile(FullDisk())
    for piece in pieces:  # Never blocks, though the thread stopped writing at the first.
        try:
            writer.write(piece)
        except OSError:
            break
    with pytest.raises(OSError, match="No space left"):
        writer.close()
    assert FullDisk.closed_by_writer
