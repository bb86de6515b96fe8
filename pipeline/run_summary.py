"""What the last pipeline run produced, read back from ML Metadata and the artifacts.

Used by `pipeline/local_runner.py` to print where the model was pushed and its entity F1, and by
the end-to-end test to check the run.
"""

from __future__ import annotations

import dataclasses

import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata
from tfx.types import standard_artifacts

from models.entity_metric import ENTITY_F1_NAME, TOKEN_ACCURACY_NAME

__all__ = [
    "CANDIDATE_MODEL_NAME",
    "ComponentExecution",
    "latest_example_gen_output",
    "latest_run_executions",
    "overall_metrics",
    "RunSummary",
    "summarize",
]

CANDIDATE_MODEL_NAME = "candidate"
"""TFMA's name of the evaluated model when a baseline is present ("" when not)."""


@dataclasses.dataclass(frozen=True)
class ComponentExecution:
    """One component's execution in a pipeline run, as ML Metadata recorded it.

    Attributes:
        node_id: the component's id in the pipeline (e.g. "Trainer").
        state: "COMPLETE" (ran), "CACHED" (reused an earlier result), "FAILED", ...
        seconds: wall time from its registration to its last update.
    """

    node_id: str
    state: str
    seconds: float


def latest_run_executions(
    connection_config: metadata_store_pb2.ConnectionConfig,
) -> list[ComponentExecution]:
    """The executions of the latest pipeline run, in the order they started.

    Raises:
        LookupError: if the store holds no pipeline run.
    """
    with metadata.Metadata(connection_config) as store_handle:
        store = store_handle.store
        runs = store.get_contexts_by_type("pipeline_run")
        if not runs:
            raise LookupError("No pipeline run in the metadata store.")
        latest = max(runs, key=lambda context: context.id)
        node_type_id = store.get_context_type("node").id
        result = []
        for execution in sorted(store.get_executions_by_context(latest.id), key=lambda e: e.id):
            nodes = [
                context.name
                for context in store.get_contexts_by_execution(execution.id)
                if context.type_id == node_type_id
            ]
            node_id = nodes[0].split(".", 1)[-1] if nodes else f"execution {execution.id}"
            result.append(
                ComponentExecution(
                    node_id=node_id,
                    state=metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                    seconds=(
                        execution.last_update_time_since_epoch - execution.create_time_since_epoch
                    )
                    / 1000.0,
                )
            )
    return result


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """The latest Evaluator and Pusher results of a pipeline.

    Attributes:
        blessed: whether the Evaluator blessed the latest model.
        pushed: whether the Pusher pushed it.
        pushed_destination: the version folder it was pushed to ("" if not pushed).
        entity_f1: the candidate's entity F1 on the eval split, percent.
        token_accuracy: its token accuracy, percent.
        metrics: every overall metric of the candidate, name -> value.
        skipped_sentences: sentences ConllExampleGen dropped for a bad line (`--on-bad-lines
            skip`), over every split of the latest ingestion.
        skipped_lines: the lines of those sentences.
    """

    blessed: bool
    pushed: bool
    pushed_destination: str
    entity_f1: float
    token_accuracy: float
    metrics: dict[str, float]
    skipped_sentences: int = 0
    skipped_lines: int = 0


def _latest_artifact(store, type_name: str) -> metadata_store_pb2.Artifact:
    artifacts = [a for a in store.get_artifacts_by_type(type_name) if a.state == a.LIVE]
    if not artifacts:
        raise LookupError(f"No {type_name} artifact in the metadata store: did the pipeline run?")
    return max(artifacts, key=lambda artifact: artifact.id)


def _int_property(artifact, name: str) -> int:
    value = artifact.custom_properties.get(name)
    return int(value.int_value) if value is not None else 0


def _string_property(artifact, name: str) -> str:
    value = artifact.custom_properties.get(name)
    return value.string_value if value is not None else ""


def latest_example_gen_output(store) -> metadata_store_pb2.Artifact:
    """The newest live Examples artifact an ExampleGen produced (Transform also outputs Examples).

    Raises:
        LookupError: if there is none.
    """
    examples = sorted(
        (a for a in store.get_artifacts_by_type("Examples") if a.state == a.LIVE),
        key=lambda artifact: artifact.id,
        reverse=True,
    )
    for artifact in examples:
        events = store.get_events_by_artifact_ids([artifact.id])
        producers = [e.execution_id for e in events if e.type == e.OUTPUT]
        for execution in store.get_executions_by_id(producers):
            if "ExampleGen" in store.get_execution_types_by_id([execution.type_id])[0].name:
                return artifact
    raise LookupError("No ExampleGen output in the metadata store: did the pipeline run?")


def overall_metrics(evaluation_uri: str) -> dict[str, float]:
    """The candidate model's overall (unsliced) metrics of a ModelEvaluation artifact."""
    metrics = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue
        for key_and_value in slice_metrics.metric_keys_and_values:
            key = key_and_value.key
            if key.model_name not in ("", CANDIDATE_MODEL_NAME) or key.is_diff:
                continue
            if key_and_value.value.HasField("double_value"):
                metrics[key.name] = key_and_value.value.double_value.value
    return metrics


def summarize(connection_config: metadata_store_pb2.ConnectionConfig) -> RunSummary:
    """Reads the latest ModelBlessing, PushedModel and ModelEvaluation artifacts.

    Raises:
        LookupError: if the store holds no such artifacts.
    """
    with metadata.Metadata(connection_config) as store_handle:
        store = store_handle.store
        blessing = _latest_artifact(store, standard_artifacts.ModelBlessing.TYPE_NAME)
        pushed_model = _latest_artifact(store, standard_artifacts.PushedModel.TYPE_NAME)
        evaluation = _latest_artifact(store, standard_artifacts.ModelEvaluation.TYPE_NAME)
        try:
            examples = latest_example_gen_output(store)
        except LookupError:
            examples = None
    metrics = overall_metrics(evaluation.uri)
    return RunSummary(
        blessed=bool(_int_property(blessing, "blessed")),
        pushed=bool(_int_property(pushed_model, "pushed")),
        pushed_destination=_string_property(pushed_model, "pushed_destination"),
        entity_f1=metrics.get(ENTITY_F1_NAME, float("nan")),
        token_accuracy=metrics.get(TOKEN_ACCURACY_NAME, float("nan")),
        metrics=metrics,
        skipped_sentences=_int_property(examples, "conll_num_skipped_sentences") if examples else 0,
        skipped_lines=_int_property(examples, "conll_num_skipped_lines") if examples else 0,
    )
