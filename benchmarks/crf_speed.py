"""CRF speed benchmark: our CRF against TensorFlow Addons and pytorch-crf, on CPU.

Measures tokens per second (real tokens, padding excluded) for two tasks:

- `loss_grad`: mean negative log-likelihood of the gold tags (Lafferty et al., 2001) and its gradient
  with respect to the emissions and the transition matrix;
- `decode`: Viterbi decoding (Viterbi, 1967) of the best tag path of every sequence.

Implementations:

- ours (`models/crf/linear_crf/crf.py`, Keras 3 on the TensorFlow backend), in `tf.function` graph mode and with
  `jit_compile=True` (XLA), run in this process. In graph mode with the layer's defaults the loss runs
  as XLA programs called from the graph (`crf.compiled_in_graph`) and decoding does not; the other
  setting of each ("loss not compiled", "jit_compile=True" for decoding) is measured beside it;
- TensorFlow Addons 0.23 (`tfa.text.crf_log_likelihood`, `tfa.text.crf_decode`), graph and XLA, run in
  the side environment `.venv-tfa` by `benchmarks/reference_tfa.py`;
- pytorch-crf 0.7.2 (`torchcrf.CRF`), eager, run in `.venv-torch` by `benchmarks/reference_pytorch_crf.py`.

Every implementation reads the same inputs from one `.npz` file written here (fixed seed; lengths
uniform in `[sequence_length / 2, sequence_length]`, right padded), uses the same thread settings
(intra-op = inter-op = `--threads`, default 2, for TensorFlow and torch alike), is warmed up (traced
and compiled) first, then timed over several repeats; the tables quote the median. The start and end
transitions of ours and pytorch-crf are zero, because TF Addons has none: all three then compute the
same numbers, which is checked before the tables are printed.

Usage (from the repository root):

    .venv/bin/python -m benchmarks.crf_speed [--quick] [--output BENCHMARKS_crf.md]

`--output FILE` writes the markdown tables to FILE and every measurement to FILE with a `.json`
suffix. The reference scripts import the helpers below, so this module imports nothing but the
standard library and numpy at module level.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]

# (batch_size, sequence_length, num_tags)
GRID: tuple[tuple[int, int, int], ...] = ((32, 50, 9), (128, 50, 9), (32, 128, 25), (128, 128, 25))
SEED = 1967
DEFAULT_THREADS = 2
TASKS = ("loss_grad", "decode")

# Side environments: (implementation, venv directory, module, make target that creates the venv).
REFERENCES = (
    ("tfa", ".venv-tfa", "benchmarks.reference_tfa", "make .venv-tfa/.installed"),
    (
        "pytorch_crf",
        ".venv-torch",
        "benchmarks.reference_pytorch_crf",
        "make .venv-torch/.installed",
    ),
)

# Targets (issue #15). In TensorFlow graph mode with the layer's defaults (what Keras runs on CPU):
# loss+gradient this many times TF Addons' graph mode, decoding this many times.
LOSS_GRAD_GRAPH_TARGET_RATIO = 2.0
DECODE_GRAPH_TARGET_RATIO = 1.5
# Under XLA: our loss+gradient this many times TF Addons' best mode, our decoding at least TFA XLA.
LOSS_GRAD_XLA_TARGET_RATIO = 4.5
DECODE_XLA_TARGET_RATIO = 1.0
# Compiling our loss+gradient under XLA at the longest length of the grid takes at most this long.
XLA_COMPILE_TARGET_S = 10.0
# Emissions and transitions multiplied by this for the exactness-cost column: far beyond the
# scaled recursion's range, so every batch takes the log-space path (see linear_crf/_tensorflow.py).
LARGE_SCALE = 100.0
# Above this many cores used by other processes during a run, the report says the machine was busy.
BUSY_CORES = 0.25


@dataclasses.dataclass(frozen=True)
class TimingConfig:
    """How many times each measured function runs.

    Attributes:
        warmup: calls before timing (the first one traces and compiles).
        repeats: timed repeats; the median is reported.
        min_repeat_s: each repeat loops over the call until it lasts about this long, so that
            millisecond calls are not dominated by timer and dispatch noise.
    """

    warmup: int = 2
    repeats: int = 15
    min_repeat_s: float = 0.05

    def __post_init__(self) -> None:
        if self.warmup < 1:
            raise ValueError(
                f"Invalid value for `warmup`. Expected an int >= 1. Received: warmup={self.warmup}"
            )
        if self.repeats < 1:
            raise ValueError(
                f"Invalid value for `repeats`. Expected an int >= 1. Received: repeats={self.repeats}"
            )
        if self.min_repeat_s < 0:
            raise ValueError(
                f"Invalid value for `min_repeat_s`. Expected a float >= 0. Received: min_repeat_s={self.min_repeat_s}"
            )


QUICK_TIMING = TimingConfig(warmup=2, repeats=5, min_repeat_s=0.02)
FULL_TIMING = TimingConfig()


# --------------------------------------------------------------------------------------------------
# Inputs, timing and result records: shared with the reference scripts (stdlib + numpy only).
# --------------------------------------------------------------------------------------------------


def config_key(batch_size: int, sequence_length: int, num_tags: int) -> str:
    """Name of one grid point in the inputs file and in the results, e.g. `b32_t50_n9`."""
    return f"b{batch_size}_t{sequence_length}_n{num_tags}"


def make_inputs(
    batch_size: int, sequence_length: int, num_tags: int, seed: int = SEED
) -> dict[str, np.ndarray]:
    """Random CRF inputs for one grid point, the same for a given seed.

    Args:
        batch_size: number of sequences.
        sequence_length: padded length; the real lengths are uniform in
            `[ceil(sequence_length / 2), sequence_length]`.
        num_tags: number of tags.
        seed: random seed, combined with the sizes so every grid point differs.

    Returns:
        A dict of numpy arrays:
        emissions: float32 `(batch_size, sequence_length, num_tags)`, standard normal (padding too:
            implementations must ignore it).
        tag_ids: int32 `(batch_size, sequence_length)`, uniform gold tags, 0 at padding.
        lengths: int32 `(batch_size,)`.
        mask: bool `(batch_size, sequence_length)`, True at real tokens.
        transitions: float32 `(num_tags, num_tags)` [from, to], normal with standard deviation 0.5.
        start_transitions, end_transitions: float32 `(num_tags,)`, zero (TF Addons has none).
    """
    rng = np.random.default_rng([seed, batch_size, sequence_length, num_tags])
    lengths = rng.integers(
        math.ceil(sequence_length / 2), sequence_length, endpoint=True, size=batch_size
    )
    lengths = lengths.astype(np.int32)  # (batch_size,)
    mask = np.arange(sequence_length)[None, :] < lengths[:, None]  # (batch_size, sequence_length)
    emissions = rng.standard_normal((batch_size, sequence_length, num_tags), dtype=np.float32)
    tag_ids = rng.integers(0, num_tags, size=(batch_size, sequence_length)).astype(np.int32)
    tag_ids[~mask] = 0
    transitions = (0.5 * rng.standard_normal((num_tags, num_tags))).astype(np.float32)
    return {
        "emissions": emissions,
        "tag_ids": tag_ids,
        "lengths": lengths,
        "mask": mask,
        "transitions": transitions,
        "start_transitions": np.zeros(num_tags, np.float32),
        "end_transitions": np.zeros(num_tags, np.float32),
    }


def save_inputs(
    path: Path, grid: tuple[tuple[int, int, int], ...] = GRID, seed: int = SEED
) -> None:
    """Writes the inputs of every grid point to one `.npz` file, keys `<config_key>/<name>`."""
    arrays = {}
    for sizes in grid:
        for name, array in make_inputs(*sizes, seed=seed).items():
            arrays[f"{config_key(*sizes)}/{name}"] = array
    np.savez(path, **arrays)


def load_inputs(path: str | Path) -> dict[tuple[int, int, int], dict[str, np.ndarray]]:
    """Reads a file written by `save_inputs`: {(batch_size, sequence_length, num_tags): arrays}."""
    by_config: dict[tuple[int, int, int], dict[str, np.ndarray]] = {}
    with np.load(path) as data:
        for key in data.files:
            name_of_config, name = key.split("/")
            emissions_shape = data[f"{name_of_config}/emissions"].shape
            by_config.setdefault(tuple(int(size) for size in emissions_shape), {})[name] = data[key]
    return dict(sorted(by_config.items(), key=lambda item: (item[0][2], item[0][1], item[0][0])))


def time_function(
    function: Callable[..., Any], arguments: tuple[Any, ...], timing: TimingConfig
) -> dict[str, Any]:
    """Median wall time of `function(*arguments)`, which must return only once its work is done.

    The warm-up calls run first (tracing and compilation happen there). Each repeat then calls the
    function `inner_calls` times in a row, chosen from the last warm-up call so a repeat lasts about
    `timing.min_repeat_s`; a repeat's time is divided by `inner_calls`.

    Returns:
        A dict: `median_s` (seconds per call), `times_s` (per-call seconds of every repeat),
        `inner_calls`, `first_call_s` (the first warm-up call, compilation included).
    """
    start = time.perf_counter()
    function(*arguments)
    first_call_s = time.perf_counter() - start
    last_call_s = first_call_s
    for _ in range(timing.warmup - 1):
        start = time.perf_counter()
        function(*arguments)
        last_call_s = time.perf_counter() - start
    inner_calls = max(1, min(100, math.ceil(timing.min_repeat_s / max(last_call_s, 1e-6))))
    times_s = []
    for _ in range(timing.repeats):
        start = time.perf_counter()
        for _ in range(inner_calls):
            function(*arguments)
        times_s.append((time.perf_counter() - start) / inner_calls)
    return {
        "median_s": float(np.median(times_s)),
        "times_s": [float(value) for value in times_s],
        "inner_calls": inner_calls,
        "first_call_s": first_call_s,
    }


def error_summary(error: Exception) -> str:
    """Exception type and the first informative line of its message (TF's messages span pages)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    lines = [
        line
        for line in lines
        if line != "Graph execution error:" and not line.startswith("Detected at node")
    ]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def measure(
    sizes: tuple[int, int, int],
    task: str,
    mode: str,
    num_tokens: int,
    timing: TimingConfig,
    function: Callable[..., Any],
    *arguments: Any,
) -> dict[str, Any]:
    """Times `function(*arguments)`; returns one result record, an exception becoming its `error`.

    Args:
        sizes: (batch_size, sequence_length, num_tags).
        task: "loss_grad" or "decode".
        mode: "graph", "xla" or "eager".
        num_tokens: real (unpadded) tokens processed by one call.
        timing: warm-up and repeats.
        function: the function to time; tensors go in `arguments`, not in a closure, so a
            `tf.function` cannot fold them into constants.
        *arguments: its arguments.
    """
    record: dict[str, Any] = {
        "config": list(sizes),
        "task": task,
        "mode": mode,
        "num_tokens": int(num_tokens),
    }
    try:
        record.update(time_function(function, arguments, timing))
        record["tokens_per_s"] = num_tokens / record["median_s"]
        record["error"] = None
    except Exception as error:  # noqa: BLE001 - a failing implementation is a result, not a crash.
        record["error"] = error_summary(error)
        record["tokens_per_s"] = None
    print(
        f"  {config_key(*sizes):>14} {task:>9} {mode:>5}: "
        + (
            f"{record['tokens_per_s']:>12,.0f} tokens/s"
            if record["error"] is None
            else record["error"][:120]
        ),
        file=sys.stderr,
        flush=True,
    )
    return record


