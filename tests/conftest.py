"""Test configuration shared by every test directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
