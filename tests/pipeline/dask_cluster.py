"""A real `dask.distributed` cluster on loopback for the Dask runner tests, with a watchdog.

`make test` runs the tests that use it (marker `dask_cluster`) on their own, after the other tests.
Three times a run of the data components on such a cluster stopped: in a CI run of 2026-12-03
beside a training test, Transform made no progress for over 20 minutes (the workers near idle;
once killed by hand, the nannies restarted them and the work finished); in the CI run of
2026-12-07, alone, these tests ran for an hour until CI's limit, with nothing in the log to say
where (the old watchdog's questions to the cluster had no bound, and its report was captured);
on 2026-12-08, here, this watchdog's report showed StatisticsGen waiting for its results while
the scheduler held nothing unfinished and the workers were idle: a race between the clients of
successive runs, which `pipeline.dask_runner` now avoids (one client per scheduler; its comment
says more). A restart of the workers does not end such a wait; the second stall then fails the
test.

So a test must neither hang nor lose the evidence. When no task on the cluster has changed state
for `stall_seconds` (the scheduler's transition counter), the watchdog prints what the scheduler
has unfinished and where, every worker's running task and threads' stacks, the workers' memory
and this process's threads, each question bounded by `EVIDENCE_SECONDS`. Then, `restarts` times,
it kills the worker processes and their nannies start new ones, as in any Dask deployment, and
the scheduler runs the lost tasks again (the test warns that it happened); after that it closes
the cluster, and the test fails. The report goes to the process's own stderr (`sys.__stderr__`),
which `make test` leaves uncaptured for these tests (`--capture=sys`), so that it reaches the log
even if the run is then killed from outside.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import warnings
from unittest import mock

from pipeline.config import REPOSITORY_ROOT

# How long no task may change state before the watchdog acts. The whole Dask part of the data
# components' test takes about 40 s on this project's machines, one task a few seconds at most.
STALL_SECONDS = 300.0
# How long each step of the watchdog's evidence may take: a stuck worker may not answer at all.
EVIDENCE_SECONDS = 60.0


@contextlib.contextmanager
def loopback_cluster(n_workers: int = 2, stall_seconds: float = STALL_SECONDS, restarts: int = 1):
    """Yields `(cluster, client)`: a scheduler and `n_workers` worker processes on 127.0.0.1.

    The workers unpickle the components' functions, so they import this repository's packages:
    PYTHONPATH is set for the processes they start, while the cluster lives.

    Raises:
        AssertionError: on leaving, if the cluster stalled more than `restarts` times (after the
            body has run or failed).
    """
    import distributed

    # This folder too: the watchdog runs this module's functions on the workers.
    here = os.path.dirname(os.path.abspath(__file__))
    python_path = os.pathsep.join(
        p for p in (REPOSITORY_ROOT, here, os.environ.get("PYTHONPATH", "")) if p
    )
    stalls: list[float] = []
    gave_up = threading.Event()
    done = threading.Event()
    # Set for the worker processes only while the cluster lives; the test's process gets its own back.
    with mock.patch.dict(os.environ, {"PYTHONPATH": python_path}), distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        started = time.monotonic()

        def stalled() -> bool:
            """Waits until the body is done (False) or the scheduler's tasks have changed state
            for no `stall_seconds` (True). The scheduler lives in this process."""
            seen, since = -1, time.monotonic()
            while not done.wait(min(5.0, stall_seconds / 4)):
                counter = cluster.scheduler.transition_counter
                if counter != seen:
                    seen, since = counter, time.monotonic()
                elif time.monotonic() - since >= stall_seconds:
                    return True
            return False

        def watch():
            while stalled():
                stalls.append(round(time.monotonic() - started))
                _report_stall(client, stall_seconds)
                if len(stalls) <= restarts:
                    _say(f"dask_cluster watchdog: stall {len(stalls)}; restarting the workers")
                    _kill_worker_processes(cluster)
                    continue
                gave_up.set()
                _say("dask_cluster watchdog: closing the cluster")
                # Closing can hang too where a worker no longer answers: bounded.
                if not _finished_within(EVIDENCE_SECONDS, cluster.close):
                    _kill_worker_processes(cluster)
                return

        watchdog = threading.Thread(target=watch, name="dask_cluster_watchdog", daemon=True)
        watchdog.start()
        try:
            yield cluster, client
        finally:
            done.set()
            # The runs' own client, before its scheduler goes (it would try to reconnect).
            from pipeline.dask_runner import close_clients

            close_clients(cluster.scheduler_address)
    assert not gave_up.is_set(), (
        f"the Dask cluster made no progress for {stall_seconds:.0f} s, {len(stalls)} times "
        "(its state is in stderr)"
    )
    if stalls:
        warnings.warn(
            f"the Dask cluster stalled {len(stalls)} time(s) (at {stalls} s) and went on after "
            "its workers were restarted; its state is in stderr",
            stacklevel=3,
        )


def _finished_within(seconds: float, function) -> bool:
    """Runs `function()` in a daemon thread; whether it returned within `seconds` (a call that
    hangs is left behind)."""
    thread = threading.Thread(target=function, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def _say(message: str) -> None:
    print(message, file=sys.__stderr__, flush=True)


def _thread_stacks() -> dict[str, str]:
    """Every thread's Python stack in this process (run on the workers)."""
    import traceback

    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return {
        f"{names.get(ident, '?')} ({ident})": "".join(traceback.format_stack(frame))
        for ident, frame in sys._current_frames().items()
    }