def thread_environment(threads: int) -> dict[str, str]:
    """Environment for a subprocess so its math libraries use `threads` threads."""
    environment = dict(os.environ)
    for name in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
    ):
        environment[name] = str(threads)
    environment["TF_NUM_INTEROP_THREADS"] = str(threads)
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    environment.setdefault("PYTHONHASHSEED", "0")
    return environment


def reference_argument_parser(description: str) -> argparse.ArgumentParser:
    """Command line of the reference scripts."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--inputs", help="`.npz` written by crf_speed.save_inputs; default: generate the grid here."
    )
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help="intra-op and inter-op threads."
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats.")
    return parser


def reference_inputs(inputs_path: str | None) -> dict[tuple[int, int, int], dict[str, np.ndarray]]:
    """Inputs of a reference script: from `--inputs`, or generated from the fixed seed."""
    if inputs_path:
        return load_inputs(inputs_path)
    return {sizes: make_inputs(*sizes) for sizes in GRID}


# --------------------------------------------------------------------------------------------------
# Ours: models/crf/linear_crf/crf.py on the TensorFlow backend, in this process.
# --------------------------------------------------------------------------------------------------


def benchmark_ours(
    inputs: dict[tuple[int, int, int], dict[str, np.ndarray]], timing: TimingConfig, threads: int
) -> dict[str, Any]:
    """Times models/crf/linear_crf/crf.py (graph and XLA); same result format as the reference scripts."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    from linear_crf import crf

    def loss_and_gradient(
        emissions, tag_ids, mask, transitions, start_transitions, end_transitions, unroll=False
    ):
        with tf.GradientTape() as tape:
            tape.watch([emissions, transitions])
            log_likelihood = crf.log_likelihood(
                emissions, tag_ids, mask, transitions, start_transitions, end_transitions, unroll
            )  # (batch_size,)
            loss = -tf.reduce_mean(log_likelihood)
        emissions_gradient, transitions_gradient = tape.gradient(loss, [emissions, transitions])
        return loss, emissions_gradient, transitions_gradient

    def decode(emissions, mask, transitions, start_transitions, end_transitions):
        return crf.viterbi_decode(emissions, mask, transitions, start_transitions, end_transitions)

    def per_sequence_log_likelihood(
        emissions, tag_ids, mask, transitions, start_transitions, end_transitions
    ):
        return crf.log_likelihood(
            emissions, tag_ids, mask, transitions, start_transitions, end_transitions
        )

    def traced_with(function, **setting):
        """`function` traced inside `crf.compiled_in_graph(**setting)` (read while tracing)."""

        def traced(*arguments):
            with crf.compiled_in_graph(**setting):
                return function(*arguments)

        return traced

    def arguments_of(arrays):
        """Real tokens, the loss's arguments and decoding's, as tensors."""
        tensors = {name: tf.constant(array) for name, array in arrays.items()}
        loss_arguments = [
            tensors[name]
            for name in (
                "emissions",
                "tag_ids",
                "mask",
                "transitions",
                "start_transitions",
                "end_transitions",
            )
        ]
        decode_arguments = [
            tensors[name]
            for name in ("emissions", "mask", "transitions", "start_transitions", "end_transitions")
        ]
        return int(arrays["lengths"].sum()), loss_arguments, decode_arguments

    results, check = [], {}
    # The layer's defaults first, at every grid point, in the order the reference scripts
    # measure theirs (loss and decoding in graph mode, then under XLA), so that every
    # implementation's columns come from a process that has run the same work before them; the
    # other settings of ours follow. Measured after those (before 2026-12-08), our graph-mode
    # decoding at b32_t50_n9 took 2.1-2.7 ms in this process against 1.2-1.6 ms in fresh
    # processes (BENCHMARKS.md).
    prepared = {sizes: arguments_of(arrays) for sizes, arrays in inputs.items()}
    for sizes, (num_tokens, loss_arguments, decode_arguments) in prepared.items():
        for mode, jit_compile in (("graph", False), ("xla", True)):
            loss_function = tf.function(loss_and_gradient, jit_compile=jit_compile)
            decode_function = tf.function(decode, jit_compile=jit_compile)
            results.append(
                measure(
                    sizes, "loss_grad", mode, num_tokens, timing, loss_function, *loss_arguments
                )
            )
            results.append(
                measure(
                    sizes, "decode", mode, num_tokens, timing, decode_function, *decode_arguments
                )
            )
    for sizes, (num_tokens, loss_arguments, decode_arguments) in prepared.items():
        # unroll=True (as keras.layers.LSTM): the loss's time loop unrolled for a known length;
        # graph mode only (XLA compiles an unrolled loop of length 128 for minutes).
        unrolled = tf.function(lambda *arguments: loss_and_gradient(*arguments, unroll=True))
        results.append(
            measure(
                sizes, "loss_grad", "graph_unrolled", num_tokens, timing, unrolled, *loss_arguments
            )
        )
        # What exactness costs where it is needed: scores so far apart that every batch is redone
        # in log space (the scaled recursion alone would be off there; TFA is exact but slower).
        large = [
            argument * LARGE_SCALE if index in (0, 3) else argument
            for index, argument in enumerate(loss_arguments)
        ]
        results.append(
            measure(
                sizes,
                "loss_grad",
                "graph_large_scale",
                num_tokens,
                timing,
                tf.function(loss_and_gradient),
                *large,
            )
        )
        # The keras.ops loops that JAX and torch run (and TensorFlow under XLA), here in graph
        # mode: the TensorFlow path's speed-up measured in the same process, free of the noise
        # between processes. `crf._tensorflow_graph` is the switch between the two.
        tensorflow_graph = crf._tensorflow_graph
        crf._tensorflow_graph = lambda: False
        try:
            results.append(
                measure(
                    sizes,
                    "loss_grad",
                    "graph_keras_ops",
                    num_tokens,
                    timing,
                    tf.function(traced_with(loss_and_gradient, loss=False, decode=False)),
                    *loss_arguments,
                )
            )
            results.append(
                measure(
                    sizes,
                    "decode",
                    "graph_keras_ops",
                    num_tokens,
                    timing,
                    tf.function(traced_with(decode, loss=False, decode=False)),
                    *decode_arguments,
                )
            )
        finally:
            crf._tensorflow_graph = tensorflow_graph
        # The other setting of `crf.compiled_in_graph` for each task, in the same process: the
        # loss not compiled (the TensorFlow graph-mode code alone, the default before) and
        # decoding compiled (the layer's `jit_compile=True`; not the default, see there).
        results.append(
            measure(
                sizes,
                "loss_grad",
                "graph_not_compiled",
                num_tokens,
                timing,
                tf.function(traced_with(loss_and_gradient, loss=False)),
                *loss_arguments,
            )
        )
        results.append(
            measure(
                sizes,
                "decode",
                "graph_compiled",
                num_tokens,
                timing,
                tf.function(traced_with(decode, decode=True)),
                *decode_arguments,
            )
        )
        try:
            log_likelihood = tf.function(per_sequence_log_likelihood)(*loss_arguments)
            tag_ids, _ = tf.function(decode)(*decode_arguments)
            check[config_key(*sizes)] = {
                "log_likelihood": np.asarray(log_likelihood, np.float64).tolist(),
                "tag_ids": np.asarray(tag_ids).tolist(),
            }
        except Exception as error:  # noqa: BLE001
            check[config_key(*sizes)] = {"error": error_summary(error)}
    return {
        "implementation": "ours",
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
        "threads": {"intra_op": threads, "inter_op": threads},
        "results": results,
        "check": check,
    }


