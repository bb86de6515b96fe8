"""Seconds per Trainer epoch by word vocabulary and corpus size (issues 15 and 16).

    .venv/bin/python -m benchmarks.trainer_epochs [--corpora wnut17 wnut17x4 synthetic:10000]
        [--variants training-words 400k-tuned-rows 400k-every-row] [--epochs 3]
        [--work-dir DIR] [--output outputs/trainer_epochs.md]

Each run trains the default tagger (`models.config`: BiLSTM-CRF, character CNN, GloVe 6B 50d)
with the Trainer's own `models.train.train` on the corpus's transformed features (Transform's
`preprocessing_fn`, run once per corpus and vocabulary by `benchmarks.tagger_quality.transform`
and cached), `--epochs` epochs, early stopping off, in a fresh process. Per epoch it records the
seconds of the training pass (`fit`'s epoch up to its validation) and of the whole epoch (the
validation and the dev entity F1 included); the table gives the median over the epochs after the
first (the first also traces the graphs), the training sentences per second of that median, and
the ratio to `training-words` on the same corpus.

Variants (the pretrained words' cost, issue 15):

- `training-words`: `preprocessing.pretrained_vocabulary_size=0`: the word vocabulary is the
  training split's words, each starting from its GloVe vector where GloVe has it;
- `400k-tuned-rows` (the Trainer now): GloVe's 400,000 words join the vocabulary; only the rows
  of words the training data holds are trainable (`models.tagger.PretrainedWordEmbedding`);
- `400k-every-row` (the Trainer before): the same vocabulary with every row trainable, rebuilt
  here by making `models.train.training_word_ids` return every id (what a whole trainable copy
  of the table was). Not a configuration users can choose; the benchmark's reference.

Corpora (the cost by corpus size, issue 16), all with WNUT-17's dev split as the eval split:

- `wnut17`: the bundled WNUT-17 train split (`data/wnut17/train.conll`, 3,394 sentences);
- `wnut17xK`: that split K times, the sentences shuffled (seed 0);
- `synthetic:N`: N sentences of `benchmarks.data_components_scale.write_synthetic_corpus`
  (WNUT-17 lengths and tags, resampled tokens, a tenth with a random suffix: the vocabulary grows).

Targets: `400k-tuned-rows` at most 1.25x `training-words` per epoch (issue 15); training
sentences per second flat within 1.5x across corpus sizes (issue 16). The load average is printed
beside every run; run it on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WNUT17 = REPO / "data" / "wnut17"
VARIANTS = {
    "training-words": "training words only",
    "400k-tuned-rows": "400k words, tuned rows (the Trainer now)",
    "400k-every-row": "400k words, every row tuned (the Trainer before)",
}


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def corpus_sentences(corpus: str, work: Path) -> list:
    """The training `Sentence`s of `corpus` (see the module docstring)."""
    from components.conll_format import read_conll

    if corpus == "wnut17":
        return list(read_conll(WNUT17 / "train.conll"))
    if corpus.startswith("wnut17x") and corpus[len("wnut17x") :].isdigit():
        sentences = list(read_conll(WNUT17 / "train.conll")) * int(corpus[len("wnut17x") :])
        random.Random(0).shuffle(sentences)
        return sentences
    if corpus.startswith("synthetic:") and corpus.split(":", 1)[1].isdigit():
        from benchmarks.data_components_scale import write_synthetic_corpus

        folder = work / corpus.replace(":", "_")
        if not (folder / "train.conll").exists():
            write_synthetic_corpus(folder, int(corpus.split(":", 1)[1]))
        return list(read_conll(folder / "train.conll"))
    raise ValueError(
        "Invalid value for `--corpora`. Expected wnut17, wnut17xK or synthetic:N with K and N "
        f"whole numbers. Received: {corpus!r}"
    )


def EpochClock():  # noqa: N802 (a Callback built lazily: keras import)
    import keras

    class _EpochClock(keras.callbacks.Callback):
        """Seconds of each epoch's training pass (up to validation) and of the whole epoch."""

        def __init__(self):
            super().__init__()
            self.train_seconds, self.epoch_seconds = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.start, self.validation_start = time.monotonic(), None

        def on_test_begin(self, logs=None):
            if self.validation_start is None:
                self.validation_start = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            end = time.monotonic()
            self.train_seconds.append((self.validation_start or end) - self.start)
            self.epoch_seconds.append(end - self.start)
            print(
                f"  epoch {epoch + 1}: training {self.train_seconds[-1]:.1f} s, "
                f"whole epoch {self.epoch_seconds[-1]:.1f} s (load {load()})",
                file=sys.stderr,
                flush=True,
            )

    return _EpochClock()


