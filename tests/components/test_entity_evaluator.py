"""The entity-F1 floor set from a run parameter into the EvalConfig the pipeline builds."""

from __future__ import annotations

import json

import pytest
import tensorflow_model_analysis as tfma
from tfx.utils import proto_utils

from components.entity_evaluator import set_entity_f1_floor
from pipeline.config import PipelineConfig
from pipeline.pipeline import eval_config


def _pipeline_eval_config(tmp_path, floor: str) -> str:
    config = PipelineConfig.from_args(
        ["--output-dir", str(tmp_path), "--min-entity-f1", floor], environ={}
    )
    return proto_utils.proto_to_json(eval_config(config))


def _bounds(eval_config_json: str) -> dict[str, float]:
    parsed = json.loads(eval_config_json)
    return {
        metric["class_name"]: metric["threshold"]["value_threshold"]["lower_bound"]
        for spec in parsed["metrics_specs"]
        for metric in spec["metrics"]
        if "threshold" in metric
    }


def test_the_floor_replaces_the_compiled_one_and_nothing_else(tmp_path):
    compiled = _pipeline_eval_config(tmp_path, "5")
    assert _bounds(compiled) == {"EntityF1": 5.0}
    changed = set_entity_f1_floor(compiled, 42.5)
    assert _bounds(changed) == {"EntityF1": 42.5}
    # The no-regression threshold and the rest of the config are kept.
    before, after = tfma.EvalConfig(), tfma.EvalConfig()
    proto_utils.json_to_proto(compiled, before)
    proto_utils.json_to_proto(changed, after)
    after.metrics_specs[0].metrics[0].threshold.value_threshold.lower_bound.value = 5.0
    assert after == before
    assert set_entity_f1_floor(compiled, 0) != compiled


@pytest.mark.parametrize("floor", [-1.0, 100.5, float("nan"), float("inf"), "7", True, None])
def test_an_invalid_floor_is_refused_naming_the_parameter(tmp_path, floor):
    with pytest.raises(ValueError, match=r"Invalid value for `min_entity_f1`. Expected a percent"):
        set_entity_f1_floor(_pipeline_eval_config(tmp_path, "5"), floor)


def test_an_eval_config_without_the_metric_is_refused():
    with pytest.raises(ValueError, match=r"Expected an EntityF1 metric with a threshold"):
        set_entity_f1_floor(proto_utils.proto_to_json(tfma.EvalConfig()), 10.0)
