"""The Dask cluster tests' watchdog (tests/pipeline/dask_cluster.py), on tasks that stall: it
restarts the workers once (the test goes on, with a warning), and a second stall fails the test
within a bounded time. Either way the report names what the worker was running."""

from __future__ import annotations

import os
import time

import pytest
from dask_cluster import EVIDENCE_SECONDS, loopback_cluster

distributed = pytest.importorskip("distributed")
pytestmark = [pytest.mark.slow, pytest.mark.dask_cluster]


def _never_ends():
    time.sleep(3600)


def _stalls_the_first_time(marker: str) -> int:
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(3600)
    return 42


def test_a_task_that_stalls_once_goes_on_after_a_restart_with_a_warning(tmp_path, capfd):
    with pytest.warns(UserWarning, match="stalled 1 time"):
        with loopback_cluster(n_workers=1, stall_seconds=5, restarts=1) as (_, client):
            assert client.submit(_stalls_the_first_time, str(tmp_path / "marker")).result() == 42
    report = capfd.readouterr().err
    assert "dask_cluster watchdog: no task changed state for 5 s" in report
    assert "_stalls_the_first_time" in report  # the worker's stack of the running task
    assert "stall 1; restarting the workers" in report


def test_a_task_that_stalls_again_fails_the_test_in_bounded_time(capfd):
    started = time.monotonic()
    with pytest.raises(AssertionError, match="no progress for 5 s, 2 times"):
        with loopback_cluster(n_workers=1, stall_seconds=5, restarts=1) as (_, client):
            # The cluster is closed under the wait.
            with pytest.raises(distributed.client.FutureCancelledError):
                client.submit(_never_ends).result()
    # Two stalls (each seen within 5 s and a check), each with its evidence (five questions, each
    # bounded), and the close, bounded.
    assert time.monotonic() - started < 2 * (5 + 2 + 5 * EVIDENCE_SECONDS) + EVIDENCE_SECONDS
    report = capfd.readouterr().err
    assert report.count("dask_cluster watchdog: no task changed state for 5 s") == 2
    assert "_never_ends" in report
    assert "closing the cluster" in report
