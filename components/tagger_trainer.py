"""TaggerTrainer: TFX's Trainer with the number of epochs as a parameter of its own.

TFX's Trainer hands the tagger's settings to `run_fn` in one JSON `custom_config`, which a
Kubeflow run cannot change field by field: a `RuntimeParameter` can only stand for a whole
execution property (TFX 1.16, `tfx/orchestration/kubeflow/v2/step_builder.py`). This component
adds an optional `epochs` execution property, which `kubeflow.compile` turns into a run
parameter; when set, it replaces `custom_config`'s `tagger.training.epochs` before `run_fn` reads
it. Everything else is TFX's Trainer (same inputs, outputs and executor).
"""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components import Trainer
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter

__all__ = ["EPOCHS_KEY", "TaggerTrainer", "TaggerTrainerExecutor", "TaggerTrainerSpec"]

EPOCHS_KEY = "epochs"


class TaggerTrainerSpec(standard_component_specs.TrainerSpec):
    """TFX's TrainerSpec and an optional `epochs`."""

    PARAMETERS = {
        **standard_component_specs.TrainerSpec.PARAMETERS,
        EPOCHS_KEY: ExecutionParameter(type=int, optional=True),
    }


def _positive_epochs(epochs: Any) -> int:
    if isinstance(epochs, bool) or not isinstance(epochs, int | float) or epochs != int(epochs):
        valid = False
    else:
        valid = int(epochs) >= 1
    if not valid:
        raise ValueError(
            f"Invalid value for `epochs`. Expected a positive integer (the run parameter "
            f"`epochs`). Received: epochs={epochs!r}"
        )
    return int(epochs)


class TaggerTrainerExecutor(trainer_executor.GenericExecutor):
    """TFX's generic Trainer executor; `epochs`, when given, overrides the config's."""

    def _GetFnArgs(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ):
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        epochs = exec_properties.get(EPOCHS_KEY)
        if epochs is not None:
            training = fn_args.custom_config.setdefault("tagger", {}).setdefault("training", {})
            training["epochs"] = _positive_epochs(epochs)
        return fn_args


class TaggerTrainer(base_component.BaseComponent):
    """TFX's Trainer (same arguments) with an optional `epochs` that overrides `custom_config`."""

    SPEC_CLASS = TaggerTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(TaggerTrainerExecutor)

    def __init__(self, epochs: int | data_types.RuntimeParameter | None = None, **trainer_args):
        """Builds the component.

        Args:
            epochs: overrides `custom_config["tagger"]["training"]["epochs"]`; None: keep it.
            **trainer_args: the arguments of `tfx.components.Trainer`.
        """
        # TFX's own constructor checks and serialises the arguments; its spec is then widened.
        stock = Trainer(**trainer_args).spec
        super().__init__(
            spec=TaggerTrainerSpec(
                **stock.exec_properties, **stock.inputs, **stock.outputs, epochs=epochs
            )
        )
