"""Calling `serve_sentences` (text) or `serve_tokens` (token lists) in batches and reading their
padded outputs back per sentence."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from models.features import SENTENCES_INPUT, SENTENCES_SIGNATURE, TOKENS_INPUT

__all__ = [
    "Entity",
    "load_signature",
    "load_signatures",
    "split_outputs",
    "tag_batches",
    "tag_token_batches",
    "TaggedSentence",
]


@dataclasses.dataclass(frozen=True)
class Entity:
    """One entity: tokens `[start, end)`, its type, text and confidence (min token marginal)."""

    start: int
    end: int
    type: str
    text: str
    confidence: float


@dataclasses.dataclass(frozen=True)
class TaggedSentence:
    """One tagged sentence, read from the signature's outputs."""

    sentence: str
    tokens: list[str]
    tags: list[str]
    confidences: list[float]
    entities: list[Entity]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _text(value: bytes) -> str:
    return value.decode("utf-8")


def split_outputs(sentences: list[str], outputs: dict[str, Any]) -> list[TaggedSentence]:
    """Per-sentence results from one call of `serve_sentences` (numpy arrays or tensors)."""
    outputs = {key: np.asarray(value) for key, value in outputs.items()}
    results = []
    for b, sentence in enumerate(sentences):
        n = int(outputs["lengths"][b])
        entities = [
            Entity(
                start=int(outputs["entity_starts"][b, k]),
                end=int(outputs["entity_ends"][b, k]),
                type=_text(outputs["entity_types"][b, k]),
                text=_text(outputs["entity_texts"][b, k]),
                confidence=round(float(outputs["entity_confidences"][b, k]), 4),
            )
            for k in range(int(outputs["num_entities"][b]))
        ]
        results.append(
            TaggedSentence(
                sentence=sentence,
                tokens=[_text(t) for t in outputs["tokens"][b, :n]],
                tags=[_text(t) for t in outputs["tags"][b, :n]],
                confidences=[round(float(c), 4) for c in outputs["confidences"][b, :n]],
                entities=entities,
            )
        )
    return results


def load_signatures(model_dir: str, names: Sequence[str]) -> list:
    """The `names` signatures of one load of a SavedModel (plain TensorFlow), in that order.

    One load for all of them: each `tf.saved_model.load` reads the variables, tables and
    functions again (5-7 s for the pipeline's model with its 400k pretrained words).
    """
    import tensorflow as tf

    model = tf.saved_model.load(model_dir)
    signatures = []
    for name in names:
        if name not in model.signatures:
            raise ValueError(
                f"Invalid value for `model_dir`. Expected a SavedModel with a {name!r} "
                f"signature (exported after issue 5). Received: {model_dir!r} with signatures "
                f"{sorted(model.signatures)}"
            )
        signature = model.signatures[name]
        signature._model = model  # keep the loaded object (and its variables) alive
        signatures.append(signature)
    return signatures


def load_signature(model_dir: str, name: str = SENTENCES_SIGNATURE):
    """The `name` signature (`serve_sentences` unless told) of a SavedModel (plain TensorFlow)."""
    return load_signatures(model_dir, [name])[0]


def _batches(items: Iterable, batch_size: int) -> Iterator[list]:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"Invalid value for `batch_size`. Expected a positive integer. Received: "
            f"batch_size={batch_size!r}"
        )
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def tag_batches(
    signature, sentences: Iterable[str], batch_size: int = 64
) -> Iterator[TaggedSentence]:
    """Tags sentences through `serve_sentences`, `batch_size` at a time, in order."""
    import tensorflow as tf

    for batch in _batches(sentences, batch_size):
        outputs = signature(**{SENTENCES_INPUT: tf.constant(batch, tf.string)})
        yield from split_outputs(batch, {k: v.numpy() for k, v in outputs.items()})


def tag_token_batches(
    signature, token_lists: Iterable[Sequence[str]], batch_size: int = 64
) -> Iterator[TaggedSentence]:
    """Tags sentences given as token lists through `serve_tokens`, `batch_size` at a time, in
    order: each token stays one token, whatever it holds (a space, a non-breaking space). The
    `sentence` of each result is its tokens joined by spaces."""
    import tensorflow as tf

    for batch in _batches(token_lists, batch_size):
        width = max(len(tokens) for tokens in batch)
        padded = [list(tokens) + [""] * (width - len(tokens)) for tokens in batch]
        outputs = signature(
            **{TOKENS_INPUT: tf.constant(padded, tf.string, shape=[len(batch), width])}
        )
        sentences = [" ".join(tokens) for tokens in batch]
        yield from split_outputs(sentences, {k: v.numpy() for k, v in outputs.items()})
