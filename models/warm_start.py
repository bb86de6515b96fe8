"""Warm start: begin training from the weights of a previous model, matching embedding rows by word.

The Trainer's `base_model` (the latest blessed model, see `pipeline.pipeline`) is a Model artifact
whose `Format-Serving/` folder is what the Pusher publishes. Reading Keras weights back out of that
SavedModel (a `tf.Module` holding the TFT graph and the Keras 3 model) would tie this to the
export's layout, so `run_fn` also writes, beside `Format-Serving/` and never pushed:

    <model artifact>/warm_start/weights.npz            every weight but the frozen pretrained
                                                       table, keyed by its variable path (an
                                                       encoder's real values, not its stored
                                                       ones: `_REAL_VALUES`)
    <model artifact>/warm_start/compatibility.json     what the weights depend on

The frozen pretrained table (`PretrainedWordEmbedding.frozen`, 400,000 x 50 floats with GloVe:
80 MB) is not written: it is the vectors file's, never trained, and every run builds it again
from that file; the SavedModel beside holds it for serving. A warm-started model keeps its own
(the vectors file's) and takes the base model's tuned rows by word; with an unchanged vectors
file that is the same as taking the base's table. Base models written before this stored the
table, and their rows are still matched by word.

A new span of data usually brings new words and changes the frequency order of the vocabulary,
so the rows of the word and character embeddings are matched by word (and by character), not by
id: a word both models know starts from the base model's row, a new word from its fresh
initialisation (its pretrained vector, if any). Everything else in the record (the tag
vocabulary, the model configuration, the sizes) must be equal; if not, the model trains from its
fresh initialisation and the reason is logged.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

__all__ = [
    "base_tuned_words",
    "CHAR_EMBEDDING",
    "COMPATIBILITY_FILE",
    "compatibility_record",
    "model_artifact_dir",
    "save_warm_start_state",
    "VOCABULARIES_KEY",
    "warm_start",
    "WARM_START_DIR",
    "WEIGHTS_FILE",
    "WORD_EMBEDDING",
]

WARM_START_DIR = "warm_start"
WEIGHTS_FILE = "weights.npz"
COMPATIBILITY_FILE = "compatibility.json"
VOCABULARIES_KEY = "vocabularies"
WORD_EMBEDDING = "word_embedding"
CHAR_EMBEDDING = "char_embedding"
"""Names of the tagger's embedding layers (`models.tagger`) whose rows are matched by word."""
_SAME_ROWS_AS = {"frozen_word_embedding": WORD_EMBEDDING}
"""Embedding layers whose rows are those of another (the frozen pretrained channel's, in models
written before `models.tagger.PretrainedWordEmbedding` held both tables)."""
_FROZEN_TABLE = "frozen"
"""A `PretrainedWordEmbedding`'s frozen pretrained table: not saved (see the module doc)."""
_TABLES_BY_WORD = ("embeddings", _FROZEN_TABLE)
"""Weights of an embedding layer whose rows are matched by word (a `keras.layers.Embedding`'s
`embeddings`, a `PretrainedWordEmbedding`'s `frozen`); its `tuned` rows are matched through
`tuned_row`, `_tuned_rows_by_word`."""


def compatibility_record(
    tagger_config, token_vocabulary: Sequence, char_vocabulary: Sequence
) -> dict:
    """What a model's weights depend on.

    Args:
        tagger_config: `models.config.TaggerConfig`.
        token_vocabulary: the words of the word embedding's rows after the reserved ones (padding,
            OOV), in id order (`models.preprocessing.word_vocabulary`).
        char_vocabulary: the same for the character embedding.
    Returns:
        A JSON-serialisable dict. Two models whose records are equal except for `vocabularies`
        have the same weight shapes (the embeddings aside) and the same meaning of every tag id.
    """
    model = dataclasses.asdict(tagger_config.model)
    # The embeddings file only initialises the weights: the weights themselves replace it.
    model.pop("pretrained_embeddings_path", None)
    # Frozen or fine-tuned, the encoder's weights mean the same: a fine-tuned run may start from
    # a frozen one's and the other way round.
    model.pop("encoder_trainable", None)

    def text(items):
        return [item.decode("utf-8") if isinstance(item, bytes) else item for item in items]

    record = {
        VOCABULARIES_KEY: {
            WORD_EMBEDDING: text(token_vocabulary),
            CHAR_EMBEDDING: text(char_vocabulary),
        },
        "tag_vocabulary": list(tagger_config.preprocessing.tag_vocabulary),
        "max_length": tagger_config.preprocessing.max_length,
        "max_word_length": tagger_config.preprocessing.max_word_length,
        "model": model,
    }
    if tagger_config.model.encoder_path is not None:
        # Models with an encoder written before the saved weights were its real values (they
        # were its stored ones, divided by the learning-rate multiplier) lack this: no warm start.
        record["encoder_weights"] = _REAL_VALUES
    return record


