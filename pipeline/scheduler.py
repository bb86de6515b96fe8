"""Local scheduled retraining: run the pipeline when a new span of data appears.

    python -m pipeline.scheduler --every 60 --data-dir data/spans \\
        --train-pattern 'span-{SPAN}/train.conll' --eval-pattern 'span-{SPAN}/eval.conll'
    # or from cron, every 10 minutes:
    */10 * * * * cd /repo && .venv/bin/python -m pipeline.scheduler --once --data-dir ... >> retrain.log 2>&1

`--once`, `--every SECONDS` and `--max-attempts N` (default 3) are the scheduler's; every other
flag is `pipeline.local_runner`'s (`--span-window`, `--warm-start`, ...).

Each check ("tick") lists the spans present in `--data-dir` (a span counts once every split
pattern has a file for it) and runs `python -m pipeline.local_runner <the same flags>` in a child
process if the latest one is newer than the last span a run finished with. ExampleGen then ingests
that latest span itself (TFX resolves `{SPAN}`). The span is recorded in
`<output-dir>/scheduler/<pipeline>/state.json` (written atomically) as `last_span` only when the
run exits successfully, blessed or not: a rejected span is not retried, a crashed or killed run is.

Bounded retries (`--max-attempts N`, default 3): each failed run of a span (non-zero exit status;
negative: killed by that signal) is counted in `state.json` under `failures`, keyed by the span,
with `attempts`, `last_exit_status`, `last_failed_at` and `status`, "retrying" or, once `attempts`
reaches N, "failed" (logged as an error). A span whose record says "failed" is not run again:
later checks log that and do nothing (exit status 0) until a newer complete span appears, which
is trained as usual (ExampleGen takes the newest span only, so the failed one is never run again,
its record kept as history), or until the user deletes the span's entry under `failures` (or
`state.json`), which gives it N new attempts. The record is read as written: raising
`--max-attempts` later does not revive a span already marked "failed". A successful run removes
its span's record. A scheduler killed together with its run (as by a SIGKILL of its process group)
records nothing: the next check runs the span again, without counting an attempt.

    {"last_span": 2, "finished_at": 1764000000.0,
     "failures": {"3": {"attempts": 3, "last_exit_status": 1, "last_failed_at": 1764000900.0,
                        "status": "failed"}}}

- One retrain at a time: an exclusive `fcntl.flock` on `<output-dir>/scheduler/<pipeline>/retrain.lock`,
  held by the scheduler and inherited by its child run. The kernel drops it when both have
  exited, however they ended (even SIGKILL): a leftover lock file never blocks. A tick that finds
  the lock taken does nothing (`--once` then exits with 75, EX_TEMPFAIL).
- Resuming after a kill: the next tick sees the span still unrecorded and runs again; components
  that had completed are reused from ML Metadata's cache (same inputs), the interrupted one runs
  afresh in a new output folder, and the Pusher (`components.atomic_pusher`) publishes a version
  only with one rename, so the serving folder never holds a half-copied version.

Write a new span's files into a hidden or temporary folder and rename it into place when complete:
a span is taken as soon as its files exist.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import glob
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence

from pipeline.config import PipelineConfig
from pipeline.run_lock import EXIT_LOCKED, RunLock

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "latest_complete_span",
    "main",
    "read_failure",
    "read_last_span",
    "read_state",
    "record_failure",
    "SchedulerPaths",
    "SPAN_SPEC",
    "spans_matching",
    "tick",
    "write_last_span",
    "write_state",
]

DEFAULT_MAX_ATTEMPTS = 3
SPAN_SPEC = "{SPAN}"

logger = logging.getLogger("pipeline.scheduler")


def _invalid(name: str, expected: str, received) -> ValueError:
    return ValueError(
        f"Invalid value for `{name}`. Expected {expected}. Received: {name}={received!r}"
    )


def spans_matching(data_dir: str, pattern: str) -> set[int]:
    """Spans for which `pattern` (relative to `data_dir`, one `{SPAN}`) matches a file.

    Raises:
        ValueError: if the pattern does not hold `{SPAN}` exactly once.
    """
    if pattern.count(SPAN_SPEC) != 1:
        raise _invalid("pattern", f"a glob holding {SPAN_SPEC} exactly once", pattern)
    # The same meaning as TFX's driver: {SPAN} is a run of digits.
    regex = re.compile(
        re.escape(os.path.join(data_dir, "")) + _glob_to_regex(pattern.split(SPAN_SPEC))
    )
    spans = set()
    for path in glob.glob(os.path.join(data_dir, pattern.replace(SPAN_SPEC, "*"))):
        match = regex.fullmatch(path)
        if match:
            spans.add(int(match["span"]))
    return spans


def _glob_to_regex(parts: list[str]) -> str:
    """Regex of `<glob parts[0]>(?P<span>\\d+)<glob parts[1]>`."""

    def translate(part: str) -> str:
        # fnmatch.translate gives "(?s:...)\\Z"; keep the body only.
        return fnmatch.translate(part)[4:-3]

    return translate(parts[0]) + r"(?P<span>\d+)" + translate(parts[1])


def latest_complete_span(data_dir: str, patterns: Sequence[str]) -> int | None:
    """The highest span that every split pattern has a file for, or None."""
    common = None
    for pattern in patterns:
        spans = spans_matching(data_dir, pattern)
        common = spans if common is None else common & spans
    return max(common) if common else None


@dataclasses.dataclass(frozen=True)
class SchedulerPaths:
    """Where the scheduler keeps its lock and state, beside the pipeline's outputs."""

    directory: str

    @classmethod
    def for_config(cls, config: PipelineConfig) -> SchedulerPaths:
        return cls(os.path.join(config.output_dir, "scheduler", config.pipeline_name))

    @property
    def lock_path(self) -> str:
        return os.path.join(self.directory, "retrain.lock")

    @property
    def state_path(self) -> str:
        return os.path.join(self.directory, "state.json")


