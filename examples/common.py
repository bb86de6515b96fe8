"""Data for the examples: the bundled WNUT-17 sample as padded id arrays (plain NumPy, no TFX)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from components.conll_format import read_conll

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"
PAD, OOV = 0, 1  # token ids 0 and 1 are reserved; tag id 0 is the padding tag "[PAD]"


@dataclasses.dataclass(frozen=True)
class TaggingData:
    """Sentences as right-padded arrays.

    Attributes:
        token_ids: int32 `(num_sentences, sequence_length)`, 0 at padding, 1 for unknown words.
        tag_ids: int32 `(num_sentences, sequence_length)`, 0 at padding.
        lengths: int32 `(num_sentences,)`.
        tokens: the words of each sentence.
    """

    token_ids: np.ndarray
    tag_ids: np.ndarray
    lengths: np.ndarray
    tokens: list[tuple[str, ...]]


def read_sentences(path: Path, max_sentences: int | None = None):
    sentences = list(read_conll(str(path)))
    return sentences[:max_sentences] if max_sentences else sentences


def build_vocabularies(sentences) -> tuple[list[str], list[str]]:
    """Lowercased words seen in training (ids from 2) and the tag names (id 0 is "[PAD]")."""
    words = sorted({token.lower() for s in sentences for token in s.tokens})
    tags = ["[PAD]"] + sorted({tag for s in sentences for tag in s.tags})
    return words, tags


def to_arrays(sentences, words: list[str], tags: list[str]) -> TaggingData:
    word_ids = {word: index + 2 for index, word in enumerate(words)}
    tag_ids = {tag: index for index, tag in enumerate(tags)}
    lengths = np.array([len(s.tokens) for s in sentences], dtype=np.int32)
    shape = (len(sentences), int(lengths.max()))
    token_array = np.zeros(shape, np.int32)
    tag_array = np.zeros(shape, np.int32)
    for row, sentence in enumerate(sentences):
        n = len(sentence.tokens)
        token_array[row, :n] = [word_ids.get(t.lower(), OOV) for t in sentence.tokens]
        tag_array[row, :n] = [tag_ids.get(t, tag_ids.get("O", 0)) for t in sentence.tags]
    return TaggingData(token_array, tag_array, lengths, [s.tokens for s in sentences])


@dataclasses.dataclass(frozen=True)
class SampleData:
    """The bundled sample, ready for a model: vocabularies from the training split."""

    train: TaggingData
    test: TaggingData
    words: list[str]  # token id = index + 2
    tags: list[str]  # tag id = index; "[PAD]" first


def load_sample(max_sentences: int | None = None) -> SampleData:
    """The bundled WNUT-17 sample (train.conll / eval.conll) as padded arrays."""
    train_sentences = read_sentences(SAMPLE_DIR / "train.conll", max_sentences)
    words, tags = build_vocabularies(train_sentences)
    test_sentences = read_sentences(SAMPLE_DIR / "eval.conll", max_sentences)
    return SampleData(
        to_arrays(train_sentences, words, tags), to_arrays(test_sentences, words, tags), words, tags
    )


def example_arguments(description: str, epochs: int, argv=None, vectors: bool = False):
    """The examples' command line: --epochs, --max-sentences (and --vectors)."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    if vectors:
        parser.add_argument(
            "--vectors", required=True, help="word vectors file (.txt, .vec, optionally .gz)"
        )
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--max-sentences", type=int, default=None)
    return parser.parse_args(argv)


def print_predictions(
    data: TaggingData, predicted: np.ndarray, tags: list[str], num_sentences: int = 3
) -> None:
    """Prints `word/TAG` for the first sentences, entity tags only."""
    for row in range(min(num_sentences, len(data.tokens))):
        words = data.tokens[row]
        labelled = [
            f"{word}/{tags[tag]}" if tags[tag] not in ("O", "[PAD]") else word
            for word, tag in zip(words, predicted[row, : len(words)])
        ]
        print("  " + " ".join(labelled))


def entity_f1(data: TaggingData, predicted: np.ndarray, tags: list[str]) -> float:
    """Entity-level F1 (conlleval semantics) of the predicted tag ids, in percent."""
    from models.entity_scoring import score_entities

    gold = [[tags[t] for t in data.tag_ids[r, :n]] for r, n in enumerate(data.lengths)]
    pred = [[tags[t] if t else "O" for t in predicted[r, :n]] for r, n in enumerate(data.lengths)]
    return score_entities(gold, pred).f1
