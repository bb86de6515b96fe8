"""A run that fails inside a component ends in a few lines naming the error; the tracebacks that
TFX and Beam chain (50-130 lines) go to the run's log file, which the last line names."""

import os
import subprocess
import sys

import pytest

from pipeline.config import REPOSITORY_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_component_failure_is_one_line_and_the_traceback_is_in_the_log(tmp_path):
    # Data that passes the first pass over the files; a Beam option that fails inside the first
    # Beam component (ConllExampleGen), as a wrong --beam-args for a real cluster would.
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.conll").write_text("Paris\tB-location\nis\tO\n\n")
    (data / "eval.conll").write_text("Rome\tB-location\n\n")
    output = tmp_path / "out"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "pipeline.local_runner", "--data-dir", str(data),
         "--output-dir", str(output), "--no-embeddings", "--beam-args=--runner=NoSuchRunner"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": REPOSITORY_ROOT, "TMPDIR": str(temporary)},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "register factory" not in run.stderr  # TensorFlow's CUDA lines (quiet_tensorflow)
    lines = run.stderr.strip().splitlines()
    log_file = output / "metadata" / "ner_bilstm_crf" / "last_run.log"
    assert lines[-2].startswith("python -m pipeline.local_runner: error: "), lines[-3:]
    assert "NoSuchRunner" in lines[-2]
    assert f"Full log with the traceback: {log_file}" in lines[-1]
    text = log_file.read_text(encoding="utf-8")
    assert "Traceback" in text and "NoSuchRunner" in text
    # The run named this project's sdist as the workers' code, so TFX did not package its
    # own installation into the temporary directory; the run's temporary files went, failed
    # run or not.
    assert "Nonempty beam arg extra_packages already includes dependency" in text
    assert "Added --extra_package=" not in text
    assert os.listdir(temporary) == []
