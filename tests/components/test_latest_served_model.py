"""LatestServedModel's logic against real serving folders: none, one and several versions, some
half-written (as an interrupted or ongoing push leaves them)."""

from __future__ import annotations

import os

from tfx.types import standard_artifacts

from components.latest_served_model import (
    SERVED_VERSION_PROPERTY,
    copy_latest_served_model,
    has_served_model,
)
from serving.model_version import newest_whole_version


def _version(serving_dir, name: str, whole: bool = True, marker: str = "") -> None:
    folder = serving_dir / name
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.index").write_text(marker or name)
    if whole:
        (folder / "saved_model.pb").write_text(f"model {name}")


def _model(tmp_path):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "artifact")
    return model


def test_no_serving_folder_or_an_empty_one_gives_no_baseline(tmp_path):
    for serving_dir in (tmp_path / "absent", tmp_path / "empty"):
        if serving_dir.name == "empty":
            serving_dir.mkdir()
        model = _model(tmp_path)
        assert copy_latest_served_model(str(serving_dir), model) is None
        assert model.get_string_custom_property(SERVED_VERSION_PROPERTY) == ""
        assert not has_served_model(model)
        assert not os.path.exists(os.path.join(model.uri, "Format-Serving"))


def test_one_version_is_copied_where_the_evaluator_reads_it(tmp_path):
    serving_dir = tmp_path / "serving"
    _version(serving_dir, "1700000000")
    model = _model(tmp_path)
    assert copy_latest_served_model(str(serving_dir), model) == "1700000000"
    copied = os.path.join(model.uri, "Format-Serving")
    assert open(os.path.join(copied, "saved_model.pb")).read() == "model 1700000000"
    assert os.path.exists(os.path.join(copied, "variables", "variables.index"))
    assert has_served_model(model)


def test_the_newest_whole_version_wins_over_half_written_ones(tmp_path):
    serving_dir = tmp_path / "serving"
    _version(serving_dir, "1700000000")
    _version(serving_dir, "1700000300")
    _version(serving_dir, "999")  # older: versions compare as numbers, not as text
    _version(serving_dir, "1800000000", whole=False)  # being written on GCS: no saved_model.pb
    _version(serving_dir, ".1900000000.incomplete")  # being written locally: hidden
    (serving_dir / "1750000000.report.html").write_text("<html>")  # a file, not a version
    assert newest_whole_version(str(serving_dir)) == 1700000300
    model = _model(tmp_path)
    assert copy_latest_served_model(str(serving_dir), model) == "1700000300"
    text = open(os.path.join(model.uri, "Format-Serving", "saved_model.pb")).read()
    assert text == "model 1700000300"
