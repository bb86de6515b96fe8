"""The TFX pipeline: CoNLL files in, a blessed, versioned serving model out.

    ConllExampleGen -> StatisticsGen -> ExampleValidator (against ImportSchemaGen's curated schema)
      -> ValidationGate (stops the run on any anomaly, naming unknown tags and where)
      -> Transform (models.preprocessing) -> Trainer (models.run_fn)
      -> Evaluator (entity F1, conlleval semantics; baseline: latest blessed model, unless
         `config.baseline` is False)
      -> AtomicPusher (only a blessed model, to <serving_dir>/<version>/)

Retraining (see `PipelineConfig`): with `{SPAN}` in the input patterns ExampleGen ingests the
latest span; `span_window` N > 1 trains on the last N spans ingested (a `SpanRangeStrategy`
resolver with a `RollingRange`, as in TFX's penguin example: ExampleGen's own `range_config`
accepts only a static range) and Transform reads its analyzer cache (the latest `TransformCache`,
so the vocabularies of spans already analysed are not recomputed). StatisticsGen, the validator
and the Evaluator look at the latest span only: older spans were validated when they arrived, and
the model is judged on the newest eval data. `warm_start` feeds the latest blessed model (the
baseline resolver's output) to the Trainer as `base_model`.

`create_pipeline(config)` only builds the DAG; runners (pipeline/local_runner.py, Kubeflow) run it.
The module paths given to Transform and Trainer (`models.preprocessing.preprocessing_fn`,
`models.run_fn.run_fn`) are imported by the executors, so the `models` package must be importable
where they run (installed, or the repository root on PYTHONPATH).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import pathlib

import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from linear_crf.tag_scheme import entity_types
from tfx import v1 as tfx

from components.atomic_pusher import AtomicPusher
from components.conll_example_gen import ConllExampleGen
from components.entity_evaluator import EntityEvaluator
from components.latest_artifact_if_any import LatestArtifactIfAnyStrategy
from components.latest_served_model import LatestServedModel
from components.tagger_trainer import TaggerTrainer
from components.validation_gate import ValidationGate
from models.embeddings import is_uri
from models.entity_metric import ENTITY_F1_NAME
from models.features import EXAMPLES_SIGNATURE, TAGS_KEY
from pipeline.config import PipelineConfig

__all__ = [
    "code_fingerprint",
    "create_pipeline",
    "eval_config",
    "LABEL_KEY",
    "module_files",
    "NO_REGRESSION_TOLERANCE",
    "PREDICTION_KEY",
    "PREPROCESSING_FN",
    "REPOSITORY_PACKAGES",
    "RUN_FN",
    "RunParameters",
    "statistics_options",
]

PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.run_fn.run_fn"
LABEL_KEY = TAGS_KEY  # the raw gold tags of each tf.Example
PREDICTION_KEY = "tags"  # the output of `models.export` with a tag per token
# No regression: a candidate whose F1 is below the baseline's by more than rounding is not blessed.
NO_REGRESSION_TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True)
class RunParameters:
    """Values an orchestrator sets per run, without rebuilding the pipeline (Kubeflow's run
    parameters); None: the value compiled in from `PipelineConfig`.

    Attributes:
        data_dir: ExampleGen's `input_base` (a `RuntimeParameter` of type str).
        epochs: the Trainer's maximum epochs (int).
        min_entity_f1: the Evaluator's entity-F1 floor, in percent (float).
    """

    data_dir: tfx.dsl.experimental.RuntimeParameter | None = None
    epochs: tfx.dsl.experimental.RuntimeParameter | None = None
    min_entity_f1: tfx.dsl.experimental.RuntimeParameter | None = None


REPOSITORY_PACKAGES = ("linear_crf", "models", "components", "pipeline", "kubeflow", "serving")
_PACKAGE_FOLDERS = {"linear_crf": ("models", "crf", "linear_crf")}
"""Packages whose folder is not named after them (setup.py's `package_dir`)."""


def _imported_modules(path: pathlib.Path) -> set[str]:
    """Every module name a Python file imports, at the top or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_files(entry_module: str, root: pathlib.Path | None = None) -> list[pathlib.Path]:
    """The repository's files that `entry_module` imports, directly or not (itself included)."""
    root = pathlib.Path(__file__).resolve().parents[1] if root is None else root
    found: dict[str, pathlib.Path] = {}
    pending = [entry_module]
    while pending:
        name = pending.pop()
        if name.split(".")[0] not in REPOSITORY_PACKAGES:
            continue
        top, *rest = name.split(".")
        base = root.joinpath(*_PACKAGE_FOLDERS.get(top, (top,)), *rest)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file() and name not in found:
                found[name] = candidate
                pending.extend(_imported_modules(candidate))
    return sorted(set(found.values()))


def code_fingerprint(entry_module: str, root: pathlib.Path | None = None) -> str:
    """A hash of the code a component's executor imports by module path (`entry_module` and what
    it imports from this repository, followed through the imports).

    TFX's cache key holds `preprocessing_fn` / `run_fn` as module paths, not their code: without
    this in `custom_config`, a run after a code change would reuse the old trained model. Only
    what the module imports counts, so a change to the `ner-tag` command does not retrain, and a
    change to the export code does not rerun Transform.
    """
    root = pathlib.Path(__file__).resolve().parents[1] if root is None else root
    digest = hashlib.sha256()
    for path in module_files(entry_module, root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def statistics_options() -> tfdv.StatsOptions:
    """StatisticsGen's options: the top values and unique counts of each string feature from a
    fixed-size sketch (Misra-Gries and KMV) instead of TFDV's exact count of every distinct value.

    The exact count keeps one key per distinct value (every `sentence_id`, every token) until it
    is summed, so its memory grew with the corpus (2.25 GB at a million sentences); the sketch's
    stays flat (1.03-1.11 GB from 10k to 1M sentences, benchmarks/data_components_scale.py). The
    `tags` domain check stays exact: a Misra-Gries sketch counts exactly while a feature has no
    more distinct values than its buckets (1,024 in TFDV 1.16), and a tag set has tens. Only
    `tokens` and `sentence_id` get approximate top values and unique counts.
    """
    return tfdv.StatsOptions(use_sketch_based_topk_uniques=True)


def eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """TFMA configuration: entity-level F1 on the eval split with the blessing thresholds."""
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": config.min_entity_f1})
    )
    if config.baseline:
        threshold.change_threshold.CopyFrom(
            tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                absolute={"value": -NO_REGRESSION_TOLERANCE},
            )
        )
    # The threshold goes on the MetricConfig (not MetricsSpec.thresholds): only there does TFMA
    # build its key with the same example_weighted value as the metric's own key.
    metric = tfma.MetricConfig(
        class_name="EntityF1",
        module="models.entity_metric",
        config=json.dumps(
            {
                "name": ENTITY_F1_NAME,
                "scheme": config.tagger.model.tag_scheme,
                "entity_types": entity_types(config.tagger.preprocessing.tag_names),
            }
        ),
        threshold=threshold,
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EXAMPLES_SIGNATURE,
                label_key=LABEL_KEY,
                prediction_key=PREDICTION_KEY,
                # A plain SavedModel: spares TFMA its attempt to load it as a tf-keras model.
                model_type=tfma.TF_GENERIC,
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[metric, tfma.MetricConfig(class_name="ExampleCount")],
            )
        ],
    )


