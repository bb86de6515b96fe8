"""Seconds until each command answers: `--help`, and the first progress lines of a run.

    .venv/bin/python -m benchmarks.start_up_time [--repeats 5]

Each measurement is a fresh process (nothing warm but the OS file cache); medians of `--repeats`
runs, with the load average beside them. For `python -m pipeline.local_runner` (what `make run`
runs) it also times the first line on stderr and the line that says the pipeline starts (after
TensorFlow and TFX are loaded), then stops the run. Targets (issue 14): `--help` under 2 s,
the first progress line under 5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = (
    "pipeline.local_runner",
    "pipeline.scheduler",
    "kubeflow.compile",
    "serving.cli",
    "serving.evaluate",
)


def help_seconds(module: str) -> float:
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.monotonic() - start


def run_start_seconds() -> tuple[float, float]:
    """(first stderr line, the 'Pipeline ...' line) of a fresh `pipeline.local_runner`."""
    with tempfile.TemporaryDirectory(prefix="start_up_") as output_dir:
        start = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.local_runner", "--output-dir", output_dir],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        first = started = None
        try:
            assert process.stderr is not None
            for line in process.stderr:
                if first is None:
                    first = time.monotonic() - start
                if " INFO Pipeline " in line:
                    started = time.monotonic() - start
                    break
        finally:
            process.kill()
            process.wait()
    if first is None or started is None:
        raise RuntimeError("the run printed no progress line")
    return first, started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rows = []
    for module in COMMANDS:
        seconds = [help_seconds(module) for _ in range(args.repeats)]
        rows.append((f"`python -m {module} --help`", statistics.median(seconds), 2.0))
        print(f"{module} --help: {rows[-1][1]:.2f} s", file=sys.stderr, flush=True)
    starts = [run_start_seconds() for _ in range(args.repeats)]
    rows.append(("`make run`: first progress line", statistics.median(s[0] for s in starts), 5.0))
    rows.append(
        (
            "`make run`: TensorFlow and TFX loaded, the pipeline starts",
            statistics.median(s[1] for s in starts),
            None,
        )
    )
    print("| command | median s | target |")
    print("|---|---:|---|")
    for name, seconds, target in rows:
        verdict = (
            "" if target is None else f"< {target:g} s: {'met' if seconds < target else 'NOT met'}"
        )
        print(f"| {name} | {seconds:.2f} | {verdict} |")
    print(
        f"\n{args.repeats} fresh processes each; {os.cpu_count()} cores, load average at the end "
        f"{os.getloadavg()[0]:.1f}."
    )


if __name__ == "__main__":
    main()
