"""Test configuration shared by every test directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from pipeline.temporary_folders import folder_of_this_process

os.environ.setdefault(
    "TF_CPP_MIN_LOG_LEVEL", "2"
)  # keep TensorFlow's start-up chatter out of test logs

REPO = Path(__file__).resolve().parents[1]
# Real corpora and vectors that must not live in the repo (licences, size): the `shared/` folder
# beside the checkout (as on our machines and in CI), or wherever NER_SHARED_DIR points.
SHARED_DIR = Path(os.environ.get("NER_SHARED_DIR", REPO.parent / "shared"))

# `make test` runs the tests on two workers (`pytest -n 2 --dist loadgroup`). The tests of one
# module go to one worker, so that module- and session-scoped fixtures (a trained model, a
# Transform output, the Kubeflow image's environment) are built once; tests/serving/ shares one
# session-scoped model across its modules. The modules below run whole pipelines per test and
# share nothing between tests: those are spread over the workers test by test. Every test gets
# its own tmp_path, and the tests use ephemeral loopback ports only.
_SPREAD_TEST_BY_TEST = {
    "test_overlapping_and_killed_runs.py",
    "test_pipeline_e2e.py",
    "test_retraining_e2e.py",
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        path = Path(str(item.fspath))
        if path.name in _SPREAD_TEST_BY_TEST:
            group = item.nodeid
        elif path.parent.name == "serving":
            group = "tests/serving"
        else:
            group = str(path.relative_to(REPO))
        item.add_marker(pytest.mark.xdist_group(group))


# Every temporary file of the tests, theirs and the libraries' (TFX's package of itself for Beam
# workers, about 40 MB for each Beam component a test runs without this project's package; Beam's
# staging and job-server folders; TensorFlow's autograph files), goes to one folder of the run,
# removed when the run ends: a test run left about 1.7 GB in the system's temporary folder before.
# Set in the main process before xdist starts its workers, which inherit TMPDIR, as do the
# processes the tests start. pytest's own tmp_path folders stay where they were (the system's
# temporary folder, the last three runs kept), so a failed test's files are still there to read.
_TESTS_FOLDER_PREFIX = "ner-tests-"


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # an xdist worker: its TMPDIR is the main process's
        return
    system = tempfile.gettempdir()
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", system)  # pytest's tmp_path root: unchanged
    folder = folder_of_this_process(_TESTS_FOLDER_PREFIX, system)  # and those of killed runs: gone
    config._ner_tests_folder = (folder, os.environ.get("TMPDIR"), tempfile.tempdir)
    os.environ["TMPDIR"] = tempfile.tempdir = folder


def pytest_unconfigure(config):
    saved = getattr(config, "_ner_tests_folder", None)
    if saved is None:
        return
    folder, environment, module = saved
    if environment is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = environment
    tempfile.tempdir = module
    shutil.rmtree(folder, ignore_errors=True)
