"""Entity-level precision, recall and F1 (conlleval semantics) as a TFMA metric.

For the Evaluator: the label is the raw `tags` feature of each tf.Example (the gold tags, one
per token), the prediction the model's `tags` output (one tag per position, "" at padding).
Entities are read from both with `models.entity_scoring.extract_entities` (conlleval's chunk
rules) and counted over the whole eval split, then micro-averaged, exactly as
`models.entity_scoring.score_entities` would score the same sentences.

Use it in an EvalConfig as

    tfma.MetricConfig(class_name="EntityF1", module="models.entity_metric",
                      config='{"entity_types": ["person", ...]}')

Metric keys (figures in percent, as conlleval prints them):

- `entity_f1` (the metric's name; put thresholds on this one), `entity_precision`, `entity_recall`;
- `entity_f1/<type>` for each entity type (those of `entity_types`, else those seen);
- `token_accuracy`: tokens whose predicted tag equals the gold tag ("O" included).

The exported model tags every sentence whole (`models.export`). Should a prediction be shorter
than its gold (a model exported before windowing, which cut sentences at `max_length`), the
missing tokens count as predicted "O"; see `align_predictions`.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2

from models.entity_scoring import extract_entities

__all__ = [
    "align_predictions",
    "ENTITY_F1_NAME",
    "EntityCounts",
    "EntityF1",
    "PRECISION_NAME",
    "RECALL_NAME",
    "TOKEN_ACCURACY_NAME",
]

ENTITY_F1_NAME = "entity_f1"
PRECISION_NAME = "entity_precision"
RECALL_NAME = "entity_recall"
TOKEN_ACCURACY_NAME = "token_accuracy"


@dataclasses.dataclass
class EntityCounts:
    """Counts over the sentences seen so far (the combiner's accumulator).

    Attributes:
        num_gold: entity type -> gold entities.
        num_predicted: entity type -> predicted entities.
        num_correct: entity type -> predicted entities equal to a gold one (start, end, type).
        num_tokens: gold tokens.
        num_correct_tags: tokens whose predicted tag equals the gold tag.
    """

    num_gold: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    num_predicted: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    num_correct: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    num_tokens: int = 0
    num_correct_tags: int = 0

    def add_sentence(self, gold: Sequence[str], predicted: Sequence[str], scheme: str) -> None:
        """Counts one sentence; `predicted` has the same length as `gold`."""
        gold_entities = extract_entities(gold, scheme)
        predicted_entities = extract_entities(predicted, scheme)
        self.num_gold.update(entity_type for _, _, entity_type in gold_entities)
        self.num_predicted.update(entity_type for _, _, entity_type in predicted_entities)
        correct = set(gold_entities) & set(predicted_entities)
        self.num_correct.update(entity_type for _, _, entity_type in correct)
        self.num_tokens += len(gold)
        self.num_correct_tags += sum(g == p for g, p in zip(gold, predicted))

    def merge(self, other: EntityCounts) -> None:
        self.num_gold.update(other.num_gold)
        self.num_predicted.update(other.num_predicted)
        self.num_correct.update(other.num_correct)
        self.num_tokens += other.num_tokens
        self.num_correct_tags += other.num_correct_tags


def _percent(numerator: int, denominator: int) -> float:
    return 100.0 * numerator / denominator if denominator else 0.0


def _f1(num_correct: int, num_predicted: int, num_gold: int) -> float:
    precision = _percent(num_correct, num_predicted)
    recall = _percent(num_correct, num_gold)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _strings(values: Any) -> list[str]:
    """A 1-D array of tags (bytes or str) as a list of str, padding ("") dropped."""
    array = np.asarray(values).reshape(-1)
    tags = [value.decode("utf-8") if isinstance(value, bytes) else str(value) for value in array]
    return [tag for tag in tags if tag]


def align_predictions(gold: Sequence[str], predicted: Sequence[str]) -> list[str]:
    """The predicted tags cut or padded with "O" to the length of the gold tags.

    The model tags at most `max_length` tokens; longer sentences' remaining tokens count as "O".
    """
    predicted = list(predicted[: len(gold)])
    return predicted + ["O"] * (len(gold) - len(predicted))


class _EntityCombiner(beam.CombineFn):
    """Counts entities per type over all examples, then scores them."""

    def __init__(
        self,
        keys: dict[str, metric_types.MetricKey],
        eval_config: config_pb2.EvalConfig | None,
        model_name: str,
        output_name: str,
        scheme: str,
        entity_types: Sequence[str],
        example_weighted: bool,
    ):
        self._keys = keys
        self._eval_config = eval_config
        self._model_name = model_name
        self._output_name = output_name
        self._scheme = scheme
        self._entity_types = tuple(entity_types)
        self._example_weighted = example_weighted

    def create_accumulator(self) -> EntityCounts:
        return EntityCounts()

    def add_input(
        self, accumulator: EntityCounts, element: metric_types.StandardMetricInputs
    ) -> EntityCounts:
        for label, prediction, _ in metric_util.to_label_prediction_example_weight(
            element,
            eval_config=self._eval_config,
            model_name=self._model_name,
            output_name=self._output_name,
            example_weighted=False,
            flatten=False,
            squeeze=False,
        ):
            gold = _strings(label)
            accumulator.add_sentence(
                gold, align_predictions(gold, _strings(prediction)), self._scheme
            )
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[EntityCounts]) -> EntityCounts:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            result.merge(accumulator)
        return result

    def extract_output(self, accumulator: EntityCounts) -> dict[metric_types.MetricKey, float]:
        correct = sum(accumulator.num_correct.values())
        predicted = sum(accumulator.num_predicted.values())
        gold = sum(accumulator.num_gold.values())
        output = {
            self._keys[ENTITY_F1_NAME]: _f1(correct, predicted, gold),
            self._keys[PRECISION_NAME]: _percent(correct, predicted),
            self._keys[RECALL_NAME]: _percent(correct, gold),
            self._keys[TOKEN_ACCURACY_NAME]: _percent(
                accumulator.num_correct_tags, accumulator.num_tokens
            ),
        }
        entity_types = self._entity_types or sorted(
            set(accumulator.num_gold) | set(accumulator.num_predicted)
        )
        for entity_type in entity_types:
            key = _metric_key(
                f"{ENTITY_F1_NAME}/{entity_type}",
                self._model_name,
                self._output_name,
                self._example_weighted,
            )
            output[key] = _f1(
                accumulator.num_correct[entity_type],
                accumulator.num_predicted[entity_type],
                accumulator.num_gold[entity_type],
            )
        return output


def _metric_key(
    name: str, model_name: str, output_name: str, example_weighted: bool
) -> metric_types.MetricKey:
    return metric_types.MetricKey(
        name=name,
        model_name=model_name,
        output_name=output_name,
        example_weighted=example_weighted,
    )


def _entity_computations(
    name: str = ENTITY_F1_NAME,
    scheme: str = "iob2",
    entity_types: Sequence[str] = (),
    eval_config: config_pb2.EvalConfig | None = None,
    model_name: str = "",
    output_name: str = "",
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    keys = {
        key_name: _metric_key(metric_name, model_name, output_name, example_weighted)
        for key_name, metric_name in (
            (ENTITY_F1_NAME, name),
            (PRECISION_NAME, PRECISION_NAME),
            (RECALL_NAME, RECALL_NAME),
            (TOKEN_ACCURACY_NAME, TOKEN_ACCURACY_NAME),
        )
    }
    return [
        metric_types.MetricComputation(
            keys=list(keys.values()),
            preprocessors=None,
            combiner=_EntityCombiner(
                keys, eval_config, model_name, output_name, scheme, entity_types, example_weighted
            ),
        )
    ]


class EntityF1(metric_types.Metric):
    """Entity-level micro F1 (with precision, recall, per-type F1, token accuracy), in percent.

    Args:
        name: name of the F1 key (thresholds go on it).
        scheme: tag scheme of labels and predictions, "iob2" or "bioes".
        entity_types: entity types that always get an `entity_f1/<type>` key (0 if absent);
            empty: the types found in the data.
    """

    def __init__(
        self,
        name: str = ENTITY_F1_NAME,
        scheme: str = "iob2",
        entity_types: Sequence[str] = (),
    ):
        super().__init__(
            metric_util.merge_per_key_computations(_entity_computations),
            name=name,
            scheme=scheme,
            entity_types=list(entity_types),
        )


metric_types.register_metric(EntityF1)
