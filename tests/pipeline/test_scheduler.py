"""The scheduler: span discovery, the flock, when a span is recorded, and bounded retries (the
last test with real, failing child runs)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline import scheduler
from pipeline.config import REPOSITORY_ROOT, PipelineConfig
from pipeline.run_lock import EXIT_LOCKED, RunLock

TRAIN = "span-{SPAN}/train.conll"
EVAL = "span-{SPAN}/eval.conll"


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Paris\tB-location\n\n")


def add_span(tmp_path, span):
    """A complete span: both split files of `span-<span>/` under the data folder."""
    touch(tmp_path / "data" / f"span-{span}" / "train.conll")
    touch(tmp_path / "data" / f"span-{span}" / "eval.conll")


def config(tmp_path) -> PipelineConfig:
    return PipelineConfig.from_args(
        [
            "--data-dir", str(tmp_path / "data"),
            "--output-dir", str(tmp_path / "outputs"),
            "--train-pattern", TRAIN,
            "--eval-pattern", EVAL,
            "--no-embeddings",
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
        assert not RunLock(path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The file is still there (stale), yet the lock is free.
    assert os.path.exists(path)
    lock = RunLock(path)
    assert lock.acquire()
    assert not RunLock(path).acquire()  # another open file description
    lock.release()


def test_tick_runs_on_a_new_span_and_records_it_only_on_success(tmp_path):
    cfg = config(tmp_path)
    paths = scheduler.SchedulerPaths.for_config(cfg)
    calls = []

    def runner(status):
        def run(argv, pass_fds):
            calls.append(argv)
            # The run holds the lock: a second tick during it does nothing.
            assert scheduler.tick(cfg, argv, runner=None) == EXIT_LOCKED
            return status

        return run

    assert scheduler.tick(cfg, ["--x"], runner(0)) == 0  # no data
    assert calls == []
    add_span(tmp_path, 1)
    assert scheduler.tick(cfg, ["--x"], runner(1)) == 1  # failed: not recorded
    assert scheduler.read_last_span(paths) is None
    assert scheduler.tick(cfg, ["--x"], runner(0)) == 0
    assert scheduler.read_last_span(paths) == 1
    assert len(calls) == 2
    assert scheduler.tick(cfg, ["--x"], runner(0)) == 0  # nothing new
    assert len(calls) == 2
    add_span(tmp_path, 2)
    assert scheduler.tick(cfg, ["--x"], runner(0)) == 0
    assert scheduler.read_last_span(paths) == 2
    assert calls == [["--x"]] * 3


def test_child_run_keeps_the_lock_after_the_scheduler_dies(tmp_path):
    cfg = config(tmp_path)
    lock_path = scheduler.SchedulerPaths.for_config(cfg).lock_path
    lock = RunLock(lock_path)
    assert lock.acquire()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(lock.fd,)
    )
    try:
        os.close(lock.fd)  # as if the scheduler died: only the child holds the file now
        lock.fd = None
        time.sleep(0.1)
        assert not RunLock(lock_path).acquire()
    finally:
        child.kill()
        child.wait()
    assert RunLock(lock_path).acquire()


def test_main_refuses_patterns_without_span(tmp_path):
    with pytest.raises(ValueError, match="Expected patterns holding"):
        scheduler.main(["--once", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path)])


def test_a_span_that_keeps_failing_is_given_up_after_max_attempts(tmp_path, caplog):
    """The counting and skipping, with `runner` standing in for the child run (exit statuses
    chosen here) so that it takes milliseconds; the test below runs real failing children."""
    cfg = config(tmp_path)
    paths = scheduler.SchedulerPaths.for_config(cfg)
    calls = []

    def runner(status):
        def run(argv, pass_fds):
            calls.append(status)
            return status

        return run

    for span in (1, 2):
        add_span(tmp_path, span)
    assert scheduler.tick(cfg, [], runner(0)) == 0
    assert scheduler.read_last_span(paths) == 2
    add_span(tmp_path, 3)
    assert scheduler.tick(cfg, [], runner(2)) == 2
    assert scheduler.read_failure(paths, 3)["status"] == "retrying"
    assert scheduler.tick(cfg, [], runner(-9)) == -9  # killed by a signal: an attempt too
    assert scheduler.read_failure(paths, 3)["attempts"] == 2
    with caplog.at_level("ERROR", logger="pipeline.scheduler"):
        assert scheduler.tick(cfg, [], runner(1)) == 1
    assert "failed 3 times (last exit status 1): giving up" in caplog.text
    assert calls == [0, 2, -9, 1]
    # Read back from the file itself.
    with open(paths.state_path, encoding="utf-8") as file:
        state = json.load(file)
    assert state["last_span"] == 2
    record = state["failures"]["3"]
    assert (record["attempts"], record["last_exit_status"], record["status"]) == (3, 1, "failed")
    # Given up: later checks run nothing.
    caplog.clear()
    with caplog.at_level("WARNING", logger="pipeline.scheduler"):
        assert scheduler.tick(cfg, [], runner(0)) == 0
    assert "Span 3 failed 3 times" in caplog.text and "not retried" in caplog.text
    assert calls == [0, 2, -9, 1]
    # Deleting the span's record gives it new attempts; success forgets the failures.
    del state["failures"]["3"]
    scheduler.write_state(paths, state)
    assert scheduler.tick(cfg, [], runner(0)) == 0
    assert calls == [0, 2, -9, 1, 0]
    assert scheduler.read_state(paths).keys() == {"last_span", "finished_at"}
    assert scheduler.read_last_span(paths) == 3


def test_a_newer_span_is_trained_after_a_failed_one(tmp_path):
    cfg = config(tmp_path)
    paths = scheduler.SchedulerPaths.for_config(cfg)
    add_span(tmp_path, 1)
    assert scheduler.tick(cfg, [], lambda argv, fds: 1, max_attempts=1) == 1
    assert scheduler.read_failure(paths, 1)["status"] == "failed"
    add_span(tmp_path, 2)
    assert scheduler.tick(cfg, [], lambda argv, fds: 0, max_attempts=1) == 0
    assert scheduler.read_last_span(paths) == 2
    # The failed span's record stays, as history; it is older than the last trained span.
    assert scheduler.read_failure(paths, 1)["status"] == "failed"


@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_bad_max_attempts(tmp_path, value):
    with pytest.raises(ValueError, match=r"Invalid value for `max_attempts`. Expected a positive"):
        scheduler.tick(config(tmp_path), [], lambda argv, fds: 0, max_attempts=value)


def write_bad_span(data, span):
    """A span whose training file has a line without a tag: ConllExampleGen stops the run."""
    (data / f"span-{span}").mkdir(parents=True)
    (data / f"span-{span}" / "train.conll").write_text("Paris\tB-location\nvisited\n\n")
    (data / f"span-{span}" / "eval.conll").write_text("Paris\tB-location\n\n")


@pytest.mark.slow
def test_real_runs_that_keep_failing_are_given_up(tmp_path):
    """`python -m pipeline.scheduler --once` with real child runs (`pipeline.local_runner`) that
    fail on bad data. The runs stop in their first pass over the data (`pipeline.learned_tags`),
    before any component: their exit status and message are the evidence of what ran."""
    from tfx.orchestration import metadata

    cfg = config(tmp_path)
    paths = scheduler.SchedulerPaths.for_config(cfg)
    environment = {**os.environ, "PYTHONPATH": REPOSITORY_ROOT}
    command = [
        sys.executable, "-m", "pipeline.scheduler", "--once", "--max-attempts", "2",
        "--data-dir", cfg.data_dir, "--output-dir", cfg.output_dir,
        "--train-pattern", TRAIN, "--eval-pattern", EVAL, "--no-embeddings",
    ]  # fmt: skip

    def check():
        return subprocess.run(
            command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600
        )

    def executions():
        """Executions in the pipeline's metadata store (none: no component ever started)."""
        if not os.path.exists(cfg.metadata_path):
            return 0
        connection = metadata.sqlite_metadata_connection_config(cfg.metadata_path)
        with metadata.Metadata(connection) as handle:
            return len(handle.store.get_executions())

    write_bad_span(tmp_path / "data", 1)
    first = check()
    assert first.returncode != 0, first.stderr[-2000:]
    # The child's ConllFormatError, file and line, in one line, before any component ran.
    assert "error: " in first.stderr and "span-1/train.conll:2: " in first.stderr
    assert "Traceback" not in first.stderr, first.stderr[-3000:]
    assert first.returncode == 2
    record = scheduler.read_failure(paths, 1)
    assert record["status"] == "retrying" and record["attempts"] == 1
    assert record["last_exit_status"] == first.returncode
    assert executions() == 0

    second = check()
    assert second.returncode == first.returncode
    assert "span-1/train.conll:2: " in second.stderr  # the child ran again
    assert "failed 2 times" in second.stderr and "giving up" in second.stderr
    record = scheduler.read_failure(paths, 1)
    assert (record["status"], record["attempts"]) == ("failed", 2)
    assert executions() == 0

    # Given up: the check starts no run.
    third = check()
    assert third.returncode == 0, third.stderr[-2000:]
    assert "not retried until a newer span appears" in third.stderr
    assert "train.conll:2: " not in third.stderr  # no child run
    assert executions() == 0
    assert scheduler.read_failure(paths, 1)["attempts"] == 2

    # A newer span is run (failing too here: what matters is that it ran).
    write_bad_span(tmp_path / "data", 2)
    fourth = check()
    assert fourth.returncode == first.returncode
    assert "span-2/train.conll:2: " in fourth.stderr
    assert executions() == 0
    assert scheduler.read_failure(paths, 2)["attempts"] == 1
    assert scheduler.read_failure(paths, 1)["status"] == "failed"
    assert scheduler.read_last_span(paths) is None
