"""The tagger's training epochs with its CRF loss compiled by XLA inside the graph, or not.

    .venv/bin/python -m benchmarks.tagger_crf_compiled [--rounds 3] [--epochs 5]

The CRF layer's default (`jit_compile="auto"`, see `linear_crf.crf.compiled_in_graph`) runs the
loss and its gradient as XLA programs called from Keras' graph-mode train step, compiled once per
padded batch length. This measures what that gives the tagger of `models/config.py`'s defaults
(character CNN, BiLSTM, CRF; no pretrained vectors): `keras.Model.fit` over batches of 32 with
WNUT-17's training sentence lengths (cut to each batch's longest, as the Trainer does), synthetic
ids, one fresh process per run (XLA's compiled programs live per process), the two settings
alternating. It prints each setting's first epoch (tracing and compiling) and the median of the
later ones, with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
WNUT17_TRAIN = REPOSITORY_ROOT.parent / "shared" / "datasets" / "wnut17" / "wnut17train.conll"
SETTINGS = {"auto": "auto", "off": False}
BATCH_SIZE = 32
TAGS = ["[PAD]", "O"] + [
    f"{prefix}-{kind}"
    for kind in ("person", "location", "group", "product", "corporation", "creative-work")
    for prefix in ("B", "I")
]


def sentence_lengths(path: Path) -> list[int]:
    lengths, length = [], 0
    with open(path, encoding="utf-8") as file:
        for line in file:
            if line.strip():
                length += 1
            elif length:
                lengths.append(length)
                length = 0
    if length:
        lengths.append(length)
    return lengths


def worker(setting: str, epochs: int, corpus: Path) -> dict:
    """One run: build, compile, `fit` one epoch at a time; seconds per epoch."""
    import keras
    import numpy as np
    import tensorflow as tf

    from models.config import ModelConfig, TrainingConfig
    from models.tagger import build_tagger, compile_tagger

    rng = np.random.default_rng(0)
    lengths = np.array(sentence_lengths(corpus))
    rng.shuffle(lengths)
    keras.utils.set_random_seed(0)
    config = ModelConfig()
    model = build_tagger(config, tag_names=TAGS, num_words=8000, num_chars=100, max_word_length=20)
    model.get_layer("crf").jit_compile = SETTINGS[setting]  # read when the step is traced
    compile_tagger(model, config, TrainingConfig())
    batches = []
    for start in range(0, len(lengths) - BATCH_SIZE + 1, BATCH_SIZE):
        batch_lengths = lengths[start : start + BATCH_SIZE]
        width = int(batch_lengths.max())
        real = np.arange(width)[None] < batch_lengths[:, None]
        inputs = {
            "token_ids": rng.integers(2, 8000, (BATCH_SIZE, width)) * real,
            "casing_ids": rng.integers(1, 8, (BATCH_SIZE, width)) * real,
            "char_ids": rng.integers(1, 100, (BATCH_SIZE, width, 20)) * real[..., None],
        }
        batches.append((inputs, rng.integers(1, len(TAGS), (BATCH_SIZE, width)) * real))
    signature = (
        {
            "token_ids": tf.TensorSpec((BATCH_SIZE, None), tf.int64),
            "casing_ids": tf.TensorSpec((BATCH_SIZE, None), tf.int64),
            "char_ids": tf.TensorSpec((BATCH_SIZE, None, 20), tf.int64),
        },
        tf.TensorSpec((BATCH_SIZE, None), tf.int64),
    )
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(batches), output_signature=signature
    ).cache()
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.fit(dataset, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - started)
    return {
        "setting": setting,
        "epochs_s": seconds,
        "batches": len(batches),
        "batch_lengths": len({inputs["token_ids"].shape[1] for inputs, _ in batches}),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=WNUT17_TRAIN)
    parser.add_argument("--worker", choices=sorted(SETTINGS), help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.worker:
        print(json.dumps(worker(arguments.worker, arguments.epochs, arguments.corpus)))
        return
    runs: dict[str, list[dict]] = {setting: [] for setting in SETTINGS}
    loads = [os.getloadavg()[0]]
    for round_ in range(arguments.rounds):
        for setting in SETTINGS:
            output = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.tagger_crf_compiled",
                    "--worker",
                    setting,
                    "--epochs",
                    str(arguments.epochs),
                    "--corpus",
                    str(arguments.corpus),
                ],
                cwd=REPOSITORY_ROOT,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            run = json.loads(output.strip().splitlines()[-1])
            runs[setting].append(run)
            loads.append(os.getloadavg()[0])
            print(
                f"round {round_ + 1} {setting}: "
                + " ".join(f"{s:.1f}" for s in run["epochs_s"])
                + f" s (load {loads[-1]:.1f})",
                flush=True,
            )
    first = {s: statistics.median(r["epochs_s"][0] for r in runs[s]) for s in SETTINGS}
    later = {s: statistics.median(t for r in runs[s] for t in r["epochs_s"][1:]) for s in SETTINGS}
    sample = runs["auto"][0]
    print()
    print(
        f"{sample['batches']} batches of {BATCH_SIZE} an epoch, {sample['batch_lengths']} "
        f"batch lengths; {arguments.rounds} round(s), the settings alternating"
    )
    print("| CRF layer's jit_compile | first epoch, s (median) | later epochs, s (median) |")
    print("|---|---:|---:|")
    for setting in SETTINGS:
        print(f"| {SETTINGS[setting]!r} | {first[setting]:.1f} | {later[setting]:.2f} |")
    print(
        f"\nlater epochs, 'auto' / False: {later['auto'] / later['off']:.2f}x; first epoch "
        f"'auto' - False: {first['auto'] - first['off']:+.1f} s; load average "
        f"{min(loads):.1f}-{max(loads):.1f} (1 min)"
    )


if __name__ == "__main__":
    main()
