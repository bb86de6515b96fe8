"""What open-source Kubeflow Pipelines 2.x cannot run, found in a spec and removed from a pipeline.

The KFP 2.x backend compiles a pipeline spec into an Argo workflow when a run or a recurring run
is created, visiting each component's executor: it handles `container` and `importer` executors
and refuses the others (kubeflow/pipelines, backend/src/v2/compiler: visitor.go "non-container and
non-importer executor not implemented"; argocompiler/dag.go "resolver executors not implemented",
"custom job executors is Google Cloud only"). TFX's `KubeflowV2DagRunner` compiles every
`Resolver` node (LatestBlessedModelStrategy, LatestArtifactStrategy) into `resolver` executors,
MLMD queries that only Vertex AI Pipelines executes. The spec's task names become Argo DAG task
names, which Argo requires to match `[a-zA-Z0-9][-a-zA-Z0-9]*` (at most 128 characters; "-driver"
is appended), so a TFX node id with '_' cannot run there either.

`drop_resolvers` removes the resolver nodes from a TFX pipeline before it is compiled: a consumer
keeps working only if the input fed by a resolver is optional (the Evaluator's `baseline_model`
is: without it, TFX's Evaluator ignores change thresholds and blesses on absolute thresholds,
tfx/components/evaluator/executor.py, `rubber_stamp=True`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "compiled_target",
    "drop_resolvers",
    "OPEN_SOURCE_EXECUTOR_KINDS",
    "open_source_kfp_problems",
    "TARGET_MARK",
]

# Executor kinds of kfp.pipeline_spec's PipelineDeploymentConfig.ExecutorSpec, as JSON keys.
OPEN_SOURCE_EXECUTOR_KINDS = ("container", "importer")
# Argo's rule for DAG task names; KFP appends "-driver" (7 characters) to each.
_ARGO_TASK_NAME = re.compile(r"[a-zA-Z0-9][-a-zA-Z0-9]{0,120}")


def open_source_kfp_problems(pipeline_spec: Mapping[str, Any]) -> list[str]:
    """What in a compiled pipeline spec open-source KFP 2.x refuses to run.

    Args:
        pipeline_spec: the PipelineSpec as a JSON dict (camelCase keys, as in the YAML file).

    Returns:
        One sentence per problem, naming the executor; empty if open-source KFP can run it all.
    """
    problems = []
    for task in sorted(pipeline_spec.get("root", {}).get("dag", {}).get("tasks", {})):
        if not _ARGO_TASK_NAME.fullmatch(task):
            problems.append(
                f"task name {task!r} is not a valid Argo task name (letters, digits and '-', "
                "starting with a letter or digit, at most 121 characters)"
            )
    executors = pipeline_spec.get("deploymentSpec", {}).get("executors", {})
    for label, executor in sorted(executors.items()):
        kinds = sorted(set(executor) - set(OPEN_SOURCE_EXECUTOR_KINDS))
        if kinds or not executor:
            problems.append(
                f"executor {label!r} is of kind {kinds or 'none'}: open-source KFP runs only "
                f"{list(OPEN_SOURCE_EXECUTOR_KINDS)} executors"
            )
    return problems


TARGET_MARK = "kubeflow.compile --target "
"""Written into `pipelineInfo.description` by kubeflow.compile, followed by the target."""


def compiled_target(pipeline_spec: Mapping[str, Any]) -> str | None:
    """The `--target` a spec was compiled for by kubeflow.compile, or None if it does not say."""
    description = pipeline_spec.get("pipelineInfo", {}).get("description", "")
    match = re.search(re.escape(TARGET_MARK) + r"(\w+)", description)
    return match[1] if match else None


def drop_resolvers(pipeline) -> list[str]:
    """Removes every `Resolver` node from a TFX pipeline, and the inputs they feed.

    Args:
        pipeline: a `tfx.dsl.Pipeline`, changed in place.

    Returns:
        The ids of the removed resolver nodes, sorted.

    Raises:
        ValueError: if a resolver feeds an input that its consumer requires.
    """
    # Imported here: this module's spec check must not need TFX.
    from tfx.dsl.components.common import resolver

    resolver_ids = {node.id for node in pipeline.components if isinstance(node, resolver.Resolver)}
    if not resolver_ids:
        return []
    for node in pipeline.components:
        if node.id in resolver_ids:
            continue
        for key, channel in list(node.inputs.items()):
            if not channel.get_data_dependent_node_ids() & resolver_ids:
                continue
            parameter = getattr(node.spec, "INPUTS", {}).get(key)
            if parameter is None or not parameter.optional:
                raise ValueError(
                    f"Invalid value for `pipeline`. Expected resolvers that feed only optional "
                    f"inputs. Received: pipeline whose node {node.id!r} requires input {key!r} "
                    f"from resolver(s) {sorted(resolver_ids)}"
                )
            del node.spec.inputs[key]
        for upstream in list(node.upstream_nodes):
            if upstream.id in resolver_ids:
                node.remove_upstream_node(upstream)
    # Not the `components` setter: it would prepend the pipeline's Beam arguments to every Beam
    # component a second time. The list stays topologically sorted without the resolvers.
    pipeline._components = [  # noqa: SLF001
        node for node in pipeline.components if node.id not in resolver_ids
    ]
    return sorted(resolver_ids)