# --------------------------------------------------------------------------------------------------
# Orchestration.
# --------------------------------------------------------------------------------------------------


def run_reference(
    implementation: str,
    venv: str,
    module: str,
    make_target: str,
    inputs_path: Path,
    threads: int,
    quick: bool,
) -> dict[str, Any]:
    """Runs one reference script in its side environment and returns its JSON (or an `unavailable` note)."""
    python = REPOSITORY_ROOT / venv / "bin" / "python"
    if not python.exists():
        return {
            "implementation": implementation,
            "unavailable": f"{venv}/bin/python not found; create it with `{make_target}`.",
        }
    command = [str(python), "-m", module, "--inputs", str(inputs_path), "--threads", str(threads)]
    if quick:
        command.append("--quick")
    print(f"[{implementation}] {' '.join(command)}", file=sys.stderr, flush=True)
    completed = subprocess.run(
        command,
        cwd=REPOSITORY_ROOT,
        env=thread_environment(threads),
        stdout=subprocess.PIPE,
        text=True,
    )
    json_lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not json_lines:
        return {
            "implementation": implementation,
            "unavailable": f"{module} failed (exit code {completed.returncode}); its stderr is above. "
            f"If the environment is broken, recreate it with `{make_target}`.",
        }
    return json.loads(json_lines[-1])


