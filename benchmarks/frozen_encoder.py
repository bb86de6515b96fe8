"""A frozen encoder: seconds per epoch with its word vectors cached (the default) and without.

    .venv/bin/python -m benchmarks.frozen_encoder [--epochs 3] [--seed 1] [--work-dir DIR]

Runs our pipeline on WNUT-17 twice, in this order, each in a fresh process as
`spacy_peer.our_run` runs it: `--encoder minilm --no-encoder-trainable --epochs E --seed S`, then
the same with `--no-cache-encoder-vectors` (the encoder runs at every epoch, as before the
cache). Prints each epoch's seconds from the Trainer's log (training and the dev evaluation), the
Trainer's and the whole run's wall time and the test entity F1 as served, the load average
beside each. The two runs see the same sentences in different orders (the cache reshuffles
sentences, tf.data's reader shuffles records), so their F1 differ a little.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.spacy_peer import our_run, write_sentences

EPOCH_LINE = re.compile(r"Trainer: epoch (\d+)/\d+ done in ([\d.]+) s")
SETTINGS = {
    "cached": ("vectors cached (default)", ()),
    "uncached": ("encoder every epoch", ("--no-cache-encoder-vectors",)),
}


def epoch_seconds(log: Path) -> list[float]:
    text = log.read_text(encoding="utf-8", errors="replace")
    return [float(seconds) for _, seconds in EPOCH_LINE.findall(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work-dir", type=Path, help="keep models and logs here (default: temp)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="frozen_encoder_") as temporary:
        work = args.work_dir or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        splits = write_sentences(work)
        rows = []
        for setting, (label, extra) in SETTINGS.items():
            flags = ("--encoder", "minilm", "--no-encoder-trainable", "--epochs",
                     str(args.epochs), "--seed", str(args.seed), *extra)  # fmt: skip
            result = our_run(work, splits["test"], flags, label, folder=setting)
            result["epoch_seconds"] = epoch_seconds(work / f"{setting}.log")
            print(json.dumps(result), flush=True)
            rows.append(result)
    print(
        "| frozen MiniLM encoder | seconds per epoch (1, 2, ...) | later epochs, median "
        "| Trainer | whole run | test entity F1 | load average (start of run) |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        epochs = r["epoch_seconds"]
        later = statistics.median(epochs[1:]) if len(epochs) > 1 else float("nan")
        print(
            f"| {r['system']} | {', '.join(f'{s:.0f}' for s in epochs)} | {later:.0f} s "
            f"| {r['component_seconds']:.0f} s | {r['train_seconds']:.0f} s "
            f"| {r['test']['f1']:.2f} | {r['load_training']} |"
        )
    cached, uncached = (statistics.median(r["epoch_seconds"][1:]) for r in rows)
    print(f"\nLater epochs: uncached / cached = {uncached / cached:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
