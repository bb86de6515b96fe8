"""EntityEvaluator: TFX's Evaluator with the entity-F1 floor as a parameter, and a baseline that
may be absent.

- `min_entity_f1` (optional execution property): replaces the lower bound of the `EntityF1`
  metric's value threshold in `eval_config` before TFMA reads it. `kubeflow.compile` makes it a
  run parameter, so a run (or a recurring run) can raise the floor without recompiling: TFX
  cannot put a `RuntimeParameter` inside the `eval_config` proto.
- A `baseline_model` from `components.latest_served_model` that holds no model (nothing served
  yet) is dropped, so the candidate is blessed on the floor alone, as TFX's Evaluator does with
  no baseline (`rubber_stamp=True`, tfx/components/evaluator/executor.py).

Everything else is TFX's Evaluator (same inputs, outputs and executor).
"""

from __future__ import annotations

import math
from typing import Any

import tensorflow_model_analysis as tfma
from absl import logging
from tfx import types
from tfx.components import Evaluator
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import proto_utils

from components.latest_served_model import SERVED_VERSION_PROPERTY, has_served_model

__all__ = ["MIN_ENTITY_F1_KEY", "EntityEvaluator", "EntityEvaluatorExecutor", "set_entity_f1_floor"]

MIN_ENTITY_F1_KEY = "min_entity_f1"
ENTITY_F1_CLASS = "EntityF1"


class EntityEvaluatorSpec(standard_component_specs.EvaluatorSpec):
    """TFX's EvaluatorSpec and an optional `min_entity_f1`."""

    PARAMETERS = {
        **standard_component_specs.EvaluatorSpec.PARAMETERS,
        MIN_ENTITY_F1_KEY: ExecutionParameter(type=float, optional=True),
    }


def set_entity_f1_floor(eval_config_json: str, floor: Any) -> str:
    """`eval_config` (JSON) with the EntityF1 metric's lower bound set to `floor`.

    Raises:
        ValueError: if `floor` is not a finite percentage, or no EntityF1 metric has a threshold.
    """
    if (
        isinstance(floor, bool)
        or not isinstance(floor, int | float)
        or not math.isfinite(floor)
        or not 0.0 <= floor <= 100.0
    ):
        raise ValueError(
            "Invalid value for `min_entity_f1`. Expected a percentage in [0, 100] (the run "
            f"parameter `min_entity_f1`). Received: min_entity_f1={floor!r}"
        )
    eval_config = tfma.EvalConfig()
    proto_utils.json_to_proto(eval_config_json, eval_config)
    changed = 0
    for metrics_spec in eval_config.metrics_specs:
        for metric in metrics_spec.metrics:
            if metric.class_name == ENTITY_F1_CLASS and metric.HasField("threshold"):
                metric.threshold.value_threshold.lower_bound.value = float(floor)
                changed += 1
    if not changed:
        raise ValueError(
            "Invalid value for `eval_config`. Expected an EntityF1 metric with a threshold. "
            f"Received: eval_config={eval_config_json[:300]!r}"
        )
    return proto_utils.proto_to_json(eval_config)


class EntityEvaluatorExecutor(evaluator_executor.Executor):
    """TFX's Evaluator executor, with the floor override and the optional baseline above."""

    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        exec_properties = dict(exec_properties)
        floor = exec_properties.pop(MIN_ENTITY_F1_KEY, None)
        if floor is not None:
            key = standard_component_specs.EVAL_CONFIG_KEY
            exec_properties[key] = set_entity_f1_floor(exec_properties[key], floor)
            logging.info("Evaluator: entity F1 floor %.2f (run parameter).", float(floor))
        baseline_key = standard_component_specs.BASELINE_MODEL_KEY
        baselines = input_dict.get(baseline_key) or []
        if baselines and SERVED_VERSION_PROPERTY in baselines[0].mlmd_artifact.custom_properties:
            if has_served_model(baselines[0]):
                logging.info(
                    "Evaluator: baseline is the served version %s.",
                    baselines[0].get_string_custom_property(SERVED_VERSION_PROPERTY),
                )
            else:
                logging.info("Evaluator: no model is served yet; blessing on the floor alone.")
                input_dict = {
                    key: value for key, value in input_dict.items() if key != baseline_key
                }
        super().Do(input_dict, output_dict, exec_properties)


class EntityEvaluator(base_component.BaseComponent):
    """TFX's Evaluator (same arguments) with an optional `min_entity_f1` (module docstring)."""

    SPEC_CLASS = EntityEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(EntityEvaluatorExecutor)

    def __init__(
        self, min_entity_f1: float | data_types.RuntimeParameter | None = None, **evaluator_args
    ):
        """Builds the component.

        Args:
            min_entity_f1: overrides the EntityF1 lower bound of `eval_config`; None: keep it.
            **evaluator_args: the arguments of `tfx.components.Evaluator`.
        """
        # TFX's own constructor checks and serialises the arguments; its spec is then widened.
        stock = Evaluator(**evaluator_args).spec
        super().__init__(
            spec=EntityEvaluatorSpec(
                **stock.exec_properties,
                **stock.inputs,
                **stock.outputs,
                min_entity_f1=min_entity_f1,
            )
        )
