"""Tests of pipeline/pipeline.py: the DAG `create_pipeline` builds and its TFMA configuration."""

import pytest

from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline, entity_types, eval_config

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


def test_entity_types():
    assert entity_types(["O", "B-person", "I-person", "B-loc"]) == ["loc", "person"]


def test_code_fingerprint_follows_the_model_code(tmp_path):
    """A change to the Trainer's code must change custom_config, or TFX reuses the old model."""
    from pipeline.pipeline import code_fingerprint

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "run_fn.py").write_text("EPOCHS = 1\n")
    before = code_fingerprint(("models",), root=tmp_path)
    assert code_fingerprint(("models",), root=tmp_path) == before
    (tmp_path / "models" / "run_fn.py").write_text("EPOCHS = 2\n")
    assert code_fingerprint(("models",), root=tmp_path) != before