def read_state(paths: SchedulerPaths) -> dict:
    """The whole `state.json` (see the module docstring); `{}` before the first record."""
    try:
        with open(paths.state_path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        return {}


def write_state(paths: SchedulerPaths, state: dict) -> None:
    """Writes `state.json` atomically (a killed write leaves the previous state)."""
    os.makedirs(paths.directory, exist_ok=True)
    temporary = paths.state_path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(state, file, indent=1, sort_keys=True)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, paths.state_path)


def read_last_span(paths: SchedulerPaths) -> int | None:
    """The span of the last run that finished successfully, or None."""
    return read_state(paths).get("last_span")


def read_failure(paths: SchedulerPaths, span: int) -> dict | None:
    """The failure record of `span` (`attempts`, `last_exit_status`, `last_failed_at`,
    `status`), or None if no run of it has failed since it last succeeded."""
    return read_state(paths).get("failures", {}).get(str(span))


def write_last_span(paths: SchedulerPaths, span: int) -> None:
    """Records `span` as trained, and forgets its failure record."""
    state = read_state(paths)
    state.update(last_span=span, finished_at=time.time())
    failures = state.get("failures", {})
    failures.pop(str(span), None)
    if not failures:
        state.pop("failures", None)
    write_state(paths, state)


def record_failure(paths: SchedulerPaths, span: int, exit_status: int, max_attempts: int) -> dict:
    """Counts a failed run of `span`; marks it "failed" once it has failed `max_attempts` times.

    Returns:
        The span's new failure record.
    """
    state = read_state(paths)
    failures = state.setdefault("failures", {})
    attempts = failures.get(str(span), {}).get("attempts", 0) + 1
    record = {
        "attempts": attempts,
        "last_exit_status": exit_status,
        "last_failed_at": time.time(),
        "status": "failed" if attempts >= max_attempts else "retrying",
    }
    failures[str(span)] = record
    write_state(paths, state)
    return record


