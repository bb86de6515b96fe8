"""Wall time of the whole TFX pipeline, per component, and what the first model is worth.

    .venv/bin/python -m benchmarks.pipeline_wall_time [--datasets make-run sample wnut17-no-vectors]

Each setting runs `python -m pipeline.local_runner` in a fresh process with fresh outputs (nothing
cached); the per-component seconds come from the run's ML Metadata store. `make-run` is `make
run` itself: no flags, so the bundled WNUT-17 (`data/wnut17`) with the installed GloVe 6B 50d
vectors; `sample` the small subset without vectors; `wnut17-no-vectors` the corpus without them.
After each run the pushed model is scored on WNUT-17's test split as served (`ner-eval`, the
test file the pipeline never reads) and tags "Barack Obama visited Paris with Angela Merkel".
Targets on our 2-core machines: `make run` within 8 minutes, at least 33 test entity F1, and the
two people and the place found; the sample under 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DATASETS = {
    # name: (flags, target seconds)
    "make-run": ((), 480),
    "sample": (("--data-dir", str(REPO / "data" / "sample"), "--no-embeddings"), 180),
    "wnut17-no-vectors": (("--no-embeddings",), 600),
}
TEST_FILE = REPO / "data" / "wnut17" / "test.conll"
SENTENCE = "Barack Obama visited Paris with Angela Merkel"
EXPECTED = {("Barack Obama", "person"), ("Paris", "location"), ("Angela Merkel", "person")}


def score_served(serving_dir: Path) -> tuple[float, list]:
    """Test entity F1 of the newest pushed version (`ner-eval`) and its entities in SENTENCE."""
    from serving.evaluate import main as ner_eval
    from serving.model_version import load_newest
    from serving.tagging import load_signature, tag_batches

    scores_path = serving_dir.parent / "test_scores.json"
    status = ner_eval(
        [str(TEST_FILE), "--serving-dir", str(serving_dir), "--json", str(scores_path),
         "--no-progress"]
    )  # fmt: skip
    if status != 0:
        raise RuntimeError(f"ner-eval failed with status {status}")
    f1 = json.loads(scores_path.read_text())["f1"]
    _, signature = load_newest(str(serving_dir), load_signature)
    (tagged,) = tag_batches(signature, [SENTENCE])
    return f1, [(entity.text, entity.type) for entity in tagged.entities]


def run_pipeline(name: str, output_dir: Path) -> tuple[float, list, str]:
    """Runs the local pipeline on one dataset; returns wall seconds, executions and the last lines."""
    flags, _ = DATASETS[name]
    peak_file = output_dir.parent / f"{output_dir.name}.peak_kb"
    command = [
        "/usr/bin/time", "-o", str(peak_file), "-f", "%M",  # the run's peak resident memory
        sys.executable, "-m", "pipeline.local_runner", *flags,
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
    peak_gb = int(peak_file.read_text().split()[-1]) / 1e6
    peak_file.unlink()
    folder_mb = sum(p.stat().st_size for p in output_dir.rglob("*") if p.is_file()) / 1e6
    serving = output_dir / "serving_model" / f"bench_{name}"
    model_mb = sum(p.stat().st_size for p in serving.rglob("*") if p.is_file()) / 1e6
    result_lines.append(
        f"Peak memory {peak_gb:.1f} GB; output folder {folder_mb:.0f} MB, of which the pushed "
        f"model {model_mb:.0f} MB."
    )
    f1, entities = score_served(serving)
    missing = EXPECTED - set(entities)
    result_lines.append(
        f"Test entity F1 as served (ner-eval data/wnut17/test.conll): {f1:.2f}. "
        f"{SENTENCE!r}: {entities} ({'all three found' if not missing else f'missing {sorted(missing)}'})."
    )
    return seconds, executions, " ".join(result_lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--output", help="also write the markdown table here")
    args = parser.parse_args(argv)

    results = {}
    for name in args.datasets:
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
    lines.append("| target | " + " | ".join(f"< {DATASETS[n][1]}" for n in names) + " |")
    lines.append(
        "| holds | "
        + " | ".join("yes" if results[n][0] < DATASETS[n][1] else "**no**" for n in names)
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
