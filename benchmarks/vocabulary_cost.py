"""What a 400k-word pretrained vocabulary costs a training step, against the training words alone.

    .venv/bin/python -m benchmarks.vocabulary_cost [--rounds 5] [--steps 20]

One process, the tagger of `models/config.py`'s defaults (BiLSTM-CRF, character CNN, frozen
pretrained channel) built three ways, trained on the same synthetic batches (32 sentences of 32
tokens whose word ids are drawn from the training words' rows):

- `training words only`: a vocabulary of the 8,110 words WNUT-17's training split reaches (what
  the model would hold without the vectors' other words), every row fine-tuned;
- `400k, tuned rows` (the Trainer now): GloVe's 400,000 words plus those, only the 8,110 rows
  the training data reaches fine-tuned (`models.tagger.PretrainedWordEmbedding`);
- `400k, every row tuned` (the Trainer before): the same vocabulary, every row trainable, as a
  whole trainable copy of the table was.

Rounds alternate between the three models; the figure is the median over rounds of the mean
step time. Target (issue 15): `400k, tuned rows` at most 1.25x `training words only`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from models.config import ModelConfig, TrainingConfig
from models.tagger import build_tagger, compile_tagger

TRAINING_WORDS = 8_110  # rows WNUT-17's training split reaches (the Trainer's log line)
VOCABULARY = 400_444  # GloVe's 400,000 words and the training split's others
TAGS = ["[PAD]", "O", "B-person", "I-person", "B-location", "I-location"]


def _model(num_words: int, tuned_ids, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    config = ModelConfig()
    vectors = np.random.default_rng(seed).normal(size=(num_words, 50)).astype(np.float32)
    model = build_tagger(
        config,
        tag_names=TAGS,
        num_words=num_words,
        num_chars=100,
        max_word_length=20,
        pretrained_word_embeddings=vectors,
        tuned_word_ids=tuned_ids,
    )
    compile_tagger(model, config, TrainingConfig())
    return model


def _batches(steps: int, rows: np.ndarray) -> tf.data.Dataset:
    rng = np.random.default_rng(1)
    inputs = {
        "token_ids": rows[rng.integers(0, len(rows), (steps, 32, 32))],
        "casing_ids": rng.integers(1, 8, (steps, 32, 32)),
        "char_ids": rng.integers(1, 100, (steps, 32, 32, 20)),
    }
    tags = rng.integers(1, 2, (steps, 32, 32))  # "O": a valid path under any constraints
    return tf.data.Dataset.from_tensor_slices((inputs, tags))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    reachable = np.arange(TRAINING_WORDS)  # padding, OOV and the training words
    # In the large vocabulary the training words are spread over the ids, as GloVe orders them.
    spread = np.unique(
        np.concatenate(
            [[0, 1], np.random.default_rng(2).choice(VOCABULARY, TRAINING_WORDS - 2, False)]
        )
    )
    settings = {
        "training words only": (_model(TRAINING_WORDS, None), reachable),
        "400k, tuned rows": (_model(VOCABULARY, spread), spread),
        "400k, every row tuned": (_model(VOCABULARY, None), spread),
    }
    data = {name: _batches(args.steps, rows) for name, (_, rows) in settings.items()}
    for name, (model, _) in settings.items():
        model.fit(data[name].take(3), verbose=0)  # trace
    times: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, (model, _) in settings.items():
            start = time.perf_counter()
            model.fit(data[name], verbose=0)
            times[name].append((time.perf_counter() - start) / args.steps)
    base = statistics.median(times["training words only"])
    print("| model | trainable parameters | ms per step (median) | x training words only |")
    print("|---|---:|---:|---:|")
    for name, (model, _) in settings.items():
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        median = statistics.median(times[name])
        print(f"| {name} | {trainable:,} | {1000 * median:.0f} | {median / base:.2f} |")
    print(
        f"\n{args.rounds} rounds of {args.steps} steps (batches of 32 x 32 tokens); "
        f"{os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f}."
    )


if __name__ == "__main__":
    main()
