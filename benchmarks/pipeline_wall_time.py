"""Wall time of the whole TFX pipeline, per component: the bundled sample and the full WNUT-17.

    .venv/bin/python -m benchmarks.pipeline_wall_time [--datasets sample wnut17] [--output FILE]

Each dataset runs `python -m pipeline.local_runner` in a fresh process with fresh outputs (nothing
cached), as `make run` does; the per-component seconds come from the run's ML Metadata store.
Targets on our 2-core machines: the sample under 3 minutes end to end, full WNUT-17 (train 3,394
sentences, dev 1,009 as the eval split) under 10 minutes. The full corpus is read from `shared/`
beside the checkout, or $NER_SHARED_DIR.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NER_SHARED_DIR", REPO.parent / "shared"))

DATASETS = {
    # name: (data dir, train pattern, eval pattern, target seconds)
    "sample": (REPO / "data" / "sample", "train.conll", "eval.conll", 180),
    "wnut17": (SHARED / "datasets" / "wnut17", "wnut17train.conll", "emerging.dev.conll", 600),
}


def run_pipeline(name: str, output_dir: Path) -> tuple[float, list, str]:
    """Runs the local pipeline on one dataset; returns wall seconds, executions and the last lines."""
    data_dir, train, evaluation, _ = DATASETS[name]
    command = [
        sys.executable, "-m", "pipeline.local_runner",
        "--data-dir", str(data_dir), "--train-pattern", train, "--eval-pattern", evaluation,
        "--output-dir", str(output_dir), "--pipeline-name", f"bench_{name}",
    ]  # fmt: skip
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"{name}: pipeline failed\n{result.stderr[-4000:]}")

    from tfx import v1 as tfx

    from pipeline.run_summary import latest_run_executions

    metadata_path = output_dir / "metadata" / f"bench_{name}" / "metadata.db"
    executions = latest_run_executions(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(str(metadata_path))
    )
    result_lines = [line for line in result.stdout.splitlines() if "F1" in line or "pushed" in line]
    return seconds, executions, " ".join(result_lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--output", help="also write the markdown table here")
    args = parser.parse_args(argv)

    results = {}
    for name in args.datasets:
        if not DATASETS[name][0].exists():
            print(f"{name}: {DATASETS[name][0]} not found, skipped", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory(prefix=f"pipeline_{name}_") as output_dir:
            print(f"[{name}] running the pipeline ...", file=sys.stderr, flush=True)
            results[name] = run_pipeline(name, Path(output_dir))
            print(f"[{name}] {results[name][0]:.0f} s", file=sys.stderr, flush=True)

    names = list(results)
    nodes = []
    for _, executions, _ in results.values():
        nodes += [e.node_id for e in executions if e.node_id not in nodes]
    lines = [
        "| component | " + " | ".join(f"{n} (s)" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for node in nodes:
        cells = []
        for name in names:
            seconds = {e.node_id: e.seconds for e in results[name][1]}.get(node)
            cells.append("" if seconds is None else f"{seconds:.1f}")
        lines.append(f"| {node} | " + " | ".join(cells) + " |")
    lines.append(
        "| **end to end, fresh process** | "
        + " | ".join(f"**{results[n][0]:.0f}**" for n in names)
        + " |"
    )
    lines.append("| target | " + " | ".join(f"< {DATASETS[n][3]}" for n in names) + " |")
    lines.append(
        "| holds | "
        + " | ".join("yes" if results[n][0] < DATASETS[n][3] else "**no**" for n in names)
        + " |"
    )
    lines.append("")
    for name in names:
        lines.append(f"- {name}: {results[name][2]}")
    lines.append(
        f"- CPU: {os.cpu_count()} cores; load average at the end {os.getloadavg()[0]:.1f}."
    )
    markdown = "\n".join(lines)
    print(markdown)
    if args.output:
        Path(args.output).write_text(markdown + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
