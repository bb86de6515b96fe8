"""Peak memory of each component of a pipeline run: with and without pretrained vectors, on WNUT-17
and on a corpus four times its size.

    .venv/bin/python -m benchmarks.component_memory [--settings wnut17 wnut17-no-vectors
        wnut17x4 wnut17x4-no-vectors] [--epochs 1]

Each setting is `python -m pipeline.local_runner` in a fresh process with fresh outputs (the
DirectRunner in that process, as `make run`); this script samples the process's resident memory
every 0.2 s and takes, for each component, the highest sample between the start and the end that
ML Metadata records for its execution. Memory a component leaves allocated (Python and TensorFlow
rarely give it back) counts in the later components' figures too: read a component's figure as
"the process's peak while it ran". `x4` is WNUT-17's training split four times over, the
sentences shuffled (seed 0); the eval split is WNUT-17's dev set in every setting. Vectors: the
installed GloVe 6B 50d (`make run`'s default).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from components.conll_format import read_conll

REPO = Path(__file__).resolve().parents[1]
WNUT17 = REPO / "data" / "wnut17"
SETTINGS = {
    # name: (copies of the training split, pretrained vectors)
    "wnut17": (1, True),
    "wnut17-no-vectors": (1, False),
    "wnut17x4": (4, True),
    "wnut17x4-no-vectors": (4, False),
}


def write_corpus(data_dir: Path, copies: int) -> int:
    """train.conll (`copies` x WNUT-17 train, shuffled) and eval.conll; returns the sentences."""
    text = (WNUT17 / "train.conll").read_text(encoding="utf-8")
    # Sentences end at whitespace-only lines, as the pipeline's reader reads them.
    sentences = [block for block in re.split(r"\n[ \t\r]*\n", text) if block.strip()] * copies
    random.Random(0).shuffle(sentences)
    data_dir.mkdir(parents=True)
    (data_dir / "train.conll").write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
    (data_dir / "eval.conll").write_text((WNUT17 / "eval.conll").read_text(encoding="utf-8"))
    return sum(1 for _ in read_conll(data_dir / "train.conll"))


def component_intervals(metadata_path: Path) -> list[tuple[str, str, float, float]]:
    """(node id, state, start, end) of the latest run's executions, in seconds since the epoch."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(metadata_path)
    store = metadata_store.MetadataStore(config)
    run = max(store.get_contexts_by_type("pipeline_run"), key=lambda context: context.id)
    node_type = store.get_context_type("node").id
    result = []
    for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
        nodes = [
            c.name.split(".", 1)[-1]
            for c in store.get_contexts_by_execution(execution.id)
            if c.type_id == node_type
        ]
        result.append(
            (
                nodes[0] if nodes else str(execution.id),
                metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                execution.create_time_since_epoch / 1000,
                execution.last_update_time_since_epoch / 1000,
            )
        )
    return result


def run_setting(name: str, epochs: int, work: Path) -> dict:
    copies, vectors = SETTINGS[name]
    data_dir, output_dir = work / name / "data", work / name / "outputs"
    sentences = write_corpus(data_dir, copies)
    command = [
        sys.executable, "-m", "pipeline.local_runner", "--data-dir", str(data_dir),
        "--output-dir", str(output_dir), "--epochs", str(epochs), "--min-entity-f1", "0",
        *([] if vectors else ["--no-embeddings"]),
    ]  # fmt: skip
    samples: list[tuple[float, int]] = []
    start = time.monotonic()
    with open(work / f"{name}.log", "w") as log:
        child = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        process = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                samples.append((time.time(), process.memory_info().rss))
            except psutil.NoSuchProcess:
                break
            time.sleep(0.2)
    seconds = time.monotonic() - start
    if child.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{(work / f'{name}.log').read_text()[-3000:]}")
    metadata = output_dir / "metadata" / "ner_bilstm_crf" / "metadata.db"
    peaks = {}
    for node, state, begin, end in component_intervals(metadata):
        inside = [rss for at, rss in samples if begin <= at <= end]
        peaks[node] = (max(inside) if inside else None, end - begin, state)
    return {
        "sentences": sentences,
        "peaks": peaks,
        "peak": max(rss for _, rss in samples),
        "seconds": seconds,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="component_memory_") as work:
        for name in args.settings:
            print(f"[{name}] running ...", file=sys.stderr, flush=True)
            results[name] = run_setting(name, args.epochs, Path(work))
            print(
                f"[{name}] {results[name]['seconds']:.0f} s, peak "
                f"{results[name]['peak'] / 1e9:.2f} GB",
                file=sys.stderr,
                flush=True,
            )
    names = list(results)
    print(f"Peak resident memory (GB) while each component ran, {args.epochs} epoch(s):\n")
    print("| component | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    print(
        "| training sentences | " + " | ".join(f"{results[n]['sentences']:,}" for n in names) + " |"
    )
    nodes: list[str] = []
    for result in results.values():
        nodes += [node for node in result["peaks"] if node not in nodes]
    for node in nodes:
        cells = []
        for name in names:
            peak, seconds, state = results[name]["peaks"].get(node, (None, 0.0, ""))
            cells.append("-" if peak is None else f"{peak / 1e9:.2f} ({seconds:.0f} s)")
        print(f"| {node} | " + " | ".join(cells) + " |")
    print(
        "| **whole run (peak, wall time)** | "
        + " | ".join(
            f"**{results[n]['peak'] / 1e9:.2f}** ({results[n]['seconds']:.0f} s)" for n in names
        )
        + " |"
    )
    print(f"\n- CPU: {os.cpu_count()} cores; load average at the end {os.getloadavg()[0]:.1f}.")


if __name__ == "__main__":
    main()