def tick(
    config: PipelineConfig,
    pipeline_argv: Sequence[str],
    runner=None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> int:
    """One check: runs the pipeline if a new span appeared and no other retrain is running.

    Args:
        config: the pipeline configuration built from `pipeline_argv`.
        pipeline_argv: the flags passed on to `pipeline.local_runner`.
        runner: `runner(argv, pass_fds) -> exit status`; default: a child Python process.
        max_attempts: failed runs of one span after which it is marked "failed" and no longer
            run (see the module docstring).
    Returns:
        0 (ran successfully, nothing new, or the latest span is marked "failed"), the run's
        non-zero exit status, or `EXIT_LOCKED`.
    Raises:
        ValueError: if `max_attempts` is not a positive integer.
    """
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise _invalid("max_attempts", "a positive integer", max_attempts)
    runner = runner or _run_child
    paths = SchedulerPaths.for_config(config)
    lock = RunLock(paths.lock_path)
    if not lock.acquire():
        logger.info("Another retrain holds %s; skipping this check.", paths.lock_path)
        return EXIT_LOCKED
    try:
        span = latest_complete_span(config.data_dir, (config.train_pattern, config.eval_pattern))
        last = read_last_span(paths)
        if span is None:
            logger.info("No complete span in %s yet.", config.data_dir)
            return 0
        if last is not None and span <= last:
            logger.info("Latest span %d already trained on; nothing to do.", span)
            return 0
        failure = read_failure(paths, span)
        if failure is not None and failure.get("status") == "failed":
            logger.warning(
                "Span %d failed %d times (last exit status %s): not retried until a newer span "
                "appears or its entry under `failures` in %s is deleted.",
                span,
                failure["attempts"],
                failure["last_exit_status"],
                paths.state_path,
            )
            return 0
        logger.info("New span %d (last trained: %s): retraining.", span, last)
        status = runner(list(pipeline_argv), (lock.fd,))
        if status == EXIT_LOCKED:
            # A run started by hand holds the pipeline's run lock: not a failure of the span.
            logger.info("Another run of the pipeline is in progress; span %d waits.", span)
            return status
        if status == 0:
            write_last_span(paths, span)
            logger.info("Retraining on span %d finished.", span)
            return status
        failure = record_failure(paths, span, status, max_attempts)
        if failure["status"] == "failed":
            logger.error(
                "Retraining on span %d failed %d times (last exit status %d): giving up on it "
                "until a newer span appears or its record in %s is deleted.",
                span,
                failure["attempts"],
                status,
                paths.state_path,
            )
        else:
            logger.error(
                "Retraining on span %d failed (exit status %d, attempt %d of %d); retried next "
                "check.",
                span,
                status,
                failure["attempts"],
                max_attempts,
            )
        return status
    finally:
        lock.release()


def _run_child(argv: list[str], pass_fds: tuple[int, ...]) -> int:
    # The child inherits the locked file: if this scheduler is killed, the lock stays held
    # until the run ends too, so no second run can start beside it.
    return subprocess.call(
        [sys.executable, "-m", "pipeline.local_runner", *argv], pass_fds=pass_fds
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`--once` or `--every SECONDS`, then the pipeline's flags (see the module doc)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="python -m pipeline.scheduler",
        description="Retrains when a new span appears; other flags go to pipeline.local_runner.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="check once (for cron) and exit")
    mode.add_argument("--every", type=float, help="check every this many seconds, forever")
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=DEFAULT_MAX_ATTEMPTS,
        help="failed runs of one span before it is marked failed and skipped "
        f"(default {DEFAULT_MAX_ATTEMPTS})",
    )
    args, pipeline_argv = parser.parse_known_args(argv)
    if args.every is not None and args.every <= 0:
        raise _invalid("every", "a positive number of seconds", args.every)
    if args.max_attempts < 1:
        raise _invalid("max_attempts", "a positive integer", args.max_attempts)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    config_argv = [arg for arg in pipeline_argv if arg != "--verbose"]
    config = PipelineConfig.from_args(config_argv)
    for pattern in (config.train_pattern, config.eval_pattern):
        if SPAN_SPEC not in pattern:
            raise _invalid("train_pattern/eval_pattern", f"patterns holding {SPAN_SPEC}", pattern)
    if args.once:
        return tick(config, pipeline_argv, max_attempts=args.max_attempts)
    while True:
        tick(config, pipeline_argv, max_attempts=args.max_attempts)
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
