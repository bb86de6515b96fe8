"""Disk use of repeated retrains, with the retention policy and without it.

    .venv/bin/python -m benchmarks.retention_disk [--runs 5] [--keep-versions 2] [--keep-runs 1]
        [--no-embeddings]

Each retrain gets a new span (`span-<n>/`): the sample's training sentences resampled with
replacement (seed n: new data, so nothing comes from the cache) and its eval file; every model is
pushed (`--min-entity-f1 0 --no-baseline`: the worst case for the disk, a version a day). Each run
is `python -m pipeline.local_runner` in a fresh process with nothing pruned (`--keep-runs 0
--keep-versions 0`); the output folder is measured, then `python -m pipeline.retention` applies
the policy and the folder is measured again. "without retention" adds up what each run added to
the folder (measured before its prune): what the folder would hold had nothing been pruned. With
the default GloVe vectors a serving version is 89 MB, as in `make run`.
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

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def sentences(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [block for block in re.split(r"\n[ \t\r]*\n", text) if block.strip()]


def write_span(data_dir: Path, span: int) -> None:
    train = sentences(SAMPLE / "train.conll")
    resampled = random.Random(span).choices(train, k=len(train))
    folder = data_dir / f"span-{span}"
    folder.mkdir(parents=True)
    (folder / "train.conll").write_text("\n\n".join(resampled) + "\n", encoding="utf-8")
    (folder / "eval.conll").write_text((SAMPLE / "eval.conll").read_text(encoding="utf-8"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep-versions", type=int, default=2)
    parser.add_argument("--keep-runs", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--no-embeddings", action="store_true")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="retention_disk_") as work:
        data_dir, output_dir = Path(work) / "data", Path(work) / "outputs"
        flags = [
            "--data-dir", str(data_dir), "--output-dir", str(output_dir),
            "--train-pattern", "span-{SPAN}/train.conll", "--eval-pattern", "span-{SPAN}/eval.conll",
            "--epochs", str(args.epochs), "--min-entity-f1", "0", "--no-baseline",
            *(["--no-embeddings"] if args.no_embeddings else []),
        ]  # fmt: skip
        without, pruned_size = 0, 0
        for span in range(1, args.runs + 1):
            write_span(data_dir, span)
            start = time.monotonic()
            run = subprocess.run(
                [sys.executable, "-m", "pipeline.local_runner", *flags,
                 "--keep-runs", "0", "--keep-versions", "0"],
                cwd=REPO, capture_output=True, text=True,
            )  # fmt: skip
            if run.returncode != 0:
                raise RuntimeError(f"run {span} failed:\n{run.stderr[-3000:]}")
            seconds = time.monotonic() - start
            before = folder_bytes(output_dir)
            without += before - pruned_size
            prune = subprocess.run(
                [sys.executable, "-m", "pipeline.retention", *flags,
                 "--keep-runs", str(args.keep_runs), "--keep-versions", str(args.keep_versions)],
                cwd=REPO, capture_output=True, text=True,
            )  # fmt: skip
            if prune.returncode != 0:
                raise RuntimeError(f"retention after run {span} failed:\n{prune.stderr[-3000:]}")
            pruned_size = folder_bytes(output_dir)
            serving = output_dir / "serving_model" / "ner_bilstm_crf"
            versions = sorted(p.name for p in serving.iterdir() if p.name.isdigit())
            rows.append((span, seconds, before, pruned_size, without, len(versions)))
            print(
                f"run {span}: {seconds:.0f} s, folder {before / 1e6:.0f} MB -> {pruned_size / 1e6:.0f}"
                f" MB after the prune, {without / 1e6:.0f} MB without retention",
                file=sys.stderr,
                flush=True,
            )

    print(
        f"Retention --keep-versions {args.keep_versions} --keep-runs {args.keep_runs}, "
        f"{'no vectors' if args.no_embeddings else 'GloVe 6B 50d'}, {args.epochs} epoch(s) a run, "
        f"every model pushed:\n"
    )
    print("| run | run (s) | folder after the run (MB) | after its prune (MB) | "
          "without retention (MB) | versions served |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for span, seconds, before, after, total, versions in rows:
        print(
            f"| {span} | {seconds:.0f} | {before / 1e6:.0f} | {after / 1e6:.0f} | "
            f"{total / 1e6:.0f} | {versions} |"
        )
    print(f"\n- CPU: {os.cpu_count()} cores; load average at the end {os.getloadavg()[0]:.1f}.")


if __name__ == "__main__":
    main()