def create_pipeline(
    config: PipelineConfig, run_parameters: RunParameters | None = None
) -> tfx.dsl.Pipeline:
    """Builds the TFX pipeline described in the module docstring from `config` (pure).

    Args:
        config: the pipeline's configuration.
        run_parameters: values set per run by the orchestrator (Kubeflow), replacing the
            config's; None: everything as in `config`.
    """
    run_parameters = run_parameters or RunParameters()
    example_gen = ConllExampleGen(
        input_base=run_parameters.data_dir or config.data_dir,
        input_config=tfx.proto.Input(
            splits=[
                tfx.proto.Input.Split(name="train", pattern=config.train_pattern),
                tfx.proto.Input.Split(name="eval", pattern=config.eval_pattern),
            ]
        ),
        scheme=config.tagger.model.tag_scheme,
        on_error=config.on_bad_lines,
        encoding=config.encoding,
    )
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"], stats_options=statistics_options()
    )
    schema_gen = tfx.components.ImportSchemaGen(schema_file=config.schema_path)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
    )
    validation_gate = ValidationGate(
        anomalies=example_validator.outputs["anomalies"],
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
    )
    # Each component's cache key holds what it reads: Transform the preprocessing settings and its
    # code; the Trainer everything (--epochs reruns the Trainer, not Transform).
    transform_config = {
        **config.tagger.transform_custom_config(),
        "code_fingerprint": code_fingerprint(PREPROCESSING_FN.rsplit(".", 1)[0]),
    }
    trainer_config = {
        **config.tagger.to_custom_config(),
        "code_fingerprint": code_fingerprint(RUN_FN.rsplit(".", 1)[0]),
    }
    window_nodes = []
    training_examples = example_gen.outputs["examples"]
    analyzer_cache = None
    if config.span_window > 1:
        span_resolver = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.SpanRangeStrategy,
            config={
                "range_config": tfx.proto.RangeConfig(
                    rolling_range=tfx.proto.RollingRange(num_spans=config.span_window)
                )
            },
            examples=tfx.dsl.Channel(
                type=tfx.types.standard_artifacts.Examples,
                producer_component_id=example_gen.id,
                output_key="examples",
            ),
        ).with_id("span_window_resolver")
        # The channel above names ExampleGen without depending on this run's ExampleGen.
        span_resolver.add_upstream_node(example_gen)
        cache_resolver = tfx.dsl.Resolver(
            strategy_class=LatestArtifactIfAnyStrategy,
            cache=tfx.dsl.Channel(type=tfx.types.standard_artifacts.TransformCache),
        ).with_id("transform_cache_resolver")
        window_nodes = [span_resolver, cache_resolver]
        training_examples = span_resolver.outputs["examples"]
        analyzer_cache = cache_resolver.outputs["cache"]
    transform = tfx.components.Transform(
        examples=training_examples,
        analyzer_cache=analyzer_cache,
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=transform_config,
        # The statistics of the transformed data are not used: skip computing them.
        disable_statistics=True,
    )
    # Bad data must not reach Transform (nor, through it, the Trainer).
    transform.add_upstream_node(validation_gate)
    baseline_nodes = []
    baseline_model = None
    if config.baseline and config.baseline_from_serving_dir:
        # Without resolver nodes (open-source KFP): the model serving now, read at run time.
        served_model = LatestServedModel(serving_dir=config.serving_dir).with_id(
            "latest-served-model"
        )
        baseline_nodes.append(served_model)
        baseline_model = served_model.outputs["model"]
    elif config.baseline:
        model_resolver = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        ).with_id("latest_blessed_model_resolver")
        baseline_nodes.append(model_resolver)
        baseline_model = model_resolver.outputs["model"]
    trainer = TaggerTrainer(
        epochs=run_parameters.epochs,
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config=trainer_config,
        # Warm start from the latest *blessed* model: the latest model may be one the Evaluator
        # rejected (trained on bad data).
        base_model=baseline_model if config.warm_start else None,
    ).with_id("Trainer")
    evaluator = EntityEvaluator(
        min_entity_f1=run_parameters.min_entity_f1,
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_model,
        eval_config=eval_config(config),
        example_splits=["eval"],
    ).with_id("Evaluator")
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_dir)
        ),
    )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        # The local runner's SQLite store; an orchestrator with its own store (Kubeflow, whose
        # pipeline root is a URI) gets none.
        metadata_connection_config=None
        if is_uri(config.pipeline_root)
        else tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path),
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            validation_gate,
            *window_nodes,
            transform,
            *baseline_nodes,
            trainer,
            evaluator,
            pusher,
        ],
        enable_cache=config.enable_cache,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )


