"""Tests of pipeline/pipeline.py: the DAG `create_pipeline` builds and its TFMA configuration."""

import pytest

from pipeline.config import REPOSITORY_ROOT, PipelineConfig
from pipeline.pipeline import create_pipeline, eval_config

pytestmark = pytest.mark.slow  # imports TFX


def node_ids(pipeline):
    return {node.id for node in pipeline.components}


def test_dag_with_and_without_baseline(tmp_path):
    config = PipelineConfig.from_args(["--output-dir", str(tmp_path)], environ={})
    pipeline = create_pipeline(config)
    assert node_ids(pipeline) == {
        "ConllExampleGen",
        "StatisticsGen",
        "ImportSchemaGen",
        "ExampleValidator",
        "ValidationGate",
        "Transform",
        "Trainer",
        "latest_blessed_model_resolver",
        "Evaluator",
        "AtomicPusher",
    }
    transform = next(node for node in pipeline.components if node.id == "Transform")
    assert "ValidationGate" in {node.id for node in transform.upstream_nodes}
    threshold = eval_config(config).metrics_specs[0].metrics[0].threshold
    assert threshold.value_threshold.lower_bound.value == config.min_entity_f1
    assert threshold.HasField("change_threshold")

    no_baseline = PipelineConfig.from_args(
        ["--output-dir", str(tmp_path), "--no-baseline"], environ={}
    )
    pipeline = create_pipeline(no_baseline)
    assert "latest_blessed_model_resolver" not in node_ids(pipeline)
    evaluator = next(node for node in pipeline.components if node.id == "Evaluator")
    assert "baseline_model" not in evaluator.inputs
    threshold = eval_config(no_baseline).metrics_specs[0].metrics[0].threshold
    assert not threshold.HasField("change_threshold")