def _unfinished_tasks(dask_scheduler) -> dict[str, list[str]]:
    """The scheduler's tasks not yet in memory, by state, with the worker processing each."""
    tasks: dict[str, list[str]] = {}
    for key, task in dask_scheduler.tasks.items():
        if task.state not in ("memory", "released", "forgotten"):
            worker = task.processing_on.address if task.processing_on else ""
            tasks.setdefault(task.state, []).append(f"{key} {worker}".strip())
    return tasks


def _worker_memory(dask_scheduler) -> dict[str, int]:
    """Each worker's process memory (bytes) as the scheduler last heard it."""
    return {address: ws.memory.process for address, ws in dask_scheduler.workers.items()}


def _report_stall(client, stall_seconds: float) -> None:
    """Prints what the scheduler and each worker were doing to this process's own stderr.

    Each question to the cluster is asked in a thread given `EVIDENCE_SECONDS`: a question that
    gets no answer is reported as such (that is evidence too), and the watchdog goes on.
    """
    import faulthandler

    questions = {
        "unfinished tasks (scheduler)": lambda: client.run_on_scheduler(_unfinished_tasks),
        "processing (scheduler)": lambda: {k: list(v) for k, v in client.processing().items()},
        "running tasks' stacks (workers)": client.call_stack,
        "threads' stacks (workers)": lambda: client.run(_thread_stacks),
        "memory (workers)": lambda: client.run_on_scheduler(_worker_memory),
    }
    report: dict = {}
    for name, question in questions.items():
        answer: dict = {}

        def ask(question=question, answer=answer):
            try:
                answer["value"] = question()
            except Exception as error:  # the report is evidence; a failed part must not hide it
                answer["value"] = f"failed: {error!r}"

        _finished_within(EVIDENCE_SECONDS, ask)
        report[name] = answer.get("value", f"no answer within {EVIDENCE_SECONDS:.0f} s")
    print(
        f"dask_cluster watchdog: no task changed state for {stall_seconds:.0f} s; the cluster's "
        f"state:\n{json.dumps(report, indent=1, default=str)}\nthis process's threads:",
        file=sys.__stderr__,
        flush=True,
    )
    faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)


def _kill_worker_processes(cluster) -> None:
    """Kills each worker process and its children (SIGKILL); their nannies, in this process,
    start new ones unless the cluster is closing."""
    import psutil

    for nanny in list(cluster.workers.values()):
        pid = getattr(getattr(nanny, "process", None), "pid", None)
        if not pid:
            continue
        with contextlib.suppress(psutil.Error):
            worker = psutil.Process(pid)
            for process in [*worker.children(recursive=True), worker]:
                with contextlib.suppress(psutil.Error):
                    process.kill()
