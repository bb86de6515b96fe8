"""LatestServedModel: the model serving now, read from the serving folder, as the Evaluator's baseline.

Open-source Kubeflow Pipelines runs no TFX resolver node (kubeflow/open_source_kfp.py), so the
latest-blessed-model resolver that gives the local runner its no-regression gate cannot run
there. This component stands in for it with what open-source KFP can run, a container: at run
time it finds the newest *whole* version in the Pusher's destination (a numeric folder holding
`saved_model.pb`, which the Pusher writes last; hidden `.<version>.incomplete` folders and
numeric folders without it are being written and are skipped) and copies it into its `model`
output (`<uri>/Format-Serving`, where TFX's Evaluator looks), recording the version it copied.

With no version served yet, the output holds no model and the custom property `served_version`
is empty; `components.entity_evaluator` then blesses on the F1 floor alone, as TFX's Evaluator
does without a baseline. The copy also records, in the pipeline's lineage, exactly which model
the candidate was compared with.
"""

from __future__ import annotations

from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils, path_utils

from serving.model_version import newest_whole_version, version_dir

__all__ = [
    "SERVED_VERSION_PROPERTY",
    "LatestServedModel",
    "copy_latest_served_model",
    "has_served_model",
]

SERVED_VERSION_PROPERTY = "served_version"
SERVING_DIR_KEY = "serving_dir"
MODEL_KEY = "model"


def has_served_model(model: types.Artifact) -> bool:
    """Whether a `LatestServedModel` output holds a model (False: nothing was served yet)."""
    return bool(model.get_string_custom_property(SERVED_VERSION_PROPERTY))


def copy_latest_served_model(serving_dir: str, model: types.Artifact) -> str | None:
    """Copies the newest whole version of `serving_dir` into `model` (`<uri>/Format-Serving`).

    Returns:
        The version copied, or None when `serving_dir` holds no whole version.
    """
    newest = newest_whole_version(serving_dir)
    version = None if newest is None else str(newest)
    model.set_string_custom_property(SERVED_VERSION_PROPERTY, version or "")
    if newest is None:
        logging.info("LatestServedModel: no whole version in %s; no baseline.", serving_dir)
        return None
    source = version_dir(serving_dir, newest)
    io_utils.copy_dir(source, path_utils.serving_model_dir(model.uri))
    model.set_string_custom_property("served_path", source)
    logging.info("LatestServedModel: baseline is version %s (%s).", version, source)
    return version


class LatestServedModelSpec(ComponentSpec):
    """The serving folder in; the model serving now out."""

    PARAMETERS = {SERVING_DIR_KEY: ExecutionParameter(type=str)}
    INPUTS: dict[str, ChannelParameter] = {}
    OUTPUTS = {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class Executor(base_executor.BaseExecutor):
    """Copies the newest whole served version into the `model` output."""

    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        del input_dict
        model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        copy_latest_served_model(exec_properties[SERVING_DIR_KEY], model)


class LatestServedModel(base_component.BaseComponent):
    """The model serving now in `serving_dir` (see the module docstring)."""

    SPEC_CLASS = LatestServedModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, serving_dir: str):
        super().__init__(
            spec=LatestServedModelSpec(
                serving_dir=serving_dir, model=types.Channel(type=standard_artifacts.Model)
            )
        )