def run_ours(inputs_path: Path, timing: TimingConfig, threads: int) -> dict[str, Any]:
    """Runs `benchmark_ours`, or returns an `unavailable` note when models/crf/linear_crf/crf.py cannot be imported."""
    print(
        "[ours] models/crf/linear_crf/crf.py, KERAS_BACKEND=tensorflow, in this process",
        file=sys.stderr,
        flush=True,
    )
    try:
        return benchmark_ours(load_inputs(inputs_path), timing, threads)
    except ImportError as error:
        return {"implementation": "ours", "unavailable": f"cannot import linear_crf.crf ({error})."}


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(wall seconds, CPU seconds used by the whole machine, CPU seconds used by this process and its
    finished children), to tell how busy other processes kept the machine; None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
    busy_s = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_s = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return time.perf_counter(), busy_s, own_s


def cores_used_by_others(before: tuple | None, after: tuple | None) -> float | None:
    """Average number of cores other processes kept busy between two `cpu_snapshot`s."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    return max(0.0, ((after[1] - before[1]) - (after[2] - before[2])) / (after[0] - before[0]))


def consistency(reports: dict[str, dict[str, Any]], inputs: dict) -> list[str]:
    """Compares every implementation's log-likelihoods and Viterbi paths with ours (real tokens only).

    Returns:
        One line per implementation and grid point that disagrees (empty when all agree).
    """
    problems = []
    available = {name: report for name, report in reports.items() if "check" in report}
    if len(available) < 2:
        return problems
    baseline_name = "ours" if "ours" in available else next(iter(available))
    baseline = available[baseline_name]["check"]
    for name, report in available.items():
        if name == baseline_name:
            continue
        for sizes, arrays in inputs.items():
            key = config_key(*sizes)
            ours, theirs = baseline.get(key, {}), report["check"].get(key, {})
            if "error" in ours or not ours:
                message = (
                    f"{baseline_name}, {key}: no values to check ({ours.get('error', 'missing')})."
                )
                if message not in problems:
                    problems.append(message)
                continue
            if "error" in theirs or not theirs:
                problems.append(
                    f"{name}, {key}: no values to check ({theirs.get('error', 'missing')})."
                )
                continue
            mask = arrays["mask"]
            log_likelihood_error = np.max(
                np.abs(np.subtract(ours["log_likelihood"], theirs["log_likelihood"]))
            )
            scale = np.max(np.abs(ours["log_likelihood"]))
            paths_equal = np.mean(
                np.all(
                    (np.asarray(ours["tag_ids"]) == np.asarray(theirs["tag_ids"])) | ~mask, axis=1
                )
            )
            if log_likelihood_error > 1e-4 * max(1.0, scale) or paths_equal < 1.0:
                problems.append(
                    f"{baseline_name} vs {name}, {key}: max |log-likelihood difference| {log_likelihood_error:.3g} "
                    f"(scale {scale:.3g}), identical Viterbi paths {paths_equal:.1%}."
                )
    return problems


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def merge_rounds(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """One report per implementation from several rounds: the repeats of every round pooled.

    Rounds run the implementations one after the other again, so that a load from other processes
    that comes and goes over minutes hits every implementation alike. A measurement that failed in
    any round keeps its first error; an implementation unavailable in any round is unavailable.
    """
    merged = {}
    for name, first in rounds[0].items():
        if any("unavailable" in reports[name] for reports in rounds):
            merged[name] = next(
                reports[name] for reports in rounds if "unavailable" in reports[name]
            )
            continue
        merged[name] = dict(first, results=[])
        for index, record in enumerate(first["results"]):
            records = [reports[name]["results"][index] for reports in rounds]
            errors = [other["error"] for other in records if other["error"] is not None]
            combined = dict(record, error=errors[0] if errors else None, rounds=len(records))
            if not errors:
                combined["times_s"] = [value for other in records for value in other["times_s"]]
                combined["round_medians_s"] = [other["median_s"] for other in records]
                combined["median_s"] = float(np.median(combined["times_s"]))
                combined["tokens_per_s"] = record["num_tokens"] / combined["median_s"]
            else:
                combined["tokens_per_s"] = None
            merged[name]["results"].append(combined)
    return merged


def format_rate(tokens_per_s: float | None) -> str:
    """Tokens per second for a table cell: `1.23M`, `456k`."""
    if tokens_per_s is None:
        return "n/a"
    if tokens_per_s >= 1e6:
        return f"{tokens_per_s / 1e6:.2f}M"
    if tokens_per_s >= 1e4:
        return f"{tokens_per_s / 1e3:.0f}k"
    return f"{tokens_per_s / 1e3:.1f}k"


def lookup(
    reports: dict[str, dict[str, Any]], implementation: str, sizes, task: str, mode: str
) -> dict | None:
    """The result record of one measurement, or None when that implementation did not run."""
    for record in reports.get(implementation, {}).get("results", []):
        if (
            tuple(record["config"]) == tuple(sizes)
            and record["task"] == task
            and record["mode"] == mode
        ):
            return record
    return None


def cell(record: dict | None) -> str:
    """Table cell of one measurement."""
    if record is None:
        return "n/a"
    if record["error"] is not None:
        return "fails to compile" if record["mode"] == "xla" else "error"
    return format_rate(record["tokens_per_s"])


def rate(record: dict | None) -> float | None:
    """Tokens per second of a measurement that worked, else None."""
    return None if record is None or record["error"] is not None else record["tokens_per_s"]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing."""
    if numerator is None or denominator is None:
        return None
    return numerator / denominator


