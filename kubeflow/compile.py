"""Compiles the pipeline of pipeline/pipeline.py into a Kubeflow Pipelines 2.x pipeline spec.

    python -m kubeflow.compile --image IMAGE --pipeline-root gs://B/ner/root \\
        --data-uri gs://B/ner/data --serving-uri gs://B/ner/serving --output pipeline.yaml
    python -m kubeflow.compile --help     # every Kubeflow flag and its NER_KFP_* variable

The same `create_pipeline` as the local runner, compiled by TFX's `KubeflowV2DagRunner` into the
PipelineSpec YAML that `kfp.Client().upload_pipeline` (and the KFP UI) accept, with the spec's
default pipeline root set. `--target oss` (default) drops the latest-blessed-model resolver,
which open-source KFP cannot run (kubeflow/open_source_kfp.py), and refuses to write a spec with
any other executor it cannot run; `--target vertex` keeps it for Vertex AI Pipelines.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from kubeflow.config import KubeflowConfig, parser
from kubeflow.open_source_kfp import TARGET_MARK, drop_resolvers, open_source_kfp_problems
from models.quiet_tensorflow import import_tensorflow

__all__ = [
    "compile_pipeline_spec",
    "main",
    "NEVER_CACHED_TASKS",
    "RUN_PARAMETER_NAMES",
    "run_parameters",
    "write_pipeline_spec",
]

NEVER_CACHED_TASKS = ("latest-served-model",)
"""Tasks that read state outside their inputs at run time: KFP must run them every time."""

RUN_PARAMETER_NAMES = {"data_dir": "data_uri", "epochs": "epochs", "min_entity_f1": "min_entity_f1"}
"""`pipeline.pipeline.RunParameters` field -> the KFP run parameter's name."""


def run_parameters(config: KubeflowConfig) -> dict[str, Any]:
    """{RunParameters field: TFX RuntimeParameter}, defaults from `config`.

    A run (the KFP UI, `create_run_from_pipeline_package(arguments=...)`, a recurring run) may set
    `data_uri` (ExampleGen's input folder), `epochs` and `min_entity_f1` without recompiling.
    """
    from tfx import v1 as tfx

    values = {
        "data_dir": (str, config.data_uri),
        "epochs": (int, config.pipeline.tagger.training.epochs),
        "min_entity_f1": (float, float(config.pipeline.min_entity_f1)),
    }
    return {
        field: tfx.dsl.experimental.RuntimeParameter(
            name=RUN_PARAMETER_NAMES[field], ptype=ptype, default=default
        )
        for field, (ptype, default) in values.items()
    }


def compile_pipeline_spec(config: KubeflowConfig) -> dict[str, Any]:
    """Builds the pipeline and compiles it.

    Returns:
        The PipelineSpec as a JSON dict (camelCase keys), with `defaultPipelineRoot` set.

    Raises:
        ValueError: for target "oss", if the spec holds executors open-source KFP refuses.
    """
    from tfx import v1 as tfx

    from pipeline.pipeline import RunParameters, create_pipeline

    parameters = run_parameters(config)
    pipeline = create_pipeline(config.pipeline, RunParameters(**parameters))
    if not config.keeps_baseline_resolver:
        drop_resolvers(pipeline)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            display_name=config.pipeline.pipeline_name,
            default_image=config.image,
            # Schema 2.1.0, as kfp 2.x's own compiler writes: the KFP 2.x API server refuses
            # other versions at upload (backend/src/apiserver/template/v2_template.go); Vertex AI
            # runs it too.
            use_pipeline_spec_2_1=True,
        )
    )
    pipeline_spec = runner.run(pipeline, write_out=False)["pipelineSpec"]
    # The runner puts the root in the PipelineJob's runtime config, which the YAML (the spec
    # alone, as KFP uploads it) leaves out: KFP 2.x reads it from here instead.
    pipeline_spec["defaultPipelineRoot"] = config.pipeline_root
    # The served-model task reads the serving folder, which changes between runs with no change to
    # its inputs: a cached result would be a stale baseline.
    for task_name in NEVER_CACHED_TASKS:
        task = pipeline_spec["root"]["dag"]["tasks"].get(task_name)
        if task is not None:
            task["cachingOptions"] = {"enableCache": False}
    # Which target it is for, where kubeflow.schedule (and a person in the KFP UI) can read it.
    pipeline_spec["pipelineInfo"]["description"] = (
        f"NER tagger pipeline, compiled by python -m {TARGET_MARK}{config.target}"
    )
    # TFX declares the run parameters without the defaults (it passes them in the PipelineJob's
    # runtime config, which the YAML leaves out): a run that sets none gets the compiled values.
    declared = pipeline_spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for parameter in parameters.values():
        declared[parameter.name]["defaultValue"] = parameter.default
        declared[parameter.name]["isOptional"] = True
    if config.target == "oss":
        problems = open_source_kfp_problems(pipeline_spec)
        if problems:
            raise ValueError(
                "Invalid value for `config`. Expected a pipeline open-source KFP can run. "
                f"Received: config whose compiled spec has: {'; '.join(problems)}"
            )
    return pipeline_spec


def write_pipeline_spec(pipeline_spec: dict[str, Any], output_path: str) -> None:
    """Writes the spec as KFP's YAML package (what `kfp.compiler.Compiler` writes for a pipeline).

    Raises:
        ValueError: if `output_path` does not end in .yaml or .yml.
    """
    import yaml

    if not output_path.endswith((".yaml", ".yml")):
        raise ValueError(
            "Invalid value for `output_path`. Expected a file name ending in .yaml or .yml (the "
            f"format kfp.Client uploads). Received: output_path={output_path!r}"
        )
    directory = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(directory, exist_ok=True)
    with open(output_path, "w", encoding="utf-8") as file:
        file.write(
            f"# PIPELINE DEFINITION\n# Name: {pipeline_spec['pipelineInfo']['name']}\n"
            "# Compiled by python -m kubeflow.compile (TFX KubeflowV2DagRunner).\n"
        )
        yaml.safe_dump(pipeline_spec, file, sort_keys=True)


def _compile_parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="python -m kubeflow.compile",
        description="Compiles the NER pipeline into a Kubeflow Pipelines 2.x pipeline spec. "
        "Every flag not listed here is the local runner's (python -m pipeline.local_runner "
        "--help), e.g. --epochs, --min-entity-f1, --schema (the file the tag set is read from).",
        parents=[parser(os.environ)],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    result.add_argument("--output", default="pipeline.yaml", help="the YAML file to write")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the flags, compiles, writes the spec and prints what it wrote."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    own.add_argument("--output", default="pipeline.yaml")
    own.add_argument("-h", "--help", action="store_true")
    args, rest = own.parse_known_args(argv)
    if args.help:
        _compile_parser().print_help()
        return 0
    # google-cloud packages imported by TFX warn about this Python version at import.
    warnings.filterwarnings("ignore", category=FutureWarning)
    import_tensorflow()  # without the CUDA registration lines (models.quiet_tensorflow)
    config = KubeflowConfig.from_args(rest)
    pipeline_spec = compile_pipeline_spec(config)
    write_pipeline_spec(pipeline_spec, args.output)
    tasks = sorted(pipeline_spec["root"]["dag"]["tasks"])
    print(
        f"Wrote {args.output}: pipeline {config.pipeline.pipeline_name!r} for target {config.target!r}, "
        f"image {config.image}, {len(tasks)} tasks: {', '.join(tasks)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