def _tree(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_code_fingerprint_follows_the_imports_of_each_component(tmp_path):
    """A change to a component's code must change its custom_config, or TFX reuses the old
    output; a change to code it does not import must not, or it reruns for nothing."""
    from pipeline.pipeline import code_fingerprint

    _tree(tmp_path, {
        "models/__init__.py": "",
        "models/preprocessing.py": "from models.config import X\n",
        "models/config.py": "X = 1\n",
        "models/run_fn.py": "from models import preprocessing\n\ndef f():\n"
                            "    from serving import sentence_graph\n",
        "serving/__init__.py": "",
        "serving/sentence_graph.py": "Y = 1\n",
        "serving/cli.py": "import numpy\n",
    })  # fmt: skip

    def fingerprints():
        return (
            code_fingerprint("models.preprocessing", root=tmp_path),
            code_fingerprint("models.run_fn", root=tmp_path),
        )

    transform, trainer = fingerprints()
    assert fingerprints() == (transform, trainer)
    (tmp_path / "serving" / "cli.py").write_text("import numpy  # changed\n")
    assert fingerprints() == (transform, trainer)  # the CLI: nothing reruns
    (tmp_path / "serving" / "sentence_graph.py").write_text("Y = 2\n")
    assert fingerprints()[0] == transform and fingerprints()[1] != trainer  # imported in a function
    trainer = fingerprints()[1]
    (tmp_path / "models" / "config.py").write_text("X = 2\n")
    assert fingerprints()[0] != transform and fingerprints()[1] != trainer  # both, indirectly


def test_the_trainer_key_covers_the_crf_package_and_not_the_serving_client():
    from pipeline.pipeline import module_files

    trainer = {str(path.relative_to(REPOSITORY_ROOT)) for path in module_files("models.run_fn")}
    assert {"models/run_fn.py", "models/train.py", "models/export.py",
            "models/crf/linear_crf/crf.py", "models/crf/linear_crf/tag_scheme.py"} <= trainer  # fmt: skip
    assert not any(path.startswith("serving/") for path in trainer)  # ner-tag: nothing retrains
    transform = {str(p.relative_to(REPOSITORY_ROOT)) for p in module_files("models.preprocessing")}
    assert "models/preprocessing.py" in transform and "models/train.py" not in transform


def test_epochs_change_the_trainer_key_not_the_transform_key(tmp_path):
    from pipeline.pipeline import create_pipeline

    def exec_properties(*flags):
        config = PipelineConfig.from_args(["--output-dir", str(tmp_path), *flags], environ={})
        nodes = {node.id: node for node in create_pipeline(config).components}
        return nodes["Transform"].exec_properties, nodes["Trainer"].exec_properties

    transform, trainer = exec_properties("--epochs", "3")
    other_transform, other_trainer = exec_properties("--epochs", "4", "--lstm-units", "16")
    assert other_transform == transform
    assert other_trainer["custom_config"] != trainer["custom_config"]
    # What preprocessing reads still changes Transform's key.
    changed, _ = exec_properties("--max-length", "32")
    assert changed["custom_config"] != transform["custom_config"]
    # Read back, Transform's config holds the preprocessing settings the pipeline was given.
    import json

    from models.config import TaggerConfig

    read = TaggerConfig.from_custom_config(json.loads(changed["custom_config"]))
    assert read.preprocessing.max_length == 32


@pytest.mark.parametrize("mode", ["raise", "skip"])
def test_on_bad_lines_reaches_the_example_gen(tmp_path, mode):
    from components.conll_example_gen import ConllReadOptions

    config = PipelineConfig.from_args(
        ["--output-dir", str(tmp_path), "--on-bad-lines", mode], environ={}
    )
    nodes = {node.id: node for node in create_pipeline(config).components}
    options = ConllReadOptions.from_exec_properties(nodes["ConllExampleGen"].exec_properties)
    assert options.on_error == mode


def test_encoding_reaches_the_example_gen_and_is_checked_up_front(tmp_path):
    from components.conll_example_gen import ConllReadOptions

    config = PipelineConfig.from_args(
        ["--output-dir", str(tmp_path)], environ={"NER_ENCODING": "Windows-1252"}
    )
    assert config.encoding == "cp1252"
    nodes = {node.id: node for node in create_pipeline(config).components}
    options = ConllReadOptions.from_exec_properties(nodes["ConllExampleGen"].exec_properties)
    assert options.encoding == "cp1252"
    with pytest.raises(ValueError, match=r"`encoding`. Expected an encoding that keeps ASCII"):
        PipelineConfig.from_args(["--encoding", "utf-16"], environ={})
    with pytest.raises(ValueError, match=r"`encoding`. Expected the name of a text encoding"):
        PipelineConfig.from_args(["--encoding", "klingon"], environ={})


def test_on_bad_lines_accepts_raise_or_skip_only():
    with pytest.raises(ValueError, match=r"on_bad_lines.*\('raise', 'skip'\).*'drop'"):
        PipelineConfig.from_args(["--on-bad-lines", "drop"], environ={})
    assert PipelineConfig.from_args([], environ={"NER_ON_BAD_LINES": "skip"}).on_bad_lines == "skip"


def test_statistics_stay_exact_for_the_tags_and_catch_one_rare_unknown_tag(tmp_path):
    """StatisticsGen's sketch-based top values (`statistics_options`) with far more distinct tokens
    and sentence ids than the sketch has buckets: the tags' counts are still exact (against a
    Counter of the written tags) and the schema check still reports each of two unknown tags that
    occur once among 60,000 tokens."""
    import collections
    import random

    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    from components.conll_example_gen import serialize_sentence

    config = PipelineConfig.from_args(["--output-dir", str(tmp_path / "out")], environ={})
    nodes = {node.id: node for node in create_pipeline(config).components}
    options = tfdv.StatsOptions.from_json(
        nodes["StatisticsGen"].exec_properties["stats_options_json"]
    )
    assert options.use_sketch_based_topk_uniques

    rng = random.Random(0)
    known = ["O"] * 20 + ["B-person", "I-person", "B-location", "B-group", "I-corporation"]
    sentences = [[rng.choice(known) for _ in range(20)] for _ in range(3000)]
    sentences[1500][7] = "B-persn"
    sentences[-1][-1] = "I-persn"
    path = str(tmp_path / "examples.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for number, tags in enumerate(sentences):
            tokens = [f"w{number}_{position}" for position in range(len(tags))]
            writer.write(serialize_sentence(tokens, tags, f"train.conll:{number}"))

    statistics = tfdv.generate_statistics_from_tfrecord(path, stats_options=options)
    (dataset,) = statistics.datasets
    features = {feature.path.step[0]: feature for feature in dataset.features}
    assert features["tokens"].string_stats.unique > 1000  # more than the sketch's buckets
    counted = {
        bucket.label: bucket.sample_count
        for bucket in features["tags"].string_stats.rank_histogram.buckets
    }
    assert counted == collections.Counter(tag for tags in sentences for tag in tags)

    schema = tfdv.load_schema_text(config.schema_path)
    anomalies = tfdv.validate_statistics(statistics, schema)
    assert set(anomalies.anomaly_info) == {"tags"}
    description = anomalies.anomaly_info["tags"].description
    assert "B-persn" in description and "I-persn" in description
