"""Typed, frozen configuration of the scheduled retraining on Kubeflow Pipelines.

`ScheduleConfig.from_args(argv, environ)` is the one place that reads the flags of
`python -m kubeflow.schedule` and their `NER_KFP_*` environment variables (a flag wins over its
variable, a variable over the default). The API token, if the cluster needs one, comes from
`$NER_KFP_TOKEN` only, never from a flag (flags end up in shell histories and process lists).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Mapping, Sequence

from kubeflow.config import DEFAULT_PIPELINE_NAME, check_location, check_pipeline_name
from pipeline.switches import switch_from_environment

__all__ = [
    "DEFAULT_CRON",
    "ScheduleConfig",
]

DEFAULT_CRON = "0 0 3 * * *"
"""Every day at 03:00 (the scheduler's time zone, UTC by default)."""
# Kubeflow's scheduler parses cron expressions with robfig/cron: 6 fields, seconds first.
_CRON_FIELD_PATTERN = re.compile(r"[0-9A-Za-z*?/,\-]+")
_NUM_CRON_FIELDS = 6


def _invalid(name: str, expected: str, received) -> ValueError:
    return ValueError(
        f"Invalid value for `{name}`. Expected {expected}. Received: {name}={received!r}"
    )


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """Where and how often the compiled pipeline runs.

    Attributes:
        host: the Kubeflow Pipelines API endpoint, e.g. `https://HOST/pipeline` or
            `http://localhost:8888` (a `kubectl port-forward` to ml-pipeline-ui).
        package_path: the compiled pipeline (`python -m kubeflow.compile --output ...`).
        pipeline_name: the pipeline's name in Kubeflow; a new version is uploaded if it exists.
        experiment: the experiment that holds the recurring run (created if missing).
        recurring_run_name: name of the recurring run; one of that name in the experiment is
            replaced, so that rescheduling never leaves two schedules running.
        cron: when to run, 6 fields with seconds first (Kubeflow's format): "0 0 3 * * *".
        max_concurrency: at most this many runs of the schedule at a time.
        catchup: start the runs missed while the schedule was paused (backfill).
        enable_caching: let Kubeflow reuse earlier outputs of components whose inputs are equal.
            Off by default: the data folder keeps its URI when new files arrive, and on
            open-source KFP no ExampleGen driver fingerprints them, so a cached ExampleGen would
            serve the old examples.
        pipeline_root: overrides the spec's default pipeline root for these runs, if set.
        namespace: Kubernetes namespace (multi-user Kubeflow), if any.
        version_name: name of the uploaded pipeline version (default: name and UTC time).
        existing_token: bearer token of the API, if the cluster needs one ($NER_KFP_TOKEN).
        parameters: run parameters of every scheduled run, {name: value as text}, checked
            against the package's declared parameters (`--param data_uri=gs://b/ner/data`).
    """

    host: str
    package_path: str
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    experiment: str = "ner-retraining"
    recurring_run_name: str = ""
    cron: str = DEFAULT_CRON
    max_concurrency: int = 1
    catchup: bool = False
    enable_caching: bool = False
    pipeline_root: str = ""
    namespace: str = ""
    version_name: str = ""
    existing_token: str = dataclasses.field(default="", repr=False)
    parameters: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not re.fullmatch(r"https?://\S+", self.host or ""):
            raise _invalid(
                "host", "an http:// or https:// URL of the Kubeflow Pipelines API", self.host
            )
        if not self.package_path.endswith((".yaml", ".yml")):
            raise _invalid("package_path", "a compiled pipeline YAML file", self.package_path)
        check_pipeline_name(self.pipeline_name)
        if not self.experiment.strip():
            raise _invalid("experiment", "a non-empty name", self.experiment)
        if not self.recurring_run_name:
            object.__setattr__(self, "recurring_run_name", f"{self.pipeline_name}-schedule")
        fields = self.cron.split()
        if len(fields) != _NUM_CRON_FIELDS or not all(
            _CRON_FIELD_PATTERN.fullmatch(field) for field in fields
        ):
            raise _invalid(
                "cron",
                "6 space-separated fields, seconds first (Kubeflow's format), e.g. '0 0 3 * * *'",
                self.cron,
            )
        if isinstance(self.max_concurrency, bool) or not (
            isinstance(self.max_concurrency, int) and 1 <= self.max_concurrency <= 10
        ):
            raise _invalid("max_concurrency", "an integer in [1, 10]", self.max_concurrency)
        if self.pipeline_root:
            check_location("pipeline_root", self.pipeline_root)

    @classmethod
    def from_args(
        cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> ScheduleConfig:
        """Builds the configuration from flags (`argv`, without the program name) and `NER_KFP_*`
        variables. `--help` lists them.

        Raises:
            ValueError: on a missing required value or an invalid value.
        """
        environ = os.environ if environ is None else environ
        args = _parser(environ).parse_args(list(argv or []))
        for name in ("host", "package"):
            if not getattr(args, name):
                raise _invalid(
                    name, f"a value from --{name} or $NER_KFP_{name.upper()}", getattr(args, name)
                )
        return cls(
            host=args.host,
            package_path=args.package,
            pipeline_name=args.pipeline_name,
            experiment=args.experiment,
            recurring_run_name=args.recurring_run_name,
            cron=args.cron,
            max_concurrency=args.max_concurrency,
            catchup=args.catchup,
            enable_caching=args.enable_caching,
            pipeline_root=args.pipeline_root,
            namespace=args.namespace,
            version_name=args.version_name,
            existing_token=environ.get("NER_KFP_TOKEN", ""),
            parameters=_parameters(args.param),
        )


def _parameters(items: Sequence[str]) -> dict[str, str]:
    """{name: value} from NAME=VALUE items."""
    result = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name.strip() or not value:
            raise _invalid("param", "NAME=VALUE with a non-empty name and value", item)
        result[name.strip()] = value
    return result


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="python -m kubeflow.schedule",
        description="Uploads the compiled pipeline (a new version if it exists) and schedules "
        "it: a recurring run with a cron expression, one run at a time, no catch-up.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )

    def add(flag: str, default, value_type=str, help_text: str = ""):
        variable = "NER_KFP_" + flag.lstrip("-").upper().replace("-", "_")
        raw = environ.get(variable)
        try:
            value = default if raw is None else value_type(raw)
        except ValueError:
            raise _invalid(variable, f"a {value_type.__name__}", raw) from None
        parser.add_argument(flag, type=value_type, default=value, help=f"{help_text} (${variable})")

    def add_switch(flag: str, help_text: str):
        variable = "NER_KFP_" + flag.lstrip("-").upper().replace("-", "_")
        parser.add_argument(
            flag,
            action="store_true",
            default=switch_from_environment(environ, variable),
            help=f"{help_text} (${variable})",
        )

    add("--host", "", str, "Kubeflow Pipelines API endpoint (required)")
    add("--package", "", str, "compiled pipeline YAML (required)")
    add("--pipeline-name", DEFAULT_PIPELINE_NAME, str, "pipeline name in Kubeflow")
    add("--experiment", "ner-retraining", str, "experiment of the recurring run")
    add("--recurring-run-name", "", str, "recurring run name (default: <pipeline>-schedule)")
    add("--cron", DEFAULT_CRON, str, "6-field cron expression, seconds first")
    add("--max-concurrency", 1, int, "runs of the schedule at a time")
    add("--pipeline-root", "", str, "override of the spec's pipeline root")
    add("--namespace", "", str, "Kubernetes namespace (multi-user Kubeflow)")
    add("--version-name", "", str, "name of the new pipeline version (default: name-UTC time)")
    add_switch("--catchup", "start the runs missed while paused")
    add_switch("--enable-caching", "reuse outputs of components whose inputs are equal")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a run parameter of every scheduled run (repeatable): data_uri, epochs, "
        "min_entity_f1; default: the values compiled into the package",
    )
    return parser
