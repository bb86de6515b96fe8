"""A real `dask.distributed` cluster on loopback for the Dask runner tests, with a watchdog.

`make test` runs the tests that use it (marker `dask_cluster`) on their own, after the other tests:
in a CI run of 2026-12-03 beside a training test on the two cores, the data components'
Transform on such a cluster stopped making progress for over 20 minutes (the workers near idle;
once killed by hand, the nannies restarted them and the work finished). A test must fail rather
than hang, and leave the evidence: when `stall_seconds` pass, the watchdog prints what each
worker is running (`Client.call_stack`), what the scheduler thinks each holds, and each worker's
memory, then closes the cluster, and the test fails with that in its output.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from unittest import mock

from pipeline.config import REPOSITORY_ROOT


@contextlib.contextmanager
def loopback_cluster(n_workers: int = 2, stall_seconds: float = 600.0):
    """Yields `(cluster, client)`: a scheduler and `n_workers` worker processes on 127.0.0.1.

    The workers unpickle the components' functions, so they import this repository's packages:
    PYTHONPATH is set for the processes they start, while the cluster lives.

    Raises:
        AssertionError: on leaving, if the watchdog fired (after the body has run or failed).
    """
    import distributed

    python_path = os.pathsep.join(
        p for p in (REPOSITORY_ROOT, os.environ.get("PYTHONPATH", "")) if p
    )
    fired = threading.Event()
    done = threading.Event()
    # Set for the worker processes only while the cluster lives; the test's process gets its own back.
    with mock.patch.dict(os.environ, {"PYTHONPATH": python_path}), distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip

        def watch():
            if done.wait(stall_seconds):
                return
            fired.set()
            report = {"processing": {}, "call_stack": {}, "memory": {}}
            try:
                report["processing"] = {k: list(v) for k, v in client.processing().items()}
                report["call_stack"] = client.call_stack()
                report["memory"] = {
                    address: worker.get("metrics", {}).get("memory")
                    for address, worker in client.scheduler_info()["workers"].items()
                }
            except (
                Exception
            ) as error:  # the report is evidence; its failure must not hide the stall
                report["error"] = repr(error)
            print(
                f"dask_cluster watchdog: no result after {stall_seconds:.0f} s; the cluster's "
                f"state:\n{json.dumps(report, indent=1, default=str)}",
                file=sys.stderr,
                flush=True,
            )
            cluster.close()  # the computation fails, and the test with it

        watchdog = threading.Thread(target=watch, name="dask_cluster_watchdog", daemon=True)
        watchdog.start()
        try:
            yield cluster, client
        finally:
            done.set()
    assert not fired.is_set(), (
        f"the Dask cluster made no progress for {stall_seconds:.0f} s (its state is in stderr)"
    )
