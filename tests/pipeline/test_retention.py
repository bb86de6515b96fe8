"""Retention of serving versions, on real folders (the pipeline side is test_retention_e2e.py)."""

import os
import signal
import subprocess
import sys

import pytest

from pipeline.config import REPOSITORY_ROOT, PipelineConfig
from pipeline.retention import prune_serving_versions
from serving.model_version import whole_versions


def make_version(serving_dir, name, whole=True):
    folder = serving_dir / name
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(b"w" * 1000)
    if whole:
        (folder / "saved_model.pb").write_bytes(b"graph")


def test_keeps_the_newest_versions_and_what_is_being_written(tmp_path):
    serving = tmp_path / "serving"
    for name in ("1", "2", "003", "10"):
        make_version(serving, name)
        (serving / f"{name}.report.html").write_text("report")
    make_version(serving, ".11.incomplete", whole=False)  # the Pusher writing locally
    make_version(serving, "12", whole=False)  # a copy on an object store, saved_model.pb last
    for index in range(4):
        report = serving / f"not-pushed-{index}.report.html"
        report.write_text("rejected")
        os.utime(report, (1_000_000 + index, 1_000_000 + index))

    result = prune_serving_versions(str(serving), keep=2)

    assert whole_versions(str(serving)) == [3, 10]
    assert sorted(os.path.basename(p) for p in result.removed_versions) == ["1", "2"]
    assert sorted(os.listdir(serving)) == sorted(
        [
            ".11.incomplete",
            "003", "003.report.html",
            "10", "10.report.html",
            "12",
            "not-pushed-2.report.html", "not-pushed-3.report.html",
        ]
    )  # fmt: skip
    assert result.freed_bytes >= 2 * 1000


def test_zero_keeps_everything(tmp_path):
    serving = tmp_path / "serving"
    for name in ("1", "2", "3"):
        make_version(serving, name)
    assert prune_serving_versions(str(serving), keep=0).removed_versions == ()
    assert whole_versions(str(serving)) == [1, 2, 3]
    assert prune_serving_versions(str(tmp_path / "missing"), keep=1).removed_versions == ()


def test_a_prune_killed_after_its_rename_hides_the_version_and_is_finished_later(tmp_path):
    """A real process, killed (SIGKILL) between renaming version 1 away and deleting it."""
    serving = tmp_path / "serving"
    for name in ("1", "2", "3"):
        make_version(serving, name)
    code = (
        "import sys; from pipeline.retention import prune_serving_versions; "
        "prune_serving_versions(sys.argv[1], keep=1)"
    )
    killed = subprocess.run(
        [sys.executable, "-c", code, str(serving)],
        env={**os.environ, "PYTHONPATH": REPOSITORY_ROOT, "NER_TEST_KILL_PRUNING_AFTER": "1"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # Version 1 is no longer a version (readers never see it half-deleted); 2 is untouched.
    assert whole_versions(str(serving)) == [2, 3]
    assert sorted(os.listdir(serving)) == [".1.pruning", "2", "3"]
    assert os.path.getsize(serving / "2" / "variables" / "variables.data-00000-of-00001") == 1000

    prune_serving_versions(str(serving), keep=1)
    assert sorted(os.listdir(serving)) == ["3"]


@pytest.mark.parametrize(
    "argv, environ, message",
    [
        (["--keep-versions", "-1"], {}, "keep_versions"),
        ([], {"NER_KEEP_RUNS": "two"}, "NER_KEEP_RUNS"),
    ],
)
def test_bad_retention_settings(argv, environ, message):
    with pytest.raises(ValueError, match=message):
        PipelineConfig.from_args(argv, environ=environ)


def test_retention_defaults_and_flags():
    default = PipelineConfig.from_args([], environ={})
    assert (default.keep_versions, default.keep_runs) == (5, 3)
    config = PipelineConfig.from_args(["--keep-versions", "0"], environ={"NER_KEEP_RUNS": "7"})
    assert (config.keep_versions, config.keep_runs) == (0, 7)
