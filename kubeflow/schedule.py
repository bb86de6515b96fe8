"""Uploads the compiled pipeline to Kubeflow Pipelines and schedules retraining.

    python -m kubeflow.compile ... --output pipeline.yaml
    python -m kubeflow.schedule --host https://HOST/pipeline --package pipeline.yaml \\
        --cron "0 0 3 * * *"
    python -m kubeflow.schedule --help    # every flag and its NER_KFP_* variable

Steps, through `kfp.Client` (KFP REST API v2beta1):

1. upload the package as a new pipeline, or as a new version of the pipeline of that name;
2. find or create the experiment;
3. delete the recurring runs of the same name in that experiment (rescheduling replaces the
   schedule instead of adding a second one), then create the recurring run on the new version:
   cron trigger, `max_concurrency` 1 (a run starts only when the previous one has finished), no
   catch-up (runs missed while paused are not started afterwards), caching off by default.

Running it twice uploads two versions and leaves one schedule, on the newer version.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from kubeflow.open_source_kfp import compiled_target, open_source_kfp_problems
from kubeflow.schedule_config import ScheduleConfig

__all__ = [
    "check_package",
    "main",
    "schedule",
    "ScheduleResult",
]


@dataclasses.dataclass(frozen=True)
class ScheduleResult:
    """What `schedule` created in Kubeflow.

    Attributes:
        pipeline_id: the pipeline (new, or the existing one of that name).
        version_id: the uploaded pipeline version the schedule runs.
        experiment_id: the experiment of the recurring run.
        recurring_run_id: the new recurring run.
        replaced_recurring_run_ids: recurring runs of the same name that were deleted.
        created_pipeline: True if the pipeline did not exist before.
    """

    pipeline_id: str
    version_id: str
    experiment_id: str
    recurring_run_id: str
    replaced_recurring_run_ids: tuple[str, ...]
    created_pipeline: bool


def _equals_filter(key: str, value: str) -> str:
    # The v2beta1 filter syntax kfp.Client itself uses (operation EQUALS).
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": key, "stringValue": value}]})


def _latest_version_id(client, pipeline_id: str) -> str:
    response = client.list_pipeline_versions(
        pipeline_id=pipeline_id, page_size=1, sort_by="created_at desc"
    )
    versions = response.pipeline_versions or []
    if not versions:
        raise RuntimeError(f"Kubeflow returned no version for the new pipeline {pipeline_id!r}")
    return versions[0].pipeline_version_id


def check_package(package_path: str) -> dict[str, Any]:
    """Reads a compiled package and checks that open-source KFP can run it.

    Returns:
        The pipeline spec.
    Raises:
        ValueError: if the file is not a pipeline spec, or was compiled for Vertex AI (its
            resolver executors fail every run on open-source KFP, see kubeflow/README.md).
    """
    import yaml

    try:
        with open(package_path, encoding="utf-8") as file:
            spec = yaml.safe_load(file)
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(
            "Invalid value for `package_path`. Expected a readable pipeline YAML file "
            f"(python -m kubeflow.compile --output ...). Received: {package_path!r} "
            f"({type(error).__name__}: {error})"
        ) from None
    if not isinstance(spec, dict) or "root" not in spec or "pipelineInfo" not in spec:
        raise ValueError(
            "Invalid value for `package_path`. Expected a KFP pipeline spec (with `root` and "
            f"`pipelineInfo`). Received: {package_path!r}"
        )
    target = compiled_target(spec)
    problems = open_source_kfp_problems(spec)
    if target not in (None, "oss") or problems:
        raise ValueError(
            "Invalid value for `package_path`. Expected a pipeline compiled for open-source KFP "
            "(python -m kubeflow.compile --target oss). Received: "
            f"{package_path!r}, compiled for target {target or 'vertex'!r}"
            + (f" ({problems[0]})" if problems else "")
            + ". On Vertex AI, schedule runs with Vertex's own pipeline-job schedules."
        )
    return spec


def _parameter_arguments(spec: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The recurring run's parameters, typed as the spec declares them.

    Raises:
        ValueError: for a name the pipeline does not declare, or a value of the wrong type.
    """
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    converters = {"NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "STRING": str}
    arguments = {}
    for name, text in parameters.items():
        if name not in declared:
            raise ValueError(
                f"Invalid value for `--param`. Expected one of the pipeline's run parameters "
                f"{sorted(declared)}. Received: {name}={text!r}"
            )
        kind = declared[name].get("parameterType", "STRING")
        try:
            value = converters.get(kind, str)(text)
        except ValueError:
            raise ValueError(
                f"Invalid value for `--param`. Expected {name} of type {kind}. "
                f"Received: {name}={text!r}"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(
                f"Invalid value for `--param`. Expected a finite number. Received: {name}={text!r}"
            )
        arguments[name] = value
    return arguments


def schedule(config: ScheduleConfig, client=None) -> ScheduleResult:
    """Uploads the pipeline (or a new version) and (re)creates its recurring run.

    Args:
        config: what to upload and when to run it.
        client: a `kfp.Client`; by default one for `config.host`.

    Returns:
        The ids of what was created.
    """
    arguments = _parameter_arguments(check_package(config.package_path), config.parameters)
    if client is None:
        import kfp

        client = kfp.Client(
            host=config.host,
            namespace=config.namespace or "kubeflow",
            existing_token=config.existing_token or None,
        )
    namespace = config.namespace or None
    version_name = config.version_name or (
        f"{config.pipeline_name}-{datetime.datetime.now(datetime.timezone.utc):%Y%m%d-%H%M%S}"
    )
    pipeline_id = client.get_pipeline_id(config.pipeline_name)
    created_pipeline = pipeline_id is None
    if created_pipeline:
        pipeline = client.upload_pipeline(
            config.package_path,
            pipeline_name=config.pipeline_name,
            description="NER BiLSTM-CRF tagger: CoNLL files in, blessed serving model out.",
            namespace=namespace,
        )
        pipeline_id = pipeline.pipeline_id
        # The upload created the pipeline's first version: the schedule runs that one.
        version_id = _latest_version_id(client, pipeline_id)
    else:
        version = client.upload_pipeline_version(
            config.package_path, pipeline_version_name=version_name, pipeline_id=pipeline_id
        )
        version_id = version.pipeline_version_id

    experiment = client.create_experiment(name=config.experiment, namespace=namespace)
    experiment_id = experiment.experiment_id
    existing = client.list_recurring_runs(
        experiment_id=experiment_id,
        page_size=100,
        filter=_equals_filter("display_name", config.recurring_run_name),
    )
    replaced = tuple(
        run.recurring_run_id
        for run in (existing.recurring_runs or [])
        if run.display_name == config.recurring_run_name
    )
    for recurring_run_id in replaced:
        client.delete_recurring_run(recurring_run_id)

    recurring_run = client.create_recurring_run(
        experiment_id=experiment_id,
        job_name=config.recurring_run_name,
        description=f"Retrains {config.pipeline_name} on cron '{config.cron}'.",
        cron_expression=config.cron,
        max_concurrency=config.max_concurrency,
        no_catchup=not config.catchup,
        pipeline_id=pipeline_id,
        version_id=version_id,
        enabled=True,
        pipeline_root=config.pipeline_root or None,
        enable_caching=config.enable_caching,
        params=arguments or None,
    )
    return ScheduleResult(
        pipeline_id=pipeline_id,
        version_id=version_id,
        experiment_id=experiment_id,
        recurring_run_id=recurring_run.recurring_run_id,
        replaced_recurring_run_ids=replaced,
        created_pipeline=created_pipeline,
    )


def _unreachable(error: BaseException) -> str | None:
    """Why the API could not be reached, if `error` (or what it wraps) says that; else None."""
    import urllib3

    current: BaseException | None = error
    while current is not None:
        if isinstance(current, urllib3.exceptions.MaxRetryError):
            return str(current.reason or current)
        if isinstance(current, ConnectionError | urllib3.exceptions.HTTPError | TimeoutError):
            return f"{type(current).__name__}: {current}"
        current = current.__cause__ or current.__context__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the flags, schedules, prints what was created.

    Returns:
        0; 2 for an invalid flag or package (one line on stderr); 1 when the API cannot be
        reached or refuses a request (one line naming the host).
    """
    try:
        config = ScheduleConfig.from_args(sys.argv[1:] if argv is None else argv)
    except ValueError as error:
        print(f"kubeflow.schedule: {error}", file=sys.stderr)
        return 2
    # kfp.Client warns on every construction that it needs a KFP 2.x backend: we know.
    warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")
    try:
        result = schedule(config)
    except ValueError as error:
        print(f"kubeflow.schedule: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 (one line for what the user can act on)
        import kfp_server_api

        reason = _unreachable(error)
        if reason is not None:
            print(
                f"kubeflow.schedule: cannot reach the Kubeflow Pipelines API at {config.host}: "
                f"{reason}",
                file=sys.stderr,
            )
            return 1
        if isinstance(error, kfp_server_api.ApiException):
            print(
                f"kubeflow.schedule: the Kubeflow Pipelines API at {config.host} answered "
                f"{error.status} {error.reason}: {(error.body or '').strip()[:300]}",
                file=sys.stderr,
            )
            return 1
        raise
    print(
        f"Pipeline {config.pipeline_name!r} ({'created' if result.created_pipeline else 'new version'}"
        f" {result.version_id}), experiment {config.experiment!r}: recurring run "
        f"{config.recurring_run_name!r} {result.recurring_run_id} on cron '{config.cron}', "
        f"max_concurrency {config.max_concurrency}, catch-up {'on' if config.catchup else 'off'}"
        + (
            f"; replaced {', '.join(result.replaced_recurring_run_ids)}"
            if result.replaced_recurring_run_ids
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