# The components that read and prepare the data, up to and including Transform.
DATA_COMPONENTS = (
    "ConllExampleGen",
    "StatisticsGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "ValidationGate",
    "span_window_resolver",
    "transform_cache_resolver",
    "Transform",
)


def data_components_only(pipeline: tfx.dsl.Pipeline) -> tfx.dsl.Pipeline:
    """`pipeline` cut after Transform: the data read, checked and transformed, no model trained.

    For trying a new Beam runner or sizing a new corpus (`tests/pipeline/test_dask_runner.py`,
    `benchmarks/data_components_scale.py`). The nodes are `pipeline`'s own (modified: their links
    to the Trainer and later nodes are removed), so use `pipeline` for nothing else after.
    """
    nodes = [node for node in pipeline.components if node.id in DATA_COMPONENTS]
    for node in nodes:
        for downstream in list(node.downstream_nodes):
            if downstream.id not in DATA_COMPONENTS:
                node.remove_downstream_node(downstream)
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline.pipeline_info.pipeline_name,
        pipeline_root=pipeline.pipeline_info.pipeline_root,
        metadata_connection_config=pipeline.metadata_connection_config,
        components=nodes,
        enable_cache=pipeline.enable_cache,
        beam_pipeline_args=list(pipeline.beam_pipeline_args),
    )
