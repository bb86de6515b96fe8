"""On/off settings from the environment: one strict parser for every command."""

from __future__ import annotations

import pytest

from kubeflow.schedule_config import ScheduleConfig
from pipeline.config import PipelineConfig
from pipeline.switches import FALSE_WORDS, TRUE_WORDS, parse_switch


@pytest.mark.parametrize("word", [*TRUE_WORDS, "TRUE", " Yes ", "ON"])
def test_on_words(word):
    assert parse_switch("NER_X", word) is True


@pytest.mark.parametrize("word", [*FALSE_WORDS, "False", " no", "OFF"])
def test_off_words(word):
    assert parse_switch("NER_X", word) is False


@pytest.mark.parametrize("word", ["", " ", "maybe", "2", "enabled", "n"])
def test_anything_else_is_an_error_naming_the_variable(word):
    with pytest.raises(
        ValueError, match=r"Invalid value for `NER_X`. Expected one of true/1/yes/on"
    ):
        parse_switch("NER_X", word)


def test_the_words_mean_what_they_say_in_the_pipeline_config(tmp_path):
    def config(**environ):
        return PipelineConfig.from_args(["--output-dir", str(tmp_path)], environ=environ)

    # Read as "on" by the old parser: warm start on, regression gate off.
    assert config(NER_WARM_START="no").warm_start is False
    assert config(NER_NO_BASELINE="off").baseline is True
    assert config(NER_NO_CACHE="yes").enable_cache is False
    assert config().warm_start is False and config().baseline is True
    with pytest.raises(ValueError, match=r"`NER_WARM_START`"):
        config(NER_WARM_START="sometimes")


def test_kubeflow_schedule_switches_use_the_same_parser():
    base = ["--host", "http://127.0.0.1:1", "--package", "p.yaml"]
    assert ScheduleConfig.from_args(base, environ={"NER_KFP_CATCHUP": "off"}).catchup is False
    assert ScheduleConfig.from_args(base, environ={"NER_KFP_CATCHUP": "on"}).catchup is True
    with pytest.raises(ValueError, match=r"`NER_KFP_ENABLE_CACHING`"):
        ScheduleConfig.from_args(base, environ={"NER_KFP_ENABLE_CACHING": "y"})


@pytest.mark.parametrize("variable", ["NER_DATA_DIR", "NER_OUTPUT_DIR", "NER_SCHEMA",
                                      "NER_PIPELINE_NAME", "NER_TRAIN_PATTERN"])  # fmt: skip
def test_an_empty_value_that_would_change_meaning_is_refused(variable):
    with pytest.raises(ValueError, match=rf"/ \${variable}\. Expected a non-empty value"):
        PipelineConfig.from_args([], environ={variable: ""})