_REAL_VALUES = "real values"
"""The saved weights of layers with a `learning_rate_multiplier` (`BertEncoder`) are their real
values, not the stored ones (which are divided by the multiplier): a run whose learning rates
give another multiplier reads them right."""


def _multipliers(model: keras.Model) -> dict[str, float]:
    """Variable path -> its layer's `learning_rate_multiplier` (`BertEncoder`), where not 1: the
    variable holds the weight's value divided by it."""
    return {
        variable.path: layer.learning_rate_multiplier
        for layer in model.layers
        if getattr(layer, "learning_rate_multiplier", 1.0) != 1.0
        for variable in layer.weights
    }


def model_artifact_dir(serving_model_dir: str) -> str:
    """The Model artifact's folder from its `Format-Serving` folder (`fn_args.serving_model_dir`
    or `fn_args.base_model`)."""
    return os.path.dirname(serving_model_dir.rstrip("/"))


def save_warm_start_state(model: keras.Model, record: dict, serving_model_dir: str) -> str:
    """Writes the weights and their compatibility record beside `serving_model_dir`.

    Returns:
        The folder written.
    """
    directory = os.path.join(model_artifact_dir(serving_model_dir), WARM_START_DIR)
    tf.io.gfile.makedirs(directory)
    multipliers = _multipliers(model)
    weights = {
        variable.path: np.asarray(variable) * multipliers[variable.path]
        if variable.path in multipliers
        else np.asarray(variable)
        for variable in model.weights
        if variable.path.rpartition("/")[2] != _FROZEN_TABLE
    }
    if len({variable.path for variable in model.weights}) != len(model.weights):
        raise ValueError(f"Weights of {model.name} with the same path: cannot key them by path.")
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    with tf.io.gfile.GFile(os.path.join(directory, WEIGHTS_FILE), "wb") as file:
        file.write(buffer.getvalue())
    with tf.io.gfile.GFile(os.path.join(directory, COMPATIBILITY_FILE), "w") as file:
        json.dump(record, file, sort_keys=True)
    return directory


def _rows_by_item(
    base: np.ndarray, fresh: np.ndarray, base_items: Sequence[str], items: Sequence[str]
) -> tuple[np.ndarray, int]:
    """`fresh` with the base's rows for the items both vocabularies have; (value, rows reused).

    The leading rows that are not items (padding, OOV) are the base's.
    """
    reserved = fresh.shape[0] - len(items)
    if base.shape[0] - len(base_items) != reserved or base.shape[1:] != fresh.shape[1:]:
        raise ValueError("reserved rows or row size differ")
    value = fresh.copy()
    value[:reserved] = base[:reserved]
    base_rows = {item: reserved + row for row, item in enumerate(base_items)}
    new_rows, old_rows = [], []
    for row, item in enumerate(items):
        if item in base_rows:
            new_rows.append(reserved + row)
            old_rows.append(base_rows[item])
    value[new_rows] = base[old_rows]
    return value, len(new_rows)


def _tuned_rows_by_word(
    base: Mapping[str, np.ndarray],
    layer: str,
    fresh_tuned: np.ndarray,
    fresh_tuned_row: np.ndarray,
    base_items: Sequence[str],
    items: Sequence[str],
) -> tuple[np.ndarray, int]:
    """The new `tuned` rows: for each of this model's tuned words the base model's tuned vector
    of the same word (its tuned row; if the base did not tune it, its pretrained vector: the
    base's frozen row where the base stored its table, else this model's own, the same vectors
    file's); (value, rows reused)."""
    base_tuned, base_tuned_row = base[f"{layer}/tuned"], base[f"{layer}/tuned_row"]
    base_frozen = base.get(f"{layer}/{_FROZEN_TABLE}")
    reserved = len(fresh_tuned_row) - len(items)
    if (
        len(base_tuned_row) - len(base_items) != reserved
        or base_tuned.shape[1:] != (fresh_tuned.shape[1:])
    ):
        raise ValueError("reserved rows or row size differ")
    base_ids = {item: reserved + row for row, item in enumerate(base_items)}
    value, count = fresh_tuned.copy(), 0
    for word_id in np.flatnonzero(fresh_tuned_row >= 0):
        # Padding and OOV: the base's; a word: the base's row of the same word, if it has one.
        base_id = word_id if word_id < reserved else base_ids.get(items[word_id - reserved])
        if base_id is None:
            continue
        if base_tuned_row[base_id] >= 0:
            value[fresh_tuned_row[word_id]] = base_tuned[base_tuned_row[base_id]]
        elif base_frozen is not None:
            value[fresh_tuned_row[word_id]] = base_frozen[base_id]
        # else: its pretrained vector, which is already this model's initial tuned row.
        count += word_id >= reserved
    return value, count


