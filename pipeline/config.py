"""Typed, frozen configuration of the TFX pipeline, built once from the command line and environment.

`PipelineConfig.from_args(argv, environ)` is the one place that reads flags and `NER_*` environment
variables (a flag wins over its variable, a variable over the default). Relative paths given by the
user are resolved against the current directory; the defaults are under the repository root, so
`tfx run create` works from any directory. Locations may also be URIs (gs://, s3://, ...), kept as
given: the Kubeflow runner builds the same config with remote locations.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
from collections.abc import Mapping, Sequence

from tensorflow_metadata.proto.v0 import schema_pb2

from models.config import ModelConfig, PreprocessingConfig, TaggerConfig, TrainingConfig
from models.embeddings import is_uri
from pipeline.switches import switch_from_environment

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SCHEMA_PATH = os.path.join(REPOSITORY_ROOT, "pipeline", "schema", "schema.pbtxt")
DEFAULT_DATA_DIR = os.path.join(REPOSITORY_ROOT, "data", "sample")
DEFAULT_OUTPUT_DIR = os.path.join(REPOSITORY_ROOT, "outputs")
DEFAULT_BEAM_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")
"""DirectRunner in this process: on 2 cores it is faster than multi_processing, whose workers each
import TensorFlow. Dataflow: `--runner=DataflowRunner --project=P --region=R
--temp_location=gs://B/tmp`; Flink: `--runner=FlinkRunner --flink_master=HOST:8081
--environment_type=LOOPBACK` (pipeline root and data then on a shared filesystem such as gs://)."""


DEFAULT_MIN_ENTITY_F1 = 5.0
"""Blessing floor in percent: a sanity check that the model found entities at all (the sample
trains to about 13; the best WNUT-17 system of 2017 scored 41.86)."""


def _invalid(name: str, expected: str, received) -> ValueError:
    return ValueError(
        f"Invalid value for `{name}`. Expected {expected}. Received: {name}={received!r}"
    )


def _absolute(location: str) -> str:
    return location if is_uri(location) else os.path.abspath(location)


def tags_from_schema(schema_path: str, feature: str = "tags") -> tuple[str, ...]:
    """The tag set: the string domain of the `tags` feature in the curated schema file.

    Args:
        schema_path: a local path or a URI that `tf.io.gfile` reads.
    Raises:
        ValueError: if the file has no such feature with a string domain.
    """
    # Imported here: TensorFlow (its file systems read URIs) is not needed to define the config.
    import tensorflow as tf
    from google.protobuf import text_format

    from components.schema_tags import known_tags

    with tf.io.gfile.GFile(schema_path, "r") as file:
        schema = text_format.Parse(file.read(), schema_pb2.Schema())
    return known_tags(schema, feature)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything `pipeline.pipeline.create_pipeline` needs.

    Attributes:
        pipeline_name: TFX pipeline name (also names the output folders).
        data_dir: folder holding the CoNLL files (ExampleGen's input_base).
        train_pattern: glob of the training files, relative to `data_dir`.
        eval_pattern: glob of the evaluation files, relative to `data_dir`.
        output_dir: everything the pipeline writes goes under it (see the properties).
        schema_path: the curated schema (ImportSchemaGen); its `tags` domain is the tag set.
        tagger: preprocessing, model and training configuration (Transform and Trainer).
        min_entity_f1: blessing floor: the candidate's entity F1 on the eval split, in percent,
            must be at least this (and not below the latest blessed model's).
        beam_pipeline_args: Beam options for every Beam-based component.
        enable_cache: reuse the results of components whose inputs did not change (MLMD).
        baseline: compare with the latest blessed model (a resolver node, the Evaluator's
            baseline and a no-regression threshold); False: bless on the floor alone (for
            orchestrators that cannot run resolver nodes, such as open-source KFP).
        baseline_from_serving_dir: with `baseline`, take the baseline from the serving folder
            (the newest whole version there, `components.latest_served_model`) instead of a
            resolver node over ML Metadata: for orchestrators that run no resolver nodes
            (open-source KFP).
        explicit_pipeline_root: where TFX writes the artifacts, instead of under `output_dir`.
        explicit_serving_dir: Pusher's destination, instead of under `output_dir`.
        span_window: how many spans to train on: 1, the latest span that ExampleGen ingests
            (with `{SPAN}` in the patterns; without, the files as they are); N > 1, a rolling
            window of the last N spans ingested (a `SpanRangeStrategy` resolver over
            ExampleGen's outputs feeding Transform, which then reuses its analyzer cache for the
            spans it has already analysed). Needs `baseline` (resolver nodes).
        warm_start: initialise the Trainer from the latest blessed model's weights (the baseline
            resolver's model as the Trainer's `base_model`), embedding rows matched by word,
            when the tags and the architecture are unchanged; otherwise train from scratch and
            log why (`models.warm_start`). Off by
            default: the base model changes with every blessing, so the Trainer is never reused
            from the cache. Ignored without `baseline`.
    """

    pipeline_name: str
    data_dir: str
    train_pattern: str
    eval_pattern: str
    output_dir: str
    schema_path: str
    tagger: TaggerConfig
    min_entity_f1: float = DEFAULT_MIN_ENTITY_F1
    beam_pipeline_args: tuple[str, ...] = DEFAULT_BEAM_ARGS
    enable_cache: bool = True
    baseline: bool = True
    baseline_from_serving_dir: bool = False
    explicit_pipeline_root: str | None = None
    explicit_serving_dir: str | None = None
    span_window: int = 1
    warm_start: bool = False

    def __post_init__(self):
        name = self.pipeline_name
        if (
            not name
            or not name[0].isalnum()
            or not name.replace("_", "").replace("-", "").isalnum()
        ):
            raise _invalid("pipeline_name", "letters, digits, '_' and '-'", name)
        for field in ("data_dir", "output_dir", "schema_path"):
            value = getattr(self, field)
            if not (is_uri(value) or os.path.isabs(value)):
                raise _invalid(field, "an absolute path or a URI", value)
        for field in ("explicit_pipeline_root", "explicit_serving_dir"):
            value = getattr(self, field)
            if value is not None and not (is_uri(value) or os.path.isabs(value)):
                raise _invalid(field, "None, an absolute path or a URI", value)
        if not 0.0 <= self.min_entity_f1 <= 100.0:
            raise _invalid("min_entity_f1", "a percentage in [0, 100]", self.min_entity_f1)
        if (
            isinstance(self.span_window, bool)
            or not isinstance(self.span_window, int)
            or self.span_window < 1
        ):
            raise _invalid("span_window", "a positive integer", self.span_window)
        if self.span_window > 1 and not self.baseline:
            raise _invalid(
                "span_window",
                "1 when `baseline` is False (a rolling window of spans needs a resolver node)",
                self.span_window,
            )
        if self.warm_start and self.baseline_from_serving_dir:
            raise _invalid(
                "warm_start",
                "False when the baseline comes from the serving folder (a served version holds "
                "the SavedModel, not the Trainer's warm-start weights)",
                self.warm_start,
            )
        object.__setattr__(self, "beam_pipeline_args", tuple(self.beam_pipeline_args))

    @property
    def pipeline_root(self) -> str:
        """Where TFX writes the artifacts."""
        if self.explicit_pipeline_root:
            return self.explicit_pipeline_root
        return os.path.join(self.output_dir, "pipelines", self.pipeline_name)

    @property
    def metadata_path(self) -> str:
        """The SQLite ML Metadata store."""
        return os.path.join(self.output_dir, "metadata", self.pipeline_name, "metadata.db")

    @property
    def run_lock_path(self) -> str:
        """The lock a run holds from start to end (`pipeline.run_lock`), beside the store."""
        return os.path.join(os.path.dirname(self.metadata_path), "run.lock")

    @property
    def serving_dir(self) -> str:
        """Pusher's destination: `<serving_dir>/<numeric version>/saved_model.pb`."""
        if self.explicit_serving_dir:
            return self.explicit_serving_dir
        return os.path.join(self.output_dir, "serving_model", self.pipeline_name)

    @classmethod
    def from_args(
        cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> PipelineConfig:
        """Builds the configuration from flags (`argv`, without the program name) and `NER_*`
        environment variables. `--help` lists them."""
        environ = os.environ if environ is None else environ
        args = _parser(environ).parse_args(list(argv or []))
        schema_path = _absolute(args.schema)
        tagger = TaggerConfig(
            preprocessing=PreprocessingConfig(
                tag_names=tags_from_schema(schema_path),
                max_length=args.max_length,
                max_word_length=args.max_word_length,
                token_frequency_threshold=args.token_frequency_threshold,
                pretrained_vocabulary_size=args.pretrained_vocabulary_size,
            ),
            model=ModelConfig(
                word_embedding_dim=args.word_embedding_dim,
                pretrained_embeddings_path=_absolute(args.embeddings) if args.embeddings else None,
                lstm_units=args.lstm_units,
                char_filters=args.char_filters,
                output=args.output,
            ),
            training=TrainingConfig(
                batch_size=args.batch_size,
                epochs=args.epochs,
                learning_rate=args.learning_rate,
                early_stopping_patience=args.patience,
            ),
        )
        return cls(
            pipeline_name=args.pipeline_name,
            data_dir=_absolute(args.data_dir),
            train_pattern=args.train_pattern,
            eval_pattern=args.eval_pattern,
            output_dir=_absolute(args.output_dir),
            schema_path=schema_path,
            tagger=tagger,
            min_entity_f1=args.min_entity_f1,
            beam_pipeline_args=tuple(shlex.split(args.beam_args)),
            enable_cache=not args.no_cache,
            baseline=not args.no_baseline,
            explicit_pipeline_root=_absolute(args.pipeline_root) if args.pipeline_root else None,
            explicit_serving_dir=_absolute(args.serving_dir) if args.serving_dir else None,
            span_window=args.span_window,
            warm_start=args.warm_start,
        )


def _non_empty(flag: str, variable: str):
    """An argparse type: the string, unless empty or blank (an error naming flag and variable)."""

    def parse(value: str) -> str:
        if not value.strip():
            raise ValueError(
                f"Invalid value for `{flag}` / ${variable}. Expected a non-empty value (leave it "
                f"unset for the default). Received: {value!r}"
            )
        return value

    parse.__name__ = "non-empty string"
    return parse


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.local_runner",
        description="Runs the NER pipeline (CoNLL files in, blessed serving model out) locally.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )

    def add(flag: str, default, value_type=str, help_text: str = ""):
        variable = "NER_" + flag.lstrip("-").upper().replace("-", "_")
        if value_type is str and default != "":
            # Empty would not mean "unset" but something else (the current folder, no files).
            value_type = _non_empty(flag, variable)
        raw = environ.get(variable)
        try:
            value = default if raw is None else value_type(raw)
        except ValueError as error:
            if value_type not in (int, float):
                raise
            raise _invalid(variable, f"a {value_type.__name__}", raw) from error
        parser.add_argument(flag, type=value_type, default=value, help=f"{help_text} (${variable})")

    add("--pipeline-name", "ner_bilstm_crf", str, "pipeline name")
    add("--data-dir", DEFAULT_DATA_DIR, str, "folder of the CoNLL files")
    add("--train-pattern", "train.conll", str, "training files, glob relative to --data-dir")
    add("--eval-pattern", "eval.conll", str, "evaluation files, glob relative to --data-dir")
    add("--output-dir", DEFAULT_OUTPUT_DIR, str, "where artifacts, metadata and models go")
    add("--pipeline-root", "", str, "artifacts here instead of under --output-dir")
    add("--serving-dir", "", str, "push here instead of under --output-dir")
    add("--schema", DEFAULT_SCHEMA_PATH, str, "curated schema (its tags domain is the tag set)")
    # Model and training defaults are the dataclasses' own.
    preprocessing = {f.name: f.default for f in dataclasses.fields(PreprocessingConfig)}
    model, training = ModelConfig(), TrainingConfig()
    add("--max-length", preprocessing["max_length"], int, "tokens per sentence (longer: cut)")
    add("--max-word-length", preprocessing["max_word_length"], int, "characters per token")
    add(
        "--token-frequency-threshold",
        preprocessing["token_frequency_threshold"],
        int,
        "minimum count of a word in the vocabulary",
    )
    add("--word-embedding-dim", model.word_embedding_dim, int, "word embedding size")
    add("--embeddings", "", str, "optional GloVe text file (.txt or .txt.gz) of that size")
    add(
        "--pretrained-vocabulary-size",
        preprocessing["pretrained_vocabulary_size"],
        int,
        "with --embeddings: its first N words join the vocabulary, seen in training or not",
    )
    add("--lstm-units", model.lstm_units, int, "BiLSTM units per direction")
    add("--char-filters", model.char_filters, int, "character CNN filters")
    add("--output", model.output, str, "output layer: crf, or softmax (ablation)")
    add("--batch-size", training.batch_size, int, "sentences per step")
    add("--epochs", training.epochs, int, "maximum epochs")
    add("--learning-rate", training.learning_rate, float, "Adam learning rate")
    add("--patience", training.early_stopping_patience, int, "early stopping patience (epochs)")
    add("--min-entity-f1", DEFAULT_MIN_ENTITY_F1, float, "blessing floor: eval entity F1, percent")
    add("--span-window", 1, int, "train on the last N spans ({SPAN} in the patterns)")
    add("--beam-args", " ".join(DEFAULT_BEAM_ARGS), str, "Beam pipeline options")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        default=switch_from_environment(environ, "NER_NO_CACHE"),
        help="run every component even if its inputs did not change ($NER_NO_CACHE)",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        default=switch_from_environment(environ, "NER_NO_BASELINE"),
        help="bless on --min-entity-f1 alone, without comparing with the latest blessed model "
        "($NER_NO_BASELINE)",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="if another run of this pipeline is in progress, wait for it to end (default: "
        "exit at once with status 75)",
    )
    parser.add_argument(
        "--warm-start",
        action="store_true",
        default=switch_from_environment(environ, "NER_WARM_START"),
        help="start training from the latest blessed model's weights, embedding rows matched by "
        "word ($NER_WARM_START)",
    )
    return parser