def format_ratio(value: float | None) -> str:
    """A ratio for a table cell: `1.73x`."""
    return "n/a" if value is None else f"{value:.2f}x"


def best(*values: float | None) -> float | None:
    """Largest value that is not None (None if all are)."""
    present = [value for value in values if value is not None]
    return max(present) if present else None


def build_report(
    reports: dict[str, dict[str, Any]],
    inputs: dict,
    timing: TimingConfig,
    rounds: int,
    threads: int,
    loads: dict[str, float | None],
    problems: list[str],
) -> tuple[str, dict[str, Any]]:
    """Markdown tables and the summary of the targets."""
    columns = [
        ("ours", "graph"),
        ("ours", "xla"),
        ("tfa", "graph"),
        ("tfa", "xla"),
        ("pytorch_crf", "eager"),
    ]
    titles = ["ours graph", "ours XLA", "TFA graph", "TFA XLA", "pytorch-crf"]
    loss_columns = columns[:1] + [
        ("ours", "graph_not_compiled"),
        ("ours", "graph_keras_ops"),
        ("ours", "graph_unrolled"),
        ("ours", "graph_large_scale"),
    ]
    loss_columns += columns[1:]
    loss_titles = titles[:1] + [
        "ours graph, loss not compiled",
        "ours graph, keras.ops loop",
        "ours graph, unroll=True",
        f"ours graph, scores x{LARGE_SCALE:g}",
    ]
    loss_titles += titles[1:]
    decode_columns = (
        columns[:1] + [("ours", "graph_compiled"), ("ours", "graph_keras_ops")] + columns[1:]
    )
    decode_titles = (
        titles[:1] + ["ours graph, jit_compile=True", "ours graph, keras.ops loop"] + titles[1:]
    )
    lines = []
    summary: dict[str, Any] = {
        "loss_grad_graph_ratio": {},
        "loss_grad_xla_ratio": {},
        "decode_graph_ratio": {},
        "decode_compiled_graph_ratio": {},
        "decode_xla_ratio": {},
        "xla_compile_s": {},
    }

    lines.append("#### Loss + gradient (NLL, d/d emissions and transitions), tokens/s, median")
    lines.append("")
    lines.append(
        "| batch | length | tags | "
        + " | ".join(loss_titles)
        + " | ours graph / not compiled | ours graph / TFA graph | ours XLA / TFA best "
        "| ours XLA compile |"
    )
    lines.append("|" + "---:|" * (3 + len(loss_titles) + 4))
    for sizes in inputs:
        records = [lookup(reports, name, sizes, "loss_grad", mode) for name, mode in loss_columns]
        ours_graph, not_compiled, _, _, _, ours_xla, tfa_graph, tfa_xla, _ = records
        speedup = ratio(rate(ours_graph), rate(not_compiled))
        graph_ratio = ratio(rate(ours_graph), rate(tfa_graph))
        xla_ratio = ratio(rate(ours_xla), best(rate(tfa_graph), rate(tfa_xla)))
        compile_s = ours_xla["first_call_s"] if ours_xla and ours_xla["error"] is None else None
        summary["loss_grad_graph_ratio"][config_key(*sizes)] = graph_ratio
        summary["loss_grad_xla_ratio"][config_key(*sizes)] = xla_ratio
        summary["xla_compile_s"][config_key(*sizes)] = compile_s
        lines.append(
            f"| {sizes[0]} | {sizes[1]} | {sizes[2]} | "
            + " | ".join(cell(record) for record in records)
            + f" | {format_ratio(speedup)} | {format_ratio(graph_ratio)} | "
            + f"{format_ratio(xla_ratio)} | "
            + ("n/a" if compile_s is None else f"{compile_s:.1f} s")
            + " |"
        )
    lines.append("")
    lines.append("#### Viterbi decoding, tokens/s, median")
    lines.append("")
    lines.append(
        "| batch | length | tags | "
        + " | ".join(decode_titles)
        + " | ours graph / keras.ops loop | ours graph / TFA graph "
        "| ours graph, jit_compile=True / TFA graph | ours XLA / TFA XLA |"
    )
    lines.append("|" + "---:|" * (3 + len(decode_titles) + 4))
    for sizes in inputs:
        records = [lookup(reports, name, sizes, "decode", mode) for name, mode in decode_columns]
        ours_graph, compiled, keras_ops, ours_xla, tfa_graph, tfa_xla, _ = records
        speedup = ratio(rate(ours_graph), rate(keras_ops))
        graph_ratio = ratio(rate(ours_graph), rate(tfa_graph))
        compiled_ratio = ratio(rate(compiled), rate(tfa_graph))
        xla_ratio = ratio(rate(ours_xla), rate(tfa_xla))
        summary["decode_graph_ratio"][config_key(*sizes)] = graph_ratio
        summary["decode_compiled_graph_ratio"][config_key(*sizes)] = compiled_ratio
        summary["decode_xla_ratio"][config_key(*sizes)] = xla_ratio
        lines.append(
            f"| {sizes[0]} | {sizes[1]} | {sizes[2]} | "
            + " | ".join(cell(record) for record in records)
            + f" | {format_ratio(speedup)} | {format_ratio(graph_ratio)} | "
            + f"{format_ratio(compiled_ratio)} | {format_ratio(xla_ratio)} |"
        )

    def verdict(ratios: dict[str, float | None], target: float) -> str:
        values = list(ratios.values())
        if not values or any(value is None for value in values):
            return "unknown (missing measurements)"
        worst_key = min(ratios, key=ratios.get)
        holds = "**yes**" if min(values) >= target else "**no**"
        return f"{holds} (worst {ratios[worst_key]:.2f}x at {worst_key}, best {max(values):.2f}x)"

    ours_xla_loss = [lookup(reports, "ours", sizes, "loss_grad", "xla") for sizes in inputs]
    if any(record is None for record in ours_xla_loss):
        compiles = "unknown (ours did not run)"
    elif all(record["error"] is None for record in ours_xla_loss):
        compiles = "**yes**"
    else:
        compiles = (
            "**no**: " + next(record["error"] for record in ours_xla_loss if record["error"])[:200]
        )
    longest = max(sizes[1] for sizes in inputs)
    compile_times = {
        key: value
        for (key, value), sizes in zip(summary["xla_compile_s"].items(), inputs)
        if sizes[1] == longest
    }
    if not compile_times or any(value is None for value in compile_times.values()):
        compile_verdict = "unknown (missing measurements)"
    else:
        slowest = max(compile_times.values())
        holds = "**yes**" if slowest < XLA_COMPILE_TARGET_S else "**no**"
        compile_verdict = f"{holds} (slowest {slowest:.1f} s, first call: trace and compile)"
    summary["targets"] = {
        "loss_grad_graph": verdict(summary["loss_grad_graph_ratio"], LOSS_GRAD_GRAPH_TARGET_RATIO),
        "decode_graph": verdict(summary["decode_graph_ratio"], DECODE_GRAPH_TARGET_RATIO),
        "decode_compiled_graph": verdict(
            summary["decode_compiled_graph_ratio"], DECODE_GRAPH_TARGET_RATIO
        ),
        "loss_grad_xla": verdict(summary["loss_grad_xla_ratio"], LOSS_GRAD_XLA_TARGET_RATIO),
        "decode_xla": verdict(summary["decode_xla_ratio"], DECODE_XLA_TARGET_RATIO),
        "ours_xla_loss_compiles": compiles,
        "xla_compile_time": compile_verdict,
    }
    targets = summary["targets"]
    lines.append("")
    lines.append("#### Targets")
    lines.append("")
    lines.append("| target | holds |")
    lines.append("|---|---|")
    lines.append(
        f"| loss+gradient >= {LOSS_GRAD_GRAPH_TARGET_RATIO}x TF Addons in graph mode, layer defaults "
        f"(ours graph vs TFA graph) | {targets['loss_grad_graph']} |"
    )
    lines.append(
        f"| decoding >= {DECODE_GRAPH_TARGET_RATIO}x TF Addons in graph mode (ours graph vs TFA "
        f"graph) | {targets['decode_graph']} |"
    )
    lines.append(
        f"| decoding >= {DECODE_GRAPH_TARGET_RATIO}x TF Addons in graph mode with the layer's "
        f"`jit_compile=True` (not the default) | {targets['decode_compiled_graph']} |"
    )
    lines.append(
        f"| loss+gradient under XLA >= {LOSS_GRAD_XLA_TARGET_RATIO}x TF Addons' best (ours XLA vs "
        f"TFA best) | {targets['loss_grad_xla']} |"
    )
    lines.append(
        f"| decoding under XLA >= {DECODE_XLA_TARGET_RATIO}x TF Addons XLA | {targets['decode_xla']} |"
    )
    lines.append(f"| our XLA loss+gradient compiles | {compiles} |")
    lines.append(
        f"| our XLA loss+gradient compiles in < {XLA_COMPILE_TARGET_S:g} s at length {longest} | "
        f"{compile_verdict} |"
    )
    lines.append("")

    notes = [
        f"CPU: {cpu_name()}, {os.cpu_count()} cores; intra-op = inter-op = {threads} "
        f"threads for TensorFlow and torch alike; median of {rounds} round(s) x {timing.repeats} repeats, each after {timing.warmup} warm-up calls.",
        "Tokens are real tokens (lengths uniform in [length/2, length], right padded); masks (TF Addons: lengths) "
        "passed to every implementation; start/end transitions zero for all.",
    ]
    for name, report in reports.items():
        if "unavailable" in report:
            notes.append(f"{name}: n/a, {report['unavailable']}")
        elif "versions" in report:
            notes.append(
                f"{name}: "
                + ", ".join(f"{key} {value}" for key, value in report["versions"].items())
            )
    for name, report in reports.items():
        for record in report.get("results", []):
            if record["error"] is not None and record["config"] == list(next(iter(inputs))):
                notes.append(
                    f"{name} {record['task']} {record['mode']} error: {record['error'][:200]}"
                )
    measured = {name: load for name, load in loads.items() if load is not None}
    if measured:
        busy = max(measured.values()) > BUSY_CORES
        notes.append(
            "Cores kept busy by other processes while each implementation ran (from /proc/stat): "
            + ", ".join(f"{name} {load:.2f}" for name, load in measured.items())
            + (
                f" of {os.cpu_count()}: the machine was BUSY, so figures are noisier and lower than on an idle "
                "machine (pytorch-crf's OpenMP threads suffer most)."
                if busy
                else f" of {os.cpu_count()} (machine quiet)."
            )
        )
    checked = [name for name, report in reports.items() if "check" in report]
    notes.append(
        "Results not cross-checked (fewer than two implementations ran)."
        if len(checked) < 2
        else f"Results agree across {', '.join(checked)} (log-likelihoods to 1e-4 relative, identical "
        "Viterbi paths)."
        if not problems
        else "DISAGREEMENT between implementations: " + " ".join(problems)
    )
    lines.extend(f"- {note}" for note in notes)
    return "\n".join(lines) + "\n", summary


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Command line of the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (5 instead of 15).")
    parser.add_argument(
        "--output", help="write the markdown tables to this file and all measurements to FILE.json."
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="intra-op and inter-op threads for every implementation.",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="times every implementation runs, one after the other, repeats pooled "
        "(default: 2, or 1 with --quick); evens out load from other processes.",
    )
    arguments = parser.parse_args(argv)
    if arguments.rounds is None:
        arguments.rounds = 1 if arguments.quick else 2
    if arguments.rounds < 1:
        parser.error(
            f"Invalid value for `rounds`. Expected an int >= 1. Received: rounds={arguments.rounds}"
        )
    if arguments.threads < 1:
        parser.error(
            f"Invalid value for `threads`. Expected an int >= 1. Received: threads={arguments.threads}"
        )
    return arguments


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    timing = QUICK_TIMING if arguments.quick else FULL_TIMING
    # Must precede the first `import keras` (in benchmark_ours); the thread variables precede TF's start.
    os.environ["KERAS_BACKEND"] = "tensorflow"
    for name, value in thread_environment(arguments.threads).items():
        if name.endswith("_THREADS"):
            os.environ[name] = value
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rounds: list[dict[str, dict[str, Any]]] = []
    busy_cores: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="crf_speed_") as directory:
        inputs_path = Path(directory) / "inputs.npz"
        save_inputs(inputs_path)
        inputs = load_inputs(inputs_path)
        for round_index in range(arguments.rounds):
            print(f"== round {round_index + 1} of {arguments.rounds}", file=sys.stderr, flush=True)
            reports: dict[str, dict[str, Any]] = {}
            runs = [("ours", lambda: run_ours(inputs_path, timing, arguments.threads))]
            for implementation, venv, module, make_target in REFERENCES:
                command = (implementation, venv, module, make_target, inputs_path)
                runs.append(
                    (
                        implementation,
                        lambda command=command: run_reference(
                            *command, arguments.threads, arguments.quick
                        ),
                    )
                )
            for implementation, run in runs:
                before = cpu_snapshot()
                reports[implementation] = run()
                busy = cores_used_by_others(before, cpu_snapshot())
                if busy is not None:
                    busy_cores.setdefault(implementation, []).append(busy)
            rounds.append(reports)
    reports = merge_rounds(rounds)
    loads = {
        name: float(np.mean(values)) if values else None for name, values in busy_cores.items()
    }
    for report in reports.values():
        if "unavailable" in report:
            print(f"[{report['implementation']}] n/a: {report['unavailable']}", file=sys.stderr)
    problems = consistency(reports, inputs)
    markdown, summary = build_report(
        reports, inputs, timing, arguments.rounds, arguments.threads, loads, problems
    )
    print(markdown)
    if arguments.output:
        output = Path(arguments.output)
        output.write_text(markdown)
        for report in reports.values():
            report.pop("check", None)
        payload = {
            "grid": [list(sizes) for sizes in inputs],
            "seed": SEED,
            "threads": arguments.threads,
            "timing": dataclasses.asdict(timing),
            "rounds": arguments.rounds,
            "cores_used_by_others": loads,
            "summary": summary,
            "consistency_problems": problems,
            "reports": reports,
        }
        json_path = (
            output.with_suffix(".json")
            if output.suffix != ".json"
            else output.with_suffix(".results.json")
        )
        json_path.write_text(json.dumps(payload, indent=1))
        print(f"Wrote {output} and {json_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