def base_tuned_words(base_model: str | None) -> set[str]:
    """The words whose rows the base model fine-tuned (its `PretrainedWordEmbedding`'s tuned
    rows), so that a warm-started model tunes them too rather than fall back to their pretrained
    vectors; empty without a base model or such rows."""
    if not base_model:
        return set()
    directory = os.path.join(model_artifact_dir(base_model), WARM_START_DIR)
    weights_path = os.path.join(directory, WEIGHTS_FILE)
    compatibility_path = os.path.join(directory, COMPATIBILITY_FILE)
    key = f"{WORD_EMBEDDING}/tuned_row"
    if not (tf.io.gfile.exists(weights_path) and tf.io.gfile.exists(compatibility_path)):
        return set()
    with tf.io.gfile.GFile(weights_path, "rb") as file:
        weights = np.load(io.BytesIO(file.read()))
        if key not in weights.files:
            return set()
        tuned_row = weights[key]
    with tf.io.gfile.GFile(compatibility_path) as file:
        words = json.load(file).get(VOCABULARIES_KEY, {}).get(WORD_EMBEDDING, [])
    reserved = len(tuned_row) - len(words)
    return {
        words[index - reserved] for index in np.flatnonzero(tuned_row >= 0) if index >= reserved
    }


def warm_start(model: keras.Model, record: dict, base_model: str | None) -> str | None:
    """Loads the base model's weights into `model` when their compatibility records allow it.

    Args:
        model: the freshly built tagger.
        record: `compatibility_record` of this run.
        base_model: `fn_args.base_model` (the base model's `Format-Serving` folder), or None.
    Returns:
        None if the weights were loaded (all of them, or none: never a mix), else why not (a
        sentence, also logged).
    """
    reason = _warm_start(model, record, base_model)
    if reason:
        logging.info("Trainer: no warm start, training from scratch: %s.", reason)
    return reason


def _warm_start(model: keras.Model, record: dict, base_model: str | None) -> str | None:
    if not base_model:
        return "no base model (no blessed model yet, or warm start disabled)"
    directory = os.path.join(model_artifact_dir(base_model), WARM_START_DIR)
    compatibility_path = os.path.join(directory, COMPATIBILITY_FILE)
    weights_path = os.path.join(directory, WEIGHTS_FILE)
    if not (tf.io.gfile.exists(compatibility_path) and tf.io.gfile.exists(weights_path)):
        return f"the base model has no warm-start weights ({weights_path} missing)"
    with tf.io.gfile.GFile(compatibility_path) as file:
        base_record = json.load(file)
    changed = sorted(
        key
        for key in (set(record) | set(base_record)) - {VOCABULARIES_KEY}
        if record.get(key) != base_record.get(key)
    )
    if changed:
        return f"changed since the base model: {', '.join(changed)}"
    with tf.io.gfile.GFile(weights_path, "rb") as file:
        base_weights = dict(np.load(io.BytesIO(file.read())))
    vocabularies: Mapping[str, Sequence[str]] = record.get(VOCABULARIES_KEY, {})
    base_vocabularies = base_record.get(VOCABULARIES_KEY, {})
    values, reused = [], []
    current = {variable.path: np.asarray(variable) for variable in model.weights}
    multipliers = _multipliers(model)
    for variable in model.weights:
        base = base_weights.get(variable.path)
        layer, _, name = variable.path.partition("/")
        rows = _SAME_ROWS_AS.get(layer, layer)
        if base is None and rows in vocabularies and name == _FROZEN_TABLE:
            values.append(current[variable.path])  # not saved: the vectors file's, as built
            continue
        if base is None:
            return f"the base model has no weight {variable.path}"
        if rows in vocabularies and name == "tuned_row":
            value = current[variable.path]  # this model's tuned words, not the base's
        elif rows in vocabularies and name == "tuned":
            try:
                value, count = _tuned_rows_by_word(
                    base_weights,
                    layer,
                    current[variable.path],
                    current[f"{layer}/tuned_row"],
                    base_vocabularies[rows],
                    vocabularies[rows],
                )
            except (KeyError, ValueError):
                return f"the rows of {variable.path} cannot be matched to the base model's"
            reused.append(f"{count} of {len(value)} {layer} tuned rows")
        elif rows in vocabularies and name in _TABLES_BY_WORD:
            try:
                value, count = _rows_by_item(
                    base, np.asarray(variable), base_vocabularies[rows], vocabularies[rows]
                )
            except (KeyError, ValueError):
                return f"the rows of {variable.path} cannot be matched to the base model's"
            reused.append(f"{count} of {len(vocabularies[rows])} {layer} rows")
        elif base.shape != tuple(variable.shape):
            return f"{variable.path} has shape {tuple(variable.shape)}, the base's {base.shape}"
        else:
            value = base / multipliers[variable.path] if variable.path in multipliers else base
        values.append(value)
    for variable, value in zip(model.weights, values):
        variable.assign(value)
    logging.info(
        "Trainer: warm start from the weights of %s (%s reused by word)",
        base_model,
        ", ".join(reused) or "no embedding",
    )
    return None
