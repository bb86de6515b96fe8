"""The scheduler without TFX runs: span discovery, the flock, and when a span is recorded."""

import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline import scheduler
from pipeline.config import PipelineConfig

TRAIN = "span-{SPAN}/train.conll"
EVAL = "span-{SPAN}/eval.conll"


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Paris\tB-location\n\n")


def config(tmp_path) -> PipelineConfig:
    return PipelineConfig.from_args(
        [
            "--data-dir", str(tmp_path / "data"),
            "--output-dir", str(tmp_path / "outputs"),
            "--train-pattern", TRAIN,
            "--eval-pattern", EVAL,
        ],
        environ={},
    )  # fmt: skip


def test_spans_are_digits_and_complete_only_with_every_split(tmp_path):
    data = tmp_path / "data"
    for span in (1, 2, 10):
        touch(data / f"span-{span}" / "train.conll")
    for span in (1, 2):
        touch(data / f"span-{span}" / "eval.conll")
    touch(data / "span-x" / "train.conll")  # not a span
    touch(data / "span-3" / "other.conll")
    assert scheduler.spans_matching(str(data), TRAIN) == {1, 2, 10}
    # Span 10 has no eval file yet: 10 > 2 numerically, but incomplete.
    assert scheduler.latest_complete_span(str(data), (TRAIN, EVAL)) == 2
    touch(data / "span-10" / "eval.conll")
    assert scheduler.latest_complete_span(str(data), (TRAIN, EVAL)) == 10
    assert scheduler.latest_complete_span(str(tmp_path / "empty"), (TRAIN, EVAL)) is None


def test_pattern_without_span_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"Invalid value for `pattern`. Expected a glob holding"):
        scheduler.spans_matching(str(tmp_path), "train.conll")


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def test_lock_is_exclusive_and_freed_when_its_holder_is_killed(tmp_path):
    path = str(tmp_path / "retrain.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, path], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert not scheduler.RetrainLock(path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The file is still there (stale), yet the lock is free.
    assert os.path.exists(path)
    lock = scheduler.RetrainLock(path)
    assert lock.acquire()
    assert not scheduler.RetrainLock(path).acquire()  # another open file description
    lock.release()


def test_tick_runs_on_a_new_span_and_records_it_only_on_success(tmp_path):
    cfg = config(tmp_path)
    paths = scheduler.SchedulerPaths.for_config(cfg)
    calls = []

    def runner(status):
        def run(argv, pass_fds):
            calls.append(argv)
            # The run holds the lock: a second tick during it does nothing.
            assert scheduler.tick(cfg, argv, runner=None) == scheduler.EXIT_LOCKED
            return status

        return run

    assert scheduler.tick(cfg, ["--x"], runner(0)) == 0  # no data
    assert calls == []
    touch(tmp_path / "data" / "span-1" / "train.conll")
    touch(tmp_path / "data" / "span-1" / "eval.conll")
    assert scheduler.tick(cfg, ["--x"], runner(1)) == 1  # failed: not recorded
    assert scheduler.read_last_span(paths) is None
    assert scheduler.tick(cfg, ["--x"], runner(0)) == 0
    assert scheduler.read_last_span(paths) == 1
    assert len(calls) == 2
    assert scheduler.tick(cfg, ["--x"], runner(0)) == 0  # nothing new
    assert len(calls) == 2
    touch(tmp_path / "data" / "span-2" / "train.conll")
    touch(tmp_path / "data" / "span-2" / "eval.conll")
    assert scheduler.tick(cfg, ["--x"], runner(0)) == 0
    assert scheduler.read_last_span(paths) == 2
    assert calls == [["--x"]] * 3


def test_child_run_keeps_the_lock_after_the_scheduler_dies(tmp_path):
    cfg = config(tmp_path)
    lock_path = scheduler.SchedulerPaths.for_config(cfg).lock_path
    lock = scheduler.RetrainLock(lock_path)
    assert lock.acquire()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(lock.fd,)
    )
    try:
        os.close(lock.fd)  # as if the scheduler died: only the child holds the file now
        lock.fd = None
        time.sleep(0.1)
        assert not scheduler.RetrainLock(lock_path).acquire()
    finally:
        child.kill()
        child.wait()
    assert scheduler.RetrainLock(lock_path).acquire()


def test_main_refuses_patterns_without_span(tmp_path):
    with pytest.raises(ValueError, match="Expected patterns holding"):
        scheduler.main(["--once", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path)])
