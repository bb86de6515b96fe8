"""A stand-in for what Kubeflow Pipelines 2.x does with a compiled spec: run each task's container.

No cluster runs here. For each task of the spec's root DAG, in dependency order, this does what
KFP's driver and launcher do for a container executor (kubeflow/pipelines backend/src/v2/driver and
component/launcher_v2.go): it resolves the task's input parameters (constants, and the pipeline's
run parameters through `componentInputParameter`), hands it the artifacts its upstream tasks
produced, gives each output artifact a URI under the pipeline root, writes the `ExecutorInput`
JSON in place of the `{{$}}` placeholder of the executor's args, runs the executor's `command` +
`args` as a process (in the image's working directory, with the image's environment), and reads
the metadata the executor reports in `outputs.outputFile` back into its output artifacts, as KFP
records them in its ML Metadata for the next tasks.

With a `cache` dict shared between runs it also does what KFP's cache does: a task whose
`cachingOptions.enableCache` is true and whose inputs (component, parameter values, input
artifacts) equal those of an earlier execution is not run; its earlier outputs are handed on.

What it does not do: pull images, schedule pods, or run non-container executors (the spec check
in kubeflow/open_source_kfp.py refuses those for open-source KFP).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import yaml


def _title(artifact_type: Mapping[str, Any]) -> str:
    if "schemaTitle" in artifact_type:
        return artifact_type["schemaTitle"]
    return yaml.safe_load(artifact_type["instanceSchema"])["title"]


def _ordered_tasks(tasks: Mapping[str, Any]) -> list[str]:
    order, done = [], set()
    while len(order) < len(tasks):
        ready = sorted(
            name
            for name, task in tasks.items()
            if name not in done and set(task.get("dependentTasks", [])) <= done
        )
        assert ready, f"cycle among {sorted(set(tasks) - done)}"
        order += ready
        done.update(ready)
    return order


def run_parameters(pipeline_spec: Mapping[str, Any], arguments: Mapping[str, Any]) -> dict:
    """The run's parameter values: the spec's defaults, overridden by `arguments` (as in a run).

    Raises:
        KeyError: for an argument the spec does not declare (KFP refuses those too).
    """
    declared = pipeline_spec["root"].get("inputDefinitions", {}).get("parameters", {})
    unknown = set(arguments) - set(declared)
    if unknown:
        raise KeyError(f"not run parameters of this pipeline: {sorted(unknown)}")
    values = {name: spec.get("defaultValue") for name, spec in declared.items()}
    values.update(arguments)
    return values


def run_pipeline_spec(
    pipeline_spec: Mapping[str, Any],
    *,
    working_dir: str,
    environment: Mapping[str, str],
    arguments: Mapping[str, Any] | None = None,
    run_root: str,
    log_dir: str,
    timeout: float = 900,
    cache: dict[str, dict[str, dict]] | None = None,
) -> dict[str, dict[str, dict]]:
    """Runs every task of `pipeline_spec` as KFP would (see the module docstring).

    Args:
        pipeline_spec: the compiled PipelineSpec (the YAML file, loaded).
        working_dir: the image's WORKDIR: the processes run there.
        environment: the processes' environment (the image's PATH, PYTHONPATH, ...).
        arguments: run parameters, as `kfp.Client().create_run_from_pipeline_package(arguments=)`.
        run_root: where this run's artifacts go (KFP: `<pipeline root>/<run id>`).
        log_dir: each task's output goes to `<log_dir>/<task>.log`.
        cache: {cache key: outputs}, shared between runs to reuse unchanged tasks; None: no cache.
    Returns:
        {task: {output key: runtime artifact dict (uri, metadata)}}.
    Raises:
        RuntimeError: when a task's process fails, with the end of its log.
    """
    parameters = run_parameters(pipeline_spec, arguments or {})
    tasks = pipeline_spec["root"]["dag"]["tasks"]
    produced: dict[str, dict[str, dict]] = {}
    os.makedirs(log_dir, exist_ok=True)
    for name in _ordered_tasks(tasks):
        task = tasks[name]
        component = pipeline_spec["components"][task["componentRef"]["name"]]
        container = pipeline_spec["deploymentSpec"]["executors"][component["executorLabel"]][
            "container"
        ]
        parameter_values = {}
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if "runtimeValue" in source:
                parameter_values[key] = source["runtimeValue"]["constant"]
            else:
                parameter_values[key] = parameters[source["componentInputParameter"]]
        input_artifacts = {}
        for key, source in task.get("inputs", {}).get("artifacts", {}).items():
            upstream = source["taskOutputArtifact"]
            input_artifacts[key] = {
                "artifacts": [produced[upstream["producerTask"]][upstream["outputArtifactKey"]]]
            }
        cache_key = json.dumps(
            [task["componentRef"]["name"], parameter_values, input_artifacts], sort_keys=True
        )
        cacheable = cache is not None and task.get("cachingOptions", {}).get("enableCache")
        if cacheable and cache_key in cache:
            produced[name] = cache[cache_key]
            continue
        task_root = os.path.join(run_root, name)
        outputs = {}
        for key, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items():
            outputs[key] = {
                "name": f"{name}-{key}",
                "type": {"schemaTitle": _title(definition["artifactType"])},
                "uri": os.path.join(task_root, key),
                "metadata": {},
            }
        output_file = os.path.join(task_root, "executor_output.json")
        executor_input = {
            "inputs": {"parameterValues": parameter_values, "artifacts": input_artifacts},
            "outputs": {
                "artifacts": {key: {"artifacts": [value]} for key, value in outputs.items()},
                "outputFile": output_file,
            },
        }
        serialized = json.dumps(executor_input)
        args = [serialized if arg == "{{$}}" else arg for arg in container.get("args", [])]
        log_path = os.path.join(log_dir, f"{name}.log")
        with open(log_path, "w", encoding="utf-8") as log:
            completed = subprocess.run(
                [*container["command"], *args],
                cwd=working_dir,
                env=dict(environment),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        if completed.returncode != 0:
            with open(log_path, encoding="utf-8") as log:
                tail = log.read()[-6000:]
            raise RuntimeError(f"task {name} exited with {completed.returncode}:\n{tail}")
        with open(output_file, encoding="utf-8") as file:
            reported = json.load(file).get("artifacts", {})
        for key, value in outputs.items():
            for artifact in reported.get(key, {}).get("artifacts", []):
                value["metadata"].update(artifact.get("metadata", {}))
                value["uri"] = artifact.get("uri", value["uri"])
        produced[name] = outputs
        if cacheable:
            cache[cache_key] = outputs
    return produced


def task_parameter_sources(pipeline_spec: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """{task: {input parameter: the run parameter it comes from}} for parameters fed at run time."""
    result: dict[str, dict[str, str]] = {}
    for name, task in pipeline_spec["root"]["dag"]["tasks"].items():
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in source:
                result.setdefault(name, {})[key] = source["componentInputParameter"]
    return result


__all__: Sequence[str] = ["run_parameters", "run_pipeline_spec", "task_parameter_sources"]
