"""Runs that overlap or die, with real `python -m pipeline.local_runner` processes on tiny data.

- A second run on the same output folder while one is in progress exits at once with status 75
  and a message naming the lock, or with `--wait` waits for the first and then runs (reusing its
  cached results): never two runs at once, never two pushes of the same model.
- A run killed with SIGKILL leaves its execution RUNNING in ML Metadata and its output folder on
  disk; the next run marks it CANCELED and removes the folder, so repeated kills leave nothing
  behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from test_pipeline_e2e import write_subset

from pipeline.config import REPOSITORY_ROOT, PipelineConfig
from pipeline.run_lock import EXIT_LOCKED

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SAMPLE_DIR = os.path.join(REPOSITORY_ROOT, "data", "sample")


def _argv(data_dir, output_dir) -> list[str]:
    return [
        "--data-dir", str(data_dir), "--output-dir", str(output_dir), "--max-length", "16",
        "--max-word-length", "8", "--word-embedding-dim", "16", "--no-embeddings", "--lstm-units", "8",
        "--char-filters", "8", "--epochs", "2", "--batch-size", "16", "--min-entity-f1", "0",
    ]  # fmt: skip


@pytest.fixture
def tiny_data(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_subset(os.path.join(SAMPLE_DIR, "train.conll"), data_dir / "train.conll", 60)
    write_subset(os.path.join(SAMPLE_DIR, "eval.conll"), data_dir / "eval.conll", 30)
    return data_dir


def _start(argv, log_path, *extra, env=None) -> subprocess.Popen:
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.local_runner", *argv, *extra],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY_ROOT, start_new_session=True,
        env=env,
    )  # fmt: skip


def _wait_for(log_path, text: str, process: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while text not in log_path.read_text(encoding="utf-8"):
        assert process.poll() is None, log_path.read_text(encoding="utf-8")[-3000:]
        assert time.monotonic() < deadline, f"never saw {text!r}"
        time.sleep(0.5)


def _store(config) -> metadata_store.MetadataStore:
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = config.metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)


def _trainer_executions(config) -> dict[int, int]:
    """{execution id: state} of the Trainer's executions."""
    store = _store(config)
    node = store.get_context_by_type_and_name("node", f"{config.pipeline_name}.Trainer")
    return {e.id: e.last_known_state for e in store.get_executions_by_context(node.id)}


def _model_folders(config) -> set[str]:
    folder = os.path.join(config.pipeline_root, "Trainer", "model")
    return set(os.listdir(folder)) if os.path.isdir(folder) else set()


def test_a_second_run_exits_or_waits_and_one_model_is_pushed(tiny_data, tmp_path):
    argv = _argv(tiny_data, tmp_path / "out")
    config = PipelineConfig.from_args(argv, environ={})
    first = _start(argv, tmp_path / "first.log")
    try:
        # Transform, training, evaluation, the push and the report are still ahead: minutes,
        # against the seconds the second run needs to reach the lock.
        _wait_for(tmp_path / "first.log", "Component Transform is running.", first)
        second = subprocess.run(
            [sys.executable, "-m", "pipeline.local_runner", *argv],
            cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert second.returncode == EXIT_LOCKED
        assert f"Another run of pipeline '{config.pipeline_name}' is in progress" in second.stderr
        assert config.run_lock_path in second.stderr and "--wait" in second.stderr
        assert "Traceback" not in second.stderr
        waiting = _start(argv, tmp_path / "waiting.log", "--wait")
        _wait_for(tmp_path / "waiting.log", "waiting for it to end", waiting)
        assert first.wait(timeout=900) == 0, (tmp_path / "first.log").read_text()[-3000:]
        assert waiting.wait(timeout=900) == 0, (tmp_path / "waiting.log").read_text()[-3000:]
    finally:
        for process in (first, locals().get("waiting")):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    # The waiting run started after the first had ended: it reused its results.
    waiting_log = (tmp_path / "waiting.log").read_text()
    assert waiting_log.index("waiting for it to end") < waiting_log.index("Pipeline ")
    assert "Trainer" in waiting_log and "CACHED" in waiting_log
    versions = [name for name in os.listdir(config.serving_dir) if name.isdigit()]
    assert len(versions) == 1, versions
    assert len(_trainer_executions(config)) == 2  # one trained, one cached


def test_a_killed_run_is_marked_and_cleaned_by_the_next(tiny_data, tmp_path):
    argv = _argv(tiny_data, tmp_path / "out")
    config = PipelineConfig.from_args(argv, environ={})
    killed_ids = []
    temporary = tmp_path / "tmp"  # The runs' temporary folder (TMPDIR).
    temporary.mkdir()
    env = {**os.environ, "TMPDIR": str(temporary)}
    for attempt in range(2):  # two kills in a row: nothing accumulates
        log_path = tmp_path / f"killed-{attempt}.log"
        killed = _start(argv, log_path, env=env)
        try:
            _wait_for(log_path, "Component Trainer is running.", killed)
            time.sleep(3)  # inside the Trainer's executor: its output folder exists
        finally:
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait()
        running = [
            execution_id
            for execution_id, state in _trainer_executions(config).items()
            if state == metadata_store_pb2.Execution.RUNNING
        ]
        # Only this attempt's: the previous one's was marked when this run started.
        assert len(running) == 1
        assert str(running[0]) in _model_folders(config)
        if killed_ids:
            text = log_path.read_text(encoding="utf-8")
            assert f"Trainer (execution {killed_ids[-1]}) was left unfinished" in text
            assert str(killed_ids[-1]) not in _model_folders(config)
        killed_ids.append(running[0])
        # The killed run's own temporary folder only (the one before it: removed by this run).
        assert os.listdir(temporary) == [f for f in os.listdir(temporary) if f"-{killed.pid}-" in f]
        assert len(os.listdir(temporary)) == 1

    resumed = subprocess.run(
        [sys.executable, "-m", "pipeline.local_runner", *argv],
        cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert os.listdir(temporary) == []  # The killed run's folder and its own: removed.
    assert f"Trainer (execution {killed_ids[-1]}) was left unfinished" in resumed.stderr
    states = _trainer_executions(config)
    canceled = sorted(e for e, s in states.items() if s == metadata_store_pb2.Execution.CANCELED)
    complete = [e for e, s in states.items() if s == metadata_store_pb2.Execution.COMPLETE]
    assert canceled == sorted(killed_ids) and len(complete) == 1, states
    # Only the finished model's folder is left.
    assert _model_folders(config) == {str(complete[0])}
    system = os.path.join(config.pipeline_root, "Trainer", ".system", "executor_execution")
    assert not {str(e) for e in canceled} & set(os.listdir(system) if os.path.isdir(system) else [])
