"""Entity-level precision, recall and F1 with the semantics of CoNLL's `conlleval` script.

An entity (chunk) is a maximal run of tokens of one type (Tjong Kim Sang and Buchholz, 2000,
conlleval.pl; the extension to the S and E prefixes follows seqeval's conlleval-compatible mode):

- it starts at B-X or S-X; at I-X or E-X after O, after a chunk's last tag (E or S), or after a tag of
  another type (so "O I-X" and "I-A I-B" start chunks: conlleval is lenient about IOB1-style input);
- it ends before B, S or O, after E or S, and before any tag of another type.

A predicted entity counts as correct only if its start, end and type all equal a gold entity's.
Micro-averaged figures pool the counts of all types. Scores are in percent, 0 where undefined
(no predicted entities for precision, no gold entities for recall), as conlleval prints them.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

from linear_crf.tag_scheme import _PREFIXES, TAG_SCHEMES, canonical_scheme, split_tag

__all__ = [
    "EntityScores",
    "TAG_SCHEMES",
    "TypeScores",
    "extract_entities",
    "score_entities",
    "token_accuracy",
]


class TypeScores(NamedTuple):
    """Scores of one entity type, in percent, its number of gold entities (`support`), of
    predicted entities and of correct ones (false positives: `num_predicted - num_correct`;
    false negatives: `support - num_correct`)."""

    precision: float
    recall: float
    f1: float
    support: int
    num_predicted: int = 0
    num_correct: int = 0


@dataclasses.dataclass(frozen=True)
class EntityScores:
    """Entity-level scores of predicted tag sequences against gold ones.

    Attributes:
        precision: micro-averaged precision in percent: correct / predicted entities.
        recall: micro-averaged recall in percent: correct / gold entities.
        f1: harmonic mean of precision and recall in percent (0 if both are 0).
        per_type: entity type -> `TypeScores(precision, recall, f1, support)`, for every type in
            the gold or the predicted tags, sorted by type.
        num_true_positives: predicted entities equal to a gold entity (start, end and type).
        num_false_positives: predicted entities with no equal gold entity.
        num_false_negatives: gold entities with no equal predicted entity.
        token_accuracy: percent of tokens whose predicted tag equals the gold tag ("O" included).
        num_tokens: tokens scored.
    """

    precision: float
    recall: float
    f1: float
    per_type: dict[str, TypeScores]
    num_true_positives: int
    num_false_positives: int
    num_false_negatives: int
    token_accuracy: float
    num_tokens: int


def _check_scheme(scheme: str) -> None:
    canonical_scheme(scheme, "scheme")


def _split_tag(tag: str, index: int, scheme: str) -> tuple[str, str | None]:
    try:
        return split_tag(tag, scheme)
    except ValueError:
        expected = "O or " + ", ".join(f"{p}-<type>" for p in _PREFIXES[canonical_scheme(scheme)])
        raise ValueError(
            f"Invalid value for `tags[{index}]`. Expected {expected} (scheme {scheme!r}). "
            f"Received: tags[{index}]={tag!r}"
        ) from None


def extract_entities(tags: Sequence[str], scheme: str = "iob2") -> list[tuple[int, int, str]]:
    """Entities (chunks) of one tag sequence, with conlleval's rules.

    Args:
        tags: the tags of one sentence, e.g. ["B-person", "I-person", "O"].
        scheme: "iob2" (alias "bio": prefixes B and I) or "bioes" (also E and S); a tag with a
            prefix outside the scheme is an error.
    Returns:
        (start, end_exclusive, entity_type) of each entity, in order.
    Raises:
        ValueError: for an unknown scheme or a tag that is not O nor `<prefix>-<type>`.
    """
    _check_scheme(scheme)
    entities: list[tuple[int, int, str]] = []
    start: int | None = None
    previous_prefix: str = "O"
    previous_type: str | None = None
    for index, tag in enumerate(tags):
        prefix, entity_type = _split_tag(tag, index, scheme)
        ends = start is not None and (
            previous_prefix in ("E", "S")
            or prefix in ("B", "S", "O")
            or entity_type != previous_type
        )
        if ends:
            assert start is not None and previous_type is not None  # an entity is open
            entities.append((start, index, previous_type))
            start = None
        starts = prefix in ("B", "S") or (
            prefix in ("I", "E")
            and (previous_prefix in ("O", "E", "S") or entity_type != previous_type)
        )
        if starts:
            start = index
        previous_prefix, previous_type = prefix, entity_type
    if start is not None:
        assert previous_type is not None  # an entity is open
        entities.append((start, len(tags), previous_type))
    return entities


def _percent(numerator: int, denominator: int) -> float:
    return 100.0 * numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def token_accuracy(
    gold_sequences: Sequence[Sequence[str]], predicted_sequences: Sequence[Sequence[str]]
) -> float:
    """Percent of tokens whose predicted tag equals the gold tag, over all sequences."""
    _check_lengths(gold_sequences, predicted_sequences)
    num_tokens = sum(len(gold) for gold in gold_sequences)
    num_correct = sum(
        sum(g == p for g, p in zip(gold, predicted))
        for gold, predicted in zip(gold_sequences, predicted_sequences)
    )
    return _percent(num_correct, num_tokens)


def _check_lengths(gold_sequences, predicted_sequences) -> None:
    if len(gold_sequences) != len(predicted_sequences):
        raise ValueError(
            "Invalid value for `predicted_sequences`. Expected as many sequences as "
            f"`gold_sequences` ({len(gold_sequences)}). "
            f"Received: len(predicted_sequences)={len(predicted_sequences)}"
        )
    for index, (gold, predicted) in enumerate(zip(gold_sequences, predicted_sequences)):
        if len(gold) != len(predicted):
            raise ValueError(
                f"Invalid value for `predicted_sequences[{index}]`. Expected {len(gold)} tags "
                f"like `gold_sequences[{index}]`. "
                f"Received: len(predicted_sequences[{index}])={len(predicted)}"
            )


def _entities_of(sequence, name, index, scheme):
    try:
        return extract_entities(sequence, scheme)
    except ValueError as error:
        raise ValueError(f"In `{name}[{index}]`: {error}") from None


def score_entities(
    gold_sequences: Sequence[Sequence[str]],
    predicted_sequences: Sequence[Sequence[str]],
    scheme: str = "iob2",
) -> EntityScores:
    """Scores predicted tag sequences against gold ones, entity by entity (conlleval).

    Args:
        gold_sequences: one tag sequence per sentence (lists, tuples or 1-D numpy arrays of str).
        predicted_sequences: the predicted tags, same number of sequences and same lengths.
        scheme: "iob2" (alias "bio") or "bioes"; both sides must follow it.
    Returns:
        `EntityScores`, in percent.
    Raises:
        ValueError: for sequences of different numbers or lengths, or tags outside the scheme.
    """
    _check_scheme(scheme)
    _check_lengths(gold_sequences, predicted_sequences)
    num_gold: collections.Counter[str] = collections.Counter()
    num_predicted: collections.Counter[str] = collections.Counter()
    num_correct: collections.Counter[str] = collections.Counter()
    num_tokens = num_correct_tags = 0
    for index, (gold, predicted) in enumerate(zip(gold_sequences, predicted_sequences)):
        gold_entities = _entities_of(gold, "gold_sequences", index, scheme)
        predicted_entities = _entities_of(predicted, "predicted_sequences", index, scheme)
        num_gold.update(entity_type for _, _, entity_type in gold_entities)
        num_predicted.update(entity_type for _, _, entity_type in predicted_entities)
        correct = set(gold_entities) & set(predicted_entities)
        num_correct.update(entity_type for _, _, entity_type in correct)
        num_tokens += len(gold)
        num_correct_tags += sum(g == p for g, p in zip(gold, predicted))

    per_type = {}
    for entity_type in sorted(set(num_gold) | set(num_predicted)):
        precision = _percent(num_correct[entity_type], num_predicted[entity_type])
        recall = _percent(num_correct[entity_type], num_gold[entity_type])
        per_type[entity_type] = TypeScores(
            precision,
            recall,
            _f1(precision, recall),
            num_gold[entity_type],
            num_predicted[entity_type],
            num_correct[entity_type],
        )
    true_positives = sum(num_correct.values())
    total_predicted = sum(num_predicted.values())
    total_gold = sum(num_gold.values())
    precision = _percent(true_positives, total_predicted)
    recall = _percent(true_positives, total_gold)
    return EntityScores(
        precision=precision,
        recall=recall,
        f1=_f1(precision, recall),
        per_type=per_type,
        num_true_positives=true_positives,
        num_false_positives=total_predicted - true_positives,
        num_false_negatives=total_gold - true_positives,
        token_accuracy=_percent(num_correct_tags, num_tokens),
        num_tokens=num_tokens,
    )