def one_run(corpus: str, variant: str, epochs: int, work: Path) -> dict:
    """Featurises (cached) and trains one (corpus, variant); returns its figures."""
    import dataclasses

    import numpy as np
    import tensorflow_transform as tft
    from tfx_bsl.public import tfxio

    from benchmarks.tagger_quality import GLOVE_FILE, apply_overrides, shared_dir, transform
    from components.conll_format import read_conll
    from models import preprocessing, train
    from models.config import PreprocessingConfig, TaggerConfig
    from models.features import CHAR_VOCABULARY_NAME, NUM_RESERVED_IDS

    overrides = [
        f"model.pretrained_embeddings_path={shared_dir() / GLOVE_FILE}",
        f"training.epochs={epochs}",
        f"training.early_stopping_start_epoch={epochs + 1}",
        "training.seed=1",
    ]
    if variant == "training-words":
        overrides.append("preprocessing.pretrained_vocabulary_size=0")
    dev = list(read_conll(WNUT17 / "eval.conll"))
    splits = {"train": corpus_sentences(corpus, work), "dev": dev, "test": dev[:8]}
    tag_names = tuple(sorted({tag for sentence in splits["train"] for tag in sentence.tags}))
    config = TaggerConfig(preprocessing=PreprocessingConfig(tag_names=tag_names))
    config = apply_overrides(config, overrides)
    featurise_start = time.monotonic()
    transformed = transform(splits, config, work / "cache" / corpus.replace(":", "_"))
    featurise_seconds = time.monotonic() - featurise_start
    tf_transform_output = tft.TFTransformOutput(str(transformed / "transform"))
    schema = tf_transform_output.transformed_metadata.schema

    def features(split, shuffle):
        options = tfxio.TensorFlowDatasetOptions(
            batch_size=config.training.batch_size,
            shuffle=shuffle,
            shuffle_seed=1,
            shuffle_buffer_size=config.training.shuffle_buffer_size,
            num_epochs=1,
        )
        files = [str(transformed / f"{split}-*.tfrecord")]
        return tfxio.TFExampleRecord(files, schema=schema).TensorFlowDataset(options)

    words = preprocessing.word_vocabulary(tf_transform_output, config)
    if variant == "400k-every-row":
        # The Trainer before `PretrainedWordEmbedding` kept only the reachable rows trainable.
        every_id = np.arange(NUM_RESERVED_IDS + len(words), dtype=np.int64)
        train.training_word_ids = lambda *args, **kwargs: every_id
    clock = EpochClock()
    before = load()
    start = time.monotonic()
    trained = train.train(
        config,
        features("train", shuffle=True),
        features("dev", shuffle=False),
        words,
        tf_transform_output.vocabulary_by_name(CHAR_VOCABULARY_NAME),
        callbacks=[clock],
    )
    model = trained.model
    return {
        "corpus": corpus,
        "variant": variant,
        "train_sentences": len(splits["train"]),
        "vocabulary_words": NUM_RESERVED_IDS + len(words),
        "trainable_parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "featurise_seconds": featurise_seconds,
        "train_seconds": clock.train_seconds,
        "epoch_seconds": clock.epoch_seconds,
        "run_seconds": time.monotonic() - start,
        "dev_entity_f1": [float(f) for f in trained.history["val_entity_f1"]],
        "load_before": before,
        "load_after": load(),
        "config": dataclasses.asdict(config.training) | {"overrides": overrides},
    }


def later_median(values: list[float]) -> float:
    """The median of the epochs after the first (the first alone if there is only one)."""
    return statistics.median(values[1:] or values)


def table(results: list[dict]) -> str:
    lines = [
        "| corpus | train sentences | vocabulary | trainable parameters | training pass, s "
        "(median, epochs 2+) | whole epoch, s | training sentences/s | x training-words | "
        "load average (before; after) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    reference = {
        r["corpus"]: later_median(r["train_seconds"])
        for r in results
        if r["variant"] == "training-words"
    }
    for r in results:
        seconds = later_median(r["train_seconds"])
        ratio = f"{seconds / reference[r['corpus']]:.2f}x" if r["corpus"] in reference else ""
        lines.append(
            f"| {r['corpus']} | {r['train_sentences']:,} | {VARIANTS[r['variant']]} "
            f"({r['vocabulary_words']:,} words) | {r['trainable_parameters']:,} | {seconds:.1f} | "
            f"{later_median(r['epoch_seconds']):.1f} | {r['train_sentences'] / seconds:,.0f} | "
            f"{ratio} | {r['load_before']}; {r['load_after']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", nargs="+", default=["wnut17", "wnut17x4"])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--one", nargs=2, metavar=("CORPUS", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="trainer_epochs_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.one:
        print(json.dumps(one_run(*args.one, args.epochs, work)), flush=True)
        return 0
    results = []
    for corpus in args.corpora:
        for variant in args.variants:
            print(f"[{corpus} / {variant}] (load {load()}) ...", file=sys.stderr, flush=True)
            command = [sys.executable, "-m", "benchmarks.trainer_epochs", "--one", corpus]
            command += [variant, "--epochs", str(args.epochs), "--work-dir", str(work)]
            completed = subprocess.run(
                command,
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
            )
            if completed.returncode != 0:
                raise RuntimeError(f"{corpus} / {variant} failed (exit {completed.returncode})")
            result = json.loads(completed.stdout.strip().splitlines()[-1])
            print(json.dumps(result), flush=True)
            results.append(result)
    markdown = (
        f"{table(results)}\n\n- {args.epochs} epochs a run, early stopping off, seed 1; CPU: "
        f"{os.cpu_count()} cores; load average at the end {load()}.\n"
    )
    print(markdown)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(markdown, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
